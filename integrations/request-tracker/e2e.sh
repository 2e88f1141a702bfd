#!/usr/bin/env bash
# The RT end-to-end test from nothing: installs RT 5 when missing, starts a throwaway Postgres,
# fills a new RT database, starts RT on a free port, runs test.py, and stops both again.
#
#   integrations/request-tracker/e2e.sh
#       rt-only: test.py plays signoff (RT's $SignoffURL points at it)
#   SIGNOFF_URL=http://127.0.0.1:PORT SIGNOFF_TOKEN=... integrations/request-tracker/e2e.sh
#       full: a running signoff (worker on, SIGNOFF_WEBHOOK_ALLOW_PRIVATE=true, SIGNOFF_SECRET_KEY
#       set); the token needs approvals:read approvals:write directory:write processes:write
#       webhooks:manage; `--outage N` (passed to test.py) keeps RT down N seconds while an
#       outcome is due (scripts/integration-rt.sh sets all of this up: `make integration-rt`)
#
# RT has one configuration per machine: a running scripts/rt.sh RT is stopped and re-pointed.
# Needs root (apt-get, /etc/request-tracker5).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
pgdir=$(mktemp -d /tmp/signoff-rt-pg.XXXXXX)
cleanup() {
  scripts/rt.sh stop >/dev/null 2>&1 || true
  scripts/pg.sh stop "$pgdir" || true
  rm -rf "$pgdir" "$pgdir.initdb.log"
}
trap cleanup EXIT

t0=$(date +%s)
scripts/rt.sh install
scripts/rt.sh stop >/dev/null
pgport=$(scripts/free-port.sh)
scripts/pg.sh start "$pgdir" "$pgport"

rtport=$(scripts/free-port.sh)
if [ -n "${SIGNOFF_URL:-}" ] && [ -n "${SIGNOFF_TOKEN:-}" ]; then
  mode=(--signoff-url "$SIGNOFF_URL" --token "$SIGNOFF_TOKEN")
else
  fake=$(scripts/free-port.sh)
  export SIGNOFF_URL=http://127.0.0.1:$fake SIGNOFF_TOKEN=fake-token
  mode=(--fake-signoff "$fake")
fi
scripts/rt.sh init 127.0.0.1 "$pgport" rt_e2e
scripts/rt.sh start "$rtport"
echo "e2e: RT ready after $(( $(date +%s) - t0 )) s"

rc=0
python3 integrations/request-tracker/test.py --rt-url "http://127.0.0.1:$rtport" \
  --rt-password "${RT_ROOT_PASSWORD:-password}" \
  --rt-signoff-password "${RT_SIGNOFF_PASSWORD:-signoff-password}" "${mode[@]}" "$@" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "e2e: RT's log (last 40 lines of /var/tmp/signoff-rt/rt-server.log):"
  tail -40 "${RT_SH_STATE:-/var/tmp/signoff-rt}/rt-server.log" || true
fi
echo "e2e: done after $(( $(date +%s) - t0 )) s"
exit "$rc"
