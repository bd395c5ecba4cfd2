#!/usr/bin/env python3
"""tests/report_html.py — checks a figures page of `regstream report --html`
as the browser saw it (chromium --dump-dom) against the text report and the
rollup CSV, by an implementation of its own (standard library only):

  - every measure of the text report (section + label) is in the page, with
    the same value string (one decimal, "n/a" or "..");
  - every count cell that says what it sums (data-cols, data-vis, data-munis,
    data-period) equals that sum recomputed here from the CSV, with the
    disclosure rule of SPEC section 12 applied here to each row under
    --min-cell ("..": a suppressed cell in the sum; withheld rows left out);
  - every share cell equals 100 * n / N (%.1f) of the count cells it names,
    ".." when either is "..", "n/a" when N is 0;
  - the heading's participants equal the text report's.

usage: report_html.py DOM.html REPORT.txt ROLLUP.csv MIN_CELL [--expect-suppressed]
       report_html.py --png SHOT.png WIDTH HEIGHT   (a PNG of that size, not blank)
Prints what it checked; exit 1 on any mismatch (the first 20 listed)."""
import csv
import html.parser
import struct
import sys
import zlib

GROUPS = [(1, 4), (5, 4), (17, 8)]  # now_*, acc_*, status_* (column index in counts)


def disclosure(counts, n):
    """(withheld, set of suppressed column indexes) of one row: SPEC section 12."""
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


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.cells = []  # [attrs dict, text]
        self.by_id = {}
        self.meta = None
        self._open = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "p" and a.get("id") == "meta":
            self.meta = a
        if tag == "td":
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


def main():
    if sys.argv[1] == "--png":
        return check_png(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    dom_path, report_path, csv_path, min_cell = sys.argv[1:5]
    expect_suppressed = "--expect-suppressed" in sys.argv[5:]
    min_cell = int(min_cell)
    dom = Dom()
    dom.feed(open(dom_path, encoding="utf-8").read())
    bad = []

    # the rollup, per (period, code, visitation): counts, with the rule applied
    rows = {}
    with open(csv_path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        names = header[3:]
        for row in r:
            counts = [int(x) for x in row[3:]]
            withheld, mask = disclosure(counts, min_cell)
            if withheld:
                continue
            rows[(int(row[0]), int(row[1]), row[2])] = [
                None if c in mask else v for c, v in enumerate(counts)
            ]

    def expected(a):
        cols = [names.index(c) for c in a["data-cols"].split()]
        vis = set(a["data-vis"].split()) if "data-vis" in a else None
        munis = {int(x) for x in a["data-munis"].split()} if "data-munis" in a else None
        period = int(a["data-period"])
        total = 0
        for (p, code, v), counts in rows.items():
            if p != period or (vis is not None and v not in vis):
                continue
            if munis is not None and code not in munis:
                continue
            for c in cols:
                if counts[c] is None:
                    return ".."
                total += counts[c]
        return str(total)

    counts_checked = shares_checked = 0
    supp_counts = supp_shares = 0
    for a, text in dom.cells:
        cls = a.get("class", "").split()
        if "n" in cls:
            if text == "..":
                supp_counts += 1
            if "data-cols" in a:
                want = expected(a)
                counts_checked += 1
                if text != want:
                    bad.append(f"count {a.get('id')} {a}: page {text!r}, CSV {want!r}")
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
    if expect_suppressed and (supp_counts == 0 or supp_shares == 0):
        bad.append(f"--min-cell {min_cell}: no '..' in the page ({supp_counts} counts, {supp_shares} shares)")
    if not expect_suppressed and (supp_counts or supp_shares):
        bad.append(f"without --min-cell the page shows '..' ({supp_counts} counts, {supp_shares} shares)")
    if counts_checked < 100 or shares_checked < 100 or len(measures) < 30:
        bad.append(f"too little checked: {counts_checked} counts, {shares_checked} shares, {len(measures)} measures")

    print(
        f"report_html.py: {found}/{len(measures)} measures equal the text report; "
        f"{counts_checked} counts equal the CSV (min-cell {min_cell}, {supp_counts} '..'); "
        f"{shares_checked} shares equal their cells ({supp_shares} '..')"
    )
    for b in bad[:20]:
        print("  MISMATCH:", b)
    if len(bad) > 20:
        print(f"  ... and {len(bad) - 20} more")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
