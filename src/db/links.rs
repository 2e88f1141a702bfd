//! Approver links. Looked up by token hash alone: the token is the only credential.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::models::LinkRow;
use super::schema::approval_links::dsl as l;

pub fn insert(conn: &mut PgConnection, rows: &[LinkRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    for chunk in rows.chunks(super::ROWS_PER_INSERT) {
        diesel::insert_into(l::approval_links)
            .values(chunk)
            .execute(conn)?;
    }
    Ok(())
}

pub fn find(conn: &mut PgConnection, token_hash: &str) -> QueryResult<LinkRow> {
    l::approval_links
        .filter(l::token_hash.eq(token_hash))
        .select(LinkRow::as_select())
        .first(conn)
}

pub fn mark_used(
    conn: &mut PgConnection,
    token_hash: &str,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        l::approval_links
            .filter(l::token_hash.eq(token_hash))
            .filter(l::used_at.is_null()),
    )
    .set(l::used_at.eq(at))
    .execute(conn)
}

/// Moves the expiry of a stage's unused links to `until` (its deadline started again): links
/// live as long as their stage waits.
pub fn extend_stage(
    conn: &mut PgConnection,
    tenant: &str,
    approval: uuid::Uuid,
    stage: i32,
    until: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        l::approval_links
            .filter(l::tenant_id.eq(tenant))
            .filter(l::approval_id.eq(approval))
            .filter(l::stage.eq(stage))
            .filter(l::used_at.is_null()),
    )
    .set(l::expires_at.eq(until))
    .execute(conn)
}
