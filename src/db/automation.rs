//! Tickets as the host reports them, and the rules that start approvals from them.

use super::{Order, keyset};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::approvals::lock_ticket;
use super::models::ApprovalRow;
use super::schema::approvals::dsl as a;
use super::schema::rules::dsl as r;
use super::schema::tickets::dsl as t;
use super::schema::{rules, tickets};
use super::statement::{Condition, Statement};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tickets, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct TicketRow {
    pub tenant_id: String,
    pub id: String,
    pub title: Option<String>,
    pub requester_id: Option<String>,
    pub status: Option<String>,
    pub attributes: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = rules, check_for_backend(diesel::pg::Pg))]
pub struct RuleRow {
    pub tenant_id: String,
    pub id: Uuid,
    pub name: String,
    pub process_id: Uuid,
    pub on_status: String,
    pub condition: Option<String>,
    pub priority: i32,
    pub enabled: bool,
    pub on_leave: String,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The stored ticket, locked against other reports of it for the rest of the transaction.
pub fn lock(conn: &mut PgConnection, tenant: &str, id: &str) -> QueryResult<Option<TicketRow>> {
    lock_ticket(conn, tenant, id)?;
    find(conn, tenant, id)
}

pub fn find(conn: &mut PgConnection, tenant: &str, id: &str) -> QueryResult<Option<TicketRow>> {
    t::tickets
        .filter(t::tenant_id.eq(tenant).and(t::id.eq(id)))
        .select(TicketRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts or replaces the ticket (`created_at` stays the first report's).
pub fn upsert(conn: &mut PgConnection, row: &TicketRow) -> QueryResult<TicketRow> {
    diesel::insert_into(t::tickets)
        .values(row)
        .on_conflict((t::tenant_id, t::id))
        .do_update()
        .set((
            t::title.eq(&row.title),
            t::requester_id.eq(&row.requester_id),
            t::status.eq(&row.status),
            t::attributes.eq(&row.attributes),
            t::updated_at.eq(row.updated_at),
        ))
        .returning(TicketRow::as_returning())
        .get_result(conn)
}

/// Merges a request's ticket into the store in one statement: the fields it carries replace
/// the stored ones, attributes when it has some.
pub fn merge(
    conn: &mut PgConnection,
    tenant: &str,
    ticket: &crate::domain::ticket::Ticket,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    use diesel::sql_types::{Jsonb, Nullable, Text, Timestamptz};
    Statement::default()
        .sql(
            "INSERT INTO tickets (tenant_id, id, title, requester_id, status, attributes, \
             created_at, updated_at) VALUES (",
        )
        .bind::<Text, _>(tenant)
        .sql(", ")
        .bind::<Text, _>(&ticket.id)
        .sql(", ")
        .bind::<Nullable<Text>, _>(&ticket.title)
        .sql(", ")
        .bind::<Nullable<Text>, _>(&ticket.requester_id)
        .sql(", ")
        .bind::<Nullable<Text>, _>(&ticket.status)
        .sql(", ")
        .bind::<Jsonb, _>(serde_json::Value::Object(ticket.attributes.clone()))
        .sql(", ")
        .bind::<Timestamptz, _>(now)
        .sql(", ")
        .bind::<Timestamptz, _>(now)
        .sql(
            ") ON CONFLICT (tenant_id, id) DO UPDATE SET \
               title = COALESCE(EXCLUDED.title, tickets.title), \
               requester_id = COALESCE(EXCLUDED.requester_id, tickets.requester_id), \
               status = COALESCE(EXCLUDED.status, tickets.status), \
               attributes = CASE WHEN EXCLUDED.attributes = '{}'::jsonb THEN tickets.attributes \
                                 ELSE EXCLUDED.attributes END, \
               updated_at = EXCLUDED.updated_at",
        )
        .execute(conn)?;
    Ok(())
}

pub fn delete_ticket(conn: &mut PgConnection, tenant: &str, id: &str) -> QueryResult<usize> {
    diesel::delete(t::tickets.filter(t::tenant_id.eq(tenant).and(t::id.eq(id)))).execute(conn)
}

/// The newest approval on a ticket, whatever its state.
pub fn latest_approval(
    conn: &mut PgConnection,
    tenant: &str,
    ticket: &str,
) -> QueryResult<Option<ApprovalRow>> {
    a::approvals
        .filter(a::tenant_id.eq(tenant).and(a::ticket_id.eq(ticket)))
        .order(a::id.desc())
        .select(ApprovalRow::as_select())
        .first(conn)
        .optional()
}

/// The pending approvals on a ticket, without locking them (for a preview).
pub fn pending_on_ticket(
    conn: &mut PgConnection,
    tenant: &str,
    ticket: &str,
) -> QueryResult<Vec<ApprovalRow>> {
    // As `approvals::pending_on_ticket`: a literal state and no ORDER BY keep the partial
    // index in every plan.
    let mut rows: Vec<ApprovalRow> = a::approvals
        .filter(a::tenant_id.eq(tenant).and(a::ticket_id.eq(ticket)))
        .filter(Condition("state = 'pending'"))
        .select(ApprovalRow::as_select())
        .load(conn)?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// The pending approvals rules started on a ticket, locked.
pub fn pending_rule_approvals(
    conn: &mut PgConnection,
    tenant: &str,
    ticket: &str,
) -> QueryResult<Vec<ApprovalRow>> {
    let mut rows: Vec<ApprovalRow> = a::approvals
        .filter(a::tenant_id.eq(tenant).and(a::ticket_id.eq(ticket)))
        .filter(Condition(
            "state = 'pending' AND requested_by LIKE 'rule:%'",
        ))
        .select(ApprovalRow::as_select())
        .for_update()
        .load(conn)?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

pub fn insert_rule(conn: &mut PgConnection, row: &RuleRow) -> QueryResult<RuleRow> {
    diesel::insert_into(r::rules)
        .values(row)
        .returning(RuleRow::as_returning())
        .get_result(conn)
}

pub fn find_rule(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<RuleRow> {
    r::rules
        .filter(r::tenant_id.eq(tenant).and(r::id.eq(id)))
        .select(RuleRow::as_select())
        .first(conn)
}

pub fn find_rule_for_update(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
) -> QueryResult<RuleRow> {
    r::rules
        .filter(r::tenant_id.eq(tenant).and(r::id.eq(id)))
        .select(RuleRow::as_select())
        .for_update()
        .first(conn)
}

/// Rules by id; the ones that no longer exist are left out.
pub fn rules_by_id(
    conn: &mut PgConnection,
    tenant: &str,
    ids: &[Uuid],
) -> QueryResult<Vec<RuleRow>> {
    r::rules
        .filter(r::tenant_id.eq(tenant).and(r::id.eq_any(ids)))
        .select(RuleRow::as_select())
        .load(conn)
}

/// Replaces a rule's fields, bumping its version.
pub fn update_rule(conn: &mut PgConnection, row: &RuleRow) -> QueryResult<RuleRow> {
    diesel::update(r::rules.filter(r::tenant_id.eq(&row.tenant_id).and(r::id.eq(row.id))))
        .set((
            r::name.eq(&row.name),
            r::process_id.eq(row.process_id),
            r::on_status.eq(&row.on_status),
            r::condition.eq(&row.condition),
            r::priority.eq(row.priority),
            r::enabled.eq(row.enabled),
            r::on_leave.eq(&row.on_leave),
            r::version.eq(r::version + 1),
            r::updated_at.eq(row.updated_at),
        ))
        .returning(RuleRow::as_returning())
        .get_result(conn)
}

pub fn delete_rule(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<usize> {
    diesel::delete(r::rules.filter(r::tenant_id.eq(tenant).and(r::id.eq(id)))).execute(conn)
}

/// A page of rules after `after`, by id.
pub fn list_rules(
    conn: &mut PgConnection,
    tenant: &str,
    on_status: Option<&str>,
    order: Order,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<RuleRow>> {
    let mut q = r::rules.filter(r::tenant_id.eq(tenant)).into_boxed();
    if let Some(s) = on_status {
        q = q.filter(r::on_status.eq(s.to_string()));
    }
    q = keyset!(q, r::id, order, after);
    q.limit(limit).select(RuleRow::as_select()).load(conn)
}

/// The enabled rules for a status, in the order they are tried: priority, then name, then id.
pub fn rules_for_status(
    conn: &mut PgConnection,
    tenant: &str,
    status: &str,
) -> QueryResult<Vec<RuleRow>> {
    r::rules
        .filter(r::tenant_id.eq(tenant).and(r::on_status.eq(status)))
        .filter(r::enabled.eq(true))
        .order((r::priority.asc(), r::name.asc(), r::id.asc()))
        .select(RuleRow::as_select())
        .load(conn)
}
