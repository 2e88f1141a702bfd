-- An approval may wait for the requester's answer to a question (info_requested) or end
-- withdrawn (the requester's side took it back), and a task may be reassigned (its seat
-- handed to someone else) or abstained (its approver stepped out). The new checks are added
-- NOT VALID and then validated: validation reads the table under a lock that lets reads and
-- writes go on.
ALTER TABLE approvals DROP CONSTRAINT IF EXISTS approvals_state_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_state_check
    CHECK (state IN ('pending', 'approved', 'rejected', 'cancelled', 'withdrawn',
                     'info_requested')) NOT VALID;
ALTER TABLE approvals VALIDATE CONSTRAINT approvals_state_check;

ALTER TABLE approval_tasks DROP CONSTRAINT IF EXISTS approval_tasks_state_check;
ALTER TABLE approval_tasks ADD CONSTRAINT approval_tasks_state_check
    CHECK (state IN ('pending', 'approved', 'rejected', 'superseded', 'reused', 'reassigned',
                     'abstained')) NOT VALID;
ALTER TABLE approval_tasks VALIDATE CONSTRAINT approval_tasks_state_check;
