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
