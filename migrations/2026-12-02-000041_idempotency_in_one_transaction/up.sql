-- The key, the effect and the answer now commit in one transaction: a row is only ever written
-- with its answer, so claims left by the previous code (no status) are dropped.
-- Answers are kept as JSON text, not jsonb: jsonb refuses a NUL character (\u0000), which a
-- client can put into an answer; text holds the escaped form. `sealed` marks an answer stored
-- encrypted (it holds a secret, such as a new webhook endpoint's).
DELETE FROM idempotency_keys WHERE status IS NULL OR response IS NULL;
ALTER TABLE idempotency_keys ALTER COLUMN response TYPE text USING response::text;
ALTER TABLE idempotency_keys ALTER COLUMN headers TYPE text USING headers::text;
ALTER TABLE idempotency_keys ADD COLUMN sealed boolean NOT NULL DEFAULT false;
