# tests/postgres_common.sh — sourced by the PostgreSQL tests
# (tests/postgres_sink.sh, tests/kafka_postgres.sh): a private PostgreSQL 15
# server of the test's own (Debian's postgresql-15: initdb and pg_ctl from
# /usr/lib/postgresql/15/bin), never the machine's cluster. Its data dir and
# socket folder live in a temporary directory of its own (mode 0700, owned by
# the server's user); it listens on its socket and on 127.0.0.1 only, on a
# free random port; the socket is trusted for the superuser regstream, TCP
# asks for a password (scram-sha-256). Never run as root: when the test runs
# as root (CI does), the server runs as the postgres system user the package
# made (one is made with useradd when missing), through runuser.
#
# Before sourcing: bad, finish (the caller's pass/fail functions). After:
#   PG_PORT, PG_DIR, PG_SOCK, PG_CONN (a libpq connection string, superuser
#   over the socket), pg_start, pg_stop (fast shutdown), pg_kill (SIGKILL of
#   the postmaster, for a crash), pg_sql SQL... (psql -X -At, stops on the
#   first error), pg_query_csv SQL (the result as CSV with a header),
#   pg_table_csv TABLE (the table read back as SPEC §12 says,
#   on stdout), pg_cleanup (stops the server and removes PG_DIR: call it
#   from the caller's EXIT trap).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
for tool in initdb pg_ctl postgres psql; do
  [ -x "$PG_BIN/$tool" ] || {
    bad "$PG_BIN/$tool is missing: run deploy/install-deps.sh --test (Debian's postgresql-15)"
    finish
  }
done

# The server's user: ourselves, or when root an unprivileged one.
PG_RUN=()
if [ "$(id -u)" = 0 ]; then
  PG_USER=postgres
  if ! id "$PG_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER" ||
      { bad "cannot make the system user $PG_USER for the PostgreSQL server"; finish; }
  fi
  PG_RUN=(runuser -u "$PG_USER" --)
fi

PG_PORT=$(python3 - <<'PY'
import random, socket
for _ in range(200):
    port = random.randint(20000, 60000)
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        print(port)
        break
    except OSError:
        pass
PY
)
[ -n "$PG_PORT" ] || { bad "no free port on 127.0.0.1 for PostgreSQL"; finish; }

PG_DIR=$(mktemp -d /tmp/regstream-pg.XXXXXX)
PG_SOCK=$PG_DIR/sock
mkdir -p "$PG_SOCK"
if [ -n "${PG_USER-}" ]; then chown -R "$PG_USER" "$PG_DIR"; fi
chmod 0700 "$PG_DIR"
chmod 0755 "$PG_SOCK" # the socket itself is 0777 by default; the folder sits in a 0700 one
PG_CONN="host=$PG_SOCK port=$PG_PORT dbname=postgres user=regstream"

pg_cleanup() {
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1
  fi
  rm -rf "$PG_DIR"
}

pg_start() {
  "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_SOCK -c fsync=off -c full_page_writes=off" \
    start >/dev/null 2>>"$PG_DIR/pg_ctl.log"
}
pg_stop() {
  "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop >/dev/null
}
pg_kill() {
  local pid
  pid=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) && kill -9 "$pid"
  while [ -f "$PG_DIR/data/postmaster.pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
pg_sql() {
  "$PG_BIN/psql" -X -At -q -v ON_ERROR_STOP=1 -d "$PG_CONN" "$@"
}
pg_query_csv() { # SQL: the result as CSV with a header line (NULL: an empty field)
  "$PG_BIN/psql" -X -q --csv -v ON_ERROR_STOP=1 -d "$PG_CONN" -c "$1"
}
pg_table_csv() {
  pg_sql -c "COPY (SELECT * FROM $1 ORDER BY period, municipality, visitation) TO STDOUT (FORMAT csv, HEADER)"
}

if ! "${PG_RUN[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U regstream --auth-local=trust \
  --auth-host=scram-sha-256 --locale=C -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1; then
  bad "initdb failed: $(tail -3 "$PG_DIR/initdb.log" | tr '\n' ' ')"
  finish
fi
chmod 0700 "$PG_DIR/data"
if ! pg_start; then
  bad "PostgreSQL did not start: $(tail -3 "$PG_DIR/server.log" | tr '\n' ' ')"
  finish
fi
