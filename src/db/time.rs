//! Calendars, delegations and timers.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::models::{CalendarRow, DelegationRow, TimerRow};
use super::schema::calendars::dsl as c;
use super::schema::delegations::dsl as d;
use super::schema::timers::dsl as t;

/// Inserts or replaces a calendar; `true` when it was created.
pub fn upsert_calendar(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
    definition: &serde_json::Value,
) -> QueryResult<(CalendarRow, bool)> {
    let row: CalendarRow = diesel::insert_into(c::calendars)
        .values((
            c::tenant_id.eq(tenant),
            c::id.eq(id),
            c::definition.eq(definition),
        ))
        .on_conflict((c::tenant_id, c::id))
        .do_update()
        .set((
            c::definition.eq(definition),
            c::updated_at.eq(diesel::dsl::now),
        ))
        .returning(CalendarRow::as_returning())
        .get_result(conn)?;
    let created = row.created_at == row.updated_at;
    Ok((row, created))
}

pub fn find_calendar(conn: &mut PgConnection, tenant: &str, id: &str) -> QueryResult<CalendarRow> {
    c::calendars
        .filter(c::tenant_id.eq(tenant).and(c::id.eq(id)))
        .select(CalendarRow::as_select())
        .first(conn)
}

/// The calendar, its row locked until the transaction ends (a conditional update reads it).
pub fn find_calendar_for_update(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
) -> QueryResult<Option<CalendarRow>> {
    c::calendars
        .filter(c::tenant_id.eq(tenant).and(c::id.eq(id)))
        .select(CalendarRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Which of these calendar ids exist.
pub fn existing_calendars(
    conn: &mut PgConnection,
    tenant: &str,
    ids: &[String],
) -> QueryResult<Vec<String>> {
    c::calendars
        .filter(c::tenant_id.eq(tenant).and(c::id.eq_any(ids)))
        .select(c::id)
        .load(conn)
}

/// The delegation, its row locked until the transaction ends (a conditional update reads it).
pub fn find_delegation_for_update(
    conn: &mut PgConnection,
    tenant: &str,
    principal: &str,
) -> QueryResult<Option<DelegationRow>> {
    d::delegations
        .filter(d::tenant_id.eq(tenant).and(d::principal_id.eq(principal)))
        .select(DelegationRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

pub fn upsert_delegation(
    conn: &mut PgConnection,
    row: &DelegationRow,
) -> QueryResult<DelegationRow> {
    diesel::insert_into(d::delegations)
        .values(row)
        .on_conflict((d::tenant_id, d::principal_id))
        .do_update()
        .set(row)
        .returning(DelegationRow::as_returning())
        .get_result(conn)
}

pub fn find_delegation(
    conn: &mut PgConnection,
    tenant: &str,
    principal: &str,
) -> QueryResult<DelegationRow> {
    d::delegations
        .filter(d::tenant_id.eq(tenant).and(d::principal_id.eq(principal)))
        .select(DelegationRow::as_select())
        .first(conn)
}

pub fn delete_delegation(
    conn: &mut PgConnection,
    tenant: &str,
    principal: &str,
) -> QueryResult<usize> {
    diesel::delete(
        d::delegations.filter(d::tenant_id.eq(tenant).and(d::principal_id.eq(principal))),
    )
    .execute(conn)
}

/// Delegations of these principals that are in force at `at`.
pub fn active_delegations(
    conn: &mut PgConnection,
    tenant: &str,
    principals: &[String],
    at: DateTime<Utc>,
) -> QueryResult<Vec<DelegationRow>> {
    d::delegations
        .filter(
            d::tenant_id
                .eq(tenant)
                .and(d::principal_id.eq_any(principals)),
        )
        .filter(d::starts_at.le(at).and(d::ends_at.gt(at)))
        .select(DelegationRow::as_select())
        .load(conn)
}

pub fn insert_timers(conn: &mut PgConnection, rows: &[TimerRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    for chunk in rows.chunks(super::ROWS_PER_INSERT) {
        diesel::insert_into(t::timers).values(chunk).execute(conn)?;
    }
    Ok(())
}

/// Takes one due timer, locked for the rest of the transaction; other workers skip it.
pub fn take_due_timer(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> QueryResult<Option<TimerRow>> {
    // The later of the caller's clock and the database's: a manual clock in tests moves
    // timers on, and a replica whose clock lags never holds a due timer back.
    let due_by = diesel::dsl::sql::<diesel::sql_types::Timestamptz>("GREATEST(now(), ")
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .sql(")");
    t::timers
        .filter(t::fired_at.is_null().and(t::due_at.le(due_by)))
        .order(t::due_at.asc())
        .limit(1)
        .for_update()
        .skip_locked()
        .select(TimerRow::as_select())
        .first(conn)
        .optional()
}

pub fn mark_fired(conn: &mut PgConnection, timer: &TimerRow, at: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(t::timers.filter(t::id.eq(timer.id)))
        .set(t::fired_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Who has delegated to `delegate` with a delegation in force at `at`.
pub fn delegators_of(
    conn: &mut PgConnection,
    tenant: &str,
    delegate: &str,
    at: DateTime<Utc>,
) -> QueryResult<Vec<String>> {
    d::delegations
        .filter(d::tenant_id.eq(tenant).and(d::delegate_id.eq(delegate)))
        .filter(d::starts_at.le(at).and(d::ends_at.gt(at)))
        .select(d::principal_id)
        .load(conn)
}

/// Stops an approval's timers that have not fired (a question to the requester stops the
/// stage's clock), answering them as they were.
pub fn stop_unfired(
    conn: &mut PgConnection,
    tenant: &str,
    approval: uuid::Uuid,
    at: DateTime<Utc>,
) -> QueryResult<Vec<TimerRow>> {
    diesel::update(
        t::timers
            .filter(t::tenant_id.eq(tenant))
            .filter(t::approval_id.eq(approval))
            .filter(t::fired_at.is_null()),
    )
    .set(t::fired_at.eq(at))
    .returning(TimerRow::as_returning())
    .get_results(conn)
}
