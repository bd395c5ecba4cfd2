#!/usr/bin/env bash
# tests/kafka_sasl.sh — regstream against a secured local Kafka 4.3.1 broker:
# `deploy/kafka-local.sh start --sasl-ssl` (SASL_SSL listener, SCRAM-SHA-512
# and PLAIN, a CA made at start; free port, own data dir, stopped on exit).
# Registered by tests/kafka.cmake as the ctest kafka_sasl (label kafka,
# RUN_SERIAL).
#   1. the client properties file that start prints is mode 0600 and holds the
#      five librdkafka keys; the password is in no output or broker log; the
#      data dir is private; status sees a healthy SASL_SSL broker;
#   2. end to end over SASL_SSL equals file mode: `regstream produce`, `run
#      --exit-at-eof` and `export`, given the client properties as -X options,
#      export the file-mode CSV byte for byte; Kafka's Java client, with
#      SCRAM-SHA-512, counts every produced record (and refuses a wrong
#      password). regstream itself uses SCRAM-SHA-512 when its librdkafka can:
#      librdkafka < 2.6.1 (Debian 12 has 2.0.2) sends the SCRAM client nonce
#      twice, which Kafka 4.x refuses (fixed by librdkafka PR 4895), so with
#      such a librdkafka the checks go over PLAIN-over-TLS with the same
#      credentials, and a "note:" line says so;
#   3. a wrong password is refused: non-zero exit within 60 s;
#   4. a client without SASL/TLS, and one that does not trust the test CA, are
#      refused: non-zero exit within 60 s.
# Needs Java >= 17, Maven (deploy/install-deps.sh --kafka) and openssl:
# without them the test FAILS, it never skips.
# Usage: tests/kafka_sasl.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: kafka_sasl.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=kafka_sasl
NEEDED=("$BUILD/bench/regstream-gen")
KAFKA_START_ARGS=(--sasl-ssl)
# shellcheck source=tests/kafka_common.sh
. "$ROOT/tests/kafka_common.sh"

# props_as_X FILE: the file's key=value lines as -X arguments, one a line:
#   mapfile -t SASL < <(props_as_X "$CLIENT_PROPS")
# (when regstream takes --config FILE, this becomes SASL=(--config "$CLIENT_PROPS"))
props_as_X() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in '' | '#'*) continue ;; esac
    printf -- '-X\n%s\n' "$line"
  done <"$1"
}
# within60 LOG CMD...: runs CMD (output to LOG, killed after 70 s); sets rc
# and took (seconds)
within60() {
  local start
  start=$(date +%s)
  timeout 70 "${@:2}" >"$1" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
}
JAVA_PROPS=$(dirname "$CLIENT_PROPS")/client-java.properties

# --- 1. the client properties, privacy, status
PW=$(sed -n 's/^sasl.password=//p' "$CLIENT_PROPS")
keys=$(sed 's/=.*//' "$CLIENT_PROPS" | sort | tr '\n' ' ')
want_keys="sasl.mechanisms sasl.password sasl.username security.protocol ssl.ca.location "
ca=$(sed -n 's/^ssl.ca.location=//p' "$CLIENT_PROPS")
if [ "$(stat -c %a "$CLIENT_PROPS")" = 600 ] && [ "$keys" = "$want_keys" ] &&
  grep -qx 'security.protocol=SASL_SSL' "$CLIENT_PROPS" &&
  grep -qx 'sasl.mechanisms=SCRAM-SHA-512' "$CLIENT_PROPS" &&
  grep -q '^sasl.username=.' "$CLIENT_PROPS" && [ ${#PW} -ge 16 ] &&
  [ "${ca#/}" != "$ca" ] && openssl x509 -in "$ca" -noout 2>/dev/null; then
  ok "client properties: mode 600, the five keys, ca.pem is a certificate"
else
  bad "client properties $CLIENT_PROPS: mode $(stat -c %a "$CLIENT_PROPS"), keys [$keys]"
fi
if [ -n "$PW" ] && ! printf '%s\n' "$start_out" | grep -qF -- "$PW" &&
  ! grep -qF -- "$PW" "$TMP/broker-start.log" && ! grep -rqF -- "$PW" "$TMP/kafka/logs"; then
  ok "the password is in neither start's output nor the broker's logs"
else
  bad "the password shows in start's output or in $TMP/kafka/logs"
fi
secret_dir=$(dirname "$CLIENT_PROPS")
modes=$(stat -c '%a' "$TMP/kafka" "$secret_dir" "$TMP/kafka/server.properties" "$secret_dir"/* | sort -u | tr "\n" " " | sed "s/ $//")
if [ "$modes" = "600 700" ] && openssl verify -CAfile "$ca" -verify_ip 127.0.0.1 \
  <(sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$secret_dir/broker.pem") >/dev/null 2>&1; then
  ok "data dir and secrets private (modes $modes); the broker certificate verifies for 127.0.0.1"
else
  bad "data dir / secrets modes: $modes (want 600 700), or the broker certificate does not verify"
fi
status=$("$ROOT/deploy/kafka-local.sh" status --port "$PORT" 2>&1)
case $status in
"running 127.0.0.1:$PORT sasl_ssl "*) ok "status: $status" ;;
*) bad "status: $status" ;;
esac

# --- 2. end to end over SASL_SSL
"$BUILD/bench/regstream-gen" --profile kib --seed 3 --out "$TMP/in.avro" >"$TMP/gen.log" 2>&1 ||
  { bad "regstream-gen failed"; finish; }
N=$(sed -n 's/^regstream-gen: \([0-9]*\) records.*/\1/p' "$TMP/gen.log")
"$RS" run --input "$TMP/in.avro" --csv "$TMP/file.csv" --dead-letter "$TMP/file.jsonl" --quiet ||
  { bad "file mode failed"; finish; }
ok "file mode: $N records, $(($(wc -l <"$TMP/file.csv") - 1)) rows"

mapfile -t SASL < <(props_as_X "$CLIENT_PROPS")
RDKAFKA=$(pkg-config --modversion rdkafka 2>/dev/null || echo unknown)
MECH=()
if timeout 60 "$RS" produce --brokers "$B" --topic pm --input "$TMP/in.avro" --partitions 6 \
  "${SASL[@]}" >"$TMP/produce_scram.log" 2>&1; then
  ok "produce over SASL_SSL, SCRAM-SHA-512: $(tail -1 "$TMP/produce_scram.log")"
else
  if [ "$RDKAFKA" != 2.6.1 ] && printf '%s\n2.6.1\n' "$RDKAFKA" | sort -V -C; then
    echo "note: librdkafka $RDKAFKA (< 2.6.1) cannot log in with SCRAM to Kafka 4.x (it sends the client nonce twice; librdkafka PR 4895), as expected: $(tail -1 "$TMP/produce_scram.log"); PLAIN over TLS from here on"
  else
    bad "produce over SCRAM-SHA-512 failed with librdkafka $RDKAFKA (>= 2.6.1 should log in): $(tail -1 "$TMP/produce_scram.log")"
  fi
  MECH=(-X sasl.mechanisms=PLAIN)
  if timeout 60 "$RS" produce --brokers "$B" --topic pm --input "$TMP/in.avro" --partitions 6 \
    "${SASL[@]}" "${MECH[@]}" >"$TMP/produce.log" 2>&1; then
    ok "produce over SASL_SSL, PLAIN: $(tail -1 "$TMP/produce.log")"
  else
    bad "produce over SASL_SSL, PLAIN failed: $(tail -2 "$TMP/produce.log" | tr '\n' ' ')"
  fi
fi
got=$(timeout 60 "$ROOT/deploy/kafka-tool.sh" get-offsets --bootstrap-server "$B" --topic pm \
  --command-config "$JAVA_PROPS" 2>"$TMP/offsets.err" | awk -F: '{s += $NF} END {print s + 0}')
if [ "$got" = "$N" ]; then
  ok "Kafka's Java client (SCRAM-SHA-512, client-java.properties) counts all $N records"
else
  bad "Kafka's Java client over SCRAM-SHA-512 counts $got records, want $N: $(tail -2 "$TMP/offsets.err" | tr '\n' ' ')"
fi
sed 's/password="[^"]*"/password="wrong"/' "$JAVA_PROPS" >"$TMP/wrong-java.properties"
if timeout 60 "$ROOT/deploy/kafka-tool.sh" get-offsets --bootstrap-server "$B" --topic pm \
  --command-config "$TMP/wrong-java.properties" >"$TMP/offsets_wrong.log" 2>&1; then
  bad "Kafka's Java client with a wrong SCRAM password was let in"
elif grep -q 'SaslAuthenticationException\|Authentication failed' "$TMP/offsets_wrong.log"; then
  ok "Kafka's Java client with a wrong SCRAM password is refused (authentication failed)"
else
  bad "Kafka's Java client with a wrong SCRAM password failed otherwise: $(tail -2 "$TMP/offsets_wrong.log" | tr '\n' ' ')"
fi

if timeout 180 "$RS" run --brokers "$B" --topic pm --group g_sasl --output-topic out_sasl \
  --dead-letter-topic dlq_sasl --exit-at-eof --flush-ms 200 "${SASL[@]}" "${MECH[@]}" \
  >"$TMP/run.log" 2>&1; then
  if timeout 60 "$RS" export --brokers "$B" --topic out_sasl --csv "$TMP/kafka.csv" \
    "${SASL[@]}" "${MECH[@]}" >"$TMP/export.log" 2>&1; then
    if cmp -s "$TMP/file.csv" "$TMP/kafka.csv"; then
      ok "run --exit-at-eof and export over SASL_SSL: the CSV equals file mode"
    else
      bad "the CSV over SASL_SSL differs from file mode: $(diff "$TMP/file.csv" "$TMP/kafka.csv" | head -3 | tr '\n' ' ')"
    fi
  else
    bad "export over SASL_SSL failed: $(tail -1 "$TMP/export.log")"
  fi
else
  bad "run over SASL_SSL failed: $(tail -2 "$TMP/run.log" | tr '\n' ' ')"
fi
if ! grep -qF -- "$PW" "$TMP"/produce*.log "$TMP/run.log" "$TMP/export.log" "$TMP/offsets.err" 2>/dev/null; then
  ok "the password is in no output of produce, run, export"
else
  bad "the password shows in the output of produce, run or export"
fi

# --- 3. a wrong password
within60 "$TMP/wrong.log" "$RS" produce --brokers "$B" --topic pm_wrong --input "$TMP/in.avro" \
  "${SASL[@]}" "${MECH[@]}" -X sasl.password=wrong-password-17
msg=$(tail -1 "$TMP/wrong.log")
if [ $rc != 0 ] && [ $rc != 124 ] && [ $took -le 60 ]; then
  ok "a wrong password: exit $rc after ${took}s: $msg"
else
  bad "a wrong password: exit $rc after ${took}s: $msg"
fi
grep -q wrong-password-17 "$TMP/wrong.log" && echo "note: the wrong password is echoed in the error"

# --- 4. no SASL/TLS at all, and a CA that is not the test's
within60 "$TMP/plaintext.log" "$RS" produce --brokers "$B" --topic pm_plain --input "$TMP/in.avro"
msg=$(tail -1 "$TMP/plaintext.log")
if [ $rc != 0 ] && [ $rc != 124 ] && [ $took -le 60 ]; then
  ok "a plaintext client on the SASL_SSL port: exit $rc after ${took}s: $msg"
else
  bad "a plaintext client on the SASL_SSL port: exit $rc after ${took}s: $msg"
fi
grep -v '^ssl.ca.location=' "$CLIENT_PROPS" >"$TMP/no-ca.properties"
mapfile -t NOCA < <(props_as_X "$TMP/no-ca.properties")
within60 "$TMP/noca.log" "$RS" produce --brokers "$B" --topic pm_noca --input "$TMP/in.avro" \
  "${NOCA[@]}" "${MECH[@]}"
msg=$(tail -1 "$TMP/noca.log")
if [ $rc != 0 ] && [ $rc != 124 ] && [ $took -le 60 ]; then
  ok "a client that does not trust the test CA: exit $rc after ${took}s: $msg"
else
  bad "a client that does not trust the test CA: exit $rc after ${took}s: $msg"
fi

finish
