-- For bench/request.sql, the yardstick of requests: a copy of signoff_command_write as it was
-- on 2026-12-05 (migration 000081), under a name of its own, so the yardstick stays what it
-- was when the service's function changes. Frozen on purpose. `make bench` runs this file once
-- before pgbench.
CREATE OR REPLACE FUNCTION bench_request_write(
    p_tenant text, p_approval uuid, p_new text, p_version text, p_state text, p_engine text,
    p_current_stage int4, p_status_to_set text, p_decided_at timestamptz, p_last_sequence int8,
    p_updated_at timestamptz,
    t_stage int4[], t_approver text[], t_state text[], t_verdict text[], t_decided_at timestamptz[],
    t_comment text[], t_actor text[], t_on_behalf_of text[],
    e_id uuid[], e_sequence int8[], e_type text[], e_payload text[], e_created_at timestamptz[]
) RETURNS bool LANGUAGE plpgsql
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    delivered bigint;
BEGIN
    -- The row first: a command that lost the race writes nothing, and every writer takes the
    -- approval's lock before its tasks' (as the locking read does), so two never deadlock.
    -- A new approval (p_new: its row as JSON, engine aside) is inserted as it ends the
    -- command, not inserted and then updated.
    IF p_new IS NOT NULL THEN
        INSERT INTO approvals (tenant_id, id, ticket_id, ticket, process_id, process_version,
            process_name, definition, state, engine, current_stage, exclusive, description,
            requested_by, status_to_set, decided_at, last_sequence, created_at, updated_at)
        SELECT p_tenant, p_approval, r.ticket_id, r.ticket, r.process_id, r.process_version,
            r.process_name, r.definition, p_state, p_engine::jsonb, p_current_stage,
            r.exclusive, r.description, r.requested_by, p_status_to_set, p_decided_at,
            p_last_sequence, r.created_at, p_updated_at
        FROM json_populate_record(NULL::approvals, p_new::json) r;
    ELSE
        UPDATE approvals SET state = p_state, engine = p_engine::jsonb,
            current_stage = p_current_stage, status_to_set = p_status_to_set,
            decided_at = p_decided_at, last_sequence = p_last_sequence, updated_at = p_updated_at
        WHERE tenant_id = p_tenant AND id = p_approval
          AND (p_version IS NULL OR xmin = p_version::xid);
        IF NOT FOUND THEN
            RETURN false;
        END IF;
    END IF;
    IF cardinality(t_stage) > 0 THEN
        INSERT INTO approval_tasks
            (tenant_id, approval_id, stage, approver_id, state, verdict, decided_at, comment,
             actor_id, on_behalf_of)
        SELECT p_tenant, p_approval, u.* FROM unnest(t_stage, t_approver, t_state, t_verdict,
                                                     t_decided_at, t_comment, t_actor, t_on_behalf_of)
            AS u(stage, approver_id, state, verdict, decided_at, comment, actor_id, on_behalf_of)
        ON CONFLICT (tenant_id, approval_id, stage, approver_id) DO UPDATE SET
            state = excluded.state, verdict = excluded.verdict, decided_at = excluded.decided_at,
            comment = excluded.comment, actor_id = excluded.actor_id,
            on_behalf_of = excluded.on_behalf_of;
    END IF;
    IF cardinality(e_id) > 0 THEN
        INSERT INTO events (tenant_id, id, approval_id, sequence, type, payload, created_at)
        SELECT p_tenant, u.id, p_approval, u.sequence, u.type, u.payload::jsonb, u.created_at
        FROM unnest(e_id, e_sequence, e_type, e_payload, e_created_at)
            AS u(id, sequence, type, payload, created_at);
        -- A delivery per event for every endpoint that listens; none when none does.
        IF EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.tenant_id = p_tenant AND w.enabled) THEN
            INSERT INTO webhook_deliveries
                (id, tenant_id, endpoint_id, event_id, event_position, approval_id, event_type)
            SELECT gen_random_uuid(), e.tenant_id, w.id, e.id, e.position, e.approval_id, e.type
            FROM events e JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id
            WHERE e.tenant_id = p_tenant AND e.id = ANY(e_id)
              AND w.enabled AND ('*' = ANY(w.event_types) OR e.type = ANY(w.event_types));
            GET DIAGNOSTICS delivered = ROW_COUNT;
            IF delivered > 0 THEN
                PERFORM pg_notify('signoff_work', 'deliveries');
            END IF;
        END IF;
    END IF;
    RETURN true;
END;
$$;
