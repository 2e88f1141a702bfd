-- Fails while waiting or withdrawn approvals, or reassigned or abstained tasks, exist: they have no older spelling.
ALTER TABLE approvals DROP CONSTRAINT approvals_state_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_state_check
    CHECK (state IN ('pending', 'approved', 'rejected', 'cancelled'));
ALTER TABLE approval_tasks DROP CONSTRAINT approval_tasks_state_check;
ALTER TABLE approval_tasks ADD CONSTRAINT approval_tasks_state_check
    CHECK (state IN ('pending', 'approved', 'rejected', 'superseded', 'reused'));
