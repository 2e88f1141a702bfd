//! Approval, task and event queries. Every function is scoped by tenant.

use super::{Order, keyset};
use diesel::pg::Pg;
use diesel::pg::upsert::excluded;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::Text;
use uuid::Uuid;

use super::models::{ApprovalRow, EventRow, NewEvent, TaskRow};
use super::schema::approval_tasks::dsl as t;
use super::schema::approvals::dsl as a;
use super::schema::events::dsl as e;
use super::statement::{Condition, Statement};

/// Serialises everything that touches one ticket's approvals for the rest of the transaction,
/// so two requests on the same ticket cannot both see "nothing pending".
pub fn lock_ticket(conn: &mut PgConnection, tenant: &str, ticket_id: &str) -> QueryResult<()> {
    Statement::default()
        .sql("SELECT pg_advisory_xact_lock(hashtextextended(")
        .bind::<Text, _>(format!("ticket/{tenant}/{ticket_id}"))
        .sql(", 0))")
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<ApprovalRow> {
    a::approvals
        .filter(a::tenant_id.eq(tenant).and(a::id.eq(id)))
        .select(ApprovalRow::as_select())
        .first(conn)
}

/// Loads an approval and locks its row: decisions on one approval run one at a time.
pub fn find_for_update(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
) -> QueryResult<ApprovalRow> {
    a::approvals
        .filter(a::tenant_id.eq(tenant).and(a::id.eq(id)))
        .select(ApprovalRow::as_select())
        .for_update()
        .first(conn)
}

/// Pending approvals on a ticket, locked.
pub fn pending_on_ticket(
    conn: &mut PgConnection,
    tenant: &str,
    ticket_id: &str,
) -> QueryResult<Vec<ApprovalRow>> {
    let mut rows = pending_on_ticket_query(tenant, ticket_id).load(conn)?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// The query of [`pending_on_ticket`], for the test that looks at its plan. Written so the plan
/// is right before Postgres has statistics (a new database) and as a generic plan (what it
/// caches for a pool's prepared statement): `state = 'pending'` is a literal, so the partial
/// index `approvals_pending_ticket_idx` applies, and there is no `ORDER BY id` (the caller
/// sorts the few rows), which would otherwise make `approvals_state_idx` look as cheap and
/// scan every pending approval of the tenant.
pub fn pending_on_ticket_query<'a>(
    tenant: &'a str,
    ticket_id: &'a str,
) -> impl diesel::query_dsl::methods::LoadQuery<'a, PgConnection, ApprovalRow> + QueryFragment<Pg> + 'a
{
    a::approvals
        .filter(a::tenant_id.eq(tenant).and(a::ticket_id.eq(ticket_id)))
        .filter(Condition("state = 'pending'"))
        .select(ApprovalRow::as_select())
        .for_update()
}

diesel::define_sql_function! {
    /// Migration 000081: what a command reads, as one JSON text.
    fn signoff_command_read(
        tenant: Text,
        approval: diesel::sql_types::Uuid,
        actor: Text,
        lock: diesel::sql_types::Bool,
    ) -> diesel::sql_types::Nullable<Text>;
}

/// What a command reads of an approval, in one call of `signoff_command_read` (migration
/// 000081), as the JSON text the service parses straight into its types (`{approval, engine,
/// definition, version, tasks, actor_active}`): the row, its tasks in stage and approver order,
/// whether `actor` is an active principal (null when the directory does not know them), and
/// the row's version for [`write`]. With `lock`, the row is locked first (in the caller's
/// transaction) and the rest read after the lock. None when there is no such approval.
///
/// A prepared statement, cached by the connection: one round trip and no planning.
pub fn read_for_command(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    actor: &str,
    lock: bool,
) -> QueryResult<Option<String>> {
    diesel::select(signoff_command_read(tenant, id, actor, lock)).get_result(conn)
}

/// Stores the approval's new state.
pub fn update(conn: &mut PgConnection, row: &ApprovalRow) -> QueryResult<()> {
    diesel::update(a::approvals)
        .filter(a::tenant_id.eq(&row.tenant_id).and(a::id.eq(row.id)))
        .set((
            a::state.eq(&row.state),
            a::engine.eq(&row.engine),
            a::current_stage.eq(row.current_stage),
            a::status_to_set.eq(&row.status_to_set),
            a::decided_at.eq(row.decided_at),
            a::last_sequence.eq(row.last_sequence),
            a::updated_at.eq(row.updated_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Tasks of one approval, in stage then approver order. An equality, not `= ANY`, so the
/// primary key serves it whatever the planner knows.
pub fn tasks_of_one(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<Vec<TaskRow>> {
    t::approval_tasks
        .filter(t::tenant_id.eq(tenant).and(t::approval_id.eq(id)))
        .order((t::stage, t::approver_id))
        .select(TaskRow::as_select())
        .load(conn)
}

/// Inserts or rewrites the given tasks in one statement, whatever their number.
pub fn upsert_tasks(conn: &mut PgConnection, rows: &[TaskRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    for chunk in rows.chunks(super::ROWS_PER_INSERT) {
        diesel::insert_into(t::approval_tasks)
            .values(chunk)
            .on_conflict((t::tenant_id, t::approval_id, t::stage, t::approver_id))
            .do_update()
            .set((
                t::state.eq(excluded(t::state)),
                t::verdict.eq(excluded(t::verdict)),
                t::decided_at.eq(excluded(t::decided_at)),
                t::comment.eq(excluded(t::comment)),
                t::actor_id.eq(excluded(t::actor_id)),
                t::on_behalf_of.eq(excluded(t::on_behalf_of)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes the given (stage, approver) tasks of one approval, in one statement.
pub fn delete_tasks(
    conn: &mut PgConnection,
    tenant: &str,
    approval: Uuid,
    keys: &[(i32, String)],
) -> QueryResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let (stages, approvers): (Vec<i32>, Vec<String>) = keys.iter().cloned().unzip();
    diesel::sql_query(
        "DELETE FROM approval_tasks t USING unnest($3::int4[], $4::text[]) AS k(stage, approver_id)
         WHERE t.tenant_id = $1 AND t.approval_id = $2
           AND t.stage = k.stage AND t.approver_id = k.approver_id",
    )
    .bind::<Text, _>(tenant)
    .bind::<diesel::sql_types::Uuid, _>(approval)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Int4>, _>(stages)
    .bind::<diesel::sql_types::Array<Text>, _>(approvers)
    .execute(conn)?;
    Ok(())
}

/// Appends events (payloads as JSON text) in one statement.
pub fn insert_events(conn: &mut PgConnection, rows: &[NewEvent]) -> QueryResult<()> {
    use diesel::sql_types::{Array, BigInt, Nullable, Timestamptz, Uuid as SqlUuid};
    for chunk in rows.chunks(super::ROWS_PER_INSERT) {
        diesel::sql_query(
            "INSERT INTO events (tenant_id, id, approval_id, sequence, type, payload, created_at)
             SELECT u.tenant_id, u.id, u.approval_id, u.sequence, u.type, u.payload::jsonb,
                    u.created_at
             FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::int8[], $5::text[],
                         $6::text[], $7::timestamptz[])
                 AS u(tenant_id, id, approval_id, sequence, type, payload, created_at)",
        )
        .bind::<Array<Text>, _>(
            chunk
                .iter()
                .map(|e| e.tenant_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<SqlUuid>, _>(chunk.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind::<Array<Nullable<SqlUuid>>, _>(
            chunk.iter().map(|e| e.approval_id).collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(chunk.iter().map(|e| e.sequence).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(chunk.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(chunk.iter().map(|e| e.payload.as_str()).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(chunk.iter().map(|e| e.created_at).collect::<Vec<_>>())
        .execute(conn)?;
    }
    Ok(())
}

/// One approval's events past `after_sequence` in `order`.
pub fn events_of(
    conn: &mut PgConnection,
    tenant: &str,
    approval: Uuid,
    order: Order,
    after_sequence: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    let mut q = e::events
        .filter(e::tenant_id.eq(tenant).and(e::approval_id.eq(approval)))
        .into_boxed();
    q = keyset!(q, e::sequence, order, after_sequence);
    q.limit(limit).select(EventRow::as_select()).load(conn)
}

/// Deletes a ticket's approvals; tasks and events go with them.
pub fn delete_ticket(conn: &mut PgConnection, tenant: &str, ticket_id: &str) -> QueryResult<usize> {
    diesel::delete(a::approvals.filter(a::tenant_id.eq(tenant).and(a::ticket_id.eq(ticket_id))))
        .execute(conn)
}

diesel::define_sql_function! {
    /// Migration 000081: what a command writes, in one call.
    #[allow(clippy::too_many_arguments)]
    fn signoff_command_write(
        tenant: Text,
        approval: diesel::sql_types::Uuid,
        new: diesel::sql_types::Nullable<Text>,
        version: diesel::sql_types::Nullable<Text>,
        state: Text,
        engine: Text,
        view: diesel::sql_types::Nullable<Text>,
        current_stage: diesel::sql_types::Nullable<diesel::sql_types::Int4>,
        status_to_set: diesel::sql_types::Nullable<Text>,
        decided_at: diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        last_sequence: diesel::sql_types::BigInt,
        updated_at: diesel::sql_types::Timestamptz,
        t_stage: diesel::sql_types::Array<diesel::sql_types::Int4>,
        t_approver: diesel::sql_types::Array<Text>,
        t_state: diesel::sql_types::Array<Text>,
        t_verdict: diesel::sql_types::Array<diesel::sql_types::Nullable<Text>>,
        t_decided_at: diesel::sql_types::Array<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>>,
        t_comment: diesel::sql_types::Array<diesel::sql_types::Nullable<Text>>,
        t_actor: diesel::sql_types::Array<diesel::sql_types::Nullable<Text>>,
        t_on_behalf_of: diesel::sql_types::Array<diesel::sql_types::Nullable<Text>>,
        e_id: diesel::sql_types::Array<diesel::sql_types::Uuid>,
        e_sequence: diesel::sql_types::Array<diesel::sql_types::BigInt>,
        e_type: diesel::sql_types::Array<Text>,
        e_payload: diesel::sql_types::Array<Text>,
        e_created_at: diesel::sql_types::Array<diesel::sql_types::Timestamptz>,
    ) -> diesel::sql_types::Bool;
}

/// What a command writes (see [`write`]).
pub struct Write<'a> {
    /// The approval row as the command leaves it.
    pub row: &'a ApprovalRow,
    /// For a new approval, its row as JSON (inserted, not updated).
    pub new_row: Option<&'a str>,
    /// The row's version as [`read_for_command`] answered it, for a command read without the
    /// row's lock.
    pub version: Option<&'a str>,
    /// The engine's state as JSON text.
    pub engine: &'a str,
    /// The approval's view as JSON text, stored for lists.
    pub view: Option<&'a str>,
    /// The changed tasks (upserted).
    pub tasks: &'a [TaskRow],
    /// Its new events (payloads as JSON text).
    pub events: &'a [NewEvent],
}

/// Everything a command writes, in one call of `signoff_command_write` (migration 000081, a
/// prepared statement whose function caches its plans): the approval row, the changed tasks,
/// its new events and a delivery per event for every endpoint that listens, waking the workers
/// when there is one.
///
/// With a `version` the call needs no transaction of the caller's: it writes only if the row
/// is still that version, and answers false, having written nothing, when another command
/// changed it since. Without, the caller holds the row's lock and the answer is true.
pub fn write(conn: &mut PgConnection, w: &Write<'_>) -> QueryResult<bool> {
    let Write {
        row,
        new_row,
        version,
        engine,
        view,
        tasks,
        events,
    } = *w;
    // A fan-out too large for one call's arrays goes in chunks after it, once the row they
    // belong to is written (only ever in a transaction: a stage of thousands starting is never
    // written optimistically).
    let (tasks, chunked) = if tasks.len() > super::ROWS_PER_INSERT {
        (&[][..], tasks)
    } else {
        (tasks, &[][..])
    };
    let texts = |f: fn(&TaskRow) -> &Option<String>| -> Vec<Option<&str>> {
        tasks.iter().map(|t| f(t).as_deref()).collect()
    };
    let written: bool = diesel::select(signoff_command_write(
        &row.tenant_id,
        row.id,
        new_row,
        version,
        &row.state,
        engine,
        view,
        row.current_stage,
        row.status_to_set.as_deref(),
        row.decided_at,
        row.last_sequence,
        row.updated_at,
        tasks.iter().map(|t| t.stage).collect::<Vec<_>>(),
        tasks
            .iter()
            .map(|t| t.approver_id.as_str())
            .collect::<Vec<_>>(),
        tasks.iter().map(|t| t.state.as_str()).collect::<Vec<_>>(),
        texts(|t| &t.verdict),
        tasks.iter().map(|t| t.decided_at).collect::<Vec<_>>(),
        texts(|t| &t.comment),
        texts(|t| &t.actor_id),
        texts(|t| &t.on_behalf_of),
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        events
            .iter()
            .map(|e| e.payload.as_str())
            .collect::<Vec<_>>(),
        events.iter().map(|e| e.created_at).collect::<Vec<_>>(),
    ))
    .get_result(conn)?;
    if written {
        upsert_tasks(conn, chunked)?;
    }
    Ok(written)
}
