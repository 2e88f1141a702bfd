-- Time: business-hours calendars, out-of-office delegations, and durable timers.

CREATE TABLE calendars (
    tenant_id  text        NOT NULL,
    id         text        NOT NULL,
    definition jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- One delegation per principal: during [starts_at, ends_at) their new tasks go to the
-- delegate, who may also act on their open ones.
CREATE TABLE delegations (
    tenant_id    text        NOT NULL,
    principal_id text        NOT NULL,
    delegate_id  text        NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    note         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, principal_id),
    CHECK (ends_at > starts_at),
    CHECK (delegate_id <> principal_id)
);

-- Timers fire once: a worker takes a due timer with FOR UPDATE SKIP LOCKED and acts on it in
-- the same transaction that marks it fired; a crash rolls both back and another worker retries.
CREATE TABLE timers (
    id          uuid        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    approval_id uuid        NOT NULL,
    stage       integer     NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('stage_timeout', 'reminder', 'substitutes')),
    -- For reminders: which one of the series this is (1-based).
    seq         integer     NOT NULL DEFAULT 1,
    due_at      timestamptz NOT NULL,
    fired_at    timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, approval_id) REFERENCES approvals (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX timers_due_idx ON timers (due_at) WHERE fired_at IS NULL;
CREATE INDEX timers_approval_idx ON timers (tenant_id, approval_id);
