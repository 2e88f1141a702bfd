//! Process queries: a live row per process plus an immutable row per version.

use super::{Order, keyset};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::models::{NewProcess, ProcessRow, ProcessVersionRow};
use super::schema::process_versions::dsl as v;
use super::schema::processes::dsl as p;

/// Which processes a listing wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnabledFilter {
    Any,
    Enabled,
    Disabled,
}

pub fn insert(
    conn: &mut PgConnection,
    new: &NewProcess,
    definition: &serde_json::Value,
) -> QueryResult<(ProcessRow, ProcessVersionRow)> {
    let row = diesel::insert_into(p::processes)
        .values(new)
        .returning(ProcessRow::as_returning())
        .get_result(conn)?;
    let version = insert_version(conn, &row, definition)?;
    Ok((row, version))
}

fn insert_version(
    conn: &mut PgConnection,
    row: &ProcessRow,
    definition: &serde_json::Value,
) -> QueryResult<ProcessVersionRow> {
    diesel::insert_into(v::process_versions)
        .values((
            v::tenant_id.eq(&row.tenant_id),
            v::process_id.eq(row.id),
            v::version.eq(row.current_version),
            v::definition.eq(definition),
        ))
        .returning(ProcessVersionRow::as_returning())
        .get_result(conn)
}

/// A live (not deleted) process with its current definition.
pub fn find(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
) -> QueryResult<(ProcessRow, ProcessVersionRow)> {
    p::processes
        .inner_join(
            v::process_versions.on(v::tenant_id
                .eq(p::tenant_id)
                .and(v::process_id.eq(p::id))
                .and(v::version.eq(p::current_version))),
        )
        .filter(p::tenant_id.eq(tenant).and(p::id.eq(id)))
        .filter(p::deleted_at.is_null())
        .select((ProcessRow::as_select(), ProcessVersionRow::as_select()))
        .first(conn)
}

/// The same, locking the process row so a concurrent update or delete waits.
pub fn find_for_update(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<ProcessRow> {
    p::processes
        .filter(p::tenant_id.eq(tenant).and(p::id.eq(id)))
        .filter(p::deleted_at.is_null())
        .select(ProcessRow::as_select())
        .for_update()
        .first(conn)
}

/// One version of a process, even a deleted one: running approvals still need theirs.
pub fn find_version(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    version: i32,
) -> QueryResult<ProcessVersionRow> {
    v::process_versions
        .filter(v::tenant_id.eq(tenant))
        .filter(v::process_id.eq(id).and(v::version.eq(version)))
        .select(ProcessVersionRow::as_select())
        .first(conn)
}

/// Every version of a process, newest first.
pub fn versions(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
) -> QueryResult<Vec<ProcessVersionRow>> {
    v::process_versions
        .filter(v::tenant_id.eq(tenant).and(v::process_id.eq(id)))
        .order(v::version.desc())
        .select(ProcessVersionRow::as_select())
        .load(conn)
}

/// Switches a process off by hand; running approvals go on.
pub fn disable(conn: &mut PgConnection, row: &ProcessRow, reason: &str) -> QueryResult<ProcessRow> {
    diesel::update(p::processes)
        .filter(p::tenant_id.eq(&row.tenant_id).and(p::id.eq(row.id)))
        .set((
            p::enabled.eq(false),
            p::disabled_reason.eq(reason),
            p::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ProcessRow::as_returning())
        .get_result(conn)
}

/// A page of live processes after `after`, oldest first.
pub fn list(
    conn: &mut PgConnection,
    tenant: &str,
    filter: EnabledFilter,
    order: Order,
    after: Option<Uuid>,
    limit: i64,
    now: DateTime<Utc>,
) -> QueryResult<Vec<(ProcessRow, ProcessVersionRow)>> {
    let mut q = p::processes
        .inner_join(
            v::process_versions.on(v::tenant_id
                .eq(p::tenant_id)
                .and(v::process_id.eq(p::id))
                .and(v::version.eq(p::current_version))),
        )
        .filter(p::tenant_id.eq(tenant))
        .filter(p::deleted_at.is_null())
        .into_boxed();
    let live = p::enabled
        .eq(true)
        .and(p::expires_at.is_null().or(p::expires_at.gt(now)));
    match filter {
        EnabledFilter::Any => {}
        EnabledFilter::Enabled => q = q.filter(live),
        EnabledFilter::Disabled => q = q.filter(diesel::dsl::not(live)),
    }
    q = keyset!(q, p::id, order, after);
    q.limit(limit)
        .select((ProcessRow::as_select(), ProcessVersionRow::as_select()))
        .load(conn)
}

/// Writes a new version and makes it current.
pub fn update(
    conn: &mut PgConnection,
    row: &ProcessRow,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    definition: &serde_json::Value,
) -> QueryResult<(ProcessRow, ProcessVersionRow)> {
    let row: ProcessRow = diesel::update(p::processes)
        .filter(p::tenant_id.eq(&row.tenant_id).and(p::id.eq(row.id)))
        .set((
            p::current_version.eq(p::current_version + 1),
            p::name.eq(name),
            p::expires_at.eq(expires_at),
            p::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ProcessRow::as_returning())
        .get_result(conn)?;
    let version = insert_version(conn, &row, definition)?;
    Ok((row, version))
}

/// Soft-deletes: versions stay for running approvals, the name becomes free again.
pub fn delete(conn: &mut PgConnection, tenant: &str, id: Uuid) -> QueryResult<usize> {
    diesel::update(p::processes)
        .filter(p::tenant_id.eq(tenant).and(p::id.eq(id)))
        .filter(p::deleted_at.is_null())
        .set((
            p::deleted_at.eq(diesel::dsl::now),
            p::enabled.eq(false),
            p::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
}

/// Re-enables a disabled process with a new expiry.
pub fn restore(
    conn: &mut PgConnection,
    row: &ProcessRow,
    expires_at: Option<DateTime<Utc>>,
) -> QueryResult<ProcessRow> {
    diesel::update(p::processes)
        .filter(p::tenant_id.eq(&row.tenant_id).and(p::id.eq(row.id)))
        .set((
            p::enabled.eq(true),
            p::disabled_reason.eq(None::<String>),
            p::expires_at.eq(expires_at),
            p::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ProcessRow::as_returning())
        .get_result(conn)
}

/// One enabled process past its expiry, locked; other workers skip it.
pub fn take_expired(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> QueryResult<Option<ProcessRow>> {
    p::processes
        .filter(p::enabled.eq(true).and(p::deleted_at.is_null()))
        .filter(p::expires_at.le(now))
        .order(p::expires_at.asc())
        .limit(1)
        .for_update()
        .skip_locked()
        .select(ProcessRow::as_select())
        .first(conn)
        .optional()
}

pub fn mark_expired(conn: &mut PgConnection, row: &ProcessRow) -> QueryResult<()> {
    diesel::update(p::processes)
        .filter(p::tenant_id.eq(&row.tenant_id).and(p::id.eq(row.id)))
        .set((
            p::enabled.eq(false),
            p::disabled_reason.eq("expired"),
            p::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}
