#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster, then stop and delete it.
# The command sees RESOLVE_TEST_DATABASE_URL. Fails loudly when PostgreSQL cannot start.
set -euo pipefail

find_pgbin() {
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

PGBIN=$(find_pgbin || true)
if [ -z "$PGBIN" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "with-postgres: installing postgresql-15 from Debian's packages" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; }
    PGBIN=$(find_pgbin || true)
  fi
fi
if [ -z "$PGBIN" ]; then
  echo "with-postgres: ERROR: PostgreSQL is not installed and could not be installed" >&2
  exit 3
fi

D=$(mktemp -d /tmp/resolve-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AS=""
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$D"; chmod 700 "$D"; AS="runuser -u postgres --"
fi

stop() {
  $AS "$PGBIN/pg_ctl" -D "$D/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$D"
}
trap stop EXIT

$AS "$PGBIN/initdb" -D "$D/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$D/initdb.log" 2>&1 \
  || { cat "$D/initdb.log" >&2; echo "with-postgres: ERROR: initdb failed" >&2; exit 3; }
$AS "$PGBIN/pg_ctl" -D "$D/data" -l "$D/server.log" -w -t 30 \
  -o "-p $PORT -k $D -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null \
  || { cat "$D/server.log" >&2; echo "with-postgres: ERROR: PostgreSQL did not start" >&2; exit 3; }

export RESOLVE_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on port $PORT" >&2
set +e
"$@"
status=$?
set -e
exit $status
