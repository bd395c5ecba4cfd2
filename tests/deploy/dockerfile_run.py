#!/usr/bin/env python3
"""tests/deploy/dockerfile_run.py — runs deploy/Dockerfile without a Docker
engine: each stage in a directory root, each RUN in a chroot of it.

    dockerfile_run.py DOCKERFILE CONTEXT BASE_ROOT WORK_DIR SUMMARY.json

It reads the real Dockerfile and knows only the subset regstream's uses
(FROM debian:bookworm-slim [AS name], WORKDIR, COPY [--from=stage], RUN in
shell form, ENV, USER, EXPOSE, ENTRYPOINT/CMD in exec form); any other
instruction, image or flag fails the run, so the test cannot silently skip a
step. FROM copies BASE_ROOT (a debootstrap --variant=minbase bookworm root
made by tests/deploy/dockerfile.sh to stand in for debian:bookworm-slim) to
WORK_DIR/<stage>. COPY from the context honours <Dockerfile>.dockerignore as
BuildKit does for the patterns it holds (a pattern matches a path or one of
its parents). RUN is `/bin/sh -c CMD` in WORKDIR with the stage's ENV, as the
stage's USER, with /proc and /dev mounted (the caller runs this script under
`unshare --mount`, so nothing stays mounted when it ends). The summary names
every stage's root and the last stage's USER, EXPOSE, ENTRYPOINT and CMD.
"""

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

BASE_IMAGE = "debian:bookworm-slim"
KNOWN = {"FROM", "WORKDIR", "COPY", "RUN", "ENV", "USER", "EXPOSE", "ENTRYPOINT", "CMD"}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def fail(msg):
    print(f"dockerfile_run: {msg}", file=sys.stderr)
    sys.exit(1)


def instructions(path):
    """Yields (line number, INSTRUCTION, rest) with continuations joined."""
    buf, start = "", 0
    with open(path) as f:
        for no, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not buf and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if buf and line.lstrip().startswith("#"):
                continue  # a comment inside a continued instruction
            if not buf:
                start = no
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            buf += line
            word, _, rest = buf.strip().partition(" ")
            yield start, word.upper(), rest.strip()
            buf = ""
    if buf:
        fail(f"{path}: the file ends inside a continued instruction")


def ignore_patterns(dockerfile):
    p = dockerfile + ".dockerignore"
    pats = []
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    if line.startswith("!"):
                        fail(f"{p}: exceptions (!) are not supported here")
                    pats.append(line.strip("/"))
    return pats


def ignored(rel, pats):
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        for pat in pats:
            if fnmatch.fnmatchcase(prefix, pat):
                return True
            if pat.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pat[3:]):
                return True
    return False


def inside(root, path):
    """path inside root (absolute in the image), refusing to leave it."""
    full = os.path.normpath(os.path.join(root, path.lstrip("/")))
    if not (full == root or full.startswith(root + os.sep)):
        fail(f"{path} leaves the root")
    return full


def copy_item(src, dst, pats=None, rel=""):
    """Copies src (file or directory) to dst as COPY does: a directory's contents."""
    if os.path.isdir(src) and not os.path.islink(src):
        os.makedirs(dst, exist_ok=True)
        for name in sorted(os.listdir(src)):
            r = f"{rel}/{name}" if rel else name
            if pats is not None and ignored(r, pats):
                continue
            copy_item(os.path.join(src, name), os.path.join(dst, name), pats, r)
    else:
        if os.path.isdir(dst):
            dst = os.path.join(dst, os.path.basename(src))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)


def mounted_run(root, argv, env, cwd, user):
    mounts = []
    try:
        for what, where, args in (
            ("proc", "proc", ["-t", "proc"]),
            ("/dev", "dev", ["--bind"]),
        ):
            target = os.path.join(root, where)
            os.makedirs(target, exist_ok=True)
            subprocess.run(["mount", *args, what, target], check=True)
            mounts.append(target)
        shutil.copy("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))
        cmd = ["chroot"]
        if user:
            cmd.append(f"--userspec={user}")
        inner = f"cd {shlex.quote(cwd)} && exec " + " ".join(shlex.quote(a) for a in argv)
        cmd += [root, "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()],
                "/bin/sh", "-c", inner]
        return subprocess.run(cmd).returncode
    finally:
        for m in reversed(mounts):
            subprocess.run(["umount", "-l", m])


def main():
    if len(sys.argv) != 6:
        fail("usage: dockerfile_run.py DOCKERFILE CONTEXT BASE_ROOT WORK_DIR SUMMARY.json")
    dockerfile, context, base, work, summary_path = map(os.path.abspath, sys.argv[1:])
    pats = ignore_patterns(dockerfile)
    stages = {}  # name -> root
    order = []
    cur = None
    for no, word, rest in instructions(dockerfile):
        where = f"{os.path.basename(dockerfile)}:{no}"
        if word not in KNOWN:
            fail(f"{where}: {word} is not in the subset this interpreter knows")
        t0 = time.monotonic()
        print(f"dockerfile_run: [{cur['name'] if cur else '-'}] {word} {rest[:100]}", flush=True)
        if word == "FROM":
            args = rest.split()
            if args[0] != BASE_IMAGE:
                fail(f"{where}: FROM {args[0]}: only {BASE_IMAGE} is stood in for")
            if len(args) == 3 and args[1].upper() == "AS":
                name = args[2]
            elif len(args) == 1:
                name = f"stage{len(order)}"
            else:
                fail(f"{where}: FROM {rest}: expected IMAGE [AS NAME]")
            root = os.path.join(work, name)
            if os.path.exists(root):
                shutil.rmtree(root)
            subprocess.run(["cp", "-a", base, root], check=True)
            cur = {"name": name, "root": root, "workdir": "/", "user": "",
                   "env": {"PATH": PATH}, "expose": [], "entrypoint": None, "cmd": None}
            stages[name] = cur
            order.append(name)
            continue
        if cur is None:
            fail(f"{where}: {word} before FROM")
        root = cur["root"]
        if word == "WORKDIR":
            cur["workdir"] = os.path.normpath(os.path.join(cur["workdir"], rest))
            os.makedirs(inside(root, cur["workdir"]), exist_ok=True)
        elif word == "ENV":
            k, sep, v = rest.partition("=")
            if not sep or " " in k:
                fail(f"{where}: ENV takes KEY=VALUE here")
            cur["env"][k] = shlex.split(v)[0] if v else ""
        elif word == "USER":
            cur["user"] = rest
        elif word == "EXPOSE":
            cur["expose"] += rest.split()
        elif word in ("ENTRYPOINT", "CMD"):
            try:
                val = json.loads(rest)
            except json.JSONDecodeError:
                fail(f"{where}: {word} must be in exec (JSON) form")
            cur[word.lower()] = val
        elif word == "COPY":
            args = rest.split()
            src_root, use_pats = context, pats
            while args and args[0].startswith("--"):
                flag = args.pop(0)
                if flag.startswith("--from="):
                    frm = flag[len("--from="):]
                    if frm not in stages:
                        fail(f"{where}: COPY --from={frm}: no such stage")
                    src_root, use_pats = stages[frm]["root"], None
                else:
                    fail(f"{where}: COPY {flag} is not supported here")
            if len(args) < 2:
                fail(f"{where}: COPY needs SRC... DST")
            *srcs, dst = args
            dst_abs = os.path.normpath(os.path.join(cur["workdir"], dst))
            if len(srcs) > 1 or dst.endswith("/"):
                os.makedirs(inside(root, dst_abs), exist_ok=True)
            for s in srcs:
                src = os.path.normpath(os.path.join(src_root, s.lstrip("/")))
                if not os.path.exists(src):
                    fail(f"{where}: COPY {s}: not found")
                rel = os.path.relpath(src, src_root)
                if use_pats is not None and rel != "." and ignored(rel, use_pats):
                    fail(f"{where}: COPY {s}: excluded by the .dockerignore")
                copy_item(src, inside(root, dst_abs), use_pats,
                          "" if rel == "." else rel)
        elif word == "RUN":
            if rest.startswith("["):
                fail(f"{where}: RUN in exec form is not supported here")
            rc = mounted_run(root, ["/bin/sh", "-c", rest], cur["env"], cur["workdir"],
                             cur["user"])
            if rc != 0:
                fail(f"{where}: RUN exited {rc}")
        print(f"dockerfile_run:   done in {time.monotonic() - t0:.1f} s", flush=True)
    if cur is None:
        fail("no FROM")
    summary = {
        "stages": {n: stages[n]["root"] for n in order},
        "final": cur["name"],
        "user": cur["user"],
        "workdir": cur["workdir"],
        "expose": cur["expose"],
        "entrypoint": cur["entrypoint"],
        "cmd": cur["cmd"],
        "env": cur["env"],
    }
    with open(summary_path, "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
