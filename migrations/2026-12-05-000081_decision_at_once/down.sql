DROP FUNCTION signoff_command_read(text, uuid, text, bool);
DROP FUNCTION signoff_command_write(text, uuid, text, text, text, text, text, int4, text, timestamptz, int8, timestamptz, int4[], text[], text[], text[], timestamptz[], text[], text[], text[], uuid[], int8[], text[], text[], timestamptz[]);
-- What a command writes, as one function whose plan each session caches (PL/pgSQL keeps its
-- statements' plans): the changed tasks, the approval row, its events, and a delivery per
-- event for every endpoint that listens, waking the workers when there is one. The service
-- calls it once per command instead of sending four statements (and planning them) each time.
CREATE FUNCTION signoff_save_command(
    p_tenant text, p_approval uuid, p_state text, p_engine jsonb, p_current_stage int4,
    p_status_to_set text, p_decided_at timestamptz, p_last_sequence int8, p_updated_at timestamptz,
    t_stage int4[], t_approver text[], t_state text[], t_verdict text[], t_decided_at timestamptz[],
    t_comment text[], t_actor text[], t_on_behalf_of text[],
    e_id uuid[], e_sequence int8[], e_type text[], e_payload jsonb[], e_created_at timestamptz[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    delivered bigint;
BEGIN
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
    UPDATE approvals SET state = p_state, engine = p_engine, current_stage = p_current_stage,
        status_to_set = p_status_to_set, decided_at = p_decided_at,
        last_sequence = p_last_sequence, updated_at = p_updated_at
    WHERE tenant_id = p_tenant AND id = p_approval;
    IF cardinality(e_id) > 0 THEN
        WITH e AS (
            INSERT INTO events (tenant_id, id, approval_id, sequence, type, payload, created_at)
            SELECT p_tenant, u.id, p_approval, u.sequence, u.type, u.payload, u.created_at
            FROM unnest(e_id, e_sequence, e_type, e_payload, e_created_at)
                AS u(id, sequence, type, payload, created_at)
            RETURNING tenant_id, id, position, approval_id, type),
        d AS (
            INSERT INTO webhook_deliveries
                (id, tenant_id, endpoint_id, event_id, event_position, approval_id, event_type)
            SELECT gen_random_uuid(), e.tenant_id, w.id, e.id, e.position, e.approval_id, e.type
            FROM e JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id
            WHERE w.enabled AND ('*' = ANY(w.event_types) OR e.type = ANY(w.event_types))
            RETURNING 1)
        SELECT count(*) INTO delivered FROM d;
        IF delivered > 0 THEN
            PERFORM pg_notify('signoff_work', 'deliveries');
        END IF;
    END IF;
END;
$$;
-- What a decision reads, in one call: the approval, locked; then (a new snapshot, so answers
-- committed while we waited for the lock are seen) its tasks in stage and approver order, and
-- whether the actor is an active principal. Three round trips become one.
CREATE FUNCTION signoff_load_command(p_tenant text, p_approval uuid, p_actor text)
RETURNS TABLE (
    tenant_id text, id uuid, ticket_id text, ticket jsonb, process_id uuid,
    process_version int4, process_name text, definition jsonb, state text, engine jsonb,
    current_stage int4, exclusive bool, description text, requested_by text,
    status_to_set text, decided_at timestamptz, last_sequence int8, created_at timestamptz,
    updated_at timestamptz, tasks jsonb, actor_active bool
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM approvals a WHERE a.tenant_id = p_tenant AND a.id = p_approval FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT a.tenant_id, a.id, a.ticket_id, a.ticket, a.process_id, a.process_version,
           a.process_name, a.definition, a.state, a.engine, a.current_stage, a.exclusive,
           a.description, a.requested_by, a.status_to_set, a.decided_at, a.last_sequence,
           a.created_at, a.updated_at,
           COALESCE((SELECT jsonb_agg(to_jsonb(t) ORDER BY t.stage, t.approver_id)
                     FROM approval_tasks t
                     WHERE t.tenant_id = p_tenant AND t.approval_id = p_approval), '[]'::jsonb),
           (SELECT p.active FROM principals p WHERE p.tenant_id = p_tenant AND p.id = p_actor)
    FROM approvals a WHERE a.tenant_id = p_tenant AND a.id = p_approval;
END;
$$;
ALTER FUNCTION signoff_load_command SET enable_seqscan = off;
ALTER FUNCTION signoff_save_command SET enable_seqscan = off;
ALTER TABLE approvals DROP COLUMN view;
