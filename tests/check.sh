# tests/check.sh — sourced by the shell tests: counting checks and the
# closing line. Set TEST_NAME (the name in the closing line) before
# sourcing; CHECK_NOTE, when set, is added to that line. After: ok, bad,
# finish (prints "NAME: N passed, M failed" and exits 0 only when none
# failed).
passed=0
failed=0
ok() {
  passed=$((passed + 1))
  echo "ok: $*"
}
bad() {
  failed=$((failed + 1))
  echo "FAIL: $*"
}
finish() {
  echo "$TEST_NAME: $passed passed, $failed failed${CHECK_NOTE:+ $CHECK_NOTE}"
  [ "$failed" = 0 ]
  exit
}
