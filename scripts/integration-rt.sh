#!/usr/bin/env bash
# `make integration-rt`: signoff driving a real Request Tracker 5, from nothing.
#
# Starts a throwaway Postgres for signoff, builds and starts signoff (worker on, a sealing key for
# the host action's RT password, private addresses allowed since RT runs on 127.0.0.1, and a
# retry schedule short enough that RT's minute of outage is retried within the run), mints a
# token, then runs integrations/request-tracker/e2e.sh in full mode: it installs RT when missing,
# starts RT on its own Postgres, and runs integrations/request-tracker/test.py against both.
#
# RT_OUTAGE (seconds RT is down while an outcome is due, default 60) is passed to test.py.
# Needs root (apt-get and /etc/request-tracker5, as scripts/rt.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/dev-env.sh

t0=$(date +%s)
pgdir=$(mktemp -d /tmp/signoff-it-pg.XXXXXX)
log=$(mktemp /tmp/signoff-it.XXXXXX.log)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$pgdir" "$pgdir.initdb.log"
}
trap cleanup EXIT

pgport=$(scripts/free-port.sh)
scripts/pg.sh start "$pgdir" "$pgport"
cargo build --quiet --bin signoff

port=$(scripts/free-port.sh)
export DATABASE_URL="postgres://postgres@127.0.0.1:$pgport/postgres"
export SIGNOFF_BIND="127.0.0.1:$port" SIGNOFF_PUBLIC_URL="http://127.0.0.1:$port"
export SIGNOFF_WEBHOOK_ALLOW_PRIVATE=true
export SIGNOFF_SECRET_KEY=${SIGNOFF_SECRET_KEY:-$(head -c 32 /dev/urandom | base64)}
export SIGNOFF_WEBHOOK_RETRY_SCHEDULE=PT0S,PT2S,PT5S,PT10S,PT15S,PT20S,PT20S,PT20S,PT20S
export SIGNOFF_WORKER_POLL_INTERVAL=PT1S
export RUST_LOG=${RUST_LOG:-info}
target/debug/signoff serve >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$log"; exit 1; }
echo "integration-rt: signoff on http://127.0.0.1:$port (log $log) after $(( $(date +%s) - t0 )) s"

SIGNOFF_URL="http://127.0.0.1:$port" \
SIGNOFF_TOKEN=$(target/debug/signoff token --tenant "rt-$(date +%s)" --ttl 7200) \
  integrations/request-tracker/e2e.sh --outage "${RT_OUTAGE:-60}" || {
  rc=$?
  echo "integration-rt: signoff's log (last 60 lines of $log):"
  tail -60 "$log"
  exit "$rc"
}
# No secret reaches signoff's log: the RT user's password (and its Basic form) never appear.
if grep -q -e 'signoff-password' -e "$(printf 'signoff:%s' "${RT_SIGNOFF_PASSWORD:-signoff-password}" | base64)" "$log"; then
  echo "integration-rt: FAIL the RT password appears in signoff's log ($log)"; exit 1
fi
echo "integration-rt: passed after $(( $(date +%s) - t0 )) s"
rm -f "$log"
