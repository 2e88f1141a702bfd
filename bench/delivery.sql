-- The yardstick of `make bench` for deliveries: the SQL the worker executed on 2026-12-05 for a
-- batch of deliveries to one endpoint, for pgbench: the claim of up to 8 (the attempts one
-- endpoint may have in flight from one replica) and the record of their attempts as
-- delivered, through bench/delivery-setup.sql's frozen copies of the two functions. One
-- client, one worker, one batch after another; `make bench` runs it on a backlog like the one
-- the service drains, with the service paused, and counts what was delivered in the time.
-- Frozen on purpose, as bench/decision.sql is. Parameters are inlined as the worker binds them.
\set w 1000 + :client_id
SELECT coalesce(array_agg(c.id), '{}') AS ids FROM bench_claim_deliveries(:w, 30, 8, now(), 1365708785, '{}', '{}', '{}', 8) c \gset
SELECT count(*) FROM bench_record_attempts(:w, :ids::uuid[], array_fill('succeeded'::text, ARRAY[cardinality(:ids::uuid[])]), array_fill(now(), ARRAY[cardinality(:ids::uuid[])]), array_fill(200, ARRAY[cardinality(:ids::uuid[])]), array_fill(NULL::text, ARRAY[cardinality(:ids::uuid[])]), array_fill(now(), ARRAY[cardinality(:ids::uuid[])]), array_fill(3, ARRAY[cardinality(:ids::uuid[])]), array_fill(NULL::text, ARRAY[cardinality(:ids::uuid[])]));
