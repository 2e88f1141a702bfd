# signoff: `make run` starts the service, `make test` runs the whole suite. Both bring up a
# throwaway local Postgres when DATABASE_URL is unset.

.PHONY: contract integration-rt run test fmt lint openapi schema token bench pg-stop build

run:
	@scripts/run.sh

test:
	@scripts/test.sh

build:
	cargo build --release --bin signoff

fmt:
	cargo fmt

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --test bench -- -D warnings

## Regenerate the committed OpenAPI document from the code.
openapi:
	cargo run --quiet --bin signoff -- openapi > openapi/openapi.json

## Regenerate src/db/schema.rs from the migrations (DATABASE_URL, or the `make run` database).
schema:
	@DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:$${DEV_PG_PORT:-55432}/postgres} scripts/schema-check.sh --write

## Print a development token for tenant acme with every scope (TENANT=, SCOPE= to change).
token:
	@. scripts/dev-env.sh; cargo run --quiet --bin signoff -- token --tenant $${TENANT:-acme} $${SCOPE:+--scope "$$SCOPE"}

bench:
	@scripts/bench.sh

pg-stop:
	@scripts/pg.sh stop "$$PWD/.pgdata"; scripts/pg.sh stop "/tmp/signoff-pgdata-$$(printf %s "$$PWD" | md5sum | cut -c1-8)"

## The OpenAPI document against the tools integrators use, and the live server against it.
contract:
	@scripts/contract.sh

## signoff driving a real Request Tracker 5 end to end (installs RT when missing; needs root).
integration-rt:
	@scripts/integration-rt.sh
