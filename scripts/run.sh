#!/usr/bin/env bash
# `make run`: start signoff, with a local throwaway Postgres when DATABASE_URL is unset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
. scripts/dev-env.sh

if [ -z "${DATABASE_URL:-}" ]; then
  port=${DEV_PG_PORT:-55432}
  dir="$PWD/.pgdata"
  # The server runs as `postgres`, which must be able to reach the data folder.
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$PWD"; then
    dir="/tmp/signoff-pgdata-$(printf %s "$PWD" | md5sum | cut -c1-8)"
  fi
  scripts/pg.sh start "$dir" "$port"
  bin=$(scripts/pg.sh bindir)
  "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'signoff'" | grep -q 1 \
    || "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres signoff
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/signoff"
  echo "Local Postgres: $DATABASE_URL (data in $dir; stop it with: make pg-stop)"
fi

cargo build --quiet --bin signoff
bind=${SIGNOFF_BIND:-127.0.0.1:8080}
cat <<MSG

signoff is starting on http://$bind  (API docs: http://$bind/docs/)
Get a token for tenant "acme" with every scope:
  export TOKEN=\$(make -s token)
  curl -H "Authorization: Bearer \$TOKEN" http://$bind/v1/processes

MSG
exec target/debug/signoff serve
