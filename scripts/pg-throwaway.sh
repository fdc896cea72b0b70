# Sourced by scripts/test and bench/run: starts a throwaway PostgreSQL cluster (initdb + pg_ctl
# from Debian's postgresql package) on a free port in a temporary folder, exports its admin URL
# in the variable named by $1, and removes it when the calling script exits. Further arguments
# are server options (e.g. "-c wal_init_zero=off").
start_throwaway_postgres() {
  local var=$1
  shift
  local extra="$*"
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
    echo "PostgreSQL is not installed (apt-get install postgresql), or set $var" >&2
    exit 2
  fi
  pgdir=$(mktemp -d /tmp/sluis-pg.XXXXXX)
  pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg() {
    # initdb refuses to run as root: run the cluster as the postgres user then.
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
  }
  if [ "$(id -u)" = 0 ]; then chown postgres "$pgdir"; fi
  as_pg "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
  # fsync stays on: the audit log's durability is part of what is tested and measured.
  as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w -s \
    -o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1 -c max_connections=300 $extra" start
  stop_throwaway_postgres() {
    as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate -w -s stop >/dev/null 2>&1 || true
    rm -rf "$pgdir"
  }
  trap stop_throwaway_postgres EXIT
  export "$var=postgres://postgres@127.0.0.1:$pgport/postgres"
}
