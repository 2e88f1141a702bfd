#!/usr/bin/env bash
# Fails when src/db/schema.rs is not what `diesel print-schema` gives for the migrations.
# Needs DATABASE_URL pointing at a server where we may create a scratch database.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v diesel >/dev/null; then
  echo "installing diesel_cli (once per machine)..." >&2
  cargo install --quiet --locked diesel_cli --version '^2.3' --no-default-features --features postgres
fi
base=${DATABASE_URL%/*}
scratch="signoff_schema_$$"
bin=$(scripts/pg.sh bindir)
url="$base/$scratch"
# Our own config: the project's diesel.toml would rewrite schema.rs while migrating.
cfg=$(mktemp --suffix=.toml)
printf '[migrations_directory]\ndir = "%s/migrations"\n' "$PWD" > "$cfg"
export DIESEL_CONFIG_FILE="$cfg"
diesel database reset --database-url "$url" --migration-dir migrations >/dev/null
# Every down.sql must really undo its up.sql: redo them all, then compare.
diesel migration redo --all --database-url "$url" --migration-dir migrations >/dev/null
generated=$(mktemp)
diesel print-schema --database-url "$url" > "$generated"
diesel database drop --database-url "$url" >/dev/null 2>&1 || true
if ! diff -u src/db/schema.rs "$generated"; then
  echo "schema-check: src/db/schema.rs differs from diesel print-schema (fix: make schema)" >&2
  rm -f "$generated" "$cfg"; exit 1
fi
rm -f "$generated" "$cfg"
echo "schema-check: src/db/schema.rs matches the migrations"
