//! Directory queries. Every function takes the tenant first: no query can forget it.

use diesel::prelude::*;

use super::models::{PrincipalForm, PrincipalRow};
use super::schema::principals::dsl as p;

/// Inserts or replaces a principal; `true` when it was created.
pub fn upsert(conn: &mut PgConnection, form: &PrincipalForm) -> QueryResult<(PrincipalRow, bool)> {
    let row: PrincipalRow = diesel::insert_into(p::principals)
        .values(form)
        .on_conflict((p::tenant_id, p::id))
        .do_update()
        .set((form, p::updated_at.eq(diesel::dsl::now)))
        .returning(PrincipalRow::as_returning())
        .get_result(conn)?;
    let created = row.created_at == row.updated_at;
    Ok((row, created))
}

pub fn find(conn: &mut PgConnection, tenant: &str, id: &str) -> QueryResult<PrincipalRow> {
    p::principals
        .filter(p::tenant_id.eq(tenant).and(p::id.eq(id)))
        .select(PrincipalRow::as_select())
        .first(conn)
}

/// The principal, its row locked until the transaction ends (a conditional update reads it).
pub fn find_for_update(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
) -> QueryResult<Option<PrincipalRow>> {
    p::principals
        .filter(p::tenant_id.eq(tenant).and(p::id.eq(id)))
        .select(PrincipalRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Several principals at once, in no particular order; unknown ids are simply absent.
pub fn find_many(
    conn: &mut PgConnection,
    tenant: &str,
    ids: &[String],
) -> QueryResult<Vec<PrincipalRow>> {
    p::principals
        .filter(p::tenant_id.eq(tenant).and(p::id.eq_any(ids)))
        .select(PrincipalRow::as_select())
        .load(conn)
}

/// Active principals holding `role`, in id order.
pub fn with_role(
    conn: &mut PgConnection,
    tenant: &str,
    role: &str,
) -> QueryResult<Vec<PrincipalRow>> {
    p::principals
        .filter(p::tenant_id.eq(tenant))
        .filter(p::active.eq(true))
        .filter(p::roles.contains(vec![Some(role.to_string())]))
        .order(p::id.asc())
        .select(PrincipalRow::as_select())
        .load(conn)
}
