ALTER TABLE idempotency_keys DROP COLUMN headers;
ALTER TABLE idempotency_keys ADD COLUMN location text;
