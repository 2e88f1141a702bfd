#!/usr/bin/env bash
# `make bench`: latency, throughput and CPU of the release build against its targets and
# beside its yardstick (pgbench running bench/decision.sql in the same run), on a real,
# throwaway Postgres (unless DATABASE_URL is set, in which case it must point at a server where
# we may create databases). Exits non-zero when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
. scripts/dev-env.sh

cleanup() { :; }
if [ -z "${DATABASE_URL:-}" ]; then
  port=$(scripts/free-port.sh)
  dir=$(mktemp -d /tmp/signoff-bench-pg.XXXXXX)
  [ "$(id -u)" -eq 0 ] && chmod 755 "$dir"
  PG_DURABLE=1 scripts/pg.sh start "$dir/data" "$port"
  cleanup() { scripts/pg.sh stop "$dir/data"; rm -rf "$dir"; }
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
fi
trap cleanup EXIT
# The yardstick: pgbench of the same Postgres installation.
export PGBENCH=${PGBENCH:-$(scripts/pg.sh bindir)/pgbench}

cargo test --release --test bench
