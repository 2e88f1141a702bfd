//! Host actions, their deliveries (one per event and action, fanned out by the trigger of
//! migration 000090) and each attempt's log.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Jsonb, Nullable, Text, Uuid as SqlUuid};
use uuid::Uuid;

use super::schema::host_action_attempts::dsl as at;
use super::schema::host_action_deliveries::dsl as d;
use super::schema::host_actions::dsl as h;
use super::{Order, keyset};

/// A stored host action. `secrets` maps each name to its sealed value.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::host_actions, check_for_backend(diesel::pg::Pg))]
pub struct ActionRow {
    pub tenant_id: String,
    pub id: Uuid,
    pub name: String,
    pub event_types: Vec<Option<String>>,
    pub when_condition: Option<String>,
    pub requests: serde_json::Value,
    pub secrets: serde_json::Value,
    pub enabled: bool,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::host_action_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct ActionDeliveryRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_position: i64,
    pub approval_id: Option<Uuid>,
    pub event_type: String,
    pub state: String,
    pub step: i32,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::host_action_attempts, check_for_backend(diesel::pg::Pg))]
pub struct ActionAttemptRow {
    pub delivery_id: Uuid,
    pub step: i32,
    pub method: String,
    pub url: String,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// The context a secret of an action is sealed for: the action and the secret's name.
pub fn secret_context(action: Uuid, name: &str) -> String {
    format!("host-action:{action}:{name}")
}

pub fn insert(conn: &mut PgConnection, row: &ActionRow) -> QueryResult<ActionRow> {
    diesel::insert_into(h::host_actions)
        .values(row)
        .returning(ActionRow::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<ActionRow> {
    h::host_actions
        .filter(h::tenant_id.eq(tenant).and(h::id.eq(id)))
        .select(ActionRow::as_select())
        .first(conn)
}

pub fn find_for_update(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<ActionRow> {
    h::host_actions
        .filter(h::tenant_id.eq(tenant).and(h::id.eq(id)))
        .select(ActionRow::as_select())
        .for_update()
        .first(conn)
}

pub fn list(
    conn: &mut PgConnection,
    tenant: &str,
    order: Order,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<ActionRow>> {
    let mut q = h::host_actions.filter(h::tenant_id.eq(tenant)).into_boxed();
    q = keyset!(q, h::id, order, after);
    q.limit(limit).select(ActionRow::as_select()).load(conn)
}

/// Writes an action's editable fields back, with the next version.
pub fn update(conn: &mut PgConnection, row: &ActionRow) -> QueryResult<ActionRow> {
    diesel::update(h::host_actions)
        .filter(h::tenant_id.eq(&row.tenant_id).and(h::id.eq(row.id)))
        .set((
            h::name.eq(&row.name),
            h::event_types.eq(&row.event_types),
            h::when_condition.eq(&row.when_condition),
            h::requests.eq(&row.requests),
            h::secrets.eq(&row.secrets),
            h::enabled.eq(row.enabled),
            h::version.eq(h::version + 1),
            h::updated_at.eq(row.updated_at),
        ))
        .returning(ActionRow::as_returning())
        .get_result(conn)
}

pub fn delete(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<usize> {
    diesel::delete(h::host_actions.filter(h::tenant_id.eq(tenant).and(h::id.eq(id)))).execute(conn)
}

/// An action's deliveries, newest first by default, keyed by event position; and the
/// attempts of the page's deliveries.
pub fn list_deliveries(
    conn: &mut PgConnection,
    tenant: &str,
    action: Uuid,
    order: Order,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<(Vec<ActionDeliveryRow>, Vec<ActionAttemptRow>)> {
    let mut q = d::host_action_deliveries
        .filter(d::tenant_id.eq(tenant).and(d::action_id.eq(action)))
        .into_boxed();
    q = keyset!(q, d::event_position, order, after);
    let rows: Vec<ActionDeliveryRow> = q
        .limit(limit)
        .select(ActionDeliveryRow::as_select())
        .load(conn)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let attempts = at::host_action_attempts
        .filter(at::tenant_id.eq(tenant).and(at::delivery_id.eq_any(&ids)))
        .order(at::id.asc())
        .select(ActionAttemptRow::as_select())
        .load(conn)?;
    Ok((rows, attempts))
}

/// A delivery claimed by a worker, with its action and the event as delivered.
#[derive(Debug, Clone, QueryableByName)]
pub struct ClaimedAction {
    #[diesel(sql_type = Text)]
    pub tenant_id: String,
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub action_id: Uuid,
    #[diesel(sql_type = Integer)]
    pub step: i32,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Jsonb)]
    pub requests: serde_json::Value,
    /// As stored: sealed.
    #[diesel(sql_type = Jsonb)]
    pub secrets: serde_json::Value,
    #[diesel(sql_type = Nullable<Text>)]
    pub when_condition: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub event: serde_json::Value,
}

/// Leases up to `limit` due deliveries for `worker`. A delivery waits while an earlier event
/// of its approval is still pending for the same action (a status set on start must land before
/// the outcome's), and no action gets more than `per_action` held by this worker, counting
/// `busy` (the ones it holds already). The candidates are read without locks; the lease is
/// taken by an UPDATE that checks again, so two workers never hold one delivery.
pub fn claim(
    conn: &mut PgConnection,
    worker: i32,
    lease_secs: f64,
    limit: i64,
    now: DateTime<Utc>,
    per_action: i32,
    busy: &[(Uuid, i32)],
) -> QueryResult<Vec<ClaimedAction>> {
    let (busy_ids, busy_n): (Vec<Uuid>, Vec<i32>) = busy.iter().cloned().unzip();
    diesel::sql_query(
        "WITH due AS (
           SELECT c.tenant_id, c.id, c.next_attempt_at, c.event_position,
                  row_number() OVER (PARTITION BY c.tenant_id, c.action_id
                                     ORDER BY c.next_attempt_at, c.event_position) AS n,
                  coalesce(b.n, 0) AS held
           FROM host_action_deliveries c
           LEFT JOIN unnest($5::uuid[], $6::int[]) AS b(action_id, n) ON b.action_id = c.action_id
           WHERE c.state = 'pending' AND c.next_attempt_at <= greatest($2, now())
             AND (c.leased_until IS NULL OR c.leased_until < now())
             AND NOT EXISTS (
               SELECT 1 FROM host_action_deliveries e
               WHERE e.tenant_id = c.tenant_id AND e.action_id = c.action_id
                 AND e.approval_id = c.approval_id AND e.state = 'pending'
                 AND e.event_position < c.event_position)
         ), picked AS (
           SELECT tenant_id, id FROM due WHERE n + held <= $7
           ORDER BY next_attempt_at, event_position LIMIT $4
         ), leased AS (
           UPDATE host_action_deliveries d
           SET leased_by = $1, leased_until = now() + make_interval(secs => $3), updated_at = now()
           FROM picked
           WHERE d.tenant_id = picked.tenant_id AND d.id = picked.id AND d.state = 'pending'
             AND (d.leased_until IS NULL OR d.leased_until < now())
           RETURNING d.tenant_id, d.id, d.action_id, d.event_id, d.step, d.attempts
         )
         SELECT l.tenant_id, l.id, l.action_id, l.step, l.attempts, h.requests, h.secrets,
                h.when_condition, e.payload AS event
         FROM leased l
         JOIN host_actions h ON h.tenant_id = l.tenant_id AND h.id = l.action_id
         JOIN events e ON e.tenant_id = l.tenant_id AND e.id = l.event_id",
    )
    .bind::<Integer, _>(worker)
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .bind::<Double, _>(lease_secs)
    .bind::<BigInt, _>(limit)
    .bind::<Array<SqlUuid>, _>(&busy_ids)
    .bind::<Array<Integer>, _>(&busy_n)
    .bind::<Integer, _>(per_action)
    .load(conn)
}

/// One request's attempt, as the log keeps it (no headers, no body: they may hold secrets).
#[derive(Debug, Clone)]
pub struct ActionAttempt {
    pub step: i32,
    pub method: String,
    pub url: String,
    pub result: super::webhooks::AttemptResult,
}

/// What a delivery comes to after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// The step succeeded and another follows: keep the lease and go on.
    Step(i32),
    /// Every request succeeded.
    Succeeded,
    /// The action's `when` was false for this event.
    Skipped,
    /// Try the same step again then.
    Retry(DateTime<Utc>),
    /// The schedule is spent (or the request cannot be rendered).
    Failed,
}

/// Records an attempt (when there is one) and its consequence, only while `worker` still holds
/// the lease. Returns false when it did not (the lease was taken over): the attempt is dropped.
pub fn record(
    conn: &mut PgConnection,
    tenant: &str,
    delivery: Uuid,
    worker: i32,
    attempt: Option<&ActionAttempt>,
    next: Next,
) -> QueryResult<bool> {
    conn.transaction(|c| {
        let (state, step, attempts, next_at, keep_lease): (
            &str,
            Option<i32>,
            &str,
            Option<DateTime<Utc>>,
            bool,
        ) = match next {
            Next::Step(s) => ("pending", Some(s), "0", None, true),
            Next::Succeeded => ("succeeded", None, "attempts", None, false),
            Next::Skipped => ("skipped", None, "attempts", None, false),
            Next::Retry(at) => ("pending", None, "attempts + 1", Some(at), false),
            Next::Failed => ("failed", None, "attempts + 1", None, false),
        };
        let status = attempt.and_then(|a| a.result.status_code);
        let error = attempt.and_then(|a| a.result.error.clone());
        let n = diesel::sql_query(format!(
            "UPDATE host_action_deliveries SET state = $4, step = coalesce($5, step),
               attempts = {attempts}, next_attempt_at = coalesce($6, next_attempt_at),
               leased_by = CASE WHEN $7 THEN leased_by END,
               leased_until = CASE WHEN $7 THEN leased_until END,
               last_status = coalesce($8, last_status), last_error = $9, updated_at = now()
             WHERE tenant_id = $1 AND id = $2 AND leased_by = $3 AND state = 'pending'"
        ))
        .bind::<Text, _>(tenant)
        .bind::<SqlUuid, _>(delivery)
        .bind::<Integer, _>(worker)
        .bind::<Text, _>(state)
        .bind::<Nullable<Integer>, _>(step)
        .bind::<Nullable<diesel::sql_types::Timestamptz>, _>(next_at)
        .bind::<diesel::sql_types::Bool, _>(keep_lease)
        .bind::<Nullable<Integer>, _>(status)
        .bind::<Nullable<Text>, _>(error)
        .execute(c)?;
        if n == 0 {
            return Ok(false);
        }
        if let Some(a) = attempt {
            diesel::insert_into(at::host_action_attempts)
                .values((
                    at::tenant_id.eq(tenant),
                    at::delivery_id.eq(delivery),
                    at::step.eq(a.step),
                    at::method.eq(&a.method),
                    at::url.eq(&a.url),
                    at::attempted_at.eq(a.result.attempted_at),
                    at::status_code.eq(a.result.status_code),
                    at::latency_ms.eq(a.result.latency_ms),
                    at::error.eq(&a.result.error),
                    at::response_excerpt.eq(&a.result.response_excerpt),
                ))
                .execute(c)?;
        }
        Ok(true)
    })
}

/// Gives back every lease `worker` holds (at shutdown).
pub fn release_leases(conn: &mut PgConnection, worker: i32) -> QueryResult<usize> {
    diesel::update(d::host_action_deliveries.filter(d::leased_by.eq(worker)))
        .set((
            d::leased_by.eq(None::<i32>),
            d::leased_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
}

/// Sends a failed delivery again from the step that failed (after fixing the host, say).
pub fn retry(
    conn: &mut PgConnection,
    tenant: &str,
    action: Uuid,
    delivery: Uuid,
) -> QueryResult<usize> {
    diesel::update(
        d::host_action_deliveries.filter(
            d::tenant_id
                .eq(tenant)
                .and(d::action_id.eq(action))
                .and(d::id.eq(delivery))
                .and(d::state.eq_any(["failed", "pending"])),
        ),
    )
    .set((
        d::state.eq("pending"),
        d::attempts.eq(0),
        d::next_attempt_at.eq(diesel::dsl::now),
        d::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
}

/// Actions whose secrets are not all sealed with the current key, for re-sealing.
pub fn all_with_secrets(conn: &mut PgConnection) -> QueryResult<Vec<ActionRow>> {
    h::host_actions
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "secrets <> '{}'::jsonb",
        ))
        .select(ActionRow::as_select())
        .load(conn)
}

/// Writes re-sealed secrets back.
pub fn set_secrets(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    secrets: &serde_json::Value,
) -> QueryResult<usize> {
    diesel::update(h::host_actions.filter(h::tenant_id.eq(tenant).and(h::id.eq(id))))
        .set(h::secrets.eq(secrets))
        .execute(conn)
}
