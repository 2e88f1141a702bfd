-- Tickets as the host reports them, and the rules that start approvals when a ticket enters a
-- status. A rule-started approval is recognised by `requested_by = 'rule:<id>'`.
CREATE TABLE tickets (
    tenant_id text NOT NULL,
    id text NOT NULL,
    title text,
    requester_id text,
    status text,
    attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE rules (
    tenant_id text NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    process_id uuid NOT NULL,
    on_status text NOT NULL,
    condition text,
    priority integer NOT NULL DEFAULT 0,
    enabled boolean NOT NULL DEFAULT true,
    on_leave text NOT NULL DEFAULT 'keep' CHECK (on_leave IN ('keep', 'cancel')),
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- The rules tried when a ticket enters a status, in order.
CREATE INDEX rules_by_status ON rules (tenant_id, on_status, priority, name) WHERE enabled;

-- The pending approvals a rule started on a ticket.
CREATE INDEX approvals_rule_pending ON approvals (tenant_id, ticket_id)
    WHERE state = 'pending' AND requested_by LIKE 'rule:%';
