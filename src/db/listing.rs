//! Pages of approvals as lists show them: the approval list (every filter) and a principal's
//! inbox. Each page is one statement, kept as a prepared statement ([`Statement`]), that
//! reads the page's approvals with only the columns a view needs (not the definition) and
//! each approval's tasks beside it, as an array of records: one round trip, one snapshot.

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use diesel::QueryResult;
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Int4, Jsonb, Nullable, Record, Text, Timestamptz, Uuid as SqlUuid,
};
use uuid::Uuid;

use super::Order;
use super::statement::Statement;

/// Filters of the approval list.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub ticket_id: Option<String>,
    pub state: Option<String>,
    pub process_id: Option<Uuid>,
    pub approver_id: Option<String>,
}

/// A `jsonb` value's text, as Postgres sends it, for the caller to parse into its own type
/// (no `serde_json::Value` in between).
#[derive(Debug, Clone, diesel::deserialize::FromSqlRow)]
pub struct JsonText(pub Vec<u8>);

impl FromSql<Jsonb, Pg> for JsonText {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        match value.as_bytes() {
            [1, text @ ..] => Ok(Self(text.to_vec())),
            _ => Err("unsupported jsonb encoding version".into()),
        }
    }
}

/// A task as a list reads it: stage, approver, state, verdict, decided_at, comment, actor,
/// on behalf of.
pub type ListedTask = (
    i32,
    String,
    String,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<String>,
);

type TaskRecord = Record<(
    Int4,
    Text,
    Text,
    Nullable<Text>,
    Nullable<Timestamptz>,
    Nullable<Text>,
    Nullable<Text>,
    Nullable<Text>,
)>;

/// An approval of a page: its stored view (JSON text), or, for an approval no command has
/// written since views were stored, what its view shows and its tasks in stage then approver
/// order (`engine` and `tasks` are read only then).
#[derive(Debug, QueryableByName)]
pub struct ListedApproval {
    #[diesel(sql_type = Nullable<Text>)]
    pub view: Option<String>,
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub ticket_id: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub ticket: Option<JsonText>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub process_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Int4>)]
    pub process_version: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub process_name: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub engine: Option<JsonText>,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub requested_by: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub status_to_set: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Array<TaskRecord>>)]
    pub tasks: Option<Vec<ListedTask>>,
}

/// The columns of [`ListedApproval`] read from the page `a`, its tasks by primary key. The
/// page is a subquery so that the tasks are read for its rows only, after the limit.
const SELECT: &str = "SELECT a.view::text AS view, a.id, a.ticket_id, \
     CASE WHEN a.view IS NULL THEN a.ticket END AS ticket, a.process_id, \
     a.process_version, a.process_name, CASE WHEN a.view IS NULL THEN a.engine END AS engine, \
     a.description, a.requested_by, a.status_to_set, a.created_at, a.updated_at, \
     CASE WHEN a.view IS NULL THEN ARRAY(SELECT ROW(t.stage, t.approver_id, t.state, t.verdict, \
     t.decided_at, t.comment, t.actor_id, t.on_behalf_of) FROM approval_tasks t \
     WHERE t.tenant_id = a.tenant_id AND t.approval_id = a.id \
     ORDER BY t.stage, t.approver_id) END AS tasks FROM (";

/// Keeps the rows of `key` past the cursor: after it ascending, before it descending.
fn past<'a>(
    q: Statement<'a>,
    key: &'static str,
    order: Order,
    after: Option<Uuid>,
) -> Statement<'a> {
    match after {
        None => q,
        Some(after) => q
            .sql(" AND ")
            .sql(key)
            .sql(match order {
                Order::Asc => " > ",
                Order::Desc => " < ",
            })
            .bind::<SqlUuid, _>(after),
    }
}

/// Orders the page by `a.id`, limits it, and orders the outer rows the same way.
fn finish(q: Statement<'_>, order: Order, limit: i64) -> Statement<'_> {
    let by = match order {
        Order::Asc => " ORDER BY a.id ASC",
        Order::Desc => " ORDER BY a.id DESC",
    };
    q.sql(by)
        .sql(" LIMIT ")
        .bind::<BigInt, _>(limit)
        .sql(") a")
        .sql(by)
}

/// A page of approvals, oldest first (`order` desc: newest first), past `after`.
pub fn list(
    conn: &mut PgConnection,
    tenant: &str,
    f: &ListFilter,
    order: Order,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<ListedApproval>> {
    let mut q = Statement::default().sql(SELECT);
    q = match &f.approver_id {
        None => q
            .sql("SELECT a.* FROM approvals a WHERE a.tenant_id = ")
            .bind::<Text, _>(tenant),
        // The approver's tasks joined to their approvals, one row per approval (`DISTINCT
        // ON` the id the page is ordered by): the planner walks the approver's tasks in
        // approval order from the cursor, either way, and stops after a page. `IN (SELECT
        // DISTINCT …)` did that ascending only: newest first, it read all of the approver's
        // tasks before the cursor and sorted them (120 ms for a heavy approver at a million
        // approvals, against 0.2 ms); `EXISTS` walked the tenant's approvals and probed each.
        Some(approver) => {
            let q = q
                .sql(
                    "SELECT DISTINCT ON (a.id) a.* FROM approvals a JOIN approval_tasks t \
                     ON t.tenant_id = a.tenant_id AND t.approval_id = a.id WHERE a.tenant_id = ",
                )
                .bind::<Text, _>(tenant)
                .sql(" AND t.approver_id = ")
                .bind::<Text, _>(approver);
            // The cursor on the tasks too: Postgres carries equalities across a join, not
            // ranges.
            past(q, "t.approval_id", order, after)
        }
    };
    if let Some(ticket) = &f.ticket_id {
        q = q.sql(" AND a.ticket_id = ").bind::<Text, _>(ticket);
    }
    if let Some(state) = &f.state {
        q = q.sql(" AND a.state = ").bind::<Text, _>(state);
    }
    if let Some(process) = f.process_id {
        q = q.sql(" AND a.process_id = ").bind::<SqlUuid, _>(process);
    }
    q = past(q, "a.id", order, after);
    finish(q, order, limit).load(conn)
}

/// Pending approvals waiting for any of these principals in their running stage.
///
/// It walks the principal's pending tasks (`approval_tasks_pending_approver_idx`, whose
/// predicate is written here as a literal so that every plan can use it) in approval order
/// from the cursor, and stops after a page. One principal (no delegation in force) needs no
/// `DISTINCT`: the primary key allows one of their tasks per stage, and only the running
/// stage's joins. Several need it (`DISTINCT ON` the id the page is ordered by), and then sort
/// their pending tasks (not their history).
///
/// No `approvals.state = 'pending'`: only a pending approval has a running stage (closing one
/// clears `current_stage` and supersedes its open tasks), so the join says it already; with
/// it the planner, multiplying the two as if independent, expected a handful of rows, read
/// every pending task of the principal and sorted them (44 ms for a heavy approver at a
/// million approvals, against 1.6 ms walking the index).
pub fn inbox(
    conn: &mut PgConnection,
    tenant: &str,
    approvers: &[String],
    order: Order,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<ListedApproval>> {
    let mut q = Statement::default().sql(SELECT).sql(match approvers {
        [_] => "SELECT a.*",
        _ => "SELECT DISTINCT ON (a.id) a.*",
    });
    q = q
        .sql(
            " FROM approvals a JOIN approval_tasks t ON t.tenant_id = a.tenant_id \
             AND t.approval_id = a.id AND a.current_stage = t.stage \
             WHERE a.tenant_id = ",
        )
        .bind::<Text, _>(tenant)
        .sql(" AND t.state = 'pending'");
    q = match approvers {
        [one] => q.sql(" AND t.approver_id = ").bind::<Text, _>(one),
        many => q
            .sql(" AND t.approver_id = ANY(")
            .bind::<Array<Text>, _>(many)
            .sql(")"),
    };
    // The cursor on the tasks too: Postgres carries equalities across a join, not ranges.
    q = past(q, "t.approval_id", order, after);
    q = past(q, "a.id", order, after);
    finish(q, order, limit).load(conn)
}
