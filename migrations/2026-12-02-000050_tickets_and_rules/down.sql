DROP INDEX IF EXISTS approvals_rule_pending;
DROP TABLE IF EXISTS rules;
DROP TABLE IF EXISTS tickets;
