#!/bin/bash
# log_format.sh — --log-format text|json (issue 11, item 2), no broker needed:
#  (a) a file-mode run with --log-format json: every stderr line is one JSON
#      object with time (RFC 3339, UTC, "...Z"), level (debug/info/warn/error),
#      component and message; its progress lines carry records and a rate; its
#      summary fields equal the numbers of the same run in text mode; a run
#      failed at its CSV (REGSTREAM_FAULT) says so at level error, and resumed
#      over damaged snapshots warns at level warn with the text run's words;
#  (b) librdkafka's own lines (connection refused by a closed port, through
#      `export -X log_level=4`) come out as JSON, component librdkafka, with a
#      level, facility and client, and the run ends (exit 1); the demo on the
#      in-process mock cluster logs JSON only;
#  (c) text mode is as before: the summary lines other tests read, no JSON;
#  (d) a bad --log-format value (on each subcommand and before it) exits 2
#      with one line naming text and json; every subcommand takes the option.
#
# usage: log_format.sh REGSTREAM-GEN REGSTREAM WORKDIR
set -u
gen=$(realpath "$1")
regstream=$(realpath "$2")
dir=$3
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir" || exit 1

fail() {
  echo "log_format: FAIL: $*" >&2
  exit 1
}
note() { echo "log_format: $*"; }

# check_json LOG [MIN-LINES]: every line of LOG is a log object (see above).
check_json() {
  python3 - "$1" "${2:-1}" <<'EOF' || fail "$1 is not JSON lines: $(head -c 2000 "$1")"
import json, re, sys
path, least = sys.argv[1], int(sys.argv[2])
lines = open(path, encoding="utf-8").read().splitlines()
assert len(lines) >= least, f"{len(lines)} lines, expected at least {least}"
stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
for n, line in enumerate(lines, 1):
    o = json.loads(line)
    assert isinstance(o, dict), f"line {n}: not an object"
    assert stamp.match(o.get("time", "")), f"line {n}: time {o.get('time')!r}"
    assert o.get("level") in ("debug", "info", "warn", "error"), f"line {n}: level {o.get('level')!r}"
    assert isinstance(o.get("component"), str) and o["component"], f"line {n}: component"
    assert isinstance(o.get("message"), str) and o["message"], f"line {n}: message"
    assert isinstance(o.get("fields", {}), dict), f"line {n}: fields"
    assert set(o) <= {"time", "level", "component", "message", "fields"}, f"line {n}: keys {set(o)}"
EOF
}

if [ "${REGSTREAM_SANITIZED:-0}" = 1 ]; then persons=6000; else persons=20000; fi
"$gen" --profile random --seed 11 --persons "$persons" --months 12 --files 2 --invalid-rate 0.01 \
  --late-rate 0.02 --correction-rate 0.02 --out in.avro 2>gen.log ||
  fail "regstream-gen failed: $(cat gen.log)"
inputs=(in.000.avro in.001.avro)
run() { "$regstream" run --input "${inputs[@]}" --csv OUT.csv --dead-letter DLQ.jsonl "$@"; }

# ---- (c) text, then (a) JSON: the same run ----
run --threads 2 --progress-ms 10 2>text.log || fail "text run failed: $(cat text.log)"
cp OUT.csv text.csv
! grep -q '^{' text.log || fail "JSON in a text run: $(cat text.log)"
grep -vq '^regstream: ' text.log && fail "a text line without 'regstream: ': $(grep -v '^regstream: ' text.log)"
# what tests/file_resume.sh reads of a summary
grep -Eq '^regstream: [0-9]+ records from 2 file\(s\) in [0-9.]+ s \([0-9.]+ M records/s\), 2 thread\(s\)$' text.log ||
  fail "text summary line 1: $(cat text.log)"
grep -Eq '^regstream: [0-9]+ persons, [0-9.]+ bytes of state per person, peak RSS [0-9]+ MiB; [0-9]+ corrections$' text.log ||
  fail "text summary line 2: $(cat text.log)"
grep -Eq '^regstream: [0-9]+ rejected(, [a-z_]+ [0-9]+)*; wrote OUT.csv \([0-9]+ rows\) and DLQ.jsonl$' text.log ||
  fail "text summary line 3: $(cat text.log)"
grep -Eq '^regstream: [0-9.]+ M records read \(file [12] of 2\), [0-9.]+ M records/s$' text.log ||
  fail "no text progress line: $(cat text.log)"

run --threads 2 --progress-ms 10 --log-format json 2>json.log || fail "JSON run failed: $(cat json.log)"
cmp -s OUT.csv text.csv || fail "the JSON run's CSV differs"
check_json json.log 4
# the summary's fields are the text run's numbers; the line without times is the same text
python3 - text.log json.log <<'EOF' || fail "JSON summary differs from text: $(cat text.log json.log)"
import json, re, sys
text = open(sys.argv[1]).read()
objs = [json.loads(l) for l in open(sys.argv[2])]
m1 = re.search(r"^regstream: (\d+) records from (\d+) file\(s\) in .*, (\d+) thread\(s\)$", text, re.M)
m2 = re.search(r"^regstream: (\d+) persons, .*; (\d+) corrections$", text, re.M)
m3 = re.search(r"^regstream: ((\d+) rejected(.*); wrote OUT.csv \((\d+) rows\) and DLQ.jsonl)$", text, re.M)
def one(pred, what):
    hits = [o for o in objs if pred(o)]
    assert len(hits) == 1, f"{len(hits)} JSON lines for {what}"
    return hits[0]
s1 = one(lambda o: "records_per_s" in o.get("fields", {}) and "files" in o["fields"] and "threads" in o["fields"], "line 1")
s2 = one(lambda o: "persons" in o.get("fields", {}), "line 2")
s3 = one(lambda o: "rejected_by_reason" in o.get("fields", {}), "line 3")
for o in (s1, s2, s3):
    assert o["level"] == "info" and o["component"] == "run", o
f1, f2, f3 = s1["fields"], s2["fields"], s3["fields"]
assert f1["records"] == int(m1[1]) and f1["files"] == int(m1[2]) and f1["threads"] == int(m1[3]), f1
assert isinstance(f1["seconds"], (int, float)) and f1["seconds"] > 0, f1
assert f2["persons"] == int(m2[1]) and f2["corrections"] == int(m2[2]), f2
assert f3["rejected"] == int(m3[2]) and f3["rows"] == int(m3[4]), f3
by = {k: int(v) for k, v in re.findall(r", ([a-z_]+) (\d+)", m3[3])}
assert by == {k: v for k, v in f3["rejected_by_reason"].items() if v}, (by, f3)
assert sum(f3["rejected_by_reason"].values()) == f3["rejected"], f3
assert s3["message"] == m3[1], (s3["message"], m3[1])
dead = sum(1 for _ in open("DLQ.jsonl"))
assert dead == f3["rejected"], (dead, f3)
progress = [o for o in objs if o["component"] == "replay" and "records read" in o["message"]]
assert progress, "no JSON progress line"
for o in progress:
    f = o["fields"]
    assert o["level"] == "info" and isinstance(f["records"], int) and f["records"] > 0, o
    assert isinstance(f["records_per_s"], (int, float)) and f["records_per_s"] >= 0, o
    assert f["files"] == 2 and f["file"] in (1, 2), o
print(f"log_format: JSON summary = text: {f1['records']} records, {f2['persons']} persons, "
      f"{f3['rejected']} rejected {by}, {f3['rows']} rows; {len(progress)} progress line(s)")
EOF
[ $? -eq 0 ] || exit 1

# ---- (a) an error and warnings ----
records=$(sed -n 's/.*: \([0-9]*\) records (.*/\1/p' gen.log)
[ -n "$records" ] || fail "no record count in gen.log: $(cat gen.log)"
status=0
REGSTREAM_FAULT=rename:1:EIO:OUT.csv run --snapshot-dir snaps --snapshot-interval $((records / 4)) \
  --log-format json 2>fault.log || status=$?
[ "$status" -eq 1 ] || fail "the run failed at its CSV with exit $status: $(cat fault.log)"
check_json fault.log 1
python3 - fault.log <<'EOF' || fail "no error line: $(cat fault.log)"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
assert objs[-1]["level"] == "error" and objs[-1]["component"] == "run", objs[-1]
assert "OUT.csv" in objs[-1]["message"], objs[-1]
EOF
ls snaps/*.snap >/dev/null 2>&1 || fail "no snapshot left to damage"
for s in snaps/*.snap; do
  bytes=$(stat -c %s "$s")
  printf '\377\377\377\377\377\377\377\377' | dd of="$s" bs=1 seek=$((bytes / 2)) conv=notrunc status=none
done
cp -a snaps snaps.text
run --snapshot-dir snaps --log-format json 2>warn.log || fail "run over damaged snapshots failed: $(cat warn.log)"
run --snapshot-dir snaps.text 2>warn.text.log || fail "text run over damaged snapshots failed: $(cat warn.text.log)"
cmp -s OUT.csv text.csv || fail "the run over damaged snapshots gave another CSV"
check_json warn.log 4
python3 - warn.log warn.text.log <<'EOF' || fail "warnings: $(cat warn.log warn.text.log)"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
text = [l.rstrip("\n") for l in open(sys.argv[2])]
warns = [o for o in objs if o["level"] == "warn"]
assert any("is unusable" in o["message"] for o in warns), "no 'unusable' warning"
assert any(o["message"].startswith("no usable snapshot in snaps") for o in warns), "no 'no usable snapshot'"
for o in warns:
    assert o["component"] == "snapshot", o
    assert not o["message"].startswith("warning"), o
text_warns = [l for l in text if l.startswith("regstream: warning: ")]
assert len(text_warns) == len(warns), (text_warns, warns)
want = ["regstream: warning: " + o["message"].replace("snaps/", "snaps.text/").replace(
    "snapshot in snaps;", "snapshot in snaps.text;") for o in warns]
assert sorted(want) == sorted(text_warns), (want, text_warns)
print(f"log_format: {len(warns)} warning(s) at level warn, the text run's words")
EOF
[ $? -eq 0 ] || exit 1

# ---- (b) librdkafka's lines ----
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
status=0
timeout 120 "$regstream" export --log-format json --brokers "127.0.0.1:$port" --topic rollups \
  --csv X.csv --timeout 5 -X log_level=4 2>kafka.log || status=$?
[ "$status" -eq 1 ] || fail "export to a closed port exited $status (124: it did not end): $(cat kafka.log)"
check_json kafka.log 2
python3 - kafka.log "$port" <<'EOF' || fail "librdkafka lines: $(cat kafka.log)"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1])]
lib = [o for o in objs if o["component"] == "librdkafka"]
assert lib, "no librdkafka line"
for o in lib:
    f = o["fields"]
    assert o["level"] in ("error", "warn"), o  # log_level=4: warnings and errors only
    assert isinstance(f["facility"], str) and f["facility"], o
    assert f["client"].startswith("regstream-export"), o
    assert f["syslog_level"] <= 4 and (f["syslog_level"] <= 3) == (o["level"] == "error"), o
    assert not o["message"].startswith("librdkafka"), o
assert any("Connection refused" in o["message"] and sys.argv[2] in o["message"] for o in lib), \
    "no connection-refused line"
last = objs[-1]
assert last["component"] == "export" and last["level"] == "error", last
assert "cannot reach Kafka" in last["message"], last
print(f"log_format: {len(lib)} librdkafka line(s) as JSON, facilities "
      f"{sorted({o['fields']['facility'] for o in lib})}")
EOF
[ $? -eq 0 ] || exit 1

"$gen" --profile random --seed 12 --persons 300 --months 12 --out demo.avro 2>/dev/null ||
  fail "regstream-gen for the demo failed"
timeout 120 "$regstream" demo --log-format json --input demo.avro --csv demo.csv 2>demo.log ||
  fail "demo failed: $(cat demo.log)"
check_json demo.log 4
grep -q '"component":"demo","message":"exported [0-9]* rows of rollups' demo.log ||
  fail "no demo summary: $(cat demo.log)"
note "demo: $(wc -l <demo.log) JSON lines"

# ---- (d) a bad value; every subcommand takes the option ----
bad() { # WANT-PREFIX ARGS...: exit 2 and one line
  local want=$1
  shift
  status=0
  "$regstream" "$@" >bad.out 2>bad.log || status=$?
  [ "$status" -eq 2 ] || fail "'$*' exited $status: $(cat bad.log)"
  [ "$(wc -l <bad.log)" -eq 1 ] || fail "'$*' said more than one line: $(cat bad.log)"
  [ "$(cat bad.log)" = "$want--log-format is text or json, got 'yaml'" ] ||
    fail "'$*' said: $(cat bad.log)"
}
bad "regstream run: " run --input in.000.avro --csv X.csv --dead-letter X.dlq --log-format yaml
bad "regstream run: " run --log-format=yaml --brokers 127.0.0.1:1
bad "regstream produce: " produce --log-format yaml
bad "regstream export: " export --log-format yaml
bad "regstream demo: " demo --log-format yaml
bad "regstream report: " report --log-format yaml
bad "regstream: " --log-format yaml run --input in.000.avro
bad "regstream: " --log-format=yaml report
for cmd in produce export demo report; do # accepted: the usage error that follows is JSON
  status=0
  "$regstream" "$cmd" --log-format json 2>ok.log || status=$?
  [ "$status" -eq 2 ] || fail "$cmd --log-format json exited $status: $(cat ok.log)"
  check_json ok.log 1
  grep -q "\"level\":\"error\",\"component\":\"$cmd\"" ok.log || fail "$cmd: $(cat ok.log)"
done
status=0
"$regstream" --log-format json report --csv missing.csv >/dev/null 2>ok.log || status=$?
[ "$status" -eq 1 ] || fail "report of a missing CSV exited $status: $(cat ok.log)"
check_json ok.log 1
"$regstream" --log-format json run --input "${inputs[@]}" --csv OUT.csv --dead-letter DLQ.jsonl \
  --quiet 2>ok.log || fail "--log-format before run: $(cat ok.log)"
[ ! -s ok.log ] || fail "--quiet said something: $(cat ok.log)"
"$regstream" help | grep -q -- '--log-format text|json' || fail "help does not name --log-format"
note "bad values exit 2 with one line; every subcommand takes --log-format"
note "OK"
