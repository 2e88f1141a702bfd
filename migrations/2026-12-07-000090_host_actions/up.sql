-- Host actions: HTTP requests to the host's own API, rendered from templates over an event and
-- sent by the worker (docs/integrations/README.md). A delivery is one event for one action; it
-- runs the action's requests in order, `step` being the next to send, so a failed request is
-- retried before the next one runs.

CREATE TABLE host_actions (
    tenant_id      text        NOT NULL,
    id             uuid        NOT NULL,
    name           text        NOT NULL,
    -- Event types that run the action; '*' for all.
    event_types    text[]      NOT NULL,
    -- CEL over `event`: the action runs only where it holds. NULL: always.
    when_condition text,
    -- [{"method", "url", "headers": {name: template}, "body": template | null}]
    requests       jsonb       NOT NULL,
    -- {name: sealed value}: never answered, opened only by the worker to render a request.
    secrets        jsonb       NOT NULL DEFAULT '{}',
    enabled        boolean     NOT NULL DEFAULT true,
    version        integer     NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE host_action_deliveries (
    tenant_id       text        NOT NULL,
    id              uuid        NOT NULL,
    action_id       uuid        NOT NULL,
    event_id        uuid        NOT NULL,
    event_position  bigint      NOT NULL,
    approval_id     uuid,
    event_type      text        NOT NULL,
    -- `skipped`: the action's `when` was false for this event.
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'succeeded', 'failed', 'skipped')),
    -- The index of the next request to send.
    step            integer     NOT NULL DEFAULT 0,
    -- Failed attempts of the current step.
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_by       integer,
    leased_until    timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, action_id) REFERENCES host_actions (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX host_action_deliveries_action_event_key
    ON host_action_deliveries (tenant_id, action_id, event_id);
-- The worker's queue: due pending deliveries in event order.
CREATE INDEX host_action_deliveries_due_idx ON host_action_deliveries (next_attempt_at, event_position)
    WHERE state = 'pending';
-- In order per approval and action: "is an earlier one still pending?"
CREATE INDEX host_action_deliveries_order_idx
    ON host_action_deliveries (tenant_id, action_id, approval_id, event_position)
    WHERE state = 'pending';
CREATE INDEX host_action_deliveries_list_idx
    ON host_action_deliveries (tenant_id, action_id, event_position);

CREATE TABLE host_action_attempts (
    tenant_id        text        NOT NULL,
    id               bigserial   NOT NULL,
    delivery_id      uuid        NOT NULL,
    step             integer     NOT NULL,
    -- The request as sent, without headers or body (they may carry secrets).
    method           text        NOT NULL,
    url              text        NOT NULL,
    attempted_at     timestamptz NOT NULL,
    status_code      integer,
    latency_ms       integer     NOT NULL,
    error            text,
    response_excerpt text,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES host_action_deliveries (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX host_action_attempts_delivery_idx ON host_action_attempts (tenant_id, delivery_id);

-- Every event, whichever path wrote it (the decision's one-statement write, the commands
-- written from Rust, process expiry), gets a delivery for each enabled action of its tenant
-- that names its type, in the event's own transaction: one place, and a tenant without host
-- actions pays one index probe per event.
CREATE FUNCTION signoff_host_action_fan_out() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO host_action_deliveries
        (tenant_id, id, action_id, event_id, event_position, approval_id, event_type)
    SELECT NEW.tenant_id, gen_random_uuid(), h.id, NEW.id, NEW.position, NEW.approval_id, NEW.type
    FROM host_actions h
    WHERE h.tenant_id = NEW.tenant_id AND h.enabled
      AND ('*' = ANY(h.event_types) OR NEW.type = ANY(h.event_types));
    IF FOUND THEN
        PERFORM pg_notify('signoff_work', 'host_actions');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_host_action_fan_out AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION signoff_host_action_fan_out();
