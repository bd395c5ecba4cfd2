# tests/kafka_common.sh — sourced by the real-broker tests (kafka_tools.sh,
# kafka_run.sh): pass/fail counting with the closing line, the Java/Maven and
# binaries check, a free port pair, a temporary directory, and a local Kafka
# 4.3.1 broker on them (deploy/kafka-local.sh), stopped on exit.
#
# Set before sourcing: TEST_NAME, BUILD (absolute build dir), ROOT (repo),
# NEEDED (binaries that must be built); optionally KAFKA_START_ARGS, more
# arguments of `kafka-local.sh start` (an array: (--sasl-ssl) starts a SASL_SSL
# broker). After: PORT, TMP, B (the bootstrap address), CLIENT_PROPS (with
# --sasl-ssl the client properties file that start printed, else empty),
# RS (build/regstream); ok, bad, finish; export_equals and
# converges (a topic's exported rows against a CSV); a function
# extra_cleanup, when the test defines one, runs on exit before the broker
# stops.

RS=$BUILD/regstream
# shellcheck source=tests/check.sh
. "$ROOT/tests/check.sh"

# export_equals NAME TOPIC EXPECTED.csv: 0 when the topic's latest rows,
# exported to $TMP/NAME.csv, equal EXPECTED.csv.
export_equals() {
  timeout 60 "$RS" export --brokers "$B" --topic "$2" --csv "$TMP/$1.csv" >"$TMP/$1.export.log" 2>&1 &&
    cmp -s "$3" "$TMP/$1.csv"
}
# converges SECONDS NAME TOPIC EXPECTED.csv: 0 once export_equals holds,
# tried every second for SECONDS.
converges() {
  local i
  for ((i = 0; i < $1; i++)); do
    sleep 1
    export_equals "$2" "$3" "$4" && return 0
  done
  return 1
}

for tool in java mvn; do
  command -v "$tool" >/dev/null || {
    bad "$tool is not installed: run deploy/install-deps.sh --kafka (Java >= 17 and Maven run the local broker)"
    finish
  }
done
for bin in "$RS" "${NEEDED[@]}"; do
  [ -x "$bin" ] || { bad "$bin is not built"; finish; }
done

# A free port pair (broker, controller) of our own, so that concurrent runs on
# one machine never share a broker; REGSTREAM_TEST_KAFKA_PORT pins it.
PORT=${REGSTREAM_TEST_KAFKA_PORT:-$(python3 - <<'PY'
import random, socket
for _ in range(200):
    port = random.randint(20000, 60000)
    try:
        for p in (port, port + 1):
            with socket.socket() as s:
                s.bind(("127.0.0.1", p))
        print(port)
        break
    except OSError:
        pass
PY
)}
[ -n "$PORT" ] || { bad "no free port pair found on 127.0.0.1"; finish; }

TMP=$(mktemp -d "/tmp/$TEST_NAME.XXXXXX")
kafka_cleanup() {
  if declare -F extra_cleanup >/dev/null; then extra_cleanup; fi
  "$ROOT/deploy/kafka-local.sh" stop --port "$PORT" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap kafka_cleanup EXIT

start_out=$(timeout 120 "$ROOT/deploy/kafka-local.sh" start --port "$PORT" --dir "$TMP/kafka" \
  ${KAFKA_START_ARGS[@]+"${KAFKA_START_ARGS[@]}"} 2>"$TMP/broker-start.log")
B=$(printf '%s\n' "$start_out" | sed -n 1p)
CLIENT_PROPS=$(printf '%s\n' "$start_out" | sed -n 2p)
want_lines=1
case " ${KAFKA_START_ARGS[*]-} " in *" --sasl-ssl "*) want_lines=2 ;; esac
if [ "$B" != "127.0.0.1:$PORT" ] || [ "$(printf '%s\n' "$start_out" | wc -l)" != $want_lines ] ||
  { [ $want_lines = 2 ] && [ ! -f "$CLIENT_PROPS" ]; }; then
  bad "broker did not start (stdout: $(printf '%s' "$start_out" | tr '\n' ' ')): $(tail -3 "$TMP/broker-start.log" | tr '\n' ' ')"
  finish
fi
ok "broker up at $B${CLIENT_PROPS:+ (client properties $CLIENT_PROPS)}"
