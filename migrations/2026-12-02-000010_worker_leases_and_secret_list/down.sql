ALTER TABLE webhook_endpoints ADD COLUMN previous_secret text;
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_expires_at timestamptz;
UPDATE webhook_endpoints
SET previous_secret = previous_secrets -> 0 ->> 'secret',
    previous_secret_expires_at = (previous_secrets -> 0 ->> 'expires_at')::timestamptz
WHERE jsonb_array_length(previous_secrets) > 0;
ALTER TABLE webhook_endpoints DROP COLUMN previous_secrets;

ALTER TABLE webhook_deliveries DROP COLUMN leased_by;
