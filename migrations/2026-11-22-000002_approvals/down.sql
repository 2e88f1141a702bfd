DROP TABLE idempotency_keys;
DROP TABLE events;
DROP TABLE approval_tasks;
DROP TABLE approvals;
