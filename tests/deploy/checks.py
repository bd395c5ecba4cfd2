"""tests/deploy/checks.py: counting checks for the deploy checks in Python
(compose_check.py, grafana_check.py, k8s_check.py): check() prints one line
per check, finish(name) the closing "NAME: N passed, M failed" and exits 1
when one failed."""

import sys

counts = {"passed": 0, "failed": 0}


def check(cond, what):
    if cond:
        counts["passed"] += 1
        print(f"ok: {what}")
    else:
        counts["failed"] += 1
        print(f"FAIL: {what}")
    return cond


def finish(name):
    print(f"{name}: {counts['passed']} passed, {counts['failed']} failed")
    sys.exit(1 if counts["failed"] else 0)
