#!/usr/bin/env bash
# tests/report_html.sh — `regstream report --html` in a real browser: the kib
# profile (regstream-gen) -> file-mode run -> the text report and the figures
# page, without and with --min-cell 5; then headless Chromium (Debian's
# chromium) loads each page: no console message, a screenshot kept here
# (screenshot.png, a non-blank 1280x4000 PNG), and the DOM after load checked
# by tests/report_html.py against the text report (every measure, the same
# value) and against the CSV (every count cell recomputed there from the
# exact rows, then the disclosure rule applied to what the page shows, by an
# implementation of its own; every share from its cells; ".." where the rule
# says, cell by cell). Under --min-cell 5 the headline national figures are
# shown while small cells are "..". Then a CSV suppressed upstream (written
# here by report_html.py --suppress-csv as a CSV sink under --min-cell 5
# would: no `run --min-cell` on main yet): sums with an unknown cell are "..".
# Also: the page is 0600 and references nothing outside itself, an
# unwritable --html fails in one line, and negative controls show that the
# console check and the DOM check do fail when they should.
# usage: report_html.sh REGSTREAM-GEN REGSTREAM WORKDIR
set -uo pipefail
gen=$(readlink -f "$1")
regstream=$(readlink -f "$2")
dir=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
check="$here/report_html.py"
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir" || exit 1
TEST_NAME=report_html CHECK_NOTE="(files in $dir)"
# shellcheck source=tests/check.sh
. "$here/check.sh"

chromium_bin=$(command -v chromium || true)
if [ -z "$chromium_bin" ]; then
  bad "no chromium on PATH (deploy/install-deps.sh --test installs Debian's chromium)"
  finish
fi

"$gen" --profile kib --seed 20230228 --out kib.avro 2>gen.log || { bad "regstream-gen failed"; finish; }
"$regstream" run --input kib.avro --csv rollup.csv --dead-letter dlq.jsonl \
  --project-start 201901 --project-end 202212 --quiet || { bad "regstream run failed"; finish; }

# chromium PAGE.html OUT-PREFIX [extra flags]: a fresh profile each time; as
# root it needs --no-sandbox; the network flags keep it from calling out.
browse() {
  local page=$1 out=$2
  shift 2
  rm -rf "$out.profile"
  mkdir -p "$out.profile"
  timeout 90 "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$PWD/$out.profile" --enable-logging=stderr --v=0 "$@" \
    "file://$PWD/$page" >"$out.dom" 2>"$out.log"
  local rc=$?
  rm -rf "$out.profile"
  return $rc
}
# Console messages (errors, warnings, failed loads) of the page, or errors
# naming it; chromium's own D-Bus complaints on a machine without D-Bus aside.
console_of() { grep -E ':CONSOLE|ERROR:.*file://' "$1.log"; }

python3 "$check" --suppress-csv rollup.csv suppressed.csv 5 >suppress.txt &&
  ok "$(cat suppress.txt)" || bad "no suppressed CSV: $(cat suppress.txt)"

# page0/page5: the exact CSV without and with --min-cell 5; pageS5: the CSV
# suppressed upstream, with --min-cell 5.
for mc in 0 5 S5; do
  page=page$mc.html
  src=rollup.csv n=$mc
  case $mc in S*) src=suppressed.csv n=${mc#S} ;; esac
  if "$regstream" report --csv "$src" --at 202302 --min-cell "$n" --html "$page" \
    >report$mc.txt 2>report$mc.err && [ -s "$page" ]; then
    ok "report --min-cell $mc --html wrote $page ($(wc -c <"$page") bytes)"
  else
    bad "report --min-cell $mc --html failed: $(cat report$mc.err)"
    continue
  fi
  [ "$(stat -c %a "$page")" = 600 ] && ok "$page is 0600" || bad "$page is $(stat -c %a "$page"), not 0600"
  # Self-contained: no src/href but to an anchor in the page, no script,
  # stylesheet link, import, url() or http(s) anywhere.
  refs=$(grep -Eo '(src|href)[[:space:]]*=[[:space:]]*"[^"]*"' "$page" | grep -v '="#' || true)
  outside=$(grep -Eio 'https?:|<script|<link|<img|<iframe|@import|url\(' "$page" | sort -u || true)
  if [ -z "$refs" ] && [ -z "$outside" ]; then
    ok "$page references nothing outside itself"
  else
    bad "$page references outside: $refs $outside"
  fi
  if browse "$page" dom$mc --dump-dom && grep -q '</html>' dom$mc.dom; then
    msgs=$(console_of dom$mc)
    [ -z "$msgs" ] && ok "chromium loaded $page without console messages" ||
      bad "console messages on $page: $msgs"
  else
    bad "chromium --dump-dom of $page failed: $(tail -3 dom$mc.log)"
    continue
  fi
  case $mc in
  0) expect=--expect-headline ;;
  5) expect="--expect-suppressed --expect-headline" ;;
  *) expect="--expect-suppressed --expect-unknown" ;;
  esac
  if out=$(python3 "$check" dom$mc.dom report$mc.txt "$src" "$n" $expect); then
    ok "$out"
  else
    bad "DOM of $page: $out"
  fi
done

# The screenshot kept with the test output.
if browse page0.html shot --window-size=1280,4000 --screenshot="$PWD/screenshot.png" &&
  out=$(python3 "$check" --png screenshot.png 1280 4000); then
  msgs=$(console_of shot)
  [ -z "$msgs" ] && ok "screenshot: $out" || bad "console messages in the screenshot run: $msgs"
else
  bad "no good screenshot: ${out:-$(tail -3 shot.log)}"
fi

# Negative controls: the console check sees a script error; the DOM check
# fails on the page of other numbers (the --min-cell 5 text report against
# the unsuppressed page) and on a CSV with one count changed.
printf '<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>\n' >broken.html
browse broken.html broken --dump-dom
console_of broken | grep -q 'undefinedFunction' && ok "negative control: a script error is seen on the console" ||
  bad "negative control: the console check missed a script error: $(tail -3 broken.log)"
if [ -s dom0.dom ] && [ -s report5.txt ]; then
  python3 "$check" dom0.dom report5.txt rollup.csv 0 >neg1.txt 2>&1 &&
    bad "negative control: other measures passed the DOM check" ||
    ok "negative control: the DOM check fails on another report's measures"
  awk -F, 'BEGIN { OFS = "," } NR == 2 { $9 += 1 } { print }' rollup.csv >changed.csv
  python3 "$check" dom0.dom report0.txt changed.csv 0 >neg2.txt 2>&1 &&
    bad "negative control: a changed CSV passed the DOM check" ||
    ok "negative control: the DOM check fails on a CSV with one count changed"
fi
if [ -s dom0.dom ] && [ -s dom5.dom ]; then
  # the unsuppressed page checked under the rule (small cells shown), the
  # suppressed page checked without it, and the suppressed page without its
  # groups: each must fail
  python3 "$check" dom0.dom report0.txt rollup.csv 5 >neg3.txt 2>&1 &&
    bad "negative control: a page without the rule passed as --min-cell 5" ||
    ok "negative control: the DOM check fails on small cells shown under --min-cell 5"
  python3 "$check" dom5.dom report5.txt rollup.csv 0 >neg4.txt 2>&1 &&
    bad "negative control: a suppressed page passed as --min-cell 0" ||
    ok "negative control: the DOM check fails on '..' without the rule"
  grep -v '<span class="group"' dom5.dom >nogroups.dom
  python3 "$check" nogroups.dom report5.txt rollup.csv 5 >neg5.txt 2>&1 &&
    bad "negative control: a page without its groups passed" ||
    ok "negative control: the DOM check fails on a page without the groups the rule needs"
  # a complement suppression undone (one '..' of a group shown as its
  # number): the check must see it
  python3 - dom5.dom rollup.csv >undone.dom <<'PY' || bad "negative control: no suppressed durable_partial_goal2 cell in page5 to undo"
import csv, re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
# fig4's goal-2 durable part-time count: the complement of the small full-time one
m = re.search(r'(<td class="n supp" id="(c\d+)" data-period="(\d+)" data-cols="durable_partial_goal2">)\.\.(</td>)', dom)
if not m:
    sys.exit(1)
period = int(m.group(3))
total = sum(int(r["durable_partial_goal2"]) for r in csv.DictReader(open(sys.argv[2])) if int(r["period"]) == period)
print(dom[: m.start()] + m.group(1) + str(total) + m.group(4) + dom[m.end():], end="")
PY
  [ -s undone.dom ] && python3 "$check" undone.dom report5.txt rollup.csv 5 >neg6.txt 2>&1 &&
    bad "negative control: a complement shown passed the DOM check" ||
    ok "negative control: the DOM check fails when a group's complement is shown"
fi

# An output that cannot be written: exit 1, one line, no page.
if "$regstream" report --csv rollup.csv --html /nonexistent-dir/page.html >/dev/null 2>err.txt; then
  bad "--html into a missing directory succeeded"
else
  [ "$(wc -l <err.txt)" = 1 ] && grep -q 'nonexistent-dir/page.html' err.txt &&
    ok "--html into a missing directory: exit 1, $(cat err.txt)" ||
    bad "--html into a missing directory: $(cat err.txt)"
fi
finish
