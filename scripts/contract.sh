#!/usr/bin/env bash
# `make contract`: the OpenAPI document checked with the tools integrators use, and the live
# server checked against it.
#   1. openapi-python-client generates the Python client: any warning fails.
#   2. redocly lint (recommended): 0 errors.
#   3. spectral lint (spectral:oas): nothing but scope names on the bearer scheme.
#   4. @hey-api/openapi-ts and openapi-typescript generate the TypeScript clients, and tsc
#      type-checks them and contract/flow.ts against them.
#   5. Against a live `signoff serve` on a throwaway Postgres: contract/flow.py drives the
#      README flow through the generated Python client, contract/flow.ts the same through
#      both TypeScript clients (node), and schemathesis (--checks all, bounded
#      in examples and time) finds 0 failures.
# The tools are installed into .tools/ (gitignored) from the pinned lists in contract/.
# CONTRACT_STEPS=lint skips the live part, CONTRACT_STEPS=tools only installs the tools; SCHEMATHESIS_MAX_TIME bounds the fuzzing (seconds);
# SCHEMATHESIS_PHASES picks schemathesis phases (CI: examples,coverage).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools=$root/.tools
out=$tools/out
spec=${CONTRACT_SPEC:-$root/openapi/openapi.json}
steps=${CONTRACT_STEPS:-all}
failed=0
fail() { echo "contract: FAIL: $*" >&2; failed=$((failed + 1)); }

# --- tools -----------------------------------------------------------------------------------
mkdir -p "$tools" "$out"
# The newest Python at hand: before 3.11.8 and 3.12.2, CPython's ast.parse can fail with
# "AST constructor recursion depth mismatch" deep in hypothesis (a schemathesis Runtime Error).
# pyenv's installed versions count too.
newest_python() {
  local c v best='' bestv=0
  for c in python3.13 python3.12 python3 \
    $(command -v pyenv >/dev/null && ls -d "$(pyenv root)"/versions/3.1[1-9]*/bin/python3 2>/dev/null); do
    v=$("$c" -c 'import sys; print("%d%03d%03d" % sys.version_info[:3])' 2>/dev/null) || continue
    if [ "$v" -gt "$bestv" ]; then best=$c bestv=$v; fi
  done
  echo "$best"
}
py=$(newest_python)
stamp=$({ cat contract/requirements.txt contract/package.json contract/package-lock.json; "$py" --version; } | sha256sum | cut -c1-16)
if [ "$(cat "$tools/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "contract: installing tools into .tools/" >&2
  rm -rf "$tools/venv" "$tools/node_modules"
  "$py" -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q --disable-pip-version-check -r contract/requirements.txt
  cp contract/package.json contract/package-lock.json "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$stamp" >"$tools/.stamp"
fi
[ "$steps" = tools ] && exit 0
export PATH="$tools/venv/bin:$tools/node_modules/.bin:$PATH"
export NO_UPDATE_NOTIFIER=1 REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

# --- 1. Python client --------------------------------------------------------------------------
rm -rf "$out/python"
mkdir -p "$out/python"
(cd "$out/python" && openapi-python-client generate --path "$spec" --meta none \
  --output-path signoff_client >"$out/python-gen.log" 2>&1) || fail "openapi-python-client exited non-zero"
py_warnings=$(grep -cE '^(WARNING|ERROR)|^Unable to process' "$out/python-gen.log" || true)
echo "contract: openapi-python-client warnings: $py_warnings"
[ "$py_warnings" -eq 0 ] || { sed -n 1,80p "$out/python-gen.log"; fail "openapi-python-client: $py_warnings warnings"; }

# --- 2. redocly ----------------------------------------------------------------------------------
redocly lint "$spec" --config contract/redocly.yaml --format=stylish >"$out/redocly.log" 2>&1 || true
redocly_errors=$(grep -cE '^\s*[0-9]+:[0-9]+\s+error' "$out/redocly.log" || true)
redocly_warnings=$(grep -cE '^\s*[0-9]+:[0-9]+\s+warning' "$out/redocly.log" || true)
echo "contract: redocly errors: $redocly_errors, warnings: $redocly_warnings"
[ "$redocly_errors" -eq 0 ] || { grep -E 'error' "$out/redocly.log" | head -40; fail "redocly: $redocly_errors errors"; }

# --- 3. spectral ---------------------------------------------------------------------------------
spectral lint -r contract/spectral.yaml -f text "$spec" >"$out/spectral.log" 2>&1 || true
spectral_total=$(grep -cE ' (error|warning|info|hint) ' "$out/spectral.log" || true)
spectral_other=$(grep -E ' (error|warning|info|hint) ' "$out/spectral.log" | grep -vc 'oas3-operation-security-defined' || true)
echo "contract: spectral findings: $spectral_total ($spectral_other other than bearer scope names)"
[ "$spectral_other" -eq 0 ] || { grep -E ' (error|warning|info|hint) ' "$out/spectral.log" | grep -v oas3-operation-security-defined | head -40; fail "spectral: $spectral_other findings"; }

# --- 4. TypeScript clients -----------------------------------------------------------------------
rm -rf "$out/ts"
mkdir -p "$out/ts"
# Without --default-non-nullable=false, openapi-typescript makes every property with a
# `default` required, request bodies included (ProcessSettings would need all six switches).
openapi-typescript "$spec" --default-non-nullable=false -o "$out/ts/openapi-typescript/schema.d.ts" >"$out/openapi-typescript.log" 2>&1 \
  || { cat "$out/openapi-typescript.log"; fail "openapi-typescript"; }
openapi-ts -i "$spec" -o "$out/ts/hey-api" >"$out/hey-api.log" 2>&1 \
  || { cat "$out/hey-api.log"; fail "@hey-api/openapi-ts"; }
cat >"$out/ts/tsconfig.json" <<'JSON'
{"compilerOptions": {"strict": true, "noEmit": true, "target": "ES2022", "module": "ESNext",
 "moduleResolution": "Bundler", "lib": ["ES2022", "DOM", "DOM.Iterable"], "skipLibCheck": false},
 "include": ["**/*.ts"]}
JSON
tsc -p "$out/ts/tsconfig.json" >"$out/tsc.log" 2>&1 || { head -40 "$out/tsc.log"; fail "tsc: the generated TypeScript does not type-check"; }
ts_errors=$(grep -c 'error TS' "$out/tsc.log" || true)
echo "contract: tsc errors in the generated TypeScript clients: $ts_errors"
# contract/flow.ts, the README flow through both TypeScript clients, type-checked against them
# and compiled to CommonJS for node (no package.json there: Node16 resolution reads CommonJS) (run against the live server below).
cp contract/flow.ts "$out/ts/flow.ts"
cat >"$out/ts/tsconfig.flow.json" <<'JSON'
{"compilerOptions": {"strict": true, "target": "ES2022", "module": "Node16", "moduleResolution": "Node16",
 "esModuleInterop": true, "lib": ["ES2022", "DOM", "DOM.Iterable"], "types": [], "skipLibCheck": true,
 "outDir": "flow-js"}, "files": ["flow.ts"]}
JSON
tsc -p "$out/ts/tsconfig.flow.json" >"$out/tsc-flow.log" 2>&1 || { head -40 "$out/tsc-flow.log"; fail "tsc: contract/flow.ts does not type-check against the generated clients"; }

if [ "$steps" = lint ]; then
  echo "contract: $failed failed step(s) (live checks skipped)"
  [ "$failed" -eq 0 ]
  exit
fi

# --- 5. the live server --------------------------------------------------------------------------
scripts/deps.sh
. scripts/dev-env.sh
bin=${CONTRACT_BIN:-}
if [ -z "$bin" ]; then cargo build --quiet --bin signoff; bin=target/debug/signoff; fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "${pgdir:-}" ]; then scripts/pg.sh stop "$pgdir/data"; rm -rf "$pgdir"; fi
}
trap cleanup EXIT
pg_port=$(scripts/free-port.sh)
pgdir=$(mktemp -d /tmp/signoff-contract-pg.XXXXXX)
[ "$(id -u)" -eq 0 ] && chmod 755 "$pgdir"
scripts/pg.sh start "$pgdir/data" "$pg_port"
port=$(scripts/free-port.sh)
base=http://127.0.0.1:$port
DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/postgres \
  SIGNOFF_BIND=127.0.0.1:$port SIGNOFF_PUBLIC_URL=$base SIGNOFF_LINK_RATE_LIMIT=100000 SIGNOFF_WEBHOOK_ALLOW_PRIVATE=true \
  RUST_LOG=${RUST_LOG:-warn} "$bin" serve >"$out/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$base/readyz" >/dev/null || { tail -20 "$out/server.log"; fail "signoff did not start"; exit 1; }
token=$("$bin" token --tenant acme)

# The README flow through the generated Python client.
if PYTHONPATH="$out/python" SIGNOFF_URL=$base SIGNOFF_TOKEN=$token python contract/flow.py >"$out/flow.log" 2>&1; then
  echo "contract: README flow through the generated Python client: ok"
else
  cat "$out/flow.log"; fail "the README flow through the generated Python client"
fi

# The same flow through the generated TypeScript clients.
if SIGNOFF_URL=$base SIGNOFF_TOKEN=$token node "$out/ts/flow-js/flow.js" >"$out/flow-ts.log" 2>&1; then
  echo "contract: README flow through the generated TypeScript clients (hey-api, openapi-typescript + openapi-fetch): ok"
else
  cat "$out/flow-ts.log"; fail "the README flow through the generated TypeScript clients"
fi

# Schemathesis: every check, bounded.
st_args=(run "$spec" --url "$base" --checks all -H "Authorization: Bearer $token"
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" --max-time "${SCHEMATHESIS_MAX_TIME:-240}"
  --seed "${SCHEMATHESIS_SEED:-1}" --workers 2 --request-timeout 10
  --report junit --report-dir "$out/schemathesis")
# SCHEMATHESIS_PHASES=examples,coverage runs the deterministic phases only (what CI runs).
[ -n "${SCHEMATHESIS_PHASES:-}" ] && st_args+=(--phases "$SCHEMATHESIS_PHASES")
if SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$root/contract" schemathesis --no-color --config-file contract/schemathesis.toml "${st_args[@]}" >"$out/schemathesis.log" 2>&1; then
  echo "contract: schemathesis: 0 failures"
else
  sed -n '/FAILURES/,$p' "$out/schemathesis.log" | head -300
  tail -15 "$out/schemathesis.log"
  fail "schemathesis"
fi
grep -E '^[[:space:]]*(API Operations|Test Phases|Test cases|Failures|Errors|Seed)' "$out/schemathesis.log" || tail -12 "$out/schemathesis.log"

echo "contract: $failed failed step(s)"
[ "$failed" -eq 0 ]
