#!/usr/bin/env python3
"""metrics_scrape.py — reads regstream's --metrics-listen endpoints for the shell tests.

  metrics_scrape.py dump URL     GET URL (a /metrics), parse it with the real Prometheus parser
                                 (prometheus_client.parser.text_string_to_metric_families) and
                                 print one line per sample: NAME LABELS VALUE, LABELS as k=v
                                 pairs sorted and joined by ',' ('-' when none), VALUE as an
                                 integer when it is one; a line "TYPE FAMILY TYPE" per family.
                                 Exit 2 when the answer is not 200 with the exposition's
                                 content type, or does not parse.
  metrics_scrape.py status URL   print the HTTP status and the body's first line (no raise on
                                 4xx/5xx); status 0 when nothing answers.

Needs prometheus_client (Debian: python3-prometheus-client; deploy/install-deps.sh --test).
"""
import sys
import urllib.error
import urllib.request

TIMEOUT = 5


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, "", str(e)


def number(v):
    return str(int(v)) if v == int(v) else repr(v)


def dump(url):
    from prometheus_client.parser import text_string_to_metric_families

    status, ctype, body = get(url)
    if status != 200 or not ctype.startswith("text/plain; version=0.0.4"):
        print(f"status {status}, content type '{ctype}': {body[:200]}", file=sys.stderr)
        return 2
    try:
        families = list(text_string_to_metric_families(body))
    except Exception as e:  # the parser raises ValueError and others
        print(f"does not parse: {e}", file=sys.stderr)
        return 2
    for f in families:
        print("TYPE", f.name, f.type)
        for s in f.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) or "-"
            print(s.name, labels, number(s.value))
    return 0


def status(url):
    code, _, body = get(url)
    print(code, (body.splitlines() or [""])[0])
    return 0


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("dump", "status"):
        print(__doc__, file=sys.stderr)
        return 2
    return dump(sys.argv[2]) if sys.argv[1] == "dump" else status(sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
