ALTER FUNCTION signoff_load_command RESET enable_seqscan;
ALTER FUNCTION signoff_save_command RESET enable_seqscan;
DROP FUNCTION IF EXISTS signoff_record_attempts(int4, uuid[], text[], timestamptz[], int4[], text[], timestamptz[], int4[], text[]);
DROP FUNCTION IF EXISTS signoff_claim_deliveries(int4, float8, int8, timestamptz, int4, uuid[], uuid[], int4[], int4);
ALTER TABLE webhook_deliveries RESET (fillfactor);
