#!/usr/bin/env bash
# tests/postgres_sink.sh — the PostgreSQL sink without Kafka, against a real
# PostgreSQL 15 server that tests/postgres_common.sh starts (private data dir
# and socket folder, random port, never as root) and stops on exit.
# Registered by tests/postgres.cmake (label postgres).
#   1. file mode --postgres: the table read back with COPY (SELECT * ... ORDER
#      BY period, municipality, visitation) TO STDOUT (FORMAT csv, HEADER)
#      equals the run's CSV byte for byte; a second run on other data
#      replaces it (no leftovers); --table SCHEMA.NAME works;
#   2. --min-cell: the file-mode CSV against an independent Python
#      implementation of SPEC §12's rule (N = 3 and 5); the table written with
#      --min-cell 5 equals that CSV (NULL as an empty field); its NULL cells,
#      row by row, are what core/disclosure.h's disclosure_mask says, and its
#      missing rows are the withheld ones;
#   3. deploy/sql/headline_shares.sql: its views' numbers equal `regstream
#      report`'s text for the same rows (the KIB profile, at 2023-02);
#   4. `report --postgres` prints what `report --csv` prints on the same rows;
#   5. clean one-line errors: a table of another shape, a refused login (the
#      password never printed), a user without CREATE, a server that is not
#      there; bad --postgres/--table/--min-cell values.
# Usage: tests/postgres_sink.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: postgres_sink.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=postgres_sink
RS=$BUILD/regstream
GEN=$BUILD/bench/regstream-gen
# shellcheck source=tests/check.sh
. "$ROOT/tests/check.sh"
for bin in "$RS" "$GEN" "$BUILD/tests/disclosure_rows"; do
  [ -x "$bin" ] || { bad "$bin is not built"; finish; }
done
TMP=$(mktemp -d "/tmp/$TEST_NAME.XXXXXX")
cleanup() {
  pg_cleanup
  rm -rf "$TMP"
}
trap cleanup EXIT
# shellcheck source=tests/postgres_common.sh
. "$ROOT/tests/postgres_common.sh"
ok "PostgreSQL up on port $PG_PORT (socket $PG_SOCK)"

persons=1500
[ "${REGSTREAM_SANITIZED:-0}" = 1 ] && persons=400

# --- 1: file mode --postgres, replaced by a second run
"$GEN" --profile random --seed 21 --persons "$persons" --months 24 --correction-rate 0.03 \
  --late-rate 0.01 --invalid-rate 0.01 --out "$TMP/a.avro" >/dev/null 2>&1 &&
  "$GEN" --profile random --seed 22 --persons $((persons / 3)) --months 12 --start-period 202101 \
    --out "$TMP/b.avro" >/dev/null 2>&1 || { bad "regstream-gen failed"; finish; }
if "$RS" run --input "$TMP/a.avro" --csv "$TMP/a.csv" --dead-letter "$TMP/a.jsonl" \
  --postgres "$PG_CONN" --quiet 2>"$TMP/a.log"; then
  pg_table_csv regstream_rollup >"$TMP/a.table.csv"
  if cmp -s "$TMP/a.csv" "$TMP/a.table.csv"; then
    ok "file mode --postgres: the table read back equals the CSV ($(($(wc -l <"$TMP/a.csv") - 1)) rows)"
  else
    bad "table differs from the CSV: $(diff "$TMP/a.csv" "$TMP/a.table.csv" | head -3 | tr '\n' ' ')"
  fi
else
  bad "file mode --postgres failed: $(tail -2 "$TMP/a.log")"
fi
types=$(pg_sql -c "SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'regstream_rollup'::regclass AND attnum > 0")
want_types="integer,integer,text$(printf ',bigint%.0s' $(seq 25))"
[ "$types" = "$want_types" ] && ok "column types: period, municipality integer, visitation text, 25 counts bigint" ||
  bad "column types: $types"
pk=$(pg_sql -c "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'regstream_rollup'::regclass AND contype = 'p'")
[ "$pk" = "PRIMARY KEY (period, municipality, visitation)" ] && ok "primary key (period, municipality, visitation)" ||
  bad "primary key: $pk"
if "$RS" run --input "$TMP/b.avro" --csv "$TMP/b.csv" --dead-letter "$TMP/b.jsonl" \
  --postgres "$PG_CONN" --quiet 2>"$TMP/b.log" &&
  pg_table_csv regstream_rollup >"$TMP/b.table.csv" && cmp -s "$TMP/b.csv" "$TMP/b.table.csv" &&
  ! cmp -s "$TMP/a.csv" "$TMP/b.csv"; then
  ok "a second run on other data replaces the table (no leftovers: $(($(wc -l <"$TMP/b.csv") - 1)) rows)"
else
  bad "second run: $(tail -2 "$TMP/b.log") $(diff "$TMP/b.csv" "$TMP/b.table.csv" 2>&1 | head -3 | tr '\n' ' ')"
fi
pg_sql -c "CREATE SCHEMA bi"
if "$RS" run --input "$TMP/b.avro" --csv "$TMP/b2.csv" --dead-letter "$TMP/b2.jsonl" \
  --postgres "$PG_CONN" --table bi.rollup_b --quiet 2>"$TMP/b2.log" &&
  pg_table_csv bi.rollup_b | cmp -s "$TMP/b.csv" - &&
  [ "$(pg_sql -c "SELECT count(*) FROM bi.regstream_offsets")" = 0 ]; then
  ok "--table bi.rollup_b: made in schema bi (with bi.regstream_offsets), equals the CSV"
else
  bad "--table bi.rollup_b: $(tail -2 "$TMP/b2.log")"
fi

# --- 2: --min-cell
cat >"$TMP/min_cell.py" <<'PY'
# SPEC §12's rule, written from its text: rows with 1 <= members < N are
# withheld; in a published row every count 1 <= c < N is suppressed; in each
# group that sums to members (now_*, acc_*, status_*) a single suppressed cell
# makes the smallest other non-zero cell suppressed too (the first of equal
# ones); 0 is always published.
import sys
n = int(sys.argv[1])
lines = open(sys.argv[2]).read().splitlines()
header = lines[0].split(",")
groups = [[i for i, h in enumerate(header) if h.startswith(p)] for p in ("now_", "acc_", "status_")]
out = [lines[0]]
for line in lines[1:]:
    f = line.split(",")
    v = [int(x) for x in f[3:]]
    members = v[0]
    if 1 <= members < n:
        continue
    sup = {i for i in range(4, len(header)) if 1 <= int(f[i]) < n}
    for g in groups:
        if len([i for i in g if i in sup]) == 1:
            rest = [i for i in g if i not in sup and int(f[i]) > 0]
            if rest:
                sup.add(min(rest, key=lambda i: (int(f[i]), i)))
    out.append(",".join("" if i in sup else x for i, x in enumerate(f)))
print("\n".join(out))
PY
"$GEN" --profile random --seed 23 --persons 300 --months 18 --out "$TMP/s.avro" >/dev/null 2>&1
"$RS" run --input "$TMP/s.avro" --csv "$TMP/s.csv" --dead-letter "$TMP/s.jsonl" --quiet
for n in 3 5; do
  if "$RS" run --input "$TMP/s.avro" --csv "$TMP/s$n.csv" --dead-letter "$TMP/s$n.jsonl" \
    --min-cell "$n" --quiet && python3 "$TMP/min_cell.py" "$n" "$TMP/s.csv" >"$TMP/s$n.py.csv" &&
    cmp -s "$TMP/s$n.csv" "$TMP/s$n.py.csv"; then
    rows=$(($(wc -l <"$TMP/s.csv") - 1))
    kept=$(($(wc -l <"$TMP/s$n.csv") - 1))
    empty=$(grep -o ',,\|,$' "$TMP/s$n.csv" | wc -l)
    if [ "$kept" -lt "$rows" ] && [ "$empty" -gt 0 ]; then
      ok "--min-cell $n: the CSV equals the Python rule ($((rows - kept)) of $rows rows withheld, $empty suppressed cells)"
    else
      bad "--min-cell $n: the data exercise nothing (kept $kept of $rows, $empty empty cells)"
    fi
  else
    bad "--min-cell $n: CSV differs from the Python rule: $(diff "$TMP/s$n.csv" "$TMP/s$n.py.csv" 2>&1 | head -4 | tr '\n' ' ')"
  fi
done
if "$RS" run --input "$TMP/s.avro" --csv "$TMP/s5b.csv" --dead-letter "$TMP/s5b.jsonl" --min-cell 5 \
  --postgres "$PG_CONN" --table rollup_min5 --quiet 2>"$TMP/s5b.log" &&
  cmp -s "$TMP/s5.csv" "$TMP/s5b.csv" && pg_table_csv rollup_min5 | cmp -s "$TMP/s5.csv" -; then
  ok "--min-cell 5 --postgres: the table read back equals the --min-cell 5 CSV (NULL as empty fields)"
else
  bad "--min-cell 5 --postgres: $(tail -2 "$TMP/s5b.log")"
fi
# Row by row: the NULL cells are disclosure_mask's, the missing rows the withheld ones.
"$BUILD/tests/disclosure_rows" 5 <"$TMP/s.csv" >"$TMP/mask5.txt"
cols=$(head -1 "$TMP/s.csv" | cut -d, -f4- | tr ',' ' ')
nulls_sql="SELECT concat_ws(' ', period || ',' || municipality || ',' || visitation"
for c in $cols; do nulls_sql+=", CASE WHEN $c IS NULL THEN '$c' END"; done
nulls_sql+=") FROM rollup_min5 ORDER BY period, municipality, visitation"
pg_sql -c "$nulls_sql" >"$TMP/nulls5.txt"
grep -v ' withheld$' "$TMP/mask5.txt" >"$TMP/mask5.published.txt"
masked=$(grep -c ' ' "$TMP/mask5.published.txt")
withheld=$(grep -c ' withheld$' "$TMP/mask5.txt")
if cmp -s "$TMP/mask5.published.txt" "$TMP/nulls5.txt" && [ "$masked" -gt 0 ] && [ "$withheld" -gt 0 ]; then
  ok "the table's NULLs are disclosure_mask's in every row ($masked rows with suppressed cells), the $withheld withheld rows are absent"
else
  bad "NULL cells differ from disclosure_mask: $(diff "$TMP/mask5.published.txt" "$TMP/nulls5.txt" | head -4 | tr '\n' ' ')"
fi
# A few rows by hand: a row with one small acc_* cell has its complement NULL too.
sample=$(grep -m 3 ' acc_' "$TMP/mask5.published.txt" | tr '\n' ';')
[ -n "$sample" ] && ok "rows with acc_* suppressed (sample: $sample)" || bad "no row with an acc_* cell suppressed"

# --- 3 and 4: the SQL view and report --postgres, on the KIB profile
"$GEN" --profile kib --seed 7 --out "$TMP/kib.avro" >/dev/null 2>&1
if "$RS" run --input "$TMP/kib.avro" --csv "$TMP/kib.csv" --dead-letter "$TMP/kib.jsonl" \
  --postgres "$PG_CONN" --quiet 2>"$TMP/kib.log" && pg_sql -f "$ROOT/deploy/sql/headline_shares.sql"; then
  ok "deploy/sql/headline_shares.sql creates its views"
else
  bad "kib run or the view: $(tail -2 "$TMP/kib.log")"
fi
"$RS" report --csv "$TMP/kib.csv" --at 202302 >"$TMP/report.txt" 2>"$TMP/report.log" ||
  bad "report --csv failed: $(cat "$TMP/report.log")"
pg_query_csv "SELECT * FROM regstream_headline_shares WHERE period = 202302" >"$TMP/view.tsv"
pg_query_csv "SELECT * FROM regstream_municipality_shares WHERE period = 202302 ORDER BY municipality" >"$TMP/view_m.tsv"
if python3 - "$TMP/report.txt" "$TMP/view.tsv" "$TMP/view_m.tsv" >"$TMP/view_check.txt" 2>&1 <<'PY'; then
import sys
report = open(sys.argv[1], encoding="utf-8").read().splitlines()
def table(path):
    lines = open(path).read().splitlines()
    head = lines[0].split(",")
    return [dict(zip(head, l.split(","))) for l in lines[1:] if l]
v = table(sys.argv[2])[0]
muni = table(sys.argv[3])
# The report's lines by section and label: label -> value text ("12.3" or "n/a").
section, values, entries = None, {}, []
for line in report[2:]:
    if line and not line.startswith(" ") and not line.startswith("measure"):
        section = line.split(" (")[0].split(" at ")[0]
        continue
    if line.startswith("  "):
        label = line[2:54].rstrip()
        entries.append((section, label, line[54:].split()[0]))
        values[(section, label)] = entries[-1][2]
def fmt(x):
    return "n/a" if x in ("", None) else "%.1f" % float(x)
E, A, D = "Entry visitation", "Accumulated goal over the project", "Durable employment"
S, SA = "Status", "Status"
want = {
    (E, "aktivitetsparat"): v["aktivitetsparat_pct"],
    (E, "jobparat"): v["jobparat_pct"],
    (E, "selvforsørgende"): v["selvforsoergende_pct"],
    (E, "øvrig ydelse (øvrig + uddannelsesparat)"): v["oevrig_ydelse_pct"],
    (E, "  of these uddannelsesparat (education order)"): v["oevrig_uddannelsesparat_pct"],
    (A, "goal 1 reached"): v["goal1_pct"],
    (A, "goal 2 reached"): v["goal2_pct"],
    (A, "goal 3 reached"): v["goal3_pct"],
    (A, "goal 1 or 2"): v["goal12_pct"],
    (A, "goal 1 or 2, aktivitetsparate"): v["goal12_aktivitetsparat_pct"],
    (D, "goal 1: durable full-time"): v["goal1_durable_full_pct"],
    (D, "goal 1: durable part-time"): v["goal1_durable_partial_pct"],
    (D, "goal 2: durable full-time"): v["goal2_durable_full_pct"],
    (D, "goal 2: durable part-time"): v["goal2_durable_partial_pct"],
    (D, "goal 3: durable full-time"): v["goal3_durable_full_pct"],
    (D, "goal 3: durable part-time"): v["goal3_durable_partial_pct"],
}
by_code = {int(r["municipality"]): r for r in muni}
want[(D, "Aarhus: durable full-time (share of members)")] = by_code.get(751, {}).get("durable_full_pct", "")
want[(D, "Hvidovre: durable full-time (share of members)")] = by_code.get(167, {}).get("durable_full_pct", "")
g12 = [float(r["goal12_pct"]) for r in muni if r["goal12_pct"] != ""]
checked, wrong = 0, []
for key, x in want.items():
    got = values.get(key)
    if got is None:
        wrong.append("report has no line %r" % (key,))
    elif got != fmt(x):
        wrong.append("%s: report %s, view %s" % (key[1].strip(), got, fmt(x)))
    checked += 1
# lowest / highest municipality and the five municipalities' aktivitetsparat share
for key, got in values.items():
    if key[1].startswith("goal 1 or 2, lowest municipality"):
        checked += 1
        if got != "%.1f" % min(g12):
            wrong.append("lowest goal 1+2: report %s, view %.1f" % (got, min(g12)))
    if key[1].startswith("goal 1 or 2, highest municipality"):
        checked += 1
        if got != "%.1f" % max(g12):
            wrong.append("highest goal 1+2: report %s, view %.1f" % (got, max(g12)))
for name, code in (("Brøndby", 153), ("Aalborg", 851), ("Hvidovre", 167), ("Aarhus", 751)):
    got = [x for k, x in values.items() if k[0].startswith("Aktivitetsparat share") and k[1] == name]
    checked += 1
    if got != [fmt(by_code.get(code, {}).get("aktivitetsparat_pct", ""))]:
        wrong.append("%s aktivitetsparat share: report %s, view %s" % (name, got, by_code.get(code)))
# Status sections: the report prints them per month; match by order.
status = [((e[0], e[1]), e[2]) for e in entries if e[0] == "Status"]
want_status = [v["education_or_employment_pct"], v["flexjob_pct"], v["disability_pension_pct"],
               v["on_benefit_pct"], v["self_supporting_pct"], v["company_placement_pct"],
               v["aktivitetsparat_education_or_employment_pct"], v["aktivitetsparat_flexjob_pct"],
               v["aktivitetsparat_disability_pension_pct"]]
if len(status) != len(want_status):
    wrong.append("status lines: %d in the report" % len(status))
for (k, got), x in zip(status, want_status):
    checked += 1
    if got != fmt(x):
        wrong.append("status %s: report %s, view %s" % (k[1], got, fmt(x)))
if int(v["members"]) != int(report[1].split()[0]):
    wrong.append("members: view %s, report line %r" % (v["members"], report[1]))
print("%d measures checked" % checked)
for w in wrong:
    print("DIFF", w)
sys.exit(1 if wrong or checked < 30 else 0)
PY
  ok "the SQL views equal report's text at 2023-02: $(tail -1 "$TMP/view_check.txt")"
else
  bad "the SQL views differ from the report: $(head -5 "$TMP/view_check.txt" | tr '\n' ' ')"
fi

if "$RS" report --postgres "$PG_CONN" --at 202302 >"$TMP/report_pg.txt" 2>"$TMP/report_pg.log" &&
  sed '1s/ from .*$//' "$TMP/report.txt" >"$TMP/r1" && sed '1s/ from .*$//' "$TMP/report_pg.txt" >"$TMP/r2" &&
  cmp -s "$TMP/r1" "$TMP/r2" && head -1 "$TMP/report_pg.txt" | grep -q 'from PostgreSQL table regstream_rollup$'; then
  ok "report --postgres prints what report --csv prints ($(wc -l <"$TMP/report.txt") lines; line 1 names the table)"
else
  bad "report --postgres differs: $(cat "$TMP/report_pg.log") $(diff "$TMP/report.txt" "$TMP/report_pg.txt" | head -4 | tr '\n' ' ')"
fi
if "$RS" report --postgres "$PG_CONN" --table bi.rollup_b --at 202302 >/dev/null 2>"$TMP/rep_none.log"; then
  bad "report of a table without that month succeeded"
else
  grep -q 'no rows for period 202302' "$TMP/rep_none.log" && ok "report --postgres of a table without the month: $(cat "$TMP/rep_none.log")" ||
    bad "report of a table without the month: $(cat "$TMP/rep_none.log")"
fi

# --- 5: errors
# expect_error STATUS NAME GREP -- COMMAND...: exits STATUS within 60 s, one line on
# stderr matching GREP, no secret in it.
expect_error() {
  local want=$1 name=$2 pattern=$3
  shift 4
  timeout 60 "$@" >"$TMP/err.out" 2>"$TMP/err.log"
  local rc=$?
  if [ "$rc" = "$want" ] && [ "$(wc -l <"$TMP/err.log")" = 1 ] && grep -q -- "$pattern" "$TMP/err.log" &&
    ! grep -q 'S3cret-wrong\|Right-pass-42' "$TMP/err.log"; then
    ok "$name: exit $rc, '$(cat "$TMP/err.log")'"
  else
    bad "$name: exit $rc (want $want): $(head -3 "$TMP/err.log" | tr '\n' ' ')"
  fi
}
run_args=(run --input "$TMP/b.avro" --csv "$TMP/x.csv" --dead-letter "$TMP/x.jsonl" --quiet)
pg_sql -c "CREATE TABLE other_shape (period integer, municipality integer, visitation text, members integer)"
expect_error 1 "a table of another shape" "is not the rollup table" -- "$RS" "${run_args[@]}" \
  --postgres "$PG_CONN" --table other_shape
pg_sql -c "CREATE ROLE bi LOGIN PASSWORD 'Right-pass-42'"
expect_error 1 "a wrong password" "refused the connection.*password authentication failed" -- \
  "$RS" "${run_args[@]}" --postgres "host=127.0.0.1 port=$PG_PORT dbname=postgres user=bi password=S3cret-wrong"
expect_error 1 "a wrong password in a URI" "refused the connection" -- \
  "$RS" "${run_args[@]}" --postgres "postgresql://bi:S3cret-wrong@127.0.0.1:$PG_PORT/postgres"
expect_error 1 "a user without CREATE on the schema" "refused creating the table.*grant" -- \
  "$RS" "${run_args[@]}" --postgres "host=127.0.0.1 port=$PG_PORT dbname=postgres user=bi password=Right-pass-42" \
  --table bi_rollup
# Tables made beforehand and granted: a user without CREATE writes them.
"$RS" run --input "$TMP/b.avro" --csv "$TMP/g.csv" --dead-letter "$TMP/g.jsonl" --postgres "$PG_CONN" \
  --table granted --quiet
pg_sql -c "GRANT SELECT, INSERT, UPDATE, DELETE ON granted, regstream_offsets TO bi"
bi_conn="host=127.0.0.1 port=$PG_PORT dbname=postgres user=bi password=Right-pass-42"
if "$RS" run --input "$TMP/a.avro" --csv "$TMP/g2.csv" --dead-letter "$TMP/g2.jsonl" --postgres "$bi_conn" \
  --table granted --quiet 2>"$TMP/g2.log" && pg_table_csv granted | cmp -s "$TMP/a.csv" -; then
  ok "a user without CREATE but with SELECT, INSERT, UPDATE, DELETE on tables made beforehand writes them"
else
  bad "granted tables: $(cat "$TMP/g2.log")"
fi
expect_error 1 "report --postgres of a table that does not exist" "table no_such at .* does not exist" -- \
  "$RS" report --postgres "$bi_conn" --table no_such
[ "$(pg_sql -c "SELECT to_regclass('no_such') IS NULL")" = t ] && ok "report made no table" ||
  bad "report made a table"
expect_error 1 "an unknown database" "refused the connection.*does not exist" -- \
  "$RS" "${run_args[@]}" --postgres "host=$PG_SOCK port=$PG_PORT dbname=nosuch user=regstream"
# No server there: waited for 30 s, said every 10 s, then one clear error.
timeout 60 "$RS" run --input "$TMP/b.avro" --csv "$TMP/x.csv" --dead-letter "$TMP/x.jsonl" \
  --postgres "host=127.0.0.1 port=$((PG_PORT + 1)) dbname=postgres user=bi password=S3cret-wrong" 2>"$TMP/err.log"
rc=$?
waits=$(grep -c '^regstream: warning: PostgreSQL unavailable: .*Connection refused.*; trying again (waiting [0-9]* s so far)$' "$TMP/err.log")
if [ "$rc" = 1 ] && [ "$waits" -ge 3 ] && [ "$waits" -le 4 ] && [ "$(wc -l <"$TMP/err.log")" = $((waits + 1)) ] &&
  tail -1 "$TMP/err.log" | grep -q '^regstream run: gave up after 30 s: PostgreSQL unavailable: .*Connection refused' &&
  ! grep -q 'S3cret-wrong' "$TMP/err.log"; then
  ok "no server there: $waits lines saying it waits (every 10 s), then exit 1: '$(tail -1 "$TMP/err.log")'"
else
  bad "no server there: exit $rc: $(tr '\n' ' ' <"$TMP/err.log")"
fi
[ ! -e "$TMP/x.csv" ] && ok "failed runs wrote no CSV" || bad "a failed run wrote $TMP/x.csv"
expect_error 2 "a connection string that does not parse" "does not parse" -- \
  "$RS" "${run_args[@]}" --postgres "host=x password=S3cret-wrong dbname"
expect_error 2 "a bad --table" "--table needs" -- "$RS" "${run_args[@]}" --postgres "$PG_CONN" --table "Drop;"
expect_error 2 "--min-cell 0" "--min-cell needs a whole number from 1" -- "$RS" "${run_args[@]}" --min-cell 0
expect_error 2 "--table without --postgres" "--table goes with --postgres" -- "$RS" "${run_args[@]}" --table t
expect_error 2 "--postgres in Kafka mode" "go with file mode" -- "$RS" run --brokers 127.0.0.1:1 --topic t \
  --group g --output-topic o --dead-letter-topic d --postgres "$PG_CONN"
finish
