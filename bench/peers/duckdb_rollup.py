#!/usr/bin/env python3
"""duckdb_rollup.py — the DuckDB peer of SPEC §7: the SPEC §3/§4 rollups of
clean PersonMonth input computed by DuckDB in one SQL statement.

Owned by the peer benchmark (bench/peer.sh runs it). Run it by hand with the
venv that peer.sh makes (bench/.venv, packages pinned in
bench/peers/requirements.txt):

  bench/.venv/bin/python bench/peers/duckdb_rollup.py --input FILE.avro [FILE.avro ...] \
      --csv OUT.csv [--threads 2] [--memory-limit 16GB] [--plan members|grid] \
      [--full-time-weekly-hours 18.5] [--durable-window-months 6] \
      [--durable-run-months 3] [--project-start YYYYMM] [--project-end YYYYMM] \
      [--temp-dir DIR] [--json RESULT.json] [--print-sql]

Phases:
 1. load (NOT measured as the peer's time: the SPEC's figure is "already
    loaded"): the Avro container files are converted once with fastavro to a
    Parquet file cached beside the first input (FILE.parquet; rebuilt when
    older than an input), then read into an in-memory DuckDB table `pm` whose
    columns are the Avro schema's (long -> BIGINT, int -> INTEGER, float ->
    FLOAT, boolean -> BOOLEAN, enum -> DuckDB ENUM with the same symbols).
    The load checks that the input is clean (no repeated person-month, values
    in range); the peer handles no corrections, late or invalid records.
 2. query (measured): one COPY (SELECT ...) TO OUT.csv with SET threads=N and
    memory_limit: the dense month grid per person, the month-level
    derivations, window functions for the accumulated goal and the durable
    windows, and the GROUP BY into SPEC §4 rows, sorted by period,
    municipality, visitation symbol as text.

Two query plans, same result:
  grid     the SPEC read literally: a dense month grid for every person from
           first to last record, left-joined to the records, windows over all
           persons, then only members' months >= entry are counted.
  members  (default) what a DuckDB user tuning the query would write: find
           members first (GROUP BY person), build the grid only for them and
           only from entry - (window - 1), which is all the durable window can
           see; same result, far less work.

Reports (stderr, and as JSON with --json): records, load seconds, query
seconds (wall, and CPU: user + system of all threads, the memory poller's
few samples included), records/s over the query, DuckDB's own memory accounting
(duckdb_memory(), polled every 20 ms from a second connection: peak total and
the table alone after loading), the process's peak RSS (getrusage ru_maxrss)
over the load and, reset through /proc/self/clear_refs after loading, over the
query alone.
"""

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time

VISITATION = ["UNKNOWN", "JOBPARAT", "AKTIVITETSPARAT", "UDDANNELSESPARAT",
              "SELVFORSOERGENDE", "OEVRIG"]
BENEFIT = ["NONE", "KONTANTHJAELP", "INTEGRATIONSYDELSE", "UDDANNELSESHJAELP",
           "RESSOURCEFORLOEB", "SYGEDAGPENGE", "LEDIGHEDSYDELSE", "DAGPENGE", "OTHER"]
BOOLS = ["enrolled", "education", "internship", "wage_subsidy", "flexjob",
         "disability_pension"]


def period_to_month(p):
    return (p // 100) * 12 + p % 100 - 1


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", nargs="+", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="16GB")
    ap.add_argument("--plan", choices=["members", "grid"], default="members")
    ap.add_argument("--full-time-weekly-hours", type=float, default=18.5)
    ap.add_argument("--durable-window-months", type=int, default=6)
    ap.add_argument("--durable-run-months", type=int, default=3)
    ap.add_argument("--project-start", type=int, default=0)
    ap.add_argument("--project-end", type=int, default=0)
    ap.add_argument("--parquet", help="Parquet cache (default: first input with .parquet)")
    ap.add_argument("--temp-dir", help="DuckDB's spill directory (default: a fresh one in $TMPDIR)")
    ap.add_argument("--json", help="write the measurements here as JSON")
    ap.add_argument("--print-sql", action="store_true")
    a = ap.parse_args(argv)
    if not 1 <= a.durable_run_months <= a.durable_window_months <= 31:
        ap.error("need 1 <= durable-run-months <= durable-window-months <= 31")
    return a


# ---------------------------------------------------------------- load

def avro_to_parquet(inputs, out):
    """Converts PersonMonth Avro container files to one Parquet file (once)."""
    import fastavro
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("person_id", pa.int64()), ("period", pa.int32()), ("municipality", pa.int32()),
        ("visitation", pa.string()), ("enrolled", pa.bool_()), ("paid_hours", pa.float32()),
        ("education", pa.bool_()), ("internship", pa.bool_()), ("wage_subsidy", pa.bool_()),
        ("flexjob", pa.bool_()), ("disability_pension", pa.bool_()), ("benefit", pa.string()),
    ])
    tmp = out + ".tmp"
    n = 0
    with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        for path in inputs:
            with open(path, "rb") as f:
                batch = []
                for rec in fastavro.reader(f):
                    batch.append(rec)
                    if len(batch) == 1 << 20:
                        w.write_table(pa.Table.from_pylist(batch, schema=schema))
                        n += len(batch)
                        batch = []
                if batch:
                    w.write_table(pa.Table.from_pylist(batch, schema=schema))
                    n += len(batch)
    os.replace(tmp, out)
    return n


def load(con, inputs, parquet):
    fresh = os.path.exists(parquet) and all(
        os.path.getmtime(parquet) >= os.path.getmtime(p) for p in inputs)
    if not fresh:
        t = time.monotonic()
        n = avro_to_parquet(inputs, parquet)
        print(f"duckdb peer: converted {n} records to {parquet} in "
              f"{time.monotonic() - t:.1f} s (once; cached)", file=sys.stderr)
    enum = lambda xs: "ENUM(" + ", ".join(f"'{x}'" for x in xs) + ")"
    con.execute(f"CREATE TYPE visitation AS {enum(VISITATION)}")
    con.execute(f"CREATE TYPE benefit AS {enum(BENEFIT)}")
    con.execute("""
        CREATE TABLE pm (person_id BIGINT, period INTEGER, municipality INTEGER,
                         visitation visitation, enrolled BOOLEAN, paid_hours FLOAT,
                         education BOOLEAN, internship BOOLEAN, wage_subsidy BOOLEAN,
                         flexjob BOOLEAN, disability_pension BOOLEAN, benefit benefit)""")
    con.execute("INSERT INTO pm SELECT * FROM read_parquet(?)", [parquet])
    return con.execute("SELECT count(*) FROM pm").fetchone()[0]


def check_clean(con):
    """The peer computes clean input only: say so loudly instead of miscounting."""
    bad = con.execute("""
        SELECT count(*) FILTER (WHERE person_id <= 0 OR period % 100 NOT BETWEEN 1 AND 12
                                  OR period NOT BETWEEN 199001 AND 209912
                                  OR NOT (paid_hours BETWEEN 0 AND 744)
                                  OR paid_hours IS NULL)
        FROM pm""").fetchone()[0]
    dup = con.execute("""
        SELECT count(*) FROM (SELECT person_id, period FROM pm
                              GROUP BY ALL HAVING count(*) > 1)""").fetchone()[0]
    if bad or dup:
        sys.exit(f"duckdb peer: input is not clean ({bad} invalid records, {dup} repeated "
                 "person-months); this peer computes clean input only")


# ---------------------------------------------------------------- query

def rollup_sql(a, plan):
    W, R = a.durable_window_months, a.durable_run_months
    ps = period_to_month(a.project_start) if a.project_start else 0
    pe = period_to_month(a.project_end) if a.project_end else 10**9
    fth = repr(float(a.full_time_weekly_hours))

    # D(m) over months m-W+1..m: FULL if some R consecutive full-time months lie
    # in it. Over the dense grid, lag(x, k) is month m-k; NULL (before the
    # person's first record) counts as not employed.
    def lag(col, k):
        return col if k == 0 else f"coalesce(lag({col}, {k}) OVER w, false)"

    lags = sorted({k for e in range(W - R + 1) for k in range(e, e + R)})
    lag_cols = ",\n           ".join(
        f"{lag(c, k)} AS {c}{k}" for c in ("ft", "emp") for k in lags)

    def run_any(c):
        return " OR ".join("(" + " AND ".join(f"{c}{k}" for k in range(e, e + R)) + ")"
                           for e in range(W - R + 1))

    if plan == "members":
        persons = f"""
  persons AS (
    SELECT person_id, min(m) AS first_m, max(m) AS last_m,
           min(m) FILTER (WHERE enrolled) AS entry_m,
           arg_min(municipality, m) FILTER (WHERE enrolled) AS entry_mun,
           arg_min(visitation, m) FILTER (WHERE enrolled) AS entry_vis
    FROM recs GROUP BY person_id
    HAVING bool_or(enrolled)),
  grid AS (
    SELECT person_id, entry_m, entry_mun, entry_vis,
           unnest(range(greatest(first_m, entry_m - {W - 1}), last_m + 1)) AS m
    FROM persons),
  member_recs AS (
    SELECT r.* FROM recs r SEMI JOIN persons p
      ON r.person_id = p.person_id AND r.m >= p.entry_m - {W - 1}),"""
        joined_recs = "member_recs"
    else:
        persons = """
  persons AS (
    SELECT person_id, min(m) AS first_m, max(m) AS last_m,
           min(m) FILTER (WHERE enrolled) AS entry_m,
           arg_min(municipality, m) FILTER (WHERE enrolled) AS entry_mun,
           arg_min(visitation, m) FILTER (WHERE enrolled) AS entry_vis
    FROM recs GROUP BY person_id),
  grid AS (
    SELECT person_id, entry_m, entry_mun, entry_vis,
           unnest(range(first_m, last_m + 1)) AS m
    FROM persons),"""
        joined_recs = "recs"

    return f"""
WITH
  recs AS (
    SELECT person_id, (period // 100) * 12 + period % 100 - 1 AS m, municipality,
           visitation, enrolled, paid_hours, education, internship, wage_subsidy,
           flexjob, disability_pension, benefit
    FROM pm),{persons}
  months AS (  -- a gap month is an empty month: no hours, every flag false, benefit NONE
    SELECT g.person_id, g.m, g.entry_m, g.entry_mun, g.entry_vis,
           coalesce(r.paid_hours, 0) AS hours,
           coalesce(r.education, false) AS edu,
           coalesce(r.internship OR r.wage_subsidy, false) AS placement,
           coalesce(r.flexjob, false) AS flex,
           coalesce(r.disability_pension, false) AS dp,
           coalesce(r.benefit <> 'NONE', false) AS on_benefit,
           CASE g.m % 12 + 1
             WHEN 2 THEN CASE WHEN (g.m // 12) % 4 = 0 AND ((g.m // 12) % 100 <> 0
                                    OR (g.m // 12) % 400 = 0) THEN 29 ELSE 28 END
             WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30
             ELSE 31 END AS days
    FROM grid g LEFT JOIN {joined_recs} r ON r.person_id = g.person_id AND r.m = g.m),
  derived AS (
    SELECT *, hours::DOUBLE * 7 > {fth}::DOUBLE * days AS ft, hours > 0 AS emp
    FROM months),
  leveled AS (
    SELECT *,
           CASE WHEN edu OR ft THEN 3 WHEN emp THEN 2 WHEN placement THEN 1 ELSE 0 END AS lvl,
           CASE WHEN edu THEN 0 WHEN ft THEN 1 WHEN emp THEN 2 WHEN flex THEN 3
                WHEN dp THEN 4 WHEN placement THEN 5 WHEN on_benefit THEN 6 ELSE 7 END AS st
    FROM derived),
  windowed AS (
    SELECT person_id, m, entry_m, entry_mun, entry_vis, lvl, st,
           max(CASE WHEN m >= entry_m AND m BETWEEN {ps} AND {pe} THEN lvl ELSE 0 END)
             OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS acc,
           {lag_cols}
    FROM leveled
    WINDOW w AS (PARTITION BY person_id ORDER BY m)),
  contrib AS (
    SELECT m, entry_mun, entry_vis, lvl, st, acc,
           CASE WHEN {run_any('ft')} THEN 2 WHEN {run_any('emp')} THEN 1 ELSE 0 END AS dur
    FROM windowed WHERE m >= entry_m)
SELECT (m // 12) * 100 + m % 12 + 1 AS period,
       entry_mun AS municipality,
       entry_vis::VARCHAR AS visitation,
       count(*) AS members,
       count(*) FILTER (WHERE lvl = 3) AS now_goal1,
       count(*) FILTER (WHERE lvl = 2) AS now_goal2,
       count(*) FILTER (WHERE lvl = 1) AS now_goal3,
       count(*) FILTER (WHERE lvl = 0) AS now_none,
       count(*) FILTER (WHERE acc = 3) AS acc_goal1,
       count(*) FILTER (WHERE acc = 2) AS acc_goal2,
       count(*) FILTER (WHERE acc = 1) AS acc_goal3,
       count(*) FILTER (WHERE acc = 0) AS acc_none,
       count(*) FILTER (WHERE dur = 2 AND acc = 3) AS durable_full_goal1,
       count(*) FILTER (WHERE dur = 2 AND acc = 2) AS durable_full_goal2,
       count(*) FILTER (WHERE dur = 2 AND acc = 1) AS durable_full_goal3,
       count(*) FILTER (WHERE dur = 2 AND acc = 0) AS durable_full_none,
       count(*) FILTER (WHERE dur = 1 AND acc = 3) AS durable_partial_goal1,
       count(*) FILTER (WHERE dur = 1 AND acc = 2) AS durable_partial_goal2,
       count(*) FILTER (WHERE dur = 1 AND acc = 1) AS durable_partial_goal3,
       count(*) FILTER (WHERE dur = 1 AND acc = 0) AS durable_partial_none,
       count(*) FILTER (WHERE st = 0) AS status_education,
       count(*) FILTER (WHERE st = 1) AS status_employed_full,
       count(*) FILTER (WHERE st = 2) AS status_employed_part,
       count(*) FILTER (WHERE st = 3) AS status_flexjob,
       count(*) FILTER (WHERE st = 4) AS status_disability_pension,
       count(*) FILTER (WHERE st = 5) AS status_company_placement,
       count(*) FILTER (WHERE st = 6) AS status_on_benefit,
       count(*) FILTER (WHERE st = 7) AS status_self_supporting
FROM contrib
GROUP BY ALL
ORDER BY period, municipality, visitation
"""


# ---------------------------------------------------------------- memory

def rss_peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_rss_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class MemoryPoller(threading.Thread):
    """Polls DuckDB's own accounting (duckdb_memory()) from a second connection."""

    def __init__(self, con, period=0.02):
        super().__init__(daemon=True)
        self.cur = con.cursor()
        self.period = period
        self.stop = threading.Event()
        self.peak = 0
        self.peak_temp = 0
        self.samples = 0

    def sample(self):
        mem, temp = self.cur.execute(
            "SELECT sum(memory_usage_bytes), sum(temporary_storage_bytes) "
            "FROM duckdb_memory()").fetchone()
        self.peak = max(self.peak, int(mem or 0))
        self.peak_temp = max(self.peak_temp, int(temp or 0))
        self.samples += 1
        return int(mem or 0)

    def run(self):
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.period)


# ---------------------------------------------------------------- main

def main(argv):
    a = parse_args(argv)
    import duckdb

    parquet = a.parquet or os.path.splitext(a.input[0])[0] + ".parquet"
    con = duckdb.connect()
    con.execute(f"SET threads = {a.threads}")
    con.execute(f"SET memory_limit = '{a.memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    temp_dir = a.temp_dir or tempfile.mkdtemp(prefix="duckdb-peer-")
    con.execute("SET temp_directory = ?", [temp_dir])

    t0 = time.monotonic()
    records = load(con, a.input, parquet)
    check_clean(con)
    load_seconds = time.monotonic() - t0
    load_rss = rss_peak_mib()

    sql = rollup_sql(a, a.plan)
    if a.print_sql:
        print(sql, file=sys.stderr)
    poller = MemoryPoller(con)
    table_bytes = poller.sample()
    reset_ok = reset_rss_peak()
    out = os.path.abspath(a.csv).replace("'", "''")
    poller.start()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t1 = time.monotonic()
    con.execute(f"COPY ({sql}) TO '{out}' (HEADER, DELIMITER ',')")
    query_seconds = time.monotonic() - t1
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    poller.stop.set()
    poller.join()
    poller.sample()
    query_rss = rss_peak_mib()

    res = {
        "duckdb_version": duckdb.__version__,
        "plan": a.plan,
        "threads": a.threads,
        "memory_limit": a.memory_limit,
        "records": records,
        "load_seconds": round(load_seconds, 3),
        "query_seconds": round(query_seconds, 3),
        "query_cpu_seconds": round(cpu_seconds, 3),
        "records_per_second": records / query_seconds if query_seconds > 0 else 0,
        "duckdb_table_mib": round(table_bytes / 2**20, 1),
        "duckdb_peak_mib": round(poller.peak / 2**20, 1),
        "duckdb_peak_temp_mib": round(poller.peak_temp / 2**20, 1),
        "memory_samples": poller.samples,
        "rss_peak_load_mib": round(load_rss, 1),
        "rss_peak_query_mib": round(query_rss, 1) if reset_ok else None,
        "rss_peak_mib": round(max(load_rss, query_rss), 1),
    }
    print(f"duckdb peer ({res['duckdb_version']}, plan {a.plan}, {a.threads} threads): "
          f"{records} records loaded in {load_seconds:.1f} s; query {query_seconds:.2f} s "
          f"({res['records_per_second'] / 1e6:.2f} M records/s), {cpu_seconds:.2f} s CPU; DuckDB memory: table "
          f"{res['duckdb_table_mib']} MiB, peak {res['duckdb_peak_mib']} MiB "
          f"(+{res['duckdb_peak_temp_mib']} MiB spilled); peak RSS load "
          f"{res['rss_peak_load_mib']} MiB, query {res['rss_peak_query_mib']} MiB",
          file=sys.stderr)
    con.close()
    if not a.temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
