#!/usr/bin/env python3
"""edge_cases.py — hand-written scenarios of SPEC §3-§5 with hand-written expected rollup rows.

Each scenario is a few PersonMonth records (written to Avro container files by
regstream-test-writer, tests/reference/avro_write_json.c), optional rule options, the rollup rows
worked out BY HAND from the SPEC (one `member(...)` per member and month, in the order the CSV
must have them) and the rejected records. Both `regstream run` and regstream-refmodel are checked
against them; neither program's output is used to make an expectation.

    python3 tests/edge_cases.py --build-dir build [--only NAME] [--keep]

Closing line: "edge_cases: N passed, M failed" (one check per scenario and program).
Exit status: 0 all passed; 1 a failure; 77 (skipped) when the reference model or the test writer
is not built, or when regstream is not built (the model is still checked and reported).
Python 3 standard library only.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
HEADER = ("period,municipality,visitation,members,"
          "now_goal1,now_goal2,now_goal3,now_none,"
          "acc_goal1,acc_goal2,acc_goal3,acc_none,"
          "durable_full_goal1,durable_full_goal2,durable_full_goal3,durable_full_none,"
          "durable_partial_goal1,durable_partial_goal2,durable_partial_goal3,durable_partial_none,"
          "status_education,status_employed_full,status_employed_part,status_flexjob,"
          "status_disability_pension,status_company_placement,status_on_benefit,"
          "status_self_supporting")
LEVELS = ["goal1", "goal2", "goal3", "none"]
STATUSES = ["education", "employed_full", "employed_part", "flexjob", "disability_pension",
            "company_placement", "on_benefit", "self_supporting"]


def member(now, acc, status, durable=None):
    """One member's contribution to a row: its month level, accumulated goal, status, D(m)."""
    c = [0] * 25
    c[0] = 1
    c[1 + LEVELS.index(now)] = 1
    c[5 + LEVELS.index(acc)] = 1
    if durable == "full":
        c[9 + LEVELS.index(acc)] = 1
    elif durable == "partial":
        c[13 + LEVELS.index(acc)] = 1
    else:
        assert durable is None
    c[17 + STATUSES.index(status)] = 1
    return c


def row(period, municipality, visitation, *members):
    counts = [sum(col) for col in zip(*members)]
    return "%d,%d,%s," % (period, municipality, visitation) + ",".join(map(str, counts))


def rec(person, period, municipality=101, visitation="JOBPARAT", enrolled=False, hours=0.0,
        education=False, internship=False, wage_subsidy=False, flexjob=False,
        disability_pension=False, benefit="KONTANTHJAELP", **extra):
    r = {"person_id": person, "period": period, "municipality": municipality,
         "visitation": visitation, "enrolled": enrolled, "paid_hours": hours,
         "education": education, "internship": internship, "wage_subsidy": wage_subsidy,
         "flexjob": flexjob, "disability_pension": disability_pension, "benefit": benefit}
    r.update(extra)
    return r


E = True  # enrolled
FULL = 100.0  # 700/7 days: full-time in every month (> 18.5 h/week even in a 31-day month)
PART = 50.0  # employed, part-time in every month

SCENARIOS = []


def scenario(name, files, rows, rejects=(), options=(), codec="null", schemas=None):
    """files: list of record lists (one Avro file each); rows: expected CSV rows in order;
    rejects: (file_index, record_index, reason); schemas: per file a writer schema or None."""
    SCENARIOS.append({"name": name, "files": files, "rows": list(rows),
                      "rejects": sorted(rejects), "options": list(options), "codec": codec,
                      "schemas": schemas or [None] * len(files)})


# -- 18.5 h/week boundary, 28-day February 2023: 74.0 h x 7 = 518 = 18.5 x 28 exactly -> part-time
scenario("feb2023_boundary", [[
    rec(1, 202302, 101, enrolled=E, hours=74.0),
    rec(2, 202302, 147, enrolled=E, hours=74.01),
]], [
    row(202302, 101, "JOBPARAT", member("goal2", "goal2", "employed_part")),
    row(202302, 147, "JOBPARAT", member("goal1", "goal1", "employed_full")),
])

# -- leap February 2024 (29 days): boundary 18.5 x 29 / 7 = 76.642857...; as float32 76.64285 is
#    76.6428528 (below) and 76.642857 is 76.6428604 (above); 74.01 h is part-time here
scenario("leap_feb2024_boundary", [[
    rec(1, 202402, 101, enrolled=E, hours=76.64285),
    rec(2, 202402, 147, enrolled=E, hours=76.642857),
    rec(3, 202402, 151, enrolled=E, hours=74.01),
]], [
    row(202402, 101, "JOBPARAT", member("goal2", "goal2", "employed_part")),
    row(202402, 147, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202402, 151, "JOBPARAT", member("goal2", "goal2", "employed_part")),
])

# -- a gap month inside the durable window breaks the run: full 01, 02, (gap 03), 04, 05, 06
scenario("durable_gap_inside_window", [[
    rec(1, 202301, enrolled=E, hours=FULL),
    rec(1, 202302, hours=FULL),
    rec(1, 202304, hours=FULL),
    rec(1, 202305, hours=FULL),
    rec(1, 202306, hours=FULL),
]], [
    row(202301, 101, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202302, 101, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202303, 101, "JOBPARAT", member("none", "goal1", "self_supporting")),
    row(202304, 101, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202305, 101, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202306, 101, "JOBPARAT", member("goal1", "goal1", "employed_full", "full")),
], codec="deflate")

# -- a run of 3 months exactly at the window's start: durable through 202306 (window 01..06),
#    not at 202307 (window 02..07 holds only 02, 03); part-time gives PARTIAL the same way;
#    a person whose first record starts the run is durable at its third month
scenario("durable_window_edges", [[
    rec(1, 202301, enrolled=E, hours=FULL),
    rec(1, 202302, hours=FULL),
    rec(1, 202303, hours=FULL),
    rec(1, 202309),
    rec(2, 202301, 147, "OEVRIG", enrolled=E, hours=PART),
    rec(2, 202302, 147, "OEVRIG", hours=PART),
    rec(2, 202303, 147, "OEVRIG", hours=PART),
    rec(2, 202309, 147, "OEVRIG"),
    rec(3, 202303, 151, enrolled=E, hours=FULL),
    rec(3, 202304, 151, hours=FULL),
    rec(3, 202305, 151, hours=FULL),
]], [
    row(202301, 101, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202301, 147, "OEVRIG", member("goal2", "goal2", "employed_part")),
    row(202302, 101, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202302, 147, "OEVRIG", member("goal2", "goal2", "employed_part")),
    row(202303, 101, "JOBPARAT", member("goal1", "goal1", "employed_full", "full")),
    row(202303, 147, "OEVRIG", member("goal2", "goal2", "employed_part", "partial")),
    row(202303, 151, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202304, 101, "JOBPARAT", member("none", "goal1", "self_supporting", "full")),
    row(202304, 147, "OEVRIG", member("none", "goal2", "self_supporting", "partial")),
    row(202304, 151, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202305, 101, "JOBPARAT", member("none", "goal1", "self_supporting", "full")),
    row(202305, 147, "OEVRIG", member("none", "goal2", "self_supporting", "partial")),
    row(202305, 151, "JOBPARAT", member("goal1", "goal1", "employed_full", "full")),
    row(202306, 101, "JOBPARAT", member("none", "goal1", "self_supporting", "full")),
    row(202306, 147, "OEVRIG", member("none", "goal2", "self_supporting", "partial")),
    row(202307, 101, "JOBPARAT", member("none", "goal1", "self_supporting")),
    row(202307, 147, "OEVRIG", member("none", "goal2", "self_supporting")),
    row(202308, 101, "JOBPARAT", member("none", "goal1", "self_supporting")),
    row(202308, 147, "OEVRIG", member("none", "goal2", "self_supporting")),
    row(202309, 101, "JOBPARAT", member("none", "goal1", "on_benefit")),
    row(202309, 147, "OEVRIG", member("none", "goal2", "on_benefit")),
], codec="snappy")

# -- full, full, part: 3 employed months but only 2 full-time -> PARTIAL
scenario("durable_partial_not_full", [[
    rec(1, 202301, enrolled=E, hours=FULL),
    rec(1, 202302, hours=FULL),
    rec(1, 202303, hours=PART),
]], [
    row(202301, 101, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202302, 101, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202303, 101, "JOBPARAT", member("goal2", "goal1", "employed_part", "partial")),
])

# -- a correction undoes an entry (person 1 then enrols later, elsewhere; person 2 never)
scenario("correction_undoes_entry", [[
    rec(1, 202301),
    rec(1, 202302, enrolled=E),
    rec(2, 202301, 151, enrolled=E),
    rec(1, 202302),
    rec(2, 202301, 151),
    rec(1, 202303, 147, "AKTIVITETSPARAT", enrolled=E),
]], [
    row(202303, 147, "AKTIVITETSPARAT", member("none", "none", "on_benefit")),
])

# -- a correction changes the entry municipality and visitation; later months stay with it
scenario("correction_changes_entry_municipality", [[
    rec(1, 202301, 101, "JOBPARAT", enrolled=E),
    rec(1, 202301, 147, "OEVRIG", enrolled=E),
    rec(1, 202302, 151, "UNKNOWN"),
]], [
    row(202301, 147, "OEVRIG", member("none", "none", "on_benefit")),
    row(202302, 147, "OEVRIG", member("none", "none", "on_benefit")),
])

# -- a correction of the latest month retracts its level: education corrected to nothing
scenario("correction_retracts_level", [[
    rec(1, 202301, enrolled=E),
    rec(1, 202302, education=True),
    rec(1, 202302, benefit="NONE"),
]], [
    row(202301, 101, "JOBPARAT", member("none", "none", "on_benefit")),
    row(202302, 101, "JOBPARAT", member("none", "none", "self_supporting")),
])

# -- an identical repeat changes nothing and is not rejected
scenario("identical_repeat", [[
    rec(1, 202301, enrolled=E, hours=PART),
    rec(1, 202301, enrolled=E, hours=PART),
    rec(1, 202302, education=True),
    rec(1, 202302, education=True),
]], [
    row(202301, 101, "JOBPARAT", member("goal2", "goal2", "employed_part")),
    row(202302, 101, "JOBPARAT", member("goal1", "goal1", "education")),
])

# -- a late record (into a gap month) is rejected and changes nothing; an invalid late record
#    gets its validation reason, not "late"
scenario("late_record", [[
    rec(1, 202301, enrolled=E),
    rec(1, 202303),
    rec(1, 202302, education=True),
    rec(1, 202304),
    rec(1, 202301, 999),
]], [
    row(202301, 101, "JOBPARAT", member("none", "none", "on_benefit")),
    row(202302, 101, "JOBPARAT", member("none", "none", "self_supporting")),
    row(202303, 101, "JOBPARAT", member("none", "none", "on_benefit")),
    row(202304, 101, "JOBPARAT", member("none", "none", "on_benefit")),
], rejects=[(0, 2, "late"), (0, 4, "municipality")])

# -- project window 202303..202305: levels outside it never count; both edges inclusive;
#    a person entering after the window's end stays at NONE
scenario("project_window_edges", [[
    rec(1, 202301, enrolled=E),
    rec(1, 202302, education=True),
    rec(1, 202303, internship=True),
    rec(1, 202304),
    rec(1, 202305, hours=PART),
    rec(1, 202306, hours=FULL),
    rec(1, 202307),
    rec(2, 202306, 147, enrolled=E, education=True),
]], [
    row(202301, 101, "JOBPARAT", member("none", "none", "on_benefit")),
    row(202302, 101, "JOBPARAT", member("goal1", "none", "education")),
    row(202303, 101, "JOBPARAT", member("goal3", "goal3", "company_placement")),
    row(202304, 101, "JOBPARAT", member("none", "goal3", "on_benefit")),
    row(202305, 101, "JOBPARAT", member("goal2", "goal2", "employed_part")),
    row(202306, 101, "JOBPARAT", member("goal1", "goal2", "employed_full")),
    row(202306, 147, "JOBPARAT", member("goal1", "none", "education")),
    row(202307, 101, "JOBPARAT", member("none", "goal2", "on_benefit")),
], options=["--project-start", "202303", "--project-end", "202305"], codec="lzma")

# -- a person enrolling after months of history: the history counts in durable windows but not
#    in the accumulated goal, and only months from entry on are counted
scenario("enrol_after_history", [[
    rec(1, 202301, hours=FULL),
    rec(1, 202302, hours=FULL),
    rec(1, 202303, hours=FULL),
    rec(1, 202304, hours=FULL),
    rec(1, 202305, hours=FULL),
    rec(1, 202306, hours=FULL),
    rec(1, 202307, 147, "AKTIVITETSPARAT", enrolled=E),
    rec(1, 202308, 147, "AKTIVITETSPARAT"),
    rec(1, 202310, 147, "AKTIVITETSPARAT"),
]], [
    row(202307, 147, "AKTIVITETSPARAT", member("none", "none", "on_benefit", "full")),
    row(202308, 147, "AKTIVITETSPARAT", member("none", "none", "on_benefit", "full")),
    row(202309, 147, "AKTIVITETSPARAT", member("none", "none", "self_supporting", "full")),
    row(202310, 147, "AKTIVITETSPARAT", member("none", "none", "on_benefit")),
])

# -- SPEC §5: the first failing check gives the reason; range edges of period and paid_hours
scenario("validation_order", [[
    rec(0, 202413, 999, hours="NaN"),                  # 0 person_id
    rec(1, 202413, 999, hours="NaN"),                  # 1 period
    rec(1, 198912),                                    # 2 period
    rec(1, 210001),                                    # 3 period
    rec(1, 202300),                                    # 4 period
    rec(1, 202301, 999, hours="NaN"),                  # 5 municipality
    rec(1, 202301, 101, hours="NaN"),                  # 6 paid_hours
    rec(1, 202301, hours=-0.5),                        # 7 paid_hours
    rec(1, 202301, hours=744.01),                      # 8 paid_hours
    rec(1, 202301, enrolled=E, hours=744.0),           # 9 accepted: full-time
    rec(-5, 202301),                                   # 10 person_id
    rec(1, 202301, hours="Infinity"),                  # 11 paid_hours
    rec(2, 199001, 860, enrolled=E),                   # 12 accepted: first period
    rec(3, 209912, enrolled=E),                        # 13 accepted: last period
    rec(4, 202301, 147, enrolled=E, hours=-0.0),       # 14 accepted: -0 is not negative
    rec(5, 202301, 0, enrolled=E),                     # 15 municipality
]], [
    row(199001, 860, "JOBPARAT", member("none", "none", "on_benefit")),
    row(202301, 101, "JOBPARAT", member("goal1", "goal1", "employed_full")),
    row(202301, 147, "JOBPARAT", member("none", "none", "on_benefit")),
    row(209912, 101, "JOBPARAT", member("none", "none", "on_benefit")),
], rejects=[(0, 0, "person_id"), (0, 1, "period"), (0, 2, "period"), (0, 3, "period"),
            (0, 4, "period"), (0, 5, "municipality"), (0, 6, "paid_hours"), (0, 7, "paid_hours"),
            (0, 8, "paid_hours"), (0, 10, "person_id"), (0, 11, "paid_hours"),
            (0, 15, "municipality")])

# -- two files in order: a person continues across files; record indexes restart per file
scenario("two_files", [[
    rec(1, 202301, enrolled=E),
    rec(2, 202301, 998, enrolled=E),
], [
    rec(1, 202302, education=True),
    rec(1, 202301),
    rec(2, 202302, visitation="UNKNOWN", enrolled=E),
]], [
    row(202301, 101, "JOBPARAT", member("none", "none", "on_benefit")),
    row(202302, 101, "JOBPARAT", member("goal1", "goal1", "education")),
    row(202302, 101, "UNKNOWN", member("none", "none", "on_benefit")),
], rejects=[(0, 1, "municipality"), (1, 1, "late")])

# -- rule options: 10 h/week full time, window 4, run 2. Thresholds: 30 days 42.857 h,
#    31 days 44.286 h (44.3 h as float32 is 44.2999992, x 7 = 310.09999 > 310)
scenario("rule_options", [[
    rec(1, 202304, enrolled=E, hours=42.8),
    rec(1, 202305, hours=44.3),
    rec(1, 202306, hours=43.0),
    rec(1, 202307),
    rec(1, 202308),
    rec(1, 202309),
]], [
    row(202304, 101, "JOBPARAT", member("goal2", "goal2", "employed_part")),
    row(202305, 101, "JOBPARAT", member("goal1", "goal1", "employed_full", "partial")),
    row(202306, 101, "JOBPARAT", member("goal1", "goal1", "employed_full", "full")),
    row(202307, 101, "JOBPARAT", member("none", "goal1", "on_benefit", "full")),
    row(202308, 101, "JOBPARAT", member("none", "goal1", "on_benefit", "full")),
    row(202309, 101, "JOBPARAT", member("none", "goal1", "on_benefit")),
], options=["--full-time-weekly-hours", "10", "--durable-window-months", "4",
            "--durable-run-months", "2"])

# -- the status and goal hierarchies, several members in one row, rows sorted by period,
#    municipality, then visitation SYMBOL (AKTIVITETSPARAT < JOBPARAT < OEVRIG < ...);
#    the accumulated goal only moves up (footnote 3)
scenario("hierarchies_and_sorting", [[
    rec(14, 202212, 860, enrolled=E),
    rec(1, 202301, enrolled=E, education=True, hours=FULL, internship=True),
    rec(2, 202301, enrolled=E, hours=PART, flexjob=True),
    rec(3, 202301, enrolled=E, flexjob=True, disability_pension=True),
    rec(4, 202301, enrolled=E, disability_pension=True, wage_subsidy=True),
    rec(5, 202301, enrolled=E, wage_subsidy=True),
    rec(6, 202301, enrolled=E, benefit="NONE"),
    rec(7, 202301, enrolled=E, internship=True, benefit="NONE"),
    rec(8, 202301, visitation="UNKNOWN", enrolled=E),
    rec(9, 202301, visitation="AKTIVITETSPARAT", enrolled=E),
    rec(10, 202301, visitation="OEVRIG", enrolled=E),
    rec(11, 202301, visitation="SELVFORSOERGENDE", enrolled=E),
    rec(12, 202301, visitation="UDDANNELSESPARAT", enrolled=E),
    rec(13, 202301, 147, "AKTIVITETSPARAT", enrolled=E),
    rec(15, 202301, 147, enrolled=E, internship=True),
    rec(15, 202302, 147, hours=PART),
    rec(15, 202303, 147),
    rec(15, 202304, 147, education=True),
    rec(15, 202305, 147, internship=True),
]], [
    row(202212, 860, "JOBPARAT", member("none", "none", "on_benefit")),
    row(202301, 101, "AKTIVITETSPARAT", member("none", "none", "on_benefit")),
    row(202301, 101, "JOBPARAT",
        member("goal1", "goal1", "education"),
        member("goal2", "goal2", "employed_part"),
        member("none", "none", "flexjob"),
        member("goal3", "goal3", "disability_pension"),
        member("goal3", "goal3", "company_placement"),
        member("none", "none", "self_supporting"),
        member("goal3", "goal3", "company_placement")),
    row(202301, 101, "OEVRIG", member("none", "none", "on_benefit")),
    row(202301, 101, "SELVFORSOERGENDE", member("none", "none", "on_benefit")),
    row(202301, 101, "UDDANNELSESPARAT", member("none", "none", "on_benefit")),
    row(202301, 101, "UNKNOWN", member("none", "none", "on_benefit")),
    row(202301, 147, "AKTIVITETSPARAT", member("none", "none", "on_benefit")),
    row(202301, 147, "JOBPARAT", member("goal3", "goal3", "company_placement")),
    row(202302, 147, "JOBPARAT", member("goal2", "goal2", "employed_part")),
    row(202303, 147, "JOBPARAT", member("none", "goal2", "on_benefit")),
    row(202304, 147, "JOBPARAT", member("goal1", "goal1", "education")),
    row(202305, 147, "JOBPARAT", member("goal3", "goal1", "company_placement")),
])

# -- schema resolution (SPEC §2): a writer with fields reordered, an extra field, person_id as
#    int, the Visitation symbols in another order plus one unknown to the reader (-> UNKNOWN) and
#    no benefit field (-> default OTHER, so on benefit); the second file uses the reader schema
EVOLVED_SCHEMA = {
    "type": "record", "name": "PersonMonth", "namespace": "regstream",
    "fields": [
        {"name": "note", "type": "long"},
        {"name": "visitation", "type": {
            "type": "enum", "name": "Visitation",
            "symbols": ["OEVRIG", "SELVFORSOERGENDE", "UDDANNELSESPARAT", "AKTIVITETSPARAT",
                        "JOBPARAT", "UNKNOWN", "NEWCATEGORY"], "default": "UNKNOWN"}},
        {"name": "person_id", "type": "int"},
        {"name": "paid_hours", "type": "float"},
        {"name": "period", "type": "int"},
        {"name": "municipality", "type": "int"},
        {"name": "enrolled", "type": "boolean"},
        {"name": "education", "type": "boolean"},
        {"name": "internship", "type": "boolean"},
        {"name": "wage_subsidy", "type": "boolean"},
        {"name": "flexjob", "type": "boolean"},
        {"name": "disability_pension", "type": "boolean"},
    ]}
scenario("writer_schema_resolution", [[
    rec(1, 202301, visitation="AKTIVITETSPARAT", enrolled=E, note=7),
    rec(2, 202301, visitation="NEWCATEGORY", enrolled=E, note=8),
    rec(3, 202301, visitation="OEVRIG", enrolled=E, hours=PART, note=9),
], [
    rec(1, 202302, visitation="JOBPARAT", education=True, benefit="NONE"),
]], [
    row(202301, 101, "AKTIVITETSPARAT", member("none", "none", "on_benefit")),
    row(202301, 101, "OEVRIG", member("goal2", "goal2", "employed_part")),
    row(202301, 101, "UNKNOWN", member("none", "none", "on_benefit")),
    row(202302, 101, "AKTIVITETSPARAT", member("goal1", "goal1", "education")),
], schemas=[EVOLVED_SCHEMA, None])


# -- promotions (SPEC §2): paid_hours written as long, person_id as int, read as float and long
PROMOTING_SCHEMA = json.loads(json.dumps(EVOLVED_SCHEMA))
PROMOTING_SCHEMA["fields"] = [
    {"name": "person_id", "type": "int"},
    {"name": "period", "type": "int"},
    {"name": "municipality", "type": "int"},
    {"name": "visitation", "type": {
        "type": "enum", "name": "Visitation", "default": "UNKNOWN",
        "symbols": ["UNKNOWN", "JOBPARAT", "AKTIVITETSPARAT", "UDDANNELSESPARAT",
                    "SELVFORSOERGENDE", "OEVRIG"]}},
    {"name": "enrolled", "type": "boolean"},
    {"name": "paid_hours", "type": "long"},
    {"name": "education", "type": "boolean"},
    {"name": "internship", "type": "boolean"},
    {"name": "wage_subsidy", "type": "boolean"},
    {"name": "flexjob", "type": "boolean"},
    {"name": "disability_pension", "type": "boolean"},
    {"name": "benefit", "type": {
        "type": "enum", "name": "Benefit", "default": "OTHER",
        "symbols": ["NONE", "KONTANTHJAELP", "INTEGRATIONSYDELSE", "UDDANNELSESHJAELP",
                    "RESSOURCEFORLOEB", "SYGEDAGPENGE", "LEDIGHEDSYDELSE", "DAGPENGE",
                    "OTHER"]}},
]
scenario("writer_promotions", [[
    rec(1, 202302, enrolled=E, hours=74),    # 74 h in February 2023: exactly 18.5 h/week
    rec(2, 202302, 147, enrolled=E, hours=75),
    rec(3, 202302, 151, enrolled=E, hours=745),
]], [
    row(202302, 101, "JOBPARAT", member("goal2", "goal2", "employed_part")),
    row(202302, 147, "JOBPARAT", member("goal1", "goal1", "employed_full")),
], rejects=[(0, 2, "paid_hours")], schemas=[PROMOTING_SCHEMA])

# -- a bad enum index is undecodable (SPEC §5) but leaves the record's framing intact: the
#    records after it in the same block decode and count as usual
scenario("undecodable_enum_index", [[
    rec(1, 202301, enrolled=E),
    rec(1, 202302, visitation=6),              # Visitation has 6 symbols: index 6 is bad
    rec(1, 202302, benefit=9),                 # Benefit has 9 symbols
    rec(2, 202301, visitation=-1, enrolled=E),
    rec(1, 202302, education=True),
]], [
    row(202301, 101, "JOBPARAT", member("none", "none", "on_benefit")),
    row(202302, 101, "JOBPARAT", member("goal1", "goal1", "education")),
], rejects=[(0, 1, "undecodable"), (0, 2, "undecodable"), (0, 3, "undecodable")])


def fmt(cmd):
    return " ".join(shlex.quote(c) for c in cmd)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stderr.decode(errors="replace")


def write_inputs(writer, sc, d):
    paths = []
    for i, records in enumerate(sc["files"]):
        path = os.path.join(d, "in.%03d.avro" % i)
        cmd = [writer, "--out", path, "--codec", sc["codec"], "--block-size", "256"]
        if sc["schemas"][i] is not None:
            schema_path = os.path.join(d, "writer.%03d.avsc" % i)
            with open(schema_path, "w") as f:
                json.dump(sc["schemas"][i], f)
            cmd += ["--schema", schema_path]
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
        p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise RuntimeError("test writer failed: %s: %s" % (fmt(cmd), p.stderr.decode()))
        paths.append(path)
    return paths


def compare(sc, program, cmd, csv_path, rejects):
    expected = [HEADER] + sc["rows"]
    problems = []
    try:
        with open(csv_path, "rb") as f:  # bytes: "\r\n" must not pass for "\n"
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        text = None
        problems.append("    no CSV: %s" % e)
    if text is not None:
        actual = text.split("\n")
        if actual and actual[-1] == "":
            actual.pop()
        else:
            problems.append("    CSV does not end with a newline")
        if actual != expected:
            for i in range(max(len(actual), len(expected))):
                a = actual[i] if i < len(actual) else "(none)"
                e = expected[i] if i < len(expected) else "(none)"
                if a != e:
                    problems.append("    CSV line %d:\n      expected %s\n      got      %s" % (
                        i + 1, e, a))
                    break
            problems.append("    (%d rows expected, %d written)" % (len(expected) - 1,
                                                                     len(actual) - 1))
    if rejects is not None and sorted(rejects) != sc["rejects"]:
        problems.append("    rejects: expected %s\n             got      %s" % (
            sc["rejects"], sorted(rejects)))
    if problems:
        print("FAIL %s [%s]\n%s\n    reproduce: %s" % (sc["name"], program, "\n".join(problems),
                                                      fmt(cmd)))
        return False
    print("ok   %s [%s]" % (sc["name"], program))
    return True


def read_rejects(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                fi, r, reason = line.split()
                out.append((int(fi), int(r), reason))
    return out


def read_dead_letters(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                src = obj["source"]
                # one line may stand for several records ("records": N, e.g. the rest of a
                # block after lost framing): each of them counts as rejected
                for k in range(max(1, int(src.get("records", 1)))):
                    out.append((int(src["file_index"]), int(src["record"]) + k, obj["reason"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--only", help="run only the scenario of this name")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--threads", default="1,3", help="regstream thread counts (default 1,3)")
    args = ap.parse_args()
    b = os.path.abspath(args.build_dir)
    regstream = os.path.join(b, "regstream")
    model = os.path.join(b, "tests", "regstream-refmodel")
    writer = os.path.join(b, "tests", "regstream-test-writer")
    for p in (model, writer):
        if not os.access(p, os.X_OK):
            print("edge_cases: not built: %s" % p)
            print("edge_cases: 0 passed, 0 failed")
            return SKIP
    have_regstream = os.access(regstream, os.X_OK)
    work = tempfile.mkdtemp(prefix="regstream-edge-cases-")
    passed = failed = 0
    for sc in SCENARIOS:
        if args.only and sc["name"] != args.only:
            continue
        d = os.path.join(work, sc["name"])
        os.makedirs(d)
        try:
            inputs = write_inputs(writer, sc, d)
        except RuntimeError as e:
            print("FAIL %s: %s" % (sc["name"], e))
            failed += 1
            continue
        csv_path, rej_path = os.path.join(d, "model.csv"), os.path.join(d, "model.rejects.txt")
        cmd = [model, "--input"] + inputs + ["--csv", csv_path, "--rejects", rej_path] + \
            sc["options"]
        rc, err = run(cmd)
        if rc != 0:
            print("FAIL %s [model]: exit %d: %s\n    reproduce: %s" % (sc["name"], rc,
                                                                      err.strip(), fmt(cmd)))
            ok = False
        else:
            ok = compare(sc, "model", cmd, csv_path, read_rejects(rej_path))
        passed += ok
        failed += not ok
        if not have_regstream:
            continue
        for threads in args.threads.split(","):
            csv_path = os.path.join(d, "regstream.t%s.csv" % threads)
            dlq = os.path.join(d, "regstream.t%s.dlq.jsonl" % threads)
            cmd = [regstream, "run", "--input"] + inputs + ["--csv", csv_path, "--dead-letter",
                                                            dlq, "--threads", threads]
            cmd += sc["options"]
            rc, err = run(cmd)
            if rc != 0:
                print("FAIL %s [regstream, %s threads]: exit %d: %s\n    reproduce: %s" % (
                    sc["name"], threads, rc, err.strip()[-400:], fmt(cmd)))
                ok = False
            else:
                try:
                    dead = read_dead_letters(dlq)
                except (OSError, ValueError, KeyError, TypeError) as e:
                    print("FAIL %s [regstream]: dead-letter file %s: %r" % (sc["name"], dlq, e))
                    dead = None
                ok = compare(sc, "regstream, %s threads" % threads, cmd, csv_path, dead) and \
                    dead is not None
            passed += ok
            failed += not ok
    if failed or args.keep:
        print("edge_cases: files kept in %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    if not have_regstream:
        print("edge_cases: %s not built: only the reference model was checked" % regstream)
    print("edge_cases: %d passed, %d failed" % (passed, failed))
    if failed:
        return 1
    return 0 if have_regstream else SKIP


if __name__ == "__main__":
    sys.exit(main())
