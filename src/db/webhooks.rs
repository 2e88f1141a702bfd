//! Webhook endpoints and the delivery outbox.

use super::{Order, keyset};
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
/// Also named in `signoff_command_write` (migration 000081).
pub const CHANNEL: &str = "signoff_work";

/// First key of the session-level advisory lock each worker holds as its liveness; the second
/// key is the worker's own (positive) number, which its leases carry in `leased_by`.
pub const LIVENESS_LOCK_NS: i32 = 0x5167_0ff1;

/// Previous secrets kept at most: two rotations inside a grace period sign with all three
/// secrets, and a runaway of rotations cannot grow the signature header without bound.
pub const MAX_PREVIOUS_SECRETS: usize = 4;

/// A previous secret and the end of its grace period, as stored in `previous_secrets`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct PreviousSecret {
    /// Sealed like the current secret when SIGNOFF_SECRET_KEY is set.
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

/// The previous secrets of a stored list (malformed entries are ignored).
pub fn previous_secrets(value: &serde_json::Value) -> Vec<PreviousSecret> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

/// The context a secret is sealed for: its endpoint.
pub fn secret_context(endpoint: Uuid) -> String {
    format!("webhook-endpoint:{endpoint}")
}

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
    order: Order,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<EndpointRow>> {
    let mut q = w::webhook_endpoints
        .filter(w::tenant_id.eq(tenant))
        .into_boxed();
    q = keyset!(q, w::id, order, after);
    q.limit(limit).select(EndpointRow::as_select()).load(conn)
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
            w::previous_secrets.eq(&row.previous_secrets),
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
    /// As stored: possibly sealed.
    #[diesel(sql_type = Text)]
    pub secret: String,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub previous_secrets: serde_json::Value,
    /// The event's `id`, the `webhook-id` header.
    #[diesel(sql_type = Text)]
    pub msg_id: String,
    /// The event as sent and signed: its JSON text, as Postgres prints the stored payload.
    #[diesel(sql_type = Text)]
    pub body: String,
}

/// What a worker asks of [`claim`].
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// The worker's liveness key, written into `leased_by`.
    pub worker: i32,
    pub lease_secs: f64,
    pub limit: i64,
    /// The worker's "now": due means `next_attempt_at <= max(now, the database's now())`.
    pub now: DateTime<Utc>,
    /// Deliveries one endpoint may have held (claimed, not yet recorded) by this worker.
    pub endpoint_cap: i32,
    /// Endpoints with deliveries held by this worker, and how many.
    pub busy: Vec<(Uuid, i32)>,
    /// Endpoints to leave out of this claim.
    pub full: Vec<Uuid>,
}

/// Leases up to `limit` due deliveries (`signoff_claim_deliveries`, whose comment says what
/// is skipped), giving no endpoint more than `endpoint_cap` held by this worker, nor any in
/// `full`. A lease is free when it expired, or at once when the worker named in `leased_by` no
/// longer holds its liveness lock (it died); a live worker's unexpired lease is never taken.
/// The lease commits before anything is sent.
pub fn claim(conn: &mut PgConnection, r: &ClaimRequest) -> QueryResult<Vec<Claimed>> {
    let (busy_ids, busy_n): (Vec<Uuid>, Vec<i32>) = r.busy.iter().cloned().unzip();
    diesel::sql_query("SELECT * FROM signoff_claim_deliveries($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind::<Integer, _>(r.worker)
        .bind::<Double, _>(r.lease_secs)
        .bind::<BigInt, _>(r.limit)
        .bind::<Timestamptz, _>(r.now)
        .bind::<Integer, _>(LIVENESS_LOCK_NS)
        .bind::<Array<SqlUuid>, _>(&r.full)
        .bind::<Array<SqlUuid>, _>(&busy_ids)
        .bind::<Array<Integer>, _>(&busy_n)
        .bind::<Integer, _>(r.endpoint_cap)
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

/// One attempt to record, with its consequence for the delivery.
#[derive(Debug, Clone)]
pub struct Recording {
    pub delivery: Uuid,
    pub result: AttemptResult,
    /// `succeeded`, `pending` (retry at `next_attempt_at`) or `failed` (gave up).
    pub state: &'static str,
    pub next_attempt_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct RecordedId {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Records a batch of attempts in one statement (`signoff_record_attempts`), each only where
/// `worker` still holds the delivery's lease: an attempt by a worker whose lease was taken over
/// (it was presumed dead) is dropped rather than recorded twice. A delivery failed meanwhile
/// (its endpoint was disabled) keeps its state but gets the attempt in its log. The endpoints
/// of the successes are marked healthy. Returns the deliveries recorded.
pub fn record_attempts(
    conn: &mut PgConnection,
    worker: i32,
    batch: &[Recording],
) -> QueryResult<Vec<Uuid>> {
    if batch.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<Uuid> = batch.iter().map(|r| r.delivery).collect();
    let states: Vec<&str> = batch.iter().map(|r| r.state).collect();
    let next: Vec<DateTime<Utc>> = batch.iter().map(|r| r.next_attempt_at).collect();
    let status: Vec<Option<i32>> = batch.iter().map(|r| r.result.status_code).collect();
    let errors: Vec<Option<&str>> = batch.iter().map(|r| r.result.error.as_deref()).collect();
    let attempted: Vec<DateTime<Utc>> = batch.iter().map(|r| r.result.attempted_at).collect();
    let latency: Vec<i32> = batch.iter().map(|r| r.result.latency_ms).collect();
    let excerpts: Vec<Option<&str>> = batch
        .iter()
        .map(|r| r.result.response_excerpt.as_deref())
        .collect();
    let recorded: Vec<RecordedId> = diesel::sql_query(
        "SELECT id FROM signoff_record_attempts($1, $2, $3, $4, $5, $6, $7, $8, $9) AS r(id)",
    )
    .bind::<Integer, _>(worker)
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Array<Text>, _>(&states)
    .bind::<Array<Timestamptz>, _>(&next)
    .bind::<Array<Nullable<Integer>>, _>(&status)
    .bind::<Array<Nullable<Text>>, _>(&errors)
    .bind::<Array<Timestamptz>, _>(&attempted)
    .bind::<Array<Integer>, _>(&latency)
    .bind::<Array<Nullable<Text>>, _>(&excerpts)
    .load(conn)?;
    Ok(recorded.into_iter().map(|r| r.id).collect())
}

/// Gives back every lease `worker` holds on a delivery it has not attempted (shutdown).
pub fn release_leases(conn: &mut PgConnection, worker: i32) -> QueryResult<usize> {
    diesel::update(d::webhook_deliveries.filter(d::leased_by.eq(worker)))
        .set((
            d::leased_until.eq(None::<DateTime<Utc>>),
            d::leased_by.eq(None::<i32>),
        ))
        .execute(conn)
}

#[derive(QueryableByName)]
struct Stale {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    stale: bool,
}

/// Analyzes the outbox when it has changed more than its size (and at least 1,000 rows) since
/// its last ANALYZE, as after a burst of deliveries: that makes every connection plan the
/// worker's statements again with the present statistics, instead of keeping plans made while
/// the outbox was small (autovacuum would take up to a minute). Returns whether it analyzed.
pub fn refresh_outbox_statistics(conn: &mut PgConnection) -> QueryResult<bool> {
    let stale: Option<Stale> = diesel::sql_query(
        "SELECT s.n_mod_since_analyze > GREATEST(1000, c.reltuples) AS stale
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
         WHERE s.relid = 'webhook_deliveries'::regclass",
    )
    .get_result(conn)
    .optional()?;
    if !stale.is_some_and(|s| s.stale) {
        return Ok(false);
    }
    diesel::sql_query("ANALYZE (SKIP_LOCKED) webhook_deliveries").execute(conn)?;
    Ok(true)
}

/// Gives back `worker`'s leases on these deliveries, which it will not attempt.
pub fn give_back(conn: &mut PgConnection, worker: i32, ids: &[Uuid]) -> QueryResult<usize> {
    diesel::update(
        d::webhook_deliveries
            .filter(d::id.eq_any(ids))
            .filter(d::leased_by.eq(worker)),
    )
    .set((
        d::leased_until.eq(None::<DateTime<Utc>>),
        d::leased_by.eq(None::<i32>),
    ))
    .execute(conn)
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
    order: Order,
    after_position: Option<i64>,
    limit: i64,
) -> QueryResult<(Vec<DeliveryRow>, Vec<AttemptRow>)> {
    let mut q = d::webhook_deliveries
        .filter(d::tenant_id.eq(tenant).and(d::endpoint_id.eq(endpoint)))
        .into_boxed();
    q = keyset!(q, d::event_position, order, after_position);
    let rows: Vec<DeliveryRow> = q.limit(limit).select(DeliveryRow::as_select()).load(conn)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let attempts = at::webhook_attempts
        .filter(at::delivery_id.eq_any(&ids))
        .order(at::id.asc())
        .select(AttemptRow::as_select())
        .load(conn)?;
    Ok((rows, attempts))
}

/// Schedules a delivery to be sent again now (on demand), whatever its state. The lease of an
/// attempt in flight is left alone: the retry waits for that attempt (which is the retry, when
/// it was still pending) instead of sending the same message twice at once.
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

/// An endpoint's secrets as stored, for the re-seal pass.
#[derive(Debug, QueryableByName)]
pub struct StoredSecrets {
    #[diesel(sql_type = Text)]
    pub tenant_id: String,
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub secret: String,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub previous_secrets: serde_json::Value,
}

/// Endpoints whose secrets may need sealing with the current key (`key_id`), after `after`.
pub fn secrets_to_reseal(
    conn: &mut PgConnection,
    key_id: &str,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<StoredSecrets>> {
    diesel::sql_query(
        "SELECT tenant_id, id, secret, previous_secrets FROM webhook_endpoints
         WHERE ($2::uuid IS NULL OR id > $2)
           AND (secret NOT LIKE $1 OR previous_secrets <> '[]'::jsonb)
         ORDER BY id LIMIT $3",
    )
    .bind::<Text, _>(format!("sealed:v1:{key_id}:%"))
    .bind::<Nullable<SqlUuid>, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// Writes re-sealed secrets back, unless the endpoint's secret changed meanwhile.
pub fn write_resealed(
    conn: &mut PgConnection,
    was: &StoredSecrets,
    secret: &str,
    previous: &serde_json::Value,
) -> QueryResult<usize> {
    diesel::update(
        w::webhook_endpoints
            .filter(w::tenant_id.eq(&was.tenant_id).and(w::id.eq(was.id)))
            .filter(w::secret.eq(&was.secret)),
    )
    .set((w::secret.eq(secret), w::previous_secrets.eq(previous)))
    .execute(conn)
}
