-- Replays answer with the first answer's headers too (Location, ETag), not only Location.
ALTER TABLE idempotency_keys DROP COLUMN location;
ALTER TABLE idempotency_keys ADD COLUMN headers jsonb;
