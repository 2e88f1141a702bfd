-- Approvals, their tasks, the append-only event log, and idempotency keys.

CREATE TABLE approvals (
    tenant_id       text        NOT NULL,
    id              uuid        NOT NULL,
    ticket_id       text        NOT NULL,
    -- The ticket as the host described it: id, title, requester_id, status, attributes.
    ticket          jsonb       NOT NULL,
    process_id      uuid,
    process_version integer,
    process_name    text,
    -- The effective definition (a process version, or the ad-hoc one) this approval runs.
    definition      jsonb       NOT NULL,
    state           text        NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'cancelled')),
    -- The engine's state but for tasks: resolved plan, stage and group statuses, outcome.
    engine          jsonb       NOT NULL,
    current_stage   integer,
    -- A pending exclusive approval refuses a second one on the same ticket.
    exclusive       boolean     NOT NULL,
    description     text,
    requested_by    text,
    status_to_set   text,
    decided_at      timestamptz,
    last_sequence   bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX approvals_one_exclusive_pending ON approvals (tenant_id, ticket_id)
    WHERE state = 'pending' AND exclusive;
CREATE INDEX approvals_ticket_idx ON approvals (tenant_id, ticket_id, id);
CREATE INDEX approvals_state_idx ON approvals (tenant_id, state, id);
CREATE INDEX approvals_process_idx ON approvals (tenant_id, process_id, id);

-- One approver's slot in one stage of one approval.
CREATE TABLE approval_tasks (
    tenant_id    text        NOT NULL,
    approval_id  uuid        NOT NULL,
    stage        integer     NOT NULL,
    approver_id  text        NOT NULL,
    state        text        NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'superseded', 'reused')),
    verdict      text        CHECK (verdict IN ('approve', 'reject')),
    decided_at   timestamptz,
    comment      text,
    actor_id     text,
    on_behalf_of text,
    PRIMARY KEY (tenant_id, approval_id, stage, approver_id),
    FOREIGN KEY (tenant_id, approval_id) REFERENCES approvals (tenant_id, id) ON DELETE CASCADE
);
-- The approver's inbox and the approver_id filter.
CREATE INDEX approval_tasks_approver_idx ON approval_tasks (tenant_id, approver_id, approval_id);

-- Append-only facts. `position` orders all events for delivery; `sequence` orders one
-- approval's events for the receiver.
CREATE TABLE events (
    position    bigserial   NOT NULL,
    tenant_id   text        NOT NULL,
    id          uuid        NOT NULL,
    approval_id uuid,
    sequence    bigint      NOT NULL,
    type        text        NOT NULL,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, approval_id) REFERENCES approvals (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX events_position_key ON events (position);
CREATE UNIQUE INDEX events_approval_sequence_key ON events (tenant_id, approval_id, sequence);

-- Idempotency-Key records, per tenant and client, kept at least 24 hours.
CREATE TABLE idempotency_keys (
    tenant_id     text        NOT NULL,
    client_id     text        NOT NULL,
    key           text        NOT NULL,
    request_hash  text        NOT NULL,
    status        smallint,
    response      jsonb,
    location      text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (tenant_id, client_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
