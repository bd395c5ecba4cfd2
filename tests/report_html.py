#!/usr/bin/env python3
"""tests/report_html.py — checks a figures page of `regstream report --html`
as the browser saw it (chromium --dump-dom) against the text report and the
rollup CSV, by an implementation of its own (standard library only):

  - every measure of the text report (section + label) is in the page, with
    the same value string (one decimal, "n/a" or "..");
  - every count cell that says what it sums (data-cols, data-vis, data-munis,
    data-period) equals that sum recomputed here from the CSV's exact rows,
    or ".." where the disclosure rule (SPEC section 12), applied here to what
    the page shows, says so: an unknown sum (an empty field in it: the CSV
    was suppressed upstream), a shown count 1 <= c < N, a numerator of a
    share whose denominator is 1 <= n < N (the unit withheld, 0 too), and in
    each group of shown cells adding up to a shown total (span.group; each
    group's sums checked here to add up) a single suppressed cell makes the
    smallest other non-zero one suppressed (a rest not shown counting as a
    cell), repeated until nothing changes; the same sum is shown alike
    everywhere;
  - the groups the rule needs are there (figures 1, 2, 3, 4, 7, 8, 9, 10,
    the monthly tables);
  - every share cell equals 100 * n / N (%.1f) of the count cells it names,
    ".." when either is "..", "n/a" when N is 0;
  - the heading's participants equal the text report's, and the heading
    says which input it was (exact or already suppressed).

usage: report_html.py DOM.html REPORT.txt ROLLUP.csv MIN_CELL [--expect-suppressed]
                      [--expect-headline] [--expect-unknown]
       report_html.py --png SHOT.png WIDTH HEIGHT   (a PNG of that size, not blank)
       report_html.py --suppress-csv IN.csv OUT.csv N   (writes IN as a CSV sink under
                      --min-cell N would: withheld rows left out, suppressed counts empty)
Prints what it checked; exit 1 on any mismatch (the first 20 listed)."""
import csv
import html.parser
import struct
import sys
import zlib

GROUPS = [(1, 4), (5, 4), (17, 8)]  # now_*, acc_*, status_* (column index in counts)


def disclosure(counts, n):
    """(withheld, set of suppressed column indexes) of one row: SPEC section 12
    (used here to write a CSV suppressed upstream)."""
    if n <= 1:
        return False, set()
    if 1 <= counts[0] < n:
        return True, set()
    mask = {c for c in range(1, len(counts)) if 1 <= counts[c] < n}
    for first, width in GROUPS:
        cols = range(first, first + width)
        supp = [c for c in cols if c in mask]
        if len(supp) == 1:
            others = [c for c in cols if c not in mask and counts[c] > 0]
            if others:
                mask.add(min(others, key=lambda c: (counts[c], c)))
    return False, mask


def group_rule(values, suppressed, n):
    """The group rule on a list of values (a rest included) and a set of
    indexes already suppressed: the indexes suppressed after it."""
    supp = set(suppressed) | {i for i, v in enumerate(values) if 1 <= v < n}
    if len(supp) == 1:
        others = [i for i, v in enumerate(values) if i not in supp and v > 0]
        if others:
            supp.add(min(others, key=lambda i: (values[i], i)))
    return supp


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.cells = []  # [attrs dict, text]
        self.by_id = {}
        self.meta = None
        self.groups = []  # (section id, attrs)
        self.section = None
        self._open = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id")
        if tag == "span" and "group" in a.get("class", "").split():
            self.groups.append((self.section, a))
        if tag == "p" and a.get("id") == "meta":
            self.meta = a
        if tag == "td":
            a["_section"] = self.section
            self._open = [a, ""]
            self.cells.append(self._open)
            if "id" in a:
                self.by_id[a["id"]] = self._open

    def handle_endtag(self, tag):
        if tag == "td":
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open[1] += data


def text_measures(path):
    """[(section, label, value string)] and the participants of the header."""
    out, section, members = [], None, None
    lines = open(path, encoding="utf-8").read().splitlines()
    started = False
    for line in lines:
        if line.startswith("measure "):
            started = True
            continue
        if not started:
            if " participants in " in line:
                members = line.split()[0]
            continue
        if not line.startswith("  "):
            section = line
            continue
        label = line[2:54].strip()
        value = line[54:].split()[0]
        out.append((section, label, value))
    return out, members


def check_png(path, width, height):
    """A PNG of width x height that is not blank."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        print(f"report_html.py: {path} is not a PNG")
        return 1
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, colour = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    if (w, h) != (width, height) or depth != 8 or channels is None:
        print(f"report_html.py: {path}: {w}x{h} depth {depth} colour {colour}, want {width}x{height} 8-bit")
        return 1
    raw = zlib.decompress(idat)
    stride = w * channels
    if len(raw) != h * (stride + 1):
        print(f"report_html.py: {path}: {len(raw)} bytes of pixels, want {h * (stride + 1)}")
        return 1
    # A blank (one-colour) image has a handful of distinct scan lines, whatever
    # the filters; a drawn page has as many as it has lines of drawing.
    rows = {raw[y * (stride + 1) : (y + 1) * (stride + 1)] for y in range(h)}
    print(f"report_html.py: {path}: {w}x{h} PNG, {len(rows)} distinct scan lines")
    return 0 if len(rows) > 200 else 1


def suppress_csv(src, dst, n):
    with open(src, newline="") as f, open(dst, "w", newline="") as out:
        r = csv.reader(f)
        out.write(",".join(next(r)) + "\n")
        kept = blank = 0
        for row in r:
            counts = [int(x) for x in row[3:]]
            withheld, mask = disclosure(counts, n)
            if withheld:
                continue
            kept += 1
            blank += len(mask)
            out.write(",".join(row[:3] + ["" if c in mask else str(v) for c, v in enumerate(counts)]) + "\n")
    print(f"report_html.py: {dst}: {kept} rows, {blank} counts suppressed under --min-cell {n}")
    return 0 if blank else 1


def main():
    if sys.argv[1] == "--suppress-csv":
        return suppress_csv(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    if sys.argv[1] == "--png":
        return check_png(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    dom_path, report_path, csv_path, min_cell = sys.argv[1:5]
    expect_suppressed = "--expect-suppressed" in sys.argv[5:]
    min_cell = int(min_cell)
    dom = Dom()
    dom.feed(open(dom_path, encoding="utf-8").read())
    bad = []

    # the rollup, per (period, code, visitation): counts, None where empty
    rows = {}
    with open(csv_path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        names = header[3:]
        for row in r:
            rows[(int(row[0]), int(row[1]), row[2])] = [None if x == "" else int(x) for x in row[3:]]
    presuppressed = any(v is None for counts in rows.values() for v in counts)

    def key_of(a):
        return (
            tuple(sorted(names.index(c) for c in a["data-cols"].split())),
            frozenset(a["data-vis"].split()) if "data-vis" in a else None,
            frozenset(int(x) for x in a["data-munis"].split()) if "data-munis" in a else None,
            int(a["data-period"]),
        )

    def exact(key):
        """(sum, rows summed) from the CSV; sum None when a term is unknown."""
        cols, vis, munis, period = key
        total, used = 0, 0
        for (p, code, v), counts in rows.items():
            if p != period or (vis is not None and v not in vis):
                continue
            if munis is not None and code not in munis:
                continue
            used += 1
            for c in cols:
                if counts[c] is None:
                    total = None
                if total is not None:
                    total += counts[c]
        return total, used

    # every shown sum once: value, suppressed
    value, used_rows, key_by_id = {}, {}, {}
    for a, text in dom.cells:
        if "n" in a.get("class", "").split() and "data-cols" in a:
            k = key_of(a)
            key_by_id[a["id"]] = k
            if k not in value:
                value[k], used_rows[k] = exact(k)
    small = lambda v: min_cell > 1 and v is not None and 1 <= v < min_cell
    supp = {k for k, v in value.items() if v is None or small(v)}
    shares = []
    for a, text in dom.cells:
        if "share" in a.get("class", "").split():
            nk, dk = key_by_id.get(a.get("data-num")), key_by_id.get(a.get("data-den"))
            if nk is not None and dk is not None:
                shares.append((nk, dk))
                if small(value[dk]):
                    supp.add(nk)  # the unit is withheld
    groups = []
    for section, a in dom.groups:
        tk = key_by_id.get(a.get("data-total"))
        pk = [key_by_id.get(x) for x in a.get("data-parts", "").split()]
        if tk is None or not pk or None in pk:
            bad.append(f"group names cells that are not count cells: {a}")
            continue
        rest = a.get("data-rest") == "1"
        groups.append([section, tk, pk, rest, False])  # last: the rest suppressed so far
        vals = [value[k] for k in pk]
        if value[tk] is not None and None not in vals:
            if (sum(vals) > value[tk]) if rest else (sum(vals) != value[tk]):
                bad.append(f"group {a}: parts {vals} do not add up to {value[tk]} (rest {rest})")
    changed = True
    while changed:
        changed = False
        for g in groups:
            section, tk, pk, rest, rest_supp = g
            if small(value[tk]):
                for k in pk:
                    if k not in supp:
                        supp.add(k)
                        changed = True
                continue
            unknown = value[tk] is None or any(value[k] is None for k in pk)
            vals = [0 if value[k] is None else value[k] for k in pk]
            given = {i for i, k in enumerate(pk) if k in supp}
            has_rest = False
            if rest and not unknown and value[tk] > sum(vals):
                vals.append(value[tk] - sum(vals))
                has_rest = True
            elif rest and unknown:
                vals.append(1)
                has_rest = True
                given.add(len(pk))
            if has_rest and rest_supp:
                given.add(len(pk))
            after = group_rule(vals, given, min_cell) if min_cell > 1 else given
            g[4] = has_rest and len(pk) in after
            for i, k in enumerate(pk):
                if i in after and k not in supp:
                    supp.add(k)
                    changed = True

    counts_checked = shares_checked = 0
    supp_counts = supp_shares = unknown_multi = 0
    for a, text in dom.cells:
        cls = a.get("class", "").split()
        if "n" in cls:
            if text == "..":
                supp_counts += 1
            if "data-cols" in a:
                k = key_by_id[a["id"]]
                want = ".." if k in supp else str(value[k])
                counts_checked += 1
                if value[k] is None and used_rows[k] > 1 and text == "..":
                    unknown_multi += 1
                if text != want:
                    bad.append(f"count {a.get('id')} {a}: page {text!r}, CSV and rule {want!r}")
        if "share" in cls:
            n = dom.by_id.get(a["data-num"])
            d = dom.by_id.get(a["data-den"])
            if n is None or d is None:
                bad.append(f"share cell names missing cells: {a}")
                continue
            if n[1] == ".." or d[1] == "..":
                want = ".."
            elif int(d[1]) == 0:
                want = "n/a"
            else:
                want = "%.1f" % (100.0 * int(n[1]) / int(d[1]))
            shares_checked += 1
            supp_shares += want == ".."
            if text != want or a.get("data-value") != want:
                bad.append(f"share {a}: page {text!r}, from its cells {want!r}")

    # the groups the rule needs, per figure
    per = {}
    for g in groups:
        per.setdefault(g[0], []).append(g)
    fig2_munis = {a.get("data-munis") for a, t in dom.cells if a.get("_section") == "fig2" and "data-munis" in a}
    series_rows = sum(1 for a, t in dom.cells if a.get("_section") == "series" and a.get("data-cols") == "members")
    muni_rows = sum(1 for a, t in dom.cells if a.get("_section") == "municipalities" and a.get("data-cols") == "members")
    need = {
        "fig1": lambda gs: len(gs) == 2 and len(gs[0][2]) >= 4 and gs[1][3],
        "fig2": lambda gs: len(gs) == len(fig2_munis) and all(len(g[2]) >= 4 for g in gs),
        "fig3": lambda gs: len(gs) == 2 and len(gs[0][2]) == 3 and gs[0][3] and len(gs[1][2]) == 2,
        "fig4": lambda gs: len(gs) == 3,
        "fig8": lambda gs: len(gs) == 3,
        "fig7": lambda gs: len(gs) >= 8,
        "fig9": lambda gs: len(gs) == 1 and len(gs[0][2]) == 6 and not gs[0][3],
        "fig10": lambda gs: len(gs) == 1 and len(gs[0][2]) == 6 and not gs[0][3],
        "series": lambda gs: len(gs) == 2 * series_rows and series_rows > 0,
        "municipalities": lambda gs: len(gs) == 2 * muni_rows and muni_rows > 0,
    }
    for section, ok in need.items():
        if not ok(per.get(section, [])):
            bad.append(f"{section}: not the groups the rule needs ({len(per.get(section, []))} groups)")

    measures, members = text_measures(report_path)
    found = 0
    for section, label, value in measures:
        cells = [
            (a, t)
            for a, t in dom.cells
            if a.get("data-section") == section and a.get("data-measure") == label
        ]
        if not cells:
            bad.append(f"measure not in the page: {section} / {label}")
            continue
        found += 1
        for a, t in cells:
            if t != value or a.get("data-value") != value:
                bad.append(f"measure {section} / {label}: page {t!r}, text report {value!r}")

    if dom.meta is None or dom.meta.get("data-members") != members:
        bad.append(f"participants: page {dom.meta and dom.meta.get('data-members')}, text {members}")
    if dom.meta is not None and dom.meta.get("data-min-cell") != str(min_cell):
        bad.append(f"page says min-cell {dom.meta.get('data-min-cell')}, ran with {min_cell}")
    want_input = "suppressed" if presuppressed else "exact"
    if dom.meta is None or dom.meta.get("data-input") != want_input:
        bad.append(f"page says input {dom.meta and dom.meta.get('data-input')}, the CSV is {want_input}")
    if "--expect-headline" in sys.argv[5:]:
        # the national figures are shown under the rule: the participants and
        # the headline shares of the text report
        head = {"aktivitetsparat", "jobparat", "goal 1 reached", "goal 1 or 2", "education or employment", "on benefit"}
        hidden = [(s_, l) for s_, l, v in measures if l in head and v == ".."]
        if members in (None, "..") or hidden or len({l for s_, l, v in measures if l in head}) < len(head):
            bad.append(f"headline figures not shown: participants {members}, '..': {hidden}")
    if "--expect-unknown" in sys.argv[5:] and unknown_multi == 0:
        bad.append("pre-suppressed CSV: no sum over several rows shown '..' for an unknown cell")
    if expect_suppressed and (supp_counts == 0 or supp_shares == 0):
        bad.append(f"--min-cell {min_cell}: no '..' in the page ({supp_counts} counts, {supp_shares} shares)")
    if not expect_suppressed and (supp_counts or supp_shares):
        bad.append(f"without --min-cell the page shows '..' ({supp_counts} counts, {supp_shares} shares)")
    if counts_checked < 100 or shares_checked < 100 or len(measures) < 30:
        bad.append(f"too little checked: {counts_checked} counts, {shares_checked} shares, {len(measures)} measures")

    print(
        f"report_html.py: {found}/{len(measures)} measures equal the text report; "
        f"{counts_checked} counts equal the CSV under the rule (min-cell {min_cell}, {want_input} input, "
        f"{supp_counts} '..', {unknown_multi} unknown sums); {len(groups)} groups; "
        f"{shares_checked} shares equal their cells ({supp_shares} '..')"
    )
    for b in bad[:20]:
        print("  MISMATCH:", b)
    if len(bad) > 20:
        print(f"  ... and {len(bad) - 20} more")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
