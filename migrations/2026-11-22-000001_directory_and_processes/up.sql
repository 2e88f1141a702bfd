-- The directory (principals upserted by the host) and versioned approval processes.
-- Every table is keyed by tenant first: nothing crosses tenants.

CREATE TABLE principals (
    tenant_id    text        NOT NULL,
    id           text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('user', 'technician', 'contact', 'end_user')),
    display_name text        NOT NULL,
    email        text,
    locale       text        NOT NULL DEFAULT 'en',
    time_zone    text        NOT NULL DEFAULT 'UTC',
    manager_id   text,
    roles        text[]      NOT NULL DEFAULT '{}',
    active       boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
-- Role groups are resolved with `roles @> ARRAY[role]`.
CREATE INDEX principals_roles_idx ON principals USING gin (roles);

CREATE TABLE processes (
    tenant_id       text        NOT NULL,
    id              uuid        NOT NULL,
    name            text        NOT NULL,
    current_version integer     NOT NULL,
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text,
    expires_at      timestamptz,
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
-- Names are unique per tenant among live processes, whatever their case.
CREATE UNIQUE INDEX processes_name_key ON processes (tenant_id, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX processes_list_idx ON processes (tenant_id, id) WHERE deleted_at IS NULL;
CREATE INDEX processes_expiry_idx ON processes (expires_at) WHERE enabled AND deleted_at IS NULL;

-- Every version of a definition stays readable: a running approval keeps the one it started with.
CREATE TABLE process_versions (
    tenant_id  text        NOT NULL,
    process_id uuid        NOT NULL,
    version    integer     NOT NULL,
    definition jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, process_id, version),
    FOREIGN KEY (tenant_id, process_id) REFERENCES processes (tenant_id, id) ON DELETE CASCADE
);
