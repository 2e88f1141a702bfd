-- Leases name the worker that holds them (its liveness advisory lock key), so another worker
-- can take a dead worker's leases at once instead of waiting for them to expire.
ALTER TABLE webhook_deliveries ADD COLUMN leased_by integer;

-- Every previous secret still in its grace period, newest first:
-- [{"secret": "...", "expires_at": "..."}]. Secrets may be sealed (SIGNOFF_SECRET_KEY).
ALTER TABLE webhook_endpoints ADD COLUMN previous_secrets jsonb NOT NULL DEFAULT '[]';
UPDATE webhook_endpoints
SET previous_secrets = jsonb_build_array(
      jsonb_build_object('secret', previous_secret, 'expires_at', previous_secret_expires_at))
WHERE previous_secret IS NOT NULL AND previous_secret_expires_at > now();
ALTER TABLE webhook_endpoints DROP COLUMN previous_secret;
ALTER TABLE webhook_endpoints DROP COLUMN previous_secret_expires_at;
