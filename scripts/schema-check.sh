#!/usr/bin/env bash
# Fails when a down.sql does not undo its up.sql, or when src/db/schema.rs is not what
# `diesel print-schema` gives for the migrations. Needs DATABASE_URL pointing at a server where
# we may create a scratch database. With --write, regenerates schema.rs instead of comparing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v diesel >/dev/null; then
  echo "installing diesel_cli (once per machine)..." >&2
  cargo install --quiet --locked diesel_cli --version '^2.3' --no-default-features --features postgres
fi
bin=$(scripts/pg.sh bindir)
base=${DATABASE_URL%/*}
scratch="signoff_schema_$$"
url="$base/$scratch"
admin="$base/postgres"
# Our own config: the project's diesel.toml would rewrite schema.rs while migrating.
cfg=$(mktemp --suffix=.toml)
generated=$(mktemp)
printf '[migrations_directory]\ndir = "%s/migrations"\n' "$PWD" > "$cfg"
export DIESEL_CONFIG_FILE="$cfg"
cleanup() { "$bin/psql" -q "$admin" -c "DROP DATABASE IF EXISTS $scratch" >/dev/null 2>&1 || true; rm -f "$cfg" "$generated"; }
trap cleanup EXIT

"$bin/psql" -q "$admin" -c "CREATE DATABASE $scratch" >/dev/null
diesel migration run --database-url "$url" >/dev/null
diesel migration revert --all --database-url "$url" >/dev/null
left=$("$bin/psql" -qtA "$url" -c "SELECT string_agg(c.relname::text, ', ')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relname NOT LIKE '__diesel_schema_migrations%'")
left=$left$("$bin/psql" -qtA "$url" -c "SELECT string_agg(t.typname, ', ') FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' AND t.typtype = 'e'")
if [ -n "$left" ]; then
  echo "schema-check: reverting every migration left: $left (a down.sql does not undo its up.sql)" >&2
  exit 1
fi
diesel migration run --database-url "$url" >/dev/null
diesel print-schema --database-url "$url" > "$generated"
if [ "${1:-}" = "--write" ]; then
  cp "$generated" src/db/schema.rs
  echo "schema: wrote src/db/schema.rs"
  exit 0
fi
if ! diff -u src/db/schema.rs "$generated"; then
  echo "schema-check: src/db/schema.rs differs from diesel print-schema (fix: make schema)" >&2
  exit 1
fi
echo "schema-check: down migrations undo, and src/db/schema.rs matches the migrations"
