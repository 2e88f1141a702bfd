//! Approval, task and event queries. Every function is scoped by tenant.

use super::{Order, keyset};
use diesel::pg::Pg;
use diesel::pg::upsert::excluded;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::Text;
use serde::Deserialize;
use uuid::Uuid;

use super::models::{ApprovalRow, EventRow, NewEvent, TaskRow};
use super::schema::approval_tasks::dsl as t;
use super::schema::approvals::dsl as a;
use super::schema::events::dsl as e;

/// Serialises everything that touches one ticket's approvals for the rest of the transaction,
/// so two requests on the same ticket cannot both see "nothing pending".
pub fn lock_ticket(conn: &mut PgConnection, tenant: &str, ticket_id: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(format!("ticket/{tenant}/{ticket_id}"))
        .execute(conn)?;
    Ok(())
}

pub fn insert(conn: &mut PgConnection, row: &ApprovalRow) -> QueryResult<()> {
    diesel::insert_into(a::approvals)
        .values(row)
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
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "state = 'pending'",
        ))
        .select(ApprovalRow::as_select())
        .for_update()
}

/// The approval, its tasks, and whether the actor is an active principal.
pub type ForDecision = (ApprovalRow, Vec<TaskRow>, Option<bool>);

/// A decision's reads in one call of `signoff_load_command` (migration 000061): the approval,
/// locked, its tasks read after the lock, and whether `actor` is an active principal (None
/// when the directory does not know them). None when there is no such approval.
pub fn load_for_decision(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    actor: &str,
) -> QueryResult<Option<ForDecision>> {
    use diesel::sql_types::{Bool, Jsonb, Nullable, Uuid as SqlUuid};
    #[derive(QueryableByName)]
    #[diesel(table_name = super::schema::approvals)]
    struct Read {
        tenant_id: String,
        id: Uuid,
        ticket_id: String,
        ticket: serde_json::Value,
        process_id: Option<Uuid>,
        process_version: Option<i32>,
        process_name: Option<String>,
        definition: serde_json::Value,
        state: String,
        engine: serde_json::Value,
        current_stage: Option<i32>,
        exclusive: bool,
        description: Option<String>,
        requested_by: Option<String>,
        status_to_set: Option<String>,
        decided_at: Option<chrono::DateTime<chrono::Utc>>,
        last_sequence: i64,
        created_at: chrono::DateTime<chrono::Utc>,
        updated_at: chrono::DateTime<chrono::Utc>,
        #[diesel(sql_type = Jsonb)]
        tasks: serde_json::Value,
        #[diesel(sql_type = Nullable<Bool>)]
        actor_active: Option<bool>,
    }
    let read: Option<Read> = diesel::sql_query("SELECT * FROM signoff_load_command($1, $2, $3)")
        .bind::<Text, _>(tenant)
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(actor)
        .get_result(conn)
        .optional()?;
    let Some(r) = read else {
        return Ok(None);
    };
    let tasks = Vec::<TaskRow>::deserialize(&r.tasks)
        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
    let row = ApprovalRow {
        tenant_id: r.tenant_id,
        id: r.id,
        ticket_id: r.ticket_id,
        ticket: r.ticket,
        process_id: r.process_id,
        process_version: r.process_version,
        process_name: r.process_name,
        definition: r.definition,
        state: r.state,
        engine: r.engine,
        current_stage: r.current_stage,
        exclusive: r.exclusive,
        description: r.description,
        requested_by: r.requested_by,
        status_to_set: r.status_to_set,
        decided_at: r.decided_at,
        last_sequence: r.last_sequence,
        created_at: r.created_at,
        updated_at: r.updated_at,
    };
    Ok(Some((row, tasks, r.actor_active)))
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

/// Appends events in one statement.
pub fn insert_events(conn: &mut PgConnection, rows: &[NewEvent]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    for chunk in rows.chunks(super::ROWS_PER_INSERT) {
        diesel::insert_into(e::events).values(chunk).execute(conn)?;
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

/// Everything a command writes, in one call of `signoff_save_command` (migration 000060, whose
/// plans each session caches): the changed tasks (upserted), the approval row, its new events,
/// and a delivery per event for every endpoint that listens (waking the workers when there is
/// one). One round trip where there were four, and no planning per command.
pub fn save(
    conn: &mut PgConnection,
    row: &ApprovalRow,
    tasks: &[TaskRow],
    events: &[NewEvent],
) -> QueryResult<()> {
    use diesel::sql_types::{Array, BigInt, Int4, Jsonb, Nullable, Timestamptz, Uuid as SqlUuid};
    // A fan-out too large for one call's arrays goes in chunks first.
    let tasks = if tasks.len() > super::ROWS_PER_INSERT {
        upsert_tasks(conn, tasks)?;
        &[][..]
    } else {
        tasks
    };
    let column = |f: fn(&TaskRow) -> Option<String>| tasks.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(
        "SELECT signoff_save_command($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, $20, $21, $22)",
    )
    .bind::<Text, _>(&row.tenant_id)
    .bind::<SqlUuid, _>(row.id)
    .bind::<Text, _>(&row.state)
    .bind::<Jsonb, _>(&row.engine)
    .bind::<Nullable<Int4>, _>(row.current_stage)
    .bind::<Nullable<Text>, _>(&row.status_to_set)
    .bind::<Nullable<Timestamptz>, _>(row.decided_at)
    .bind::<BigInt, _>(row.last_sequence)
    .bind::<Timestamptz, _>(row.updated_at)
    .bind::<Array<Int4>, _>(tasks.iter().map(|t| t.stage).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(
        tasks
            .iter()
            .map(|t| t.approver_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(tasks.iter().map(|t| t.state.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(|t| t.verdict.clone()))
    .bind::<Array<Nullable<Timestamptz>>, _>(tasks.iter().map(|t| t.decided_at).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(column(|t| t.comment.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(|t| t.actor_id.clone()))
    .bind::<Array<Nullable<Text>>, _>(column(|t| t.on_behalf_of.clone()))
    .bind::<Array<SqlUuid>, _>(events.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(events.iter().map(|e| e.sequence).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(events.iter().map(|e| e.kind.clone()).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(events.iter().map(|e| &e.payload).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(events.iter().map(|e| e.created_at).collect::<Vec<_>>())
    .execute(conn)?;
    Ok(())
}
