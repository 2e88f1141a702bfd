-- The inbox: a principal's pending tasks in approval order. The inbox walks this index from
-- its cursor and stops after a page, so it costs a page whatever the history; with
-- `approval_tasks_approver_idx` it read every task the principal ever had (a heavy approver's
-- hundred thousand at a million approvals) and sorted the pending ones. Partial on the
-- literal `state = 'pending'`, which the inbox query writes as a literal so that a generic
-- plan, and a plan made before any statistics, can use it.
CREATE INDEX approval_tasks_pending_approver_idx ON approval_tasks (tenant_id, approver_id, approval_id)
    WHERE state = 'pending';
