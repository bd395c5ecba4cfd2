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
#      --exit-at-eof` and `export`, given the client properties as --config,
#      export the file-mode CSV byte for byte; Kafka's Java client, with
#      SCRAM-SHA-512, counts every produced record (and refuses a wrong
#      password). regstream itself uses SCRAM-SHA-512 when its librdkafka can:
#      librdkafka < 2.6.1 (Debian 12 has 2.0.2) sends the SCRAM client nonce
#      twice, which Kafka 4.x refuses (fixed by librdkafka PR 4895), so with
#      such a librdkafka the checks go over PLAIN-over-TLS with the same
#      credentials, and a "note:" line says so;
#   3. a wrong password, a client that does not trust the test CA, a bootstrap
#      name the certificate is not for (127.1: resolves to 127.0.0.1 but is
#      neither of its SANs), and a topic without an ACL for regstream (the
#      broker runs with --acl) are each refused in one line naming the cause,
#      non-zero exit within 60 s, no password in any output;
#   4. a client without SASL/TLS is refused: non-zero exit within 60 s;
#   5. a mistyped secret (-X sasl.pasword=...) is refused without echoing it;
#      a --config file holding a secret and readable by others is warned of.
# Needs Java >= 17, Maven (deploy/install-deps.sh --kafka) and openssl:
# without them the test FAILS, it never skips.
# Usage: tests/kafka_sasl.sh BUILD_DIR
set -uo pipefail

BUILD=$(cd "${1:?usage: kafka_sasl.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=kafka_sasl
NEEDED=("$BUILD/bench/regstream-gen")
KAFKA_START_ARGS=(--sasl-ssl --acl)
# shellcheck source=tests/kafka_common.sh
. "$ROOT/tests/kafka_common.sh"

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

SASL=(--config "$CLIENT_PROPS")
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

# --- 3. refusals at start: one line naming the cause, within 60 s
# refused NAME WANT CMD...: runs CMD; ok when it exits non-zero within 60 s
# with one line of output that holds WANT (a fixed string) and no password
refused() {
  local name=$1 want=$2
  shift 2
  within60 "$TMP/$name.log" "$@"
  msg=$(cat "$TMP/$name.log")
  if [ $rc != 0 ] && [ $rc != 124 ] && [ $took -le 60 ] && [ "$(wc -l <"$TMP/$name.log")" = 1 ] &&
    grep -qF -- "$want" "$TMP/$name.log" && ! grep -qF -- "$PW" "$TMP/$name.log" &&
    ! grep -qF wrong-password-17 "$TMP/$name.log"; then
    ok "$name: exit $rc after ${took}s: $msg"
  else
    bad "$name: exit $rc after ${took}s (want non-zero, one line with '$want', no password): $msg"
  fi
}
refused wrong_password "Kafka refused the login for user regstream at $B (SASL authentication failed: check sasl.username/sasl.password in --config $CLIENT_PROPS)" \
  "$RS" produce --brokers "$B" --topic pm_wrong --input "$TMP/in.avro" "${SASL[@]}" "${MECH[@]}" \
  -X sasl.password=wrong-password-17
refused wrong_password_run "Kafka refused the login for user regstream" \
  "$RS" run --brokers "$B" --topic pm --group g_wrong --output-topic o_wrong --dead-letter-topic d_wrong \
  --exit-at-eof "${SASL[@]}" "${MECH[@]}" -X sasl.password=wrong-password-17
refused wrong_password_export "Kafka refused the login for user regstream" \
  "$RS" export --brokers "$B" --topic out_sasl --csv "$TMP/wrong.csv" "${SASL[@]}" "${MECH[@]}" \
  -X sasl.password=wrong-password-17
grep -v '^ssl.ca.location=' "$CLIENT_PROPS" >"$TMP/no-ca.properties"
chmod 600 "$TMP/no-ca.properties"
refused unknown_ca "the TLS certificate of the broker at $B is not signed by a CA we trust (set ssl.ca.location" \
  "$RS" produce --brokers "$B" --topic pm_noca --input "$TMP/in.avro" --config "$TMP/no-ca.properties" "${MECH[@]}"
refused hostname_mismatch "the TLS certificate of the broker at 127.1:$PORT is for other names than 127.1 (check the bootstrap address or ssl.endpoint.identification.algorithm)" \
  "$RS" produce --brokers "127.1:$PORT" --topic pm_name --input "$TMP/in.avro" "${SASL[@]}" "${MECH[@]}"
if timeout 90 "$ROOT/deploy/kafka-tool.sh" org.apache.kafka.tools.AclCommand --bootstrap-server "$B" \
  --command-config "$JAVA_PROPS" --add --allow-principal User:someone-else --operation All \
  --topic locked >"$TMP/acl.log" 2>&1; then
  refused missing_acl "not authorized to write to topic locked (ask for ACLs: Describe and Write on topic locked)" \
    "$RS" produce --brokers "$B" --topic locked --input "$TMP/in.avro" "${SASL[@]}" "${MECH[@]}"
  refused missing_acl_export "not authorized to read topic locked (ask for ACLs: Read and Describe on topic locked)" \
    "$RS" export --brokers "$B" --topic locked --csv "$TMP/locked.csv" "${SASL[@]}" "${MECH[@]}"
else
  bad "could not add the ACL for topic locked: $(tail -2 "$TMP/acl.log" | tr '\n' ' ')"
fi

# --- 4. no SASL/TLS at all
within60 "$TMP/plaintext.log" "$RS" produce --brokers "$B" --topic pm_plain --input "$TMP/in.avro"
msg=$(tail -1 "$TMP/plaintext.log")
if [ $rc != 0 ] && [ $rc != 124 ] && [ $took -le 60 ]; then
  ok "a plaintext client on the SASL_SSL port: exit $rc after ${took}s: $msg"
else
  bad "a plaintext client on the SASL_SSL port: exit $rc after ${took}s: $msg"
fi

# --- 5. a mistyped secret, and a secret file that others may read
"$RS" produce --brokers "$B" --topic pm_typo --input "$TMP/in.avro" -X sasl.pasword=TopSecret123 \
  >"$TMP/typo.log" 2>&1
rc=$?
if [ $rc = 2 ] && grep -qF 'sasl.pasword=[hidden]' "$TMP/typo.log" && ! grep -q TopSecret123 "$TMP/typo.log"; then
  ok "a mistyped secret: exit 2, value hidden: $(cat "$TMP/typo.log")"
else
  bad "a mistyped secret: exit $rc: $(cat "$TMP/typo.log")"
fi
cp "$CLIENT_PROPS" "$TMP/open.properties"
chmod 644 "$TMP/open.properties"
timeout 60 "$RS" export --brokers "$B" --topic out_sasl --csv "$TMP/open.csv" --config "$TMP/open.properties" \
  "${MECH[@]}" >"$TMP/open.log" 2>&1
rc=$?
want="regstream: warning: $TMP/open.properties holds a secret and is readable by others (mode 0644): chmod 600 $TMP/open.properties"
if [ $rc = 0 ] && grep -qxF -- "$want" "$TMP/open.log" && ! grep -qF -- "$PW" "$TMP/open.log"; then
  ok "a secret config file readable by others: warned, export still works"
else
  bad "a secret config file readable by others: exit $rc: $(head -2 "$TMP/open.log" | tr '\n' ' ')"
fi
if ! grep -qF -- "$PW" "$TMP"/*.log 2>/dev/null; then
  ok "the password is in none of the test's logs of regstream"
else
  bad "the password shows in $(grep -lF -- "$PW" "$TMP"/*.log | tr '\n' ' ')"
fi

finish
