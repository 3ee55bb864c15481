#!/usr/bin/env bash
# Makes sure a PostgreSQL server for weft's tests is running on this host and prints its URL.
# Uses WEFT_TEST_POSTGRES_URL when set; otherwise Debian's cluster (installed by .ci/run / setup).
set -euo pipefail
if [ -n "${WEFT_TEST_POSTGRES_URL:-}" ]; then echo "$WEFT_TEST_POSTGRES_URL"; exit 0; fi
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: run 'apt-get install -y postgresql' or set WEFT_TEST_POSTGRES_URL" >&2
  exit 1
fi
cluster=$(pg_lsclusters --no-header | head -n 1)
if [ -z "$cluster" ]; then
  echo "No PostgreSQL cluster exists: run 'pg_createcluster 15 main' or set WEFT_TEST_POSTGRES_URL" >&2
  exit 1
fi
read -r version name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then pg_ctlcluster "$version" "$name" start >&2; fi
as_postgres() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
for _ in $(seq 1 30); do as_postgres psql -p "$port" -qtAc 'select 1' >/dev/null 2>&1 && break; sleep 1; done
as_postgres psql -p "$port" -qtAc "select 1 from pg_roles where rolname='weft'" | grep -q 1 ||
  as_postgres psql -p "$port" -qc "create role weft login superuser password 'weft'" >&2
as_postgres psql -p "$port" -qtAc "select 1 from pg_database where datname='weft_test'" | grep -q 1 ||
  as_postgres psql -p "$port" -qc "create database weft_test owner weft" >&2
echo "postgres://weft:weft@127.0.0.1:${port}/weft_test"
