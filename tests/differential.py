#!/usr/bin/env python3
"""differential.py — the randomised differential test: `regstream run` against regstream-refmodel.

For every seed and both input orders (month-major, person-major) it generates input with the
project's generator (bench regstream-gen, random profile, with varying repeat/correction/late/
invalid rates and 1..3 files), runs `regstream run` with 1..4 threads and the independent
reference model (tests/reference/refmodel.c) with the same rule options, and requires the CSVs
to be byte-identical and the dead-letter file's (file_index, record, reason) multiset to equal
the model's REJECTS.txt. On a mismatch it prints the seed, the commands that reproduce it and the
first differing lines, keeps the case's directory, and exits non-zero.

    python3 tests/differential.py --build-dir build [--seeds 40] [--first-seed 1] [--sanitized]
                                  [--jobs 2] [--time-budget SECONDS] [--keep]

--sanitized (passed by tests/differential.cmake when the build is instrumented, or set by the
environment REGSTREAM_SANITIZED=1) shrinks the inputs so the run stays within minutes under ASan.
The last line is always "differential: N passed, M failed" (N, M count seed x order cases).
Exit status: 0 all passed; 1 a mismatch or a failed run; 77 the product or generator is not built.
Python 3 standard library only.
"""
import argparse
import concurrent.futures
import difflib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True, help="CMake build directory")
    ap.add_argument("--seeds", type=int, default=40, help="number of seeds (default 40)")
    ap.add_argument("--first-seed", type=int, default=1, help="first seed (default 1)")
    ap.add_argument("--sanitized", action="store_true",
                    help="smaller inputs for sanitizer builds (also REGSTREAM_SANITIZED=1)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="cases run side by side (default: min(2, cores))")
    ap.add_argument("--time-budget", type=float, default=None,
                    help="seconds after which no new seed is started (default 100, 300 sanitized)")
    ap.add_argument("--keep", action="store_true", help="keep every case directory")
    ap.add_argument("--regstream", help="path of regstream (default BUILD/regstream)")
    ap.add_argument("--gen", help="path of regstream-gen (default BUILD/bench/regstream-gen)")
    ap.add_argument("--refmodel", help="path of regstream-refmodel (default BUILD/tests/...)")
    args = ap.parse_args()
    if os.environ.get("REGSTREAM_SANITIZED", "") not in ("", "0"):
        args.sanitized = True
    if args.time_budget is None:
        args.time_budget = 300.0 if args.sanitized else 100.0
    b = os.path.abspath(args.build_dir)
    args.regstream = args.regstream or os.path.join(b, "regstream")
    args.gen = args.gen or os.path.join(b, "bench", "regstream-gen")
    args.refmodel = args.refmodel or os.path.join(b, "tests", "regstream-refmodel")
    return args


def random_period(rng, lo_year=2005, hi_year=2020):
    return rng.randint(lo_year, hi_year) * 100 + rng.randint(1, 12)


def add_months(period, n):
    off = (period // 100) * 12 + period % 100 - 1 + n
    return (off // 12) * 100 + off % 12 + 1


def plan_case(seed, order, sanitized):
    """Everything random about one case, drawn from the seed alone (both orders share it)."""
    rng = random.Random(seed)
    rates = [0.0, 0.0, 0.01, 0.05, 0.2]
    persons = rng.choice([20, 200, 1000, 3000]) if not sanitized else rng.choice([20, 150, 400])
    months = rng.randint(3, 40) if not sanitized else rng.randint(3, 24)
    start = random_period(rng)
    case = {
        "seed": seed,
        "order": order,
        "persons": persons,
        "months": months,
        "start": start,
        "files": rng.randint(1, 3),
        "codec": rng.choice(["null", "null", "deflate", "snappy", "lzma"]),
        "repeat": rng.choice(rates),
        "correction": rng.choice(rates),
        "late": rng.choice(rates),
        "invalid": rng.choice(rates),
        "rules": [],
    }
    if rng.random() < 0.5:  # random rule options for half of the seeds
        rules = []
        first = rng.randint(-3, months)  # the window start..end never inverted (a config error)
        if rng.random() < 0.6:
            rules += ["--project-start", str(add_months(start, first))]
        if rng.random() < 0.6:
            rules += ["--project-end", str(add_months(start, rng.randint(max(first, 0),
                                                                         months + 3)))]
        if rng.random() < 0.5:
            rules += ["--full-time-weekly-hours",
                      rng.choice(["18.5", "10", "0", "30.25", "37", "18.4999"])]
        if rng.random() < 0.7:
            window = rng.randint(1, 12)
            rules += ["--durable-window-months", str(window),
                      "--durable-run-months", str(rng.randint(1, window))]
        case["rules"] = rules
    return case


def fmt(cmd):
    return " ".join(shlex.quote(c) for c in cmd)


def run(cmd, timeout=300, env=None):
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired:
        return 124, "", "timed out after %d s" % timeout, time.monotonic() - t0
    return (p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"),
            time.monotonic() - t0)


def read_dead_letters(path):
    """(file_index, record, reason) of every line of a dead-letter JSON Lines file."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                src = obj["source"]
                # one line may stand for several records ("records": N, e.g. the rest of a
                # block after lost framing): each of them counts as rejected
                for k in range(max(1, int(src.get("records", 1)))):
                    out.append((int(src["file_index"]), int(src["record"]) + k,
                                str(obj["reason"])))
            except (ValueError, KeyError, TypeError) as e:
                out.append((-1, n, "unparsable dead-letter line (%s): %s" % (e, line.strip()[:200])))
    return sorted(out)


def read_rejects(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                fi, rec, reason = line.split()
                out.append((int(fi), int(rec), reason))
    return sorted(out)


def first_differences(expected, actual, name_expected, name_actual, limit=12):
    diff = list(difflib.unified_diff(expected, actual, name_expected, name_actual, n=0,
                                     lineterm=""))
    lines = diff[:limit + 2]
    if len(diff) > len(lines):
        lines.append("... (%d more diff lines)" % (len(diff) - len(lines)))
    return "\n".join("      " + l.rstrip("\n") for l in lines)


def run_case(args, case, workdir):
    """Runs one (seed, order) case; returns (ok, report text)."""
    d = os.path.join(workdir, "seed%d-%s" % (case["seed"], case["order"]))
    os.makedirs(d, exist_ok=True)
    base = os.path.join(d, "in.avro")
    gen = [args.gen, "--profile", "random", "--seed", str(case["seed"]), "--out", base,
           "--order", case["order"], "--repeat-rate", str(case["repeat"]),
           "--correction-rate", str(case["correction"]), "--late-rate", str(case["late"]),
           "--invalid-rate", str(case["invalid"]), "--files", str(case["files"]),
           "--persons", str(case["persons"]), "--months", str(case["months"]),
           "--start-period", str(case["start"]), "--codec", case["codec"]]
    title = "seed %d, order %s (%d persons x %d months, %d %s file(s), rates repeat %g " \
            "correction %g late %g invalid %g, rules: %s)" % (
                case["seed"], case["order"], case["persons"], case["months"], case["files"],
                case["codec"],
                case["repeat"], case["correction"], case["late"], case["invalid"],
                " ".join(case["rules"]) or "defaults")
    rc, _, err, _ = run(gen)
    if rc != 0:
        return False, "FAIL %s\n  generator failed (exit %d): %s\n  %s" % (
            title, rc, err.strip()[-500:], fmt(gen))
    if case["files"] == 1 and os.path.exists(base):
        inputs = [base]
    else:
        inputs = [os.path.join(d, "in.%03d.avro" % i) for i in range(case["files"])]
    missing = [p for p in inputs if not os.path.exists(p)]
    if missing:
        return False, "FAIL %s\n  generator wrote no %s\n  %s" % (title, missing[0], fmt(gen))

    ref_csv, ref_rej = os.path.join(d, "ref.csv"), os.path.join(d, "ref.rejects.txt")
    ref = [args.refmodel, "--input"] + inputs + ["--csv", ref_csv, "--rejects", ref_rej] + \
        case["rules"]
    rc, _, err, _ = run(ref)
    if rc != 0:
        return False, "FAIL %s\n  reference model failed (exit %d): %s\n  %s\n  %s" % (
            title, rc, err.strip()[-500:], fmt(gen), fmt(ref))
    with open(ref_csv, "rb") as f:  # bytes: the comparison is byte for byte
        expected_csv = f.read().decode("utf-8", "replace").splitlines(keepends=True)
    expected_rej = read_rejects(ref_rej)

    problems = []
    for threads in (1, 2, 3, 4):
        out_csv = os.path.join(d, "out.t%d.csv" % threads)
        dlq = os.path.join(d, "dlq.t%d.jsonl" % threads)
        prod = [args.regstream, "run", "--input"] + inputs + ["--csv", out_csv, "--dead-letter",
                                                              dlq, "--threads", str(threads)]
        prod += case["rules"]
        # With 3 and 4 threads the workers other than the first hand the month blocks
        # they no longer touch on to the first every 300 of their records (1 Mi in a
        # real run), so that these small inputs move months between workers.
        env = None
        if threads > 2:
            env = dict(os.environ, REGSTREAM_RETIRE_RECORDS="300")
            prod_shown = ["env", "REGSTREAM_RETIRE_RECORDS=300"] + prod
        else:
            prod_shown = prod
        rc, _, err, _ = run(prod, env=env)
        if rc != 0:
            problems.append("  regstream failed (exit %d) with %d thread(s): %s\n  reproduce:\n"
                            "    %s\n    %s" % (rc, threads, err.strip()[-500:], fmt(gen),
                                                fmt(prod_shown)))
            break  # the same failure with the other thread counts says nothing new
        with open(out_csv, "rb") as f:
            actual_csv = f.read().decode("utf-8", "replace").splitlines(keepends=True)
        actual_rej = read_dead_letters(dlq)
        what = []
        if actual_csv != expected_csv:
            what.append("  CSV differs (%d rows model, %d rows regstream):\n%s" % (
                len(expected_csv) - 1, len(actual_csv) - 1,
                first_differences(expected_csv, actual_csv, ref_csv, out_csv)))
        if actual_rej != expected_rej:
            e = ["%d %d %s" % r for r in expected_rej]
            a = ["%d %d %s" % r for r in actual_rej]
            what.append("  rejects differ (%d model, %d regstream):\n%s" % (
                len(e), len(a), first_differences(e, a, ref_rej, dlq)))
        if what:
            problems.append("  with %d thread(s):\n%s\n  reproduce:\n    %s\n    %s\n    %s" % (
                threads, "\n".join(what), fmt(gen), fmt(ref), fmt(prod_shown)))
            break  # one thread count's report is enough; the same input reproduces the rest
    if problems:
        return False, "FAIL %s\n%s\n  files kept in %s" % (title, "\n".join(problems), d)
    if not args.keep:
        shutil.rmtree(d, ignore_errors=True)
    return True, "ok   %s: %d rows, %d rejects" % (title, len(expected_csv) - 1,
                                                   len(expected_rej))


def main():
    args = parse_args()
    missing = [p for p in (args.regstream, args.gen, args.refmodel) if not os.access(p, os.X_OK)]
    if missing:
        print("differential: not built: %s" % ", ".join(missing))
        print("differential: 0 passed, 0 failed")
        return SKIP

    workdir = tempfile.mkdtemp(prefix="regstream-differential-")
    cases = [plan_case(seed, order, args.sanitized)
             for seed in range(args.first_seed, args.first_seed + args.seeds)
             for order in ("month", "person")]
    started = time.monotonic()
    passed = failed = skipped = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        pending = {}
        it = iter(cases)
        done_starting = False
        submitted = 0
        while True:
            while not done_starting and len(pending) < max(1, args.jobs):
                case = next(it, None)
                if case is None:
                    done_starting = True
                elif time.monotonic() - started > args.time_budget:
                    skipped = len(cases) - submitted
                    done_starting = True
                else:
                    pending[pool.submit(run_case, args, case, workdir)] = case
                    submitted += 1
            if not pending:
                break
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                case = pending.pop(fut)
                try:
                    ok, report = fut.result()
                except Exception as e:  # a bug of this script: report, never hide
                    ok, report = False, "FAIL seed %d order %s: %r" % (case["seed"], case["order"], e)
                print(report, flush=True)
                passed += ok
                failed += not ok
    if skipped:
        print("differential: time budget of %.0f s reached, %d case(s) not run" % (
            args.time_budget, skipped))
    if failed == 0 and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print("differential: case directories under %s" % workdir)
    print("differential: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
