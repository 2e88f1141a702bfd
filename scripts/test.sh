#!/usr/bin/env bash
# `make test`: the whole suite against a real, throwaway Postgres (unless DATABASE_URL is set,
# in which case it must point at a server where we may create databases).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
. scripts/dev-env.sh
# The browser test (tests/api/browser.rs) runs whenever deps.sh could install Chromium and
# ChromeDriver; BROWSER_TESTS=0 skips it.
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  export BROWSER_TESTS="${BROWSER_TESTS:-1}"
fi

cleanup() { :; }
if [ -z "${DATABASE_URL:-}" ]; then
  port=$(scripts/free-port.sh)
  dir=$(mktemp -d /tmp/signoff-test-pg.XXXXXX)
  [ "$(id -u)" -eq 0 ] && chmod 755 "$dir"
  scripts/pg.sh start "$dir/data" "$port"
  cleanup() { scripts/pg.sh stop "$dir/data"; rm -rf "$dir"; }
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
fi
trap cleanup EXIT

scripts/schema-check.sh
cargo test --all-targets --no-fail-fast -- ${TEST_ARGS:-}
