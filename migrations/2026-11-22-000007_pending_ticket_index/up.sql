-- "Is there a pending approval on this ticket?" is asked on every request; a partial index
-- answers it without relying on planner statistics, which a new database does not have yet.
CREATE INDEX approvals_pending_ticket_idx ON approvals (tenant_id, ticket_id) WHERE state = 'pending';
