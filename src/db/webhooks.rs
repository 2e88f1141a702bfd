//! Webhook endpoints and the delivery outbox.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Double, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use uuid::Uuid;

use super::models::{AttemptRow, DeliveryRow, EndpointRow};
use super::schema::webhook_attempts::dsl as at;
use super::schema::webhook_deliveries::dsl as d;
use super::schema::webhook_endpoints::dsl as w;

/// Channel the worker listens on for new deliveries.
pub const CHANNEL: &str = "signoff_work";

pub fn insert_endpoint(conn: &mut PgConnection, row: &EndpointRow) -> QueryResult<EndpointRow> {
    diesel::insert_into(w::webhook_endpoints)
        .values(row)
        .returning(EndpointRow::as_returning())
        .get_result(conn)
}

pub fn find_endpoint(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<EndpointRow> {
    w::webhook_endpoints
        .filter(w::tenant_id.eq(tenant).and(w::id.eq(id)))
        .select(EndpointRow::as_select())
        .first(conn)
}

pub fn find_endpoint_for_update(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
) -> QueryResult<EndpointRow> {
    w::webhook_endpoints
        .filter(w::tenant_id.eq(tenant).and(w::id.eq(id)))
        .select(EndpointRow::as_select())
        .for_update()
        .first(conn)
}

pub fn list_endpoints(
    conn: &mut PgConnection,
    tenant: &str,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<EndpointRow>> {
    let mut q = w::webhook_endpoints
        .filter(w::tenant_id.eq(tenant))
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(w::id.gt(after));
    }
    q.order(w::id.asc())
        .limit(limit)
        .select(EndpointRow::as_select())
        .load(conn)
}

/// Writes an endpoint's editable fields back.
pub fn update_endpoint(conn: &mut PgConnection, row: &EndpointRow) -> QueryResult<EndpointRow> {
    diesel::update(w::webhook_endpoints)
        .filter(w::tenant_id.eq(&row.tenant_id).and(w::id.eq(row.id)))
        .set((
            w::url.eq(&row.url),
            w::description.eq(&row.description),
            w::event_types.eq(&row.event_types),
            w::enabled.eq(row.enabled),
            w::disabled_reason.eq(&row.disabled_reason),
            w::secret.eq(&row.secret),
            w::previous_secret.eq(&row.previous_secret),
            w::previous_secret_expires_at.eq(row.previous_secret_expires_at),
            w::failing_since.eq(row.failing_since),
            w::updated_at.eq(diesel::dsl::now),
        ))
        .returning(EndpointRow::as_returning())
        .get_result(conn)
}

pub fn delete_endpoint(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<usize> {
    diesel::delete(w::webhook_endpoints.filter(w::tenant_id.eq(tenant).and(w::id.eq(id))))
        .execute(conn)
}

/// Creates the deliveries of freshly written events for every matching enabled endpoint and
/// wakes the workers, in one statement inside the events' transaction.
pub fn fan_out(conn: &mut PgConnection, tenant: &str, event_ids: &[Uuid]) -> QueryResult<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    diesel::sql_query(format!(
        "WITH ins AS (
           INSERT INTO webhook_deliveries
             (id, tenant_id, endpoint_id, event_id, event_position, approval_id, event_type)
           SELECT gen_random_uuid(), e.tenant_id, w.id, e.id, e.position, e.approval_id, e.type
           FROM events e
           JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id
           WHERE e.tenant_id = $1 AND e.id = ANY($2) AND w.enabled
             AND ('*' = ANY(w.event_types) OR e.type = ANY(w.event_types))
           RETURNING 1)
         SELECT pg_notify('{CHANNEL}', 'deliveries') FROM (SELECT count(*) AS n FROM ins) c WHERE c.n > 0"
    ))
    .bind::<Text, _>(tenant)
    .bind::<Array<SqlUuid>, _>(event_ids)
    .execute(conn)?;
    Ok(())
}

/// A delivery claimed by a worker, with what it needs to send it.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub tenant_id: String,
    #[diesel(sql_type = SqlUuid)]
    pub endpoint_id: Uuid,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub previous_secret: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub payload: serde_json::Value,
}

/// Leases up to `limit` due deliveries for `lease_secs`, skipping rows other workers hold and
/// any delivery with an earlier one still pending for the same approval and endpoint, so
/// receivers get each approval's events in order. The lease commits before anything is sent.
pub fn claim(conn: &mut PgConnection, lease_secs: f64, limit: i64) -> QueryResult<Vec<Claimed>> {
    diesel::sql_query(
        "WITH picked AS (
           SELECT c.id FROM webhook_deliveries c
           JOIN webhook_endpoints ew ON ew.tenant_id = c.tenant_id AND ew.id = c.endpoint_id AND ew.enabled
           WHERE c.state = 'pending' AND c.next_attempt_at <= now()
             AND (c.leased_until IS NULL OR c.leased_until < now())
             AND NOT EXISTS (
               SELECT 1 FROM webhook_deliveries p
               WHERE p.state = 'pending' AND p.endpoint_id = c.endpoint_id
                 AND p.approval_id = c.approval_id AND p.event_position < c.event_position)
           ORDER BY c.next_attempt_at, c.event_position
           LIMIT $2
           FOR UPDATE OF c SKIP LOCKED),
         leased AS (
           UPDATE webhook_deliveries d
           SET leased_until = now() + make_interval(secs => $1), updated_at = now()
           FROM picked WHERE d.id = picked.id
           RETURNING d.id, d.tenant_id, d.endpoint_id, d.event_id, d.attempts, d.event_position)
         SELECT l.id, l.tenant_id, l.endpoint_id, l.attempts, w.url, w.secret, w.previous_secret,
                w.previous_secret_expires_at, e.payload
         FROM leased l
         JOIN webhook_endpoints w ON w.tenant_id = l.tenant_id AND w.id = l.endpoint_id
         JOIN events e ON e.tenant_id = l.tenant_id AND e.id = l.event_id
         ORDER BY l.event_position",
    )
    .bind::<Double, _>(lease_secs)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// Records an attempt and its consequence for the delivery: success, a retry at `retry_at`,
/// or failure for good when `retry_at` is `None`.
pub fn record_attempt(
    conn: &mut PgConnection,
    claimed: &Claimed,
    result: &AttemptResult,
    success: bool,
    retry_at: Option<DateTime<Utc>>,
) -> QueryResult<()> {
    diesel::insert_into(at::webhook_attempts)
        .values((
            at::delivery_id.eq(claimed.id),
            at::attempted_at.eq(result.attempted_at),
            at::status_code.eq(result.status_code),
            at::latency_ms.eq(result.latency_ms),
            at::error.eq(&result.error),
            at::response_excerpt.eq(&result.response_excerpt),
        ))
        .execute(conn)?;
    let state = match (success, retry_at) {
        (true, _) => "succeeded",
        (false, Some(_)) => "pending",
        (false, None) => "failed",
    };
    diesel::update(d::webhook_deliveries.filter(d::id.eq(claimed.id)))
        .set((
            d::state.eq(state),
            d::attempts.eq(d::attempts + 1),
            d::next_attempt_at.eq(retry_at.unwrap_or(result.attempted_at)),
            d::leased_until.eq(None::<DateTime<Utc>>),
            d::last_status.eq(result.status_code),
            d::last_error.eq(&result.error),
            d::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks an endpoint healthy after a success.
pub fn endpoint_succeeded(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<()> {
    diesel::update(w::webhook_endpoints.filter(w::tenant_id.eq(tenant).and(w::id.eq(id))))
        .filter(w::failing_since.is_not_null())
        .set(w::failing_since.eq(None::<DateTime<Utc>>))
        .execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct FailingSince {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    failing_since: Option<DateTime<Utc>>,
}

/// Notes a failure; returns when the endpoint's current run of failures began.
pub fn endpoint_failed(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<Option<DateTime<Utc>>> {
    let row: FailingSince = diesel::sql_query(
        "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $3)
         WHERE tenant_id = $1 AND id = $2 RETURNING failing_since",
    )
    .bind::<Text, _>(tenant)
    .bind::<SqlUuid, _>(id)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)?;
    Ok(row.failing_since)
}

/// Disables an endpoint and fails its pending deliveries with the reason.
pub fn disable_endpoint(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    reason: &str,
) -> QueryResult<()> {
    diesel::update(w::webhook_endpoints.filter(w::tenant_id.eq(tenant).and(w::id.eq(id))))
        .set((
            w::enabled.eq(false),
            w::disabled_reason.eq(reason),
            w::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    diesel::update(
        d::webhook_deliveries
            .filter(d::tenant_id.eq(tenant).and(d::endpoint_id.eq(id)))
            .filter(d::state.eq("pending")),
    )
    .set((
        d::state.eq("failed"),
        d::last_error.eq(format!("endpoint disabled: {reason}")),
        d::leased_until.eq(None::<DateTime<Utc>>),
        d::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?;
    Ok(())
}

/// An endpoint's deliveries, newest first, and their attempts.
pub fn list_deliveries(
    conn: &mut PgConnection,
    tenant: &str,
    endpoint: Uuid,
    before_position: Option<i64>,
    limit: i64,
) -> QueryResult<(Vec<DeliveryRow>, Vec<AttemptRow>)> {
    let mut q = d::webhook_deliveries
        .filter(d::tenant_id.eq(tenant).and(d::endpoint_id.eq(endpoint)))
        .into_boxed();
    if let Some(p) = before_position {
        q = q.filter(d::event_position.lt(p));
    }
    let rows: Vec<DeliveryRow> = q
        .order(d::event_position.desc())
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let attempts = at::webhook_attempts
        .filter(at::delivery_id.eq_any(&ids))
        .order(at::id.asc())
        .select(AttemptRow::as_select())
        .load(conn)?;
    Ok((rows, attempts))
}

/// Schedules a delivery to be sent again now (on demand), whatever its state.
pub fn retry_delivery(
    conn: &mut PgConnection,
    tenant: &str,
    endpoint: Uuid,
    id: Uuid,
) -> QueryResult<usize> {
    let n = diesel::update(
        d::webhook_deliveries.filter(
            d::tenant_id
                .eq(tenant)
                .and(d::endpoint_id.eq(endpoint))
                .and(d::id.eq(id)),
        ),
    )
    .set((
        d::state.eq("pending"),
        d::next_attempt_at.eq(diesel::dsl::now),
        d::leased_until.eq(None::<DateTime<Utc>>),
        d::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?;
    if n > 0 {
        diesel::sql_query(format!("SELECT pg_notify('{CHANNEL}', 'deliveries')")).execute(conn)?;
    }
    Ok(n)
}

/// Queue depth and the age of the oldest due delivery, for metrics.
#[derive(Debug, QueryableByName)]
pub struct QueueStats {
    #[diesel(sql_type = BigInt)]
    pub depth: i64,
    #[diesel(sql_type = Double)]
    pub oldest_due_secs: f64,
}

pub fn queue_stats(conn: &mut PgConnection) -> QueryResult<QueueStats> {
    diesel::sql_query(
        "SELECT count(*) AS depth,
                COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at) FILTER (WHERE next_attempt_at <= now())), 0)::float8 AS oldest_due_secs
         FROM webhook_deliveries WHERE state = 'pending'",
    )
    .get_result(conn)
}
