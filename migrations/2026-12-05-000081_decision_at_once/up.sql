-- A decision in two statements and no transaction of its own (optimistic), or in a
-- transaction with the approval locked, as before:
--
-- * `signoff_command_read` reads what a command needs as one JSON text that the service parses
--   straight into its types: the approval row, its engine state and definition, its tasks in
--   stage and approver order, whether the actor is an active principal, and the row's version
--   (`xmin`). With p_lock it first locks the row (then reads in a new snapshot, so answers
--   committed while it waited are seen).
-- * `signoff_command_write` writes what the command did (a new approval's row included, as
--   p_new). With p_version it first updates the
--   approval only if the row is still the version that was read, and answers false, having
--   written nothing, when another command changed it since: the caller reads again. One
--   statement is one transaction, so the tasks, the row, the events and their deliveries commit
--   together or not at all.
--
-- Engine and event payloads come as text, cast here: the service serializes them once, and
-- never builds a JSON tree to hand to the driver.
--
-- Both keep one generic plan per session (their statements look rows up by key; a custom plan
-- per call cost more than running them) and never scan a table whole (a plan made while the
-- tables were empty still looks rows up by key).
-- The approval's view as integrators read it, stored as each command leaves it: a list's page
-- is then the stored views side by side, with nothing to build. Null for approvals no command
-- has written since this migration (their views are built when read).
ALTER TABLE approvals ADD COLUMN view json;

CREATE FUNCTION signoff_command_read(p_tenant text, p_approval uuid, p_actor text, p_lock bool)
RETURNS text LANGUAGE plpgsql
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    answer text;
BEGIN
    IF p_lock THEN
        PERFORM 1 FROM approvals a WHERE a.tenant_id = p_tenant AND a.id = p_approval FOR UPDATE;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    SELECT json_build_object(
        'approval', json_build_object(
            'tenant_id', a.tenant_id, 'id', a.id, 'ticket_id', a.ticket_id, 'ticket', a.ticket,
            'process_id', a.process_id, 'process_version', a.process_version,
            'process_name', a.process_name, 'state', a.state, 'current_stage', a.current_stage,
            'exclusive', a.exclusive, 'description', a.description,
            'requested_by', a.requested_by, 'status_to_set', a.status_to_set,
            'decided_at', a.decided_at, 'last_sequence', a.last_sequence,
            'created_at', a.created_at, 'updated_at', a.updated_at),
        'engine', a.engine,
        'definition', a.definition,
        'version', a.xmin::text,
        'tasks', COALESCE((SELECT json_agg(row_to_json(t) ORDER BY t.stage, t.approver_id)
                           FROM approval_tasks t
                           WHERE t.tenant_id = p_tenant AND t.approval_id = p_approval), '[]'),
        'actor_active', (SELECT p.active FROM principals p
                         WHERE p.tenant_id = p_tenant AND p.id = p_actor))::text
    INTO answer
    FROM approvals a WHERE a.tenant_id = p_tenant AND a.id = p_approval;
    RETURN answer;
END;
$$;

CREATE FUNCTION signoff_command_write(
    p_tenant text, p_approval uuid, p_new text, p_version text, p_state text, p_engine text,
    p_view text,
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
            process_name, definition, state, engine, view, current_stage, exclusive, description,
            requested_by, status_to_set, decided_at, last_sequence, created_at, updated_at)
        SELECT p_tenant, p_approval, r.ticket_id, r.ticket, r.process_id, r.process_version,
            r.process_name, r.definition, p_state, p_engine::jsonb, p_view::json, p_current_stage,
            r.exclusive, r.description, r.requested_by, p_status_to_set, p_decided_at,
            p_last_sequence, r.created_at, p_updated_at
        FROM json_populate_record(NULL::approvals, p_new::json) r;
    ELSE
        UPDATE approvals SET state = p_state, engine = p_engine::jsonb, view = p_view::json,
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

DROP FUNCTION signoff_load_command(text, uuid, text);
DROP FUNCTION signoff_save_command(text, uuid, text, jsonb, int4, text, timestamptz, int8,
    timestamptz, int4[], text[], text[], text[], timestamptz[], text[], text[], text[], uuid[],
    int8[], text[], jsonb[], timestamptz[]);
