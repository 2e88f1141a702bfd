-- Sealed answers and answers holding an escaped NUL cannot go back to jsonb: forget them (a
-- retry with their key then runs again).
DELETE FROM idempotency_keys
 WHERE sealed OR strpos(response, '\u0000') > 0 OR strpos(headers, '\u0000') > 0;
ALTER TABLE idempotency_keys DROP COLUMN sealed;
ALTER TABLE idempotency_keys ALTER COLUMN headers TYPE jsonb USING headers::jsonb;
ALTER TABLE idempotency_keys ALTER COLUMN response TYPE jsonb USING response::jsonb;
