#!/usr/bin/env bash
# A throwaway PostgreSQL from Debian's packages, for the tests of the PostgreSQL store and of several
# instances (test/store, test/cluster). Installs the packages when missing (needs root, as in CI),
# initialises a cluster in a fresh temporary folder, starts it on a free loopback port and prints the
# lines to eval:
#   eval "$(bash scripts/ci-postgres.sh)"       # exports RM_TEST_PG_URL and RM_TEST_PG_DIR
#   bash scripts/ci-postgres.sh stop "$RM_TEST_PG_DIR"
# Progress goes to stderr; stdout carries only the export lines.
set -euo pipefail

as_owner() {
  # initdb and postgres refuse to run as root: run them as the postgres user the package creates.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

find_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

if [ "${1:-}" = stop ]; then
  dir=${2:?usage: ci-postgres.sh stop DIR}
  bindir=$(find_bindir)
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi

bindir=$(find_bindir)
if [ -z "$bindir" ]; then
  echo "== apt-get install postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  bindir=$(find_bindir)
fi

dir=$(mktemp -d /tmp/rm-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")

as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }
# Durability settings stay at their defaults (fsync and synchronous_commit on): the SIGKILL tests rely on them.
as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null ||
  { cat "$dir/server.log" >&2; exit 1; }
echo "== PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
echo "export RM_TEST_PG_URL=postgres://postgres@127.0.0.1:$port/postgres"
echo "export RM_TEST_PG_DIR=$dir"
