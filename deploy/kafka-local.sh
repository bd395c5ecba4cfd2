#!/usr/bin/env bash
# deploy/kafka-local.sh - a real, local, single-node Apache Kafka broker for
# development, integration tests and benchmarks of regstream.
#
# Owned by infrastructure, together with deploy/kafka-tool.sh and deploy/kafka/
# (pom.xml: the jars; log4j2-broker.xml / log4j2-tools.xml: logging).
#
# Usage:
#   deploy/kafka-local.sh start  [--port 9092] [--dir DIR] [--partitions 6] [--sasl-ssl [--acl]]
#       (--partitions: the broker's num.partitions for auto-created topics;
#        --sasl-ssl: a secured broker, see "SASL_SSL" below; --acl: with it,
#        ACLs are enforced, see "ACLs" below.)
#       Fetches the Kafka jars if needed, formats a fresh KRaft storage dir
#       (new cluster id) when DIR is new, starts one broker+controller JVM in
#       the background and waits (at most 60 s) until it answers a Metadata
#       request. Prints exactly one line on stdout, the bootstrap address
#       "127.0.0.1:PORT"; everything else goes to stderr. Idempotent: if this
#       script's broker already runs on PORT, prints its address and exits 0.
#         BOOTSTRAP=$(deploy/kafka-local.sh start)
#   deploy/kafka-local.sh stop   [--port 9092] [--keep]
#       SIGTERM, up to 30 s, then SIGKILL; removes the data dir unless --keep.
#   deploy/kafka-local.sh status [--port 9092]
#       Prints "running 127.0.0.1:PORT pid=... dir=..." (exit 0), "unhealthy ..."
#       (process alive but not answering, exit 1) or "stopped" (exit 3). A
#       SASL_SSL broker says "running 127.0.0.1:PORT sasl_ssl pid=...", after
#       an authenticated check (a JVM, ~2 s).
#   deploy/kafka-local.sh fetch
#       Only fetches the jars into the cache (e.g. to warm a CI machine).
#   deploy/kafka-local.sh java
#       Prints the path of the Java >= 17 it uses (installing one if missing);
#       deploy/kafka-tool.sh uses it.
#
# Facts:
#   - Kafka 4.3.1 (kafka_2.13 + kafka-tools + their dependencies) from Maven
#     Central via `mvn dependency:copy-dependencies` on deploy/kafka/pom.xml,
#     into $REGSTREAM_KAFKA_CACHE (default ~/.cache/regstream/kafka-4.3.1), a
#     flat dir of jars used as the classpath "<cache>/*". Never in the repo.
#   - Needs Java >= 17 and (for the first fetch) Maven; when missing they are
#     installed by deploy/install-deps.sh --kafka if present, else apt-get.
#   - KRaft, node.id 1, broker+controller in one JVM, listening on 127.0.0.1
#     only: PLAINTEXT on PORT, CONTROLLER on PORT+1.
#   - Data dir: --dir, else $REGSTREAM_KAFKA_DIR, else /tmp/regstream-kafka-PORT
#     (server.properties, data/, logs/server.log, kafka.pid). The script only
#     ever deletes a dir that carries its marker file .regstream-kafka.
#   - Heap: $REGSTREAM_KAFKA_HEAP_OPTS (default "-Xms1g -Xmx2g"); readiness
#     timeout: $REGSTREAM_KAFKA_READY_TIMEOUT seconds (default 60).
#   - Which dir belongs to which port is remembered in
#     $REGSTREAM_KAFKA_RUN (default /tmp/regstream-kafka-run/PORT.dir).
#
# SASL_SSL (start --sasl-ssl), a secured broker for tests:
#     { read -r BOOTSTRAP; read -r PROPS; } < <(deploy/kafka-local.sh start --sasl-ssl --port 29092)
#   - Prints exactly two lines on stdout: "127.0.0.1:PORT", then the absolute
#     path of a client properties file in librdkafka's names, mode 0600:
#       security.protocol=SASL_SSL, sasl.mechanisms=SCRAM-SHA-512,
#       sasl.username=regstream, sasl.password=<random>, ssl.ca.location=<ca.pem>
#     (one key=value a line, nothing else), e.g. for `regstream ... -X k=v`.
#     Beside it, client-java.properties says the same for Kafka's Java tools:
#       deploy/kafka-tool.sh topics --bootstrap-server "$BOOTSTRAP" \
#         --command-config "$(dirname "$PROPS")/client-java.properties" --list
#   - The client listener on PORT is SASL_SSL only (no PLAINTEXT listener):
#     SCRAM-SHA-512, and PLAIN with the same user "regstream" and password
#     (TLS either way). PLAIN is there because librdkafka < 2.6.1 (Debian 12
#     has 2.0.2) cannot log in with SCRAM to Kafka >= 4.0: it sends the client
#     nonce twice in its final message, which Kafka 4.x refuses as "invalid
#     credentials" (fixed in librdkafka 2.6.1, its PR 4895). Such a client adds
#     sasl.mechanisms=PLAIN. The broker talks to itself over the same listener
#     with SCRAM as user "broker". The CONTROLLER listener on PORT+1 stays
#     PLAINTEXT (127.0.0.1 only, like everything here): a test broker, not a
#     hardened one.
#   - The two SCRAM credentials (random 24-character passwords) are made when
#     the storage is formatted (kafka.tools.StorageTool format --add-scram; the
#     passwords are on that short-lived JVM's command line) and kept in
#     DIR/sasl-ssl/secrets for a restart of a kept dir. Passwords are never
#     printed on stdout or stderr.
#   - A fresh CA and a broker certificate (subjectAltName IP:127.0.0.1,
#     DNS:localhost; EC P-256, 365 days) are made with openssl at every start
#     (the CA key is deleted once it has signed), in DIR/sasl-ssl: ca.pem,
#     broker.pem (PKCS#8 key + chain, Kafka's PEM keystore). DIR and DIR/sasl-ssl
#     are 0700, their secret files 0600 (server.properties holds the broker's
#     password), whatever the umask.
#   - Readiness and status: the Metadata probe cannot speak TLS and SCRAM, so
#     they wait for the port to accept, then authenticate with Kafka's own
#     BrokerApiVersionsCommand and client-java.properties.
#   - A dir formatted with --sasl-ssl starts only with it, and one formatted
#     without it only without it; a running broker of the other kind is an
#     error, not reused.
#
# ACLs (start --sasl-ssl --acl): the StandardAuthorizer, with the broker's own
#   user and the CONTROLLER listener's (User:ANONYMOUS) as super users and
#   allow.everyone.if.no.acl.found=true: a resource without any ACL is open to
#   every user, one with ACLs only to those they name. So a topic given an ACL
#   for some other user is refused to "regstream" (TOPIC_AUTHORIZATION_FAILED),
#   e.g. (as regstream, which may change ACLs while the cluster has none):
#     deploy/kafka-tool.sh org.apache.kafka.tools.AclCommand --bootstrap-server "$BOOTSTRAP" \
#       --command-config "$(dirname "$PROPS")/client-java.properties" --add \
#       --allow-principal User:someone-else --operation All --topic locked
#   The setting is written at every start (a kept dir restarts with or without
#   it as asked).
set -euo pipefail

KAFKA_VERSION=4.3.1 # keep in step with kafka.version in deploy/kafka/pom.xml
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
POM="$HERE/kafka/pom.xml"
BROKER_LOG4J2="$HERE/kafka/log4j2-broker.xml"
CACHE=${REGSTREAM_KAFKA_CACHE:-$HOME/.cache/regstream/kafka-$KAFKA_VERSION}
RUN_DIR=${REGSTREAM_KAFKA_RUN:-/tmp/regstream-kafka-run}
HEAP_OPTS=${REGSTREAM_KAFKA_HEAP_OPTS:--Xms1g -Xmx2g}
HOST=127.0.0.1 # never anything else
MARKER=.regstream-kafka
READY_TIMEOUT=${REGSTREAM_KAFKA_READY_TIMEOUT:-60}
STOP_TIMEOUT=30

log() { printf 'kafka-local: %s\n' "$*" >&2; }
die() {
  printf 'kafka-local: error: %s\n' "$*" >&2
  exit 2
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# ---------------------------------------------------------------- java & maven

# Major version of a java binary: 17 for "17.0.15", 8 for "1.8.0_392".
java_major() {
  local v
  v=$("$1" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
  v=${v#1.}
  printf '%s\n' "${v%%[.+-]*}"
}

# The java to use: the first of $JAVA_HOME/bin/java, java on PATH, and
# /usr/lib/jvm/*/bin/java (e.g. a Java 17 installed beside an older default)
# whose version is >= 17.
find_java() {
  local j m cands=()
  [[ -n ${JAVA_HOME:-} ]] && cands+=("$JAVA_HOME/bin/java")
  j=$(command -v java || true)
  [[ -n $j ]] && cands+=("$j")
  for j in /usr/lib/jvm/*/bin/java; do
    [[ -x $j ]] && cands+=("$j")
  done
  for j in "${cands[@]}"; do
    [[ -x $j ]] || continue
    m=$(java_major "$j")
    if [[ $m =~ ^[0-9]+$ ]] && ((m >= 17)); then
      printf '%s\n' "$j"
      return 0
    fi
  done
  return 1
}

have_java17() { find_java >/dev/null; }

# Install Java 17 and Maven. deploy/install-deps.sh --kafka owns this when it
# exists; the apt-get below is only a fallback until it does.
install_deps() {
  if [[ -f $ROOT/deploy/install-deps.sh ]]; then
    log "installing Java 17 / Maven with deploy/install-deps.sh --kafka"
    bash "$ROOT/deploy/install-deps.sh" --kafka >&2
    return
  fi
  command -v apt-get >/dev/null ||
    die "Java >= 17 and Maven are needed and there is no apt-get: install openjdk-17-jre-headless and maven yourself"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null ||
      die "Java >= 17 and Maven are needed: run as root, or install sudo, or: apt-get install -y openjdk-17-jre-headless maven"
    sudo=(sudo)
  fi
  log "installing openjdk-17-jre-headless and maven with apt-get"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    openjdk-17-jre-headless maven >&2
}

# need_tools java [mvn]
need_tools() {
  local missing=0
  have_java17 || missing=1
  if [[ ${1:-} == mvn || ${2:-} == mvn ]]; then
    command -v mvn >/dev/null || missing=1
  fi
  ((missing)) || return 0
  install_deps
  have_java17 || die "no Java >= 17 found (java -version: $(java -version 2>&1 | head -n1)); install openjdk-17-jre-headless or set JAVA_HOME"
  if [[ ${1:-} == mvn || ${2:-} == mvn ]]; then
    command -v mvn >/dev/null || die "mvn not found after installing"
  fi
}

# ------------------------------------------------------------------- the jars

pom_stamp() { sha256sum "$POM" | cut -d' ' -f1; }

cache_ok() {
  [[ -f $CACHE/.fetched && $(cat "$CACHE/.fetched") == "$(pom_stamp)" ]] &&
    [[ -f $CACHE/kafka_2.13-$KAFKA_VERSION.jar && -f $CACHE/kafka-tools-$KAFKA_VERSION.jar ]]
}

fetch_jars() {
  cache_ok && return 0
  need_tools java mvn
  mkdir -p "$(dirname "$CACHE")"
  exec 8>"$CACHE.lock"
  flock -w 600 8 || die "another fetch holds $CACHE.lock for more than 10 minutes"
  if cache_ok; then
    exec 8>&-
    return 0
  fi
  local tmp flog t0 rc=0
  tmp="$CACHE.tmp.$$"
  flog="$(dirname "$CACHE")/fetch-kafka-$KAFKA_VERSION.log"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  t0=$SECONDS
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $CACHE (full log: $flog)"
  # Progress: one line per downloaded jar.
  mvn -B -f "$POM" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1 |
    tee "$flog" |
    sed -n -u 's|^\[INFO\] Downloaded from [^:]*: .*/\([^/]*\.jar\) (\(.*\))$|  fetched \1 (\2)|p' >&2 ||
    rc=$?
  if ((rc != 0)) || [[ ! -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]]; then
    tail -n 30 "$flog" >&2 || true
    rm -rf "$tmp"
    die "fetching the Kafka jars failed (mvn exit $rc); see $flog. Is Maven Central reachable (mvn -v, ~/.m2/settings.xml)?"
  fi
  pom_stamp >"$tmp/.fetched"
  rm -rf "$CACHE"
  mv "$tmp" "$CACHE"
  log "fetched $(find "$CACHE" -name '*.jar' | wc -l) jars ($(du -sh "$CACHE" | cut -f1)) in $((SECONDS - t0)) s"
  exec 8>&-
}

# --------------------------------------------------------------- broker state

# probe PORT: 0 when a Kafka broker on 127.0.0.1:PORT answers a Metadata (v4)
# request listing at least one live broker. Pure bash, no JVM: the request is
# the 23 bytes below (size 19; api key 3 = Metadata, version 4, correlation id
# 0x52530001, client id "rsmd", topics null = all, no auto-creation); the
# response starts with size, correlation id, throttle time, number of brokers.
probe() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x13\x00\x03\x00\x04\x52\x53\x00\x01\x00\x04rsmd\xff\xff\xff\xff\x00" >&3
    hex=$(head -c 16 <&3 | od -An -v -tx1 | tr -d " \n")
    exec 3<&-
    [[ ${#hex} -eq 32 && ${hex:8:8} == 52530001 && ${hex:24:8} != 00000000 ]]
  ' probe "$1" 2>/dev/null
}

# port_busy PORT: something accepts TCP connections on 127.0.0.1:PORT
port_busy() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' busy "$1" 2>/dev/null
}

state_file() { printf '%s/%s.dir\n' "$RUN_DIR" "$1"; }

# dir_for PORT [DIR]: the data dir of that port's broker
dir_for() {
  if [[ -n ${2:-} ]]; then
    printf '%s\n' "$2"
  elif [[ -s $(state_file "$1") ]]; then
    cat "$(state_file "$1")"
  else
    printf '%s\n' "${REGSTREAM_KAFKA_DIR:-/tmp/regstream-kafka-$1}"
  fi
}

# running_pid DIR: pid of the broker JVM that this script started from DIR,
# if it is alive (checked against its command line, so a recycled pid is not
# mistaken for it)
running_pid() {
  local dir=$1 pid
  [[ -s $dir/kafka.pid ]] || return 1
  pid=$(cat "$dir/kafka.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$dir/server.properties" || return 1
  printf '%s\n' "$pid"
}

# dir_mode DIR: "sasl_ssl" when DIR belongs to a SASL_SSL broker (its
# credentials exist), else "plaintext"
dir_mode() {
  if [[ -f $1/sasl-ssl/secrets ]]; then echo sasl_ssl; else echo plaintext; fi
}

# ------------------------------------------------------------------- SASL_SSL

SCRAM=SCRAM-SHA-512
CLIENT_USER=regstream
BROKER_USER=broker

# A random password: 24 characters of base64url (no quotes, commas, "=" or
# brackets, so it is safe in --add-scram, JAAS and properties files).
random_password() {
  head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
  echo
}

# secret DIR KEY: a value of DIR/sasl-ssl/secrets (lines KEY=VALUE)
secret() { sed -n "s/^$2=//p" "$1/sasl-ssl/secrets" | head -n1; }

# write_secrets DIR: new credentials (before a format)
write_secrets() {
  local s=$1/sasl-ssl
  (
    umask 077
    mkdir -p "$s"
    {
      printf 'client_user=%s\n' "$CLIENT_USER"
      printf 'client_password=%s\n' "$(random_password)"
      printf 'broker_user=%s\n' "$BROKER_USER"
      printf 'broker_password=%s\n' "$(random_password)"
    } >"$s/secrets.tmp"
  )
  chmod 0700 "$s"
  chmod 0600 "$s/secrets.tmp"
  mv "$s/secrets.tmp" "$s/secrets"
}

# make_certs DIR: a fresh CA and a broker certificate for 127.0.0.1 and
# localhost, signed by it, in DIR/sasl-ssl (the CA key is deleted after).
make_certs() {
  local s=$1/sasl-ssl tlog=$1/logs/tls.log
  command -v openssl >/dev/null ||
    die "--sasl-ssl needs openssl (Debian package openssl) to make the certificates"
  (
    umask 077
    set -e
    cd "$s"
    rm -f ca.key ca.pem broker.key broker.csr broker.crt broker.pem tls.cnf
    cat >tls.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = regstream kafka-local test CA
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[broker_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
    openssl req -x509 -new -config tls.cnf -extensions ca_ext -key ca.key -sha256 -days 365 \
      -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -out ca.pem
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out broker.key
    openssl req -new -config tls.cnf -key broker.key -subj /CN=localhost -out broker.csr
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -sha256 -days 365 \
      -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
      -extfile tls.cnf -extensions broker_ext -out broker.crt
    openssl verify -CAfile ca.pem broker.crt
    cat broker.key broker.crt ca.pem >broker.pem
    rm -f ca.key broker.key broker.csr broker.crt tls.cnf
    chmod 0600 ca.pem broker.pem
  ) >"$tlog" 2>&1 || {
    tail -n 10 "$tlog" >&2
    die "making the certificates with openssl failed; see $tlog"
  }
}

# write_client_props DIR: the client properties, librdkafka's names
# (client.properties) and Java's (client-java.properties), both 0600
write_client_props() {
  local s=$1/sasl-ssl user pass
  user=$(secret "$1" client_user)
  pass=$(secret "$1" client_password)
  (
    umask 077
    cat >"$s/client.properties.tmp" <<EOF
security.protocol=SASL_SSL
sasl.mechanisms=$SCRAM
sasl.username=$user
sasl.password=$pass
ssl.ca.location=$s/ca.pem
EOF
    cat >"$s/client-java.properties.tmp" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=$SCRAM
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$user" password="$pass";
ssl.truststore.type=PEM
ssl.truststore.location=$s/ca.pem
EOF
  )
  chmod 0600 "$s/client.properties.tmp" "$s/client-java.properties.tmp"
  mv "$s/client.properties.tmp" "$s/client.properties"
  mv "$s/client-java.properties.tmp" "$s/client-java.properties"
}

# sasl_probe PORT DIR: 0 when the broker on 127.0.0.1:PORT takes the client
# credentials over TLS and lists itself (Kafka's BrokerApiVersionsCommand;
# its output, which holds no password, goes to DIR/logs/probe.log).
sasl_probe() {
  local port=$1 dir=$2 jv
  jv=$(find_java) || return 1
  timeout 30 "$jv" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/kafka/log4j2-tools.xml" -cp "$CACHE/*" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$HOST:$port" \
    --command-config "$dir/sasl-ssl/client-java.properties" >"$dir/logs/probe.log" 2>&1 </dev/null ||
    return 1
  grep -q "^$HOST:$port (id: 1 " "$dir/logs/probe.log"
}

# ready PORT DIR: the broker answers as its kind does (a Metadata request, or
# an authenticated one over TLS)
ready() {
  if [[ $(dir_mode "$2") == sasl_ssl ]]; then
    port_busy "$1" && sasl_probe "$1" "$2"
  else
    probe "$1"
  fi
}

# announce PORT DIR: the stdout of a successful start
announce() {
  printf '%s:%s\n' "$HOST" "$1"
  if [[ $(dir_mode "$2") == sasl_ssl ]]; then
    printf '%s\n' "$2/sasl-ssl/client.properties"
  fi
  return 0
}

# hide DIR: stdin to stdout with DIR's passwords replaced by ***
hide() {
  local f=$1/sasl-ssl/secrets
  if [[ -f $f ]]; then
    local a b
    a=$(secret "$1" client_password)
    b=$(secret "$1" broker_password)
    sed -e "s/$a/***/g" -e "s/$b/***/g"
  else
    cat
  fi
}

# ---------------------------------------------------------------- subcommands

# A fresh cluster id as `kafka-storage random-uuid` makes one (a random 16-byte
# Uuid, base64url without padding, never starting with "-"), without a JVM.
cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ ${#id} == 22 && $id != -* ]] && break
  done
  printf '%s\n' "$id"
}

write_properties() {
  local dir=$1 port=$2 partitions=$3 mode=$4 acl=${5:-0} cport=$(($2 + 1))
  local listener=PLAINTEXT
  [[ $mode == sasl_ssl ]] && listener=SASL_SSL
  (
    umask 077
    cat >"$dir/server.properties.tmp"
  ) <<EOF
# written by deploy/kafka-local.sh - single-node KRaft broker+controller on 127.0.0.1
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$cport
listeners=$listener://$HOST:$port,CONTROLLER://$HOST:$cport
advertised.listeners=$listener://$HOST:$port
inter.broker.listener.name=$listener
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,$listener:$listener
$(if [[ $mode == sasl_ssl ]]; then sasl_properties "$dir"; fi)
$(if [[ $acl == 1 ]]; then acl_properties "$dir"; fi)

log.dirs=$dir/data
num.partitions=$partitions
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true

# a 2-core machine shared with the processor under test
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
socket.request.max.bytes=104857600
log.retention.hours=24
log.segment.bytes=268435456
EOF
  chmod 0600 "$dir/server.properties.tmp"
  mv "$dir/server.properties.tmp" "$dir/server.properties"
}

# sasl_properties DIR: the SASL_SSL listener's part of server.properties
sasl_properties() {
  local s=$1/sasl-ssl
  cat <<EOF

# SASL_SSL (--sasl-ssl): SCRAM-SHA-512 over TLS, and PLAIN over TLS with the
# same client credentials; the broker's own connections to this listener log
# in with SCRAM as $(secret "$1" broker_user)
sasl.enabled.mechanisms=$SCRAM,PLAIN
sasl.mechanism.inter.broker.protocol=$SCRAM
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$(secret "$1" broker_user)" password="$(secret "$1" broker_password)";
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$(secret "$1" client_user)="$(secret "$1" client_password)";
ssl.keystore.type=PEM
ssl.keystore.location=$s/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$s/ca.pem
ssl.client.auth=none
ssl.endpoint.identification.algorithm=https
EOF
}

# acl_properties DIR: ACLs enforced (--acl), see "ACLs" above
acl_properties() {
  cat <<EOF

# ACLs (--acl): resources without ACLs stay open to all
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:$(secret "$1" broker_user);User:ANONYMOUS
allow.everyone.if.no.acl.found=true
EOF
}

cmd_start() {
  local port=$1 dir=$2 partitions=$3 mode=$4 acl=${5:-0}
  local cport=$((port + 1)) pid jv t0 sl i have
  local flag=" --sasl-ssl"
  [[ $mode == sasl_ssl ]] && flag=""
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/$port.lock"
  flock -w 120 9 || die "another kafka-local.sh holds $RUN_DIR/$port.lock"

  local known
  known=$(dir_for "$port" "")
  if [[ -n $dir && $known != "$dir" ]] && pid=$(running_pid "$known"); then
    die "a broker of this script already runs on $HOST:$port with dir $known (pid $pid); stop it first or choose another --port"
  fi
  dir=$(dir_for "$port" "$dir")
  if pid=$(running_pid "$dir"); then
    have=$(dir_mode "$dir")
    [[ $have == "$mode" ]] ||
      die "the broker on $HOST:$port (pid $pid, dir $dir) is a $have one: start it as such (start$flag), or stop it first"
    if ready "$port" "$dir"; then
      log "broker already running on $HOST:$port (pid $pid, dir $dir, $mode)"
      announce "$port" "$dir"
      return 0
    fi
    die "a broker started by this script runs (pid $pid, dir $dir) but does not answer on $HOST:$port; see $dir/logs/server.log, or: $0 stop --port $port"
  fi
  # the port's previous dir (if any) is not running: start from $dir
  for p in "$port" "$cport"; do
    port_busy "$p" && die "$HOST:$p is already in use by another program (ss -ltnp 'sport = :$p'); choose another --port"
  done

  fetch_jars
  need_tools java

  if [[ -e $dir && ! -e $dir/$MARKER ]]; then
    [[ -d $dir && -z $(ls -A "$dir") ]] ||
      die "$dir exists and was not made by this script; choose another --dir or remove it"
  fi
  if [[ -f $dir/$MARKER && $(cat "$dir/$MARKER") != "port=$port" ]]; then
    die "$dir holds a cluster formatted for another port ($(cat "$dir/$MARKER")); remove it or choose another --dir"
  fi
  if [[ -f $dir/data/meta.properties ]]; then
    have=$(dir_mode "$dir")
    [[ $have == "$mode" ]] ||
      die "$dir holds a cluster formatted as $have: start it as such (start$flag), or '$0 stop --port $port --dir $dir' (removes it) first"
  fi
  mkdir -p "$dir/data" "$dir/logs"
  dir=$(cd "$dir" && pwd)
  printf 'port=%s\n' "$port" >"$dir/$MARKER"
  printf '%s\n' "$dir" >"$(state_file "$port")"
  if [[ $mode == sasl_ssl ]]; then
    chmod 0700 "$dir"
    # new credentials for a new cluster; a formatted one keeps its own
    [[ -f $dir/data/meta.properties ]] || write_secrets "$dir"
    make_certs "$dir"
    write_client_props "$dir"
  else
    rm -rf "$dir/sasl-ssl" # an unformatted dir's leftovers
  fi
  write_properties "$dir" "$port" "$partitions" "$mode" "$acl"

  jv=$(find_java)
  local common=(-Dlog4j2.configurationFile="$BROKER_LOG4J2" -Dkafka.logs.dir="$dir/logs"
    -Djava.awt.headless=true -cp "$CACHE/*")

  if [[ ! -f $dir/data/meta.properties ]]; then
    local cid
    cid=$(cluster_id)
    log "formatting $dir/data (cluster id $cid)"
    local scram=()
    if [[ $mode == sasl_ssl ]]; then
      local u
      for u in client broker; do
        scram+=(--add-scram "$SCRAM=[name=$(secret "$dir" "${u}_user"),password=$(secret "$dir" "${u}_password")]")
      done
    fi
    "$jv" "${common[@]}" kafka.tools.StorageTool format --standalone \
      -t "$cid" -c "$dir/server.properties" "${scram[@]}" >>"$dir/logs/format.log" 2>&1 ||
      {
        tail -n 20 "$dir/logs/format.log" | hide "$dir" >&2
        die "formatting the storage failed; see $dir/logs/format.log"
      }
  fi

  t0=$(date +%s.%N)
  rm -f "$dir/kafka.pid"
  # shellcheck disable=SC2086,SC2016 # HEAP_OPTS is a list of JVM flags; $$ is the inner bash's
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-local "$dir/kafka.pid" \
    "$jv" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    "${common[@]}" kafka.Kafka "$dir/server.properties" \
    >"$dir/logs/stdout.log" 2>&1 </dev/null 9>&- &
  disown || true
  log "starting broker on $HOST:$port (controller $HOST:$cport, dir $dir)"

  local deadline=$((SECONDS + READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    sleep 0.2
    if ! pid=$(running_pid "$dir") && [[ -s $dir/kafka.pid ]]; then
      sl="the broker JVM exited during startup"
      break
    fi
    if ready "$port" "$dir"; then
      log "ready after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s (pid $pid, $mode)"
      announce "$port" "$dir"
      return 0
    fi
    sl="the broker did not answer on $HOST:$port within $READY_TIMEOUT s"
  done
  log "$sl; last lines of $dir/logs:"
  tail -n 25 "$dir/logs/server.log" 2>/dev/null | hide "$dir" >&2 || true
  tail -n 10 "$dir/logs/stdout.log" 2>/dev/null | hide "$dir" >&2 || true
  [[ $mode == plaintext ]] || tail -n 5 "$dir/logs/probe.log" 2>/dev/null | hide "$dir" >&2 || true
  if pid=$(running_pid "$dir"); then
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      [[ -d /proc/$pid ]] || break
      sleep 0.1
    done
  fi
  rm -f "$dir/kafka.pid"
  die "start failed; the dir is kept for a look. What to do: read $dir/logs/server.log; check the ports ($port, $cport) are free ('ss -ltnp'), memory is there for $HEAP_OPTS, and 'java -version' is >= 17; then '$0 stop --port $port' (removes $dir) and start again"
}

cmd_stop() {
  local port=$1 dir=$2 keep=$3 pid i
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/$port.lock"
  flock -w 120 9 || die "another kafka-local.sh holds $RUN_DIR/$port.lock"
  dir=$(dir_for "$port" "$dir")
  if pid=$(running_pid "$dir"); then
    log "stopping broker on $HOST:$port (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
      [[ -d /proc/$pid ]] || break
      sleep 0.2
    done
    if [[ -d /proc/$pid ]]; then
      log "no exit after $STOP_TIMEOUT s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
      done
    fi
  else
    log "no broker of this script runs on $HOST:$port"
  fi
  rm -f "$dir/kafka.pid"
  if [[ $keep == 0 && -f $dir/$MARKER ]]; then
    rm -rf "$dir"
    log "removed $dir"
  elif [[ -d $dir ]]; then
    log "kept $dir"
  fi
  rm -f "$(state_file "$port")"
  echo stopped
}

cmd_status() {
  local port=$1 dir=$2 pid
  local known
  known=$(dir_for "$port" "")
  if [[ -n $dir && $known != "$dir" ]] && pid=$(running_pid "$known"); then
    die "a broker of this script already runs on $HOST:$port with dir $known (pid $pid); stop it first or choose another --port"
  fi
  dir=$(dir_for "$port" "$dir")
  if pid=$(running_pid "$dir"); then
    if ready "$port" "$dir"; then
      if [[ $(dir_mode "$dir") == sasl_ssl ]]; then
        echo "running $HOST:$port sasl_ssl pid=$pid dir=$dir"
      else
        echo "running $HOST:$port pid=$pid dir=$dir"
      fi
      return 0
    fi
    echo "unhealthy $HOST:$port pid=$pid dir=$dir (process alive, not answering; see $dir/logs/server.log)"
    return 1
  fi
  echo stopped
  return 3
}

# ----------------------------------------------------------------------- main

main() {
  (($# >= 1)) || usage
  local cmd=$1
  shift
  local port=9092 dir="" partitions=6 keep=0 mode=plaintext acl=0
  while (($#)); do
    case $1 in
    --port) port=${2:?--port needs a value}; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --dir) dir=${2:?--dir needs a value}; shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    --partitions) partitions=${2:?--partitions needs a value}; shift 2 ;;
    --partitions=*) partitions=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    --sasl-ssl) mode=sasl_ssl; shift ;;
    --acl) acl=1; shift ;;
    -h | --help) usage ;;
    *) die "unknown argument: $1 (see $0 --help)" ;;
    esac
  done
  if ! [[ $port =~ ^[0-9]{4,5}$ ]] || ((port < 1024 || port > 65534)); then
    die "--port must be 1024..65534 (the controller takes PORT+1)"
  fi
  if ! [[ $partitions =~ ^[0-9]{1,5}$ ]] || ((partitions < 1)); then
    die "--partitions must be a number >= 1"
  fi
  # absolute, so that it matches the broker's command line
  [[ -z $dir ]] || dir=$(realpath -m -- "$dir")
  case $cmd in
  start)
    [[ $acl == 0 || $mode == sasl_ssl ]] || die "--acl needs --sasl-ssl (ACLs need users)"
    cmd_start "$port" "$dir" "$partitions" "$mode" "$acl"
    ;;
  stop) cmd_stop "$port" "$dir" "$keep" ;;
  status) cmd_status "$port" "$dir" ;;
  fetch) fetch_jars; log "jars in $CACHE" ;;
  java) need_tools java; find_java ;; # helper for kafka-tool.sh: the java to use
  -h | --help | help) usage ;;
  *) die "unknown command: $cmd (start|stop|status|fetch)" ;;
  esac
}

main "$@"
