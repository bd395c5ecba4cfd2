#!/usr/bin/env python3
"""tests/deploy/grafana_check.py — checks deploy/grafana/regstream-dashboard.json.

    grafana_check.py DASHBOARD.json

The file is JSON with a title, a uid and panels with unique ids that do not
overlap on the grid; every panel has at least one query; every identifier in
every PromQL expr (and in the template variables' queries) is a PromQL
function, aggregator or keyword, a label named in by()/without() or a
matcher, or one of regstream's metric names (issue 11's list, exactly: a
misspelt or invented metric fails); the four panels the issue asks for exist:
throughput (rate of regstream_records_applied_total), lag per partition
(regstream_consumer_lag by partition), rejects per reason (rate of
regstream_records_rejected_total by reason), snapshot age per partition
(regstream_snapshot_age_seconds by partition).
Prints one line per check and "grafana: N passed, M failed".
"""
import json
import re
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402

METRICS = {
    "regstream_records_applied_total", "regstream_records_rejected_total", "regstream_consumer_lag",
    "regstream_snapshot_age_seconds", "regstream_snapshot_bytes", "regstream_snapshot_duration_seconds",
    "regstream_rows_published_total", "regstream_rebalances_total", "regstream_registry_failures_total",
    "regstream_build_info",
}
PROMQL_WORDS = {
    # aggregators and keywords
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
    "group", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless",
    # functions (those a dashboard over counters and gauges may use)
    "rate", "irate", "increase", "delta", "idelta", "deriv", "abs", "ceil", "floor", "round", "clamp",
    "clamp_min", "clamp_max", "time", "timestamp", "vector", "scalar", "sort", "sort_desc", "absent",
    "changes", "resets", "label_replace", "label_join", "max_over_time", "min_over_time", "avg_over_time",
    "sum_over_time", "count_over_time", "last_over_time", "histogram_quantile", "predict_linear",
    # Grafana's template queries
    "label_values",
}



def identifiers(expr):
    """(metric-or-function identifiers, label names) of a PromQL expression."""
    labels = set()
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)                 # strings
    for inner in re.findall(r"\{([^}]*)\}", e):                    # matchers
        labels |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", inner))
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)                              # ranges
    for kw in ("by", "without", "on", "ignoring", "group_left", "group_right"):
        for inner in re.findall(rf"\b{kw}\s*\(([^)]*)\)", e):
            labels |= set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", inner))
        e = re.sub(rf"\b({kw})\s*\([^)]*\)", r" \1 ", e)
    for m in re.finditer(r"\blabel_values\s*\(([^,()]*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)", e):
        labels.add(m.group(2))
    e = re.sub(r"\blabel_values\s*\(([^,()]*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", r"label_values(\1)", e)
    e = re.sub(r"\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?", " ", e)         # Grafana variables
    e = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?[smhdwy]?\b", " ", e)  # numbers, durations
    idents = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e)
    return idents, labels


def main():
    try:
        d = json.load(open(sys.argv[1]))
    except (OSError, json.JSONDecodeError) as err:
        check(False, f"{sys.argv[1]} is valid JSON: {err}")
        return
    check(True, f"{sys.argv[1]} is valid JSON")
    check(bool(d.get("title")) and bool(d.get("uid")) and isinstance(d.get("panels"), list),
          "the dashboard has a title, a uid and a list of panels")
    panels = d.get("panels", [])
    ids = [p.get("id") for p in panels]
    check(len(ids) == len(set(ids)) and None not in ids, "panel ids are unique")
    cells = set()
    overlap = False
    for p in panels:
        g = p.get("gridPos", {})
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                overlap |= (x, y) in cells
                cells.add((x, y))
    check(not overlap and all(0 < p["gridPos"]["w"] and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
                              for p in panels if "gridPos" in p),
          "panels lie on the 24-column grid without overlapping")

    exprs = []  # (panel title, expr)
    for p in panels:
        targets = p.get("targets") or []
        check(targets and all(t.get("expr") for t in targets), f"panel '{p.get('title')}' has PromQL queries")
        exprs += [(p.get("title"), t.get("expr", "")) for t in targets]
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query":
            exprs.append((f"variable {v.get('name')}", q.get("query") if isinstance(q, dict) else q))
    for where, expr in exprs:
        idents, _ = identifiers(expr)
        unknown = [i for i in idents if i not in METRICS and i not in PROMQL_WORDS]
        named = [i for i in idents if i in METRICS]
        check(not unknown and named, f"{where}: `{expr}` names only regstream's metrics"
              + (f" (unknown: {', '.join(unknown)})" if unknown else "" if named else " (names none)"))

    def find(metric, func, label):
        for p in panels:
            for t in p.get("targets") or []:
                e = t.get("expr", "")
                idents, labels = identifiers(e)
                if metric in idents and (func is None or func in idents) and label in labels:
                    return p.get("title")
        return None

    for what, metric, func, label in (
        ("throughput", "regstream_records_applied_total", "rate", "instance"),
        ("lag per partition", "regstream_consumer_lag", None, "partition"),
        ("rejects per reason", "regstream_records_rejected_total", "rate", "reason"),
        ("snapshot age per partition", "regstream_snapshot_age_seconds", None, "partition"),
    ):
        t = find(metric, func, label)
        check(t is not None, f"a {what} panel ({func + ' of ' if func else ''}{metric} by {label}): {t}")


if __name__ == "__main__":
    main()
    finish("grafana")
