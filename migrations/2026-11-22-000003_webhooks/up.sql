-- Webhook endpoints and the delivery outbox. Delivery rows are written in the same
-- transaction as the events they carry, so nothing committed can be lost.

CREATE TABLE webhook_endpoints (
    tenant_id                  text        NOT NULL,
    id                         uuid        NOT NULL,
    url                        text        NOT NULL,
    description                text,
    -- Event types delivered here; '*' for all.
    event_types                text[]      NOT NULL,
    enabled                    boolean     NOT NULL DEFAULT true,
    disabled_reason            text,
    secret                     text        NOT NULL,
    -- During a rotation's grace period deliveries are signed with both secrets.
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    -- Start of the current run of failures; cleared by a success.
    failing_since              timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX webhook_endpoints_id_key ON webhook_endpoints (id);

CREATE TABLE webhook_deliveries (
    id              uuid        NOT NULL PRIMARY KEY,
    tenant_id       text        NOT NULL,
    endpoint_id     uuid        NOT NULL,
    event_id        uuid        NOT NULL,
    event_position  bigint      NOT NULL,
    approval_id     uuid,
    event_type      text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_until    timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX webhook_deliveries_endpoint_event_key ON webhook_deliveries (endpoint_id, event_id);
-- The worker's queue: due pending deliveries in event order.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, event_position)
    WHERE state = 'pending';
-- In-order delivery per approval and endpoint: "is an earlier one still pending?"
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (endpoint_id, approval_id, event_position)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (tenant_id, endpoint_id, event_position);

CREATE TABLE webhook_attempts (
    id               bigserial   PRIMARY KEY,
    delivery_id      uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at     timestamptz NOT NULL,
    status_code      integer,
    latency_ms       integer     NOT NULL,
    error            text,
    response_excerpt text
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
