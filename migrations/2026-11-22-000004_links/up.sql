-- One-time approver links. Only a hash of each token is kept: the database alone cannot be
-- used to decide on anyone's behalf.
CREATE TABLE approval_links (
    token_hash   text        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    approval_id  uuid        NOT NULL,
    stage        integer     NOT NULL,
    -- The approver whose task the link answers.
    approver_id  text        NOT NULL,
    -- Who the link was sent to: the approver, or a substitute answering for them.
    recipient_id text        NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, approval_id) REFERENCES approvals (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX approval_links_approval_idx ON approval_links (tenant_id, approval_id);
