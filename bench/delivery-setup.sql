-- For bench/delivery.sql, the yardstick of deliveries: copies of signoff_claim_deliveries and
-- signoff_record_attempts as they were on 2026-12-05 (migration 000070), under names of their
-- own, so the yardstick stays what it was when the service's functions change. Frozen on
-- purpose. `make bench` runs this file once before pgbench.
CREATE OR REPLACE FUNCTION bench_claim_deliveries(
    p_worker int4, p_lease_secs float8, p_limit int8, p_now timestamptz, p_ns int4,
    p_full uuid[], p_busy_ids uuid[], p_busy_n int4[], p_cap int4)
RETURNS TABLE (
    id uuid, tenant_id text, endpoint_id uuid, attempts int4, url text, secret text,
    previous_secrets jsonb, msg_id text, body text
) LANGUAGE plpgsql SET enable_seqscan = off SET enable_bitmapscan = off AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN QUERY
    WITH live AS MATERIALIZED (
        SELECT l.objid FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
          AND l.classid = p_ns::oid
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())),
    cand AS (
        SELECT c.id, c.endpoint_id, c.next_attempt_at, c.event_position
        FROM webhook_deliveries c
        JOIN webhook_endpoints ew
          ON ew.tenant_id = c.tenant_id AND ew.id = c.endpoint_id AND ew.enabled
        WHERE c.state = 'pending' AND c.next_attempt_at <= GREATEST(p_now, now())
          AND c.endpoint_id <> ALL(p_full)
          AND (c.leased_until IS NULL OR c.leased_until < now()
               OR (c.leased_by <> p_worker AND c.leased_by::oid NOT IN (SELECT objid FROM live)))
          AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries p
            WHERE p.state = 'pending' AND p.endpoint_id = c.endpoint_id
              AND p.approval_id = c.approval_id AND p.event_position < c.event_position
            OFFSET 0)
        ORDER BY c.next_attempt_at, c.event_position
        LIMIT p_limit * 4),
    picked AS (
        SELECT r.id FROM (
            SELECT cand.*, row_number() OVER (
                PARTITION BY cand.endpoint_id ORDER BY cand.next_attempt_at, cand.event_position) AS rn
            FROM cand) r
        LEFT JOIN unnest(p_busy_ids, p_busy_n) AS b(eid, n) ON b.eid = r.endpoint_id
        WHERE r.rn + COALESCE(b.n, 0) <= p_cap
        ORDER BY r.next_attempt_at, r.event_position
        LIMIT p_limit),
    -- Read without locks above; lock only what was picked, skipping rows another claim holds
    -- and re-checking (on the newest version of each row) that it is still free.
    locked AS (
        SELECT d.id FROM webhook_deliveries d
        WHERE d.id = ANY(ARRAY(SELECT picked.id FROM picked)) AND d.state = 'pending'
          AND (d.leased_until IS NULL OR d.leased_until < now()
               OR (d.leased_by <> p_worker AND d.leased_by::oid NOT IN (SELECT objid FROM live)))
        FOR UPDATE SKIP LOCKED),
    leased AS (
        UPDATE webhook_deliveries d
        SET leased_until = now() + make_interval(secs => p_lease_secs), leased_by = p_worker,
            updated_at = now()
        WHERE d.id = ANY(ARRAY(SELECT locked.id FROM locked))
        RETURNING d.id, d.tenant_id, d.endpoint_id, d.event_id, d.attempts, d.event_position)
    SELECT l.id, l.tenant_id, l.endpoint_id, l.attempts, w.url, w.secret, w.previous_secrets,
           e.payload ->> 'id', e.payload::text
    FROM leased l
    JOIN webhook_endpoints w ON w.tenant_id = l.tenant_id AND w.id = l.endpoint_id
    JOIN events e ON e.tenant_id = l.tenant_id AND e.id = l.event_id
    ORDER BY l.event_position;
END;
$$;

CREATE OR REPLACE FUNCTION bench_record_attempts(
    p_worker int4, p_ids uuid[], p_states text[], p_next timestamptz[], p_status int4[],
    p_errors text[], p_attempted timestamptz[], p_latency int4[], p_excerpts text[])
RETURNS SETOF uuid LANGUAGE plpgsql SET enable_seqscan = off AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN QUERY
    WITH i AS (
        SELECT * FROM unnest(p_ids, p_states, p_next, p_status, p_errors, p_attempted,
                             p_latency, p_excerpts)
            AS i(id, state, next_at, status, error, attempted_at, latency_ms, excerpt)),
    recorded AS (
        UPDATE webhook_deliveries d
        SET state = CASE WHEN d.state = 'pending' THEN i.state ELSE d.state END,
            attempts = d.attempts + 1,
            next_attempt_at = CASE WHEN d.state = 'pending' THEN i.next_at
                                   ELSE d.next_attempt_at END,
            leased_until = NULL, leased_by = NULL,
            last_status = i.status, last_error = i.error, updated_at = now()
        FROM i
        WHERE d.id = ANY(p_ids) AND d.id = i.id AND d.leased_by = p_worker
        RETURNING d.id, d.endpoint_id, i.state),
    logged AS (
        INSERT INTO webhook_attempts
            (delivery_id, attempted_at, status_code, latency_ms, error, response_excerpt)
        SELECT i.id, i.attempted_at, i.status, i.latency_ms, i.error, i.excerpt
        FROM i JOIN recorded r ON r.id = i.id),
    healthy AS (
        UPDATE webhook_endpoints w SET failing_since = NULL
        WHERE w.failing_since IS NOT NULL
          AND w.id = ANY(ARRAY(SELECT r.endpoint_id FROM recorded r WHERE r.state = 'succeeded')))
    SELECT r.id FROM recorded r;
END;
$$;
