# Sourced by scripts that need a throwaway PostgreSQL cluster: `start_postgres` starts one in a
# temporary directory on a free port (installing Debian's postgresql package first if needed),
# sets PG_URL to its `postgres` database, and removes it when the script exits.

pg_bin() {
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local bin
  if ! bin=$(pg_bin); then
    if [ "$(id -u)" != 0 ]; then
      echo "PostgreSQL is not installed: run 'sudo apt-get install -y postgresql' (or set RDEV_TEST_DATABASE_URL)" >&2
      exit 1
    fi
    echo "installing PostgreSQL (Debian package)..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(pg_bin)
  fi
  PG_TMP=$(mktemp -d)
  chmod 755 "$PG_TMP"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_TMP"
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_postgres "$bin/initdb" -D "$PG_TMP/data" -U rdev --auth=trust -E UTF8 >/dev/null
  as_postgres "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w \
    -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" start >/dev/null
  PG_STOP="$bin/pg_ctl"
  trap 'as_postgres "$PG_STOP" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$PG_TMP"' EXIT
  PG_URL="postgres://rdev@127.0.0.1:$port/postgres"
}

