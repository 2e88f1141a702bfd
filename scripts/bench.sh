#!/usr/bin/env bash
# `make bench`: latency and throughput of the release build against its targets, on a real,
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
  scripts/pg.sh start "$dir/data" "$port"
  cleanup() { scripts/pg.sh stop "$dir/data"; rm -rf "$dir"; }
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
fi
trap cleanup EXIT

cargo test --release --test bench
