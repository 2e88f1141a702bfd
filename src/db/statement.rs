//! A statement written in SQL that diesel keeps as a prepared statement.
//!
//! `diesel::sql_query` is never cached: its text could be anything, so diesel parses and
//! Postgres plans it again on every call. A [`Statement`] is built only from `&'static str`
//! fragments and bound values, so its text is one of the few its builder can write (one per
//! shape of a query: which filters, which order), and diesel caches it by that text like any
//! query of its DSL: each pooled connection prepares it once, and Postgres keeps its plan
//! where a generic one is as good (`plan_cache_mode = auto`).

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{PgConnection, QueryResult};

/// SQL text and bound values, in order; rows are read with `QueryableByName`.
#[derive(Default)]
pub struct Statement<'a> {
    parts: Vec<Part<'a>>,
}

enum Part<'a> {
    Sql(&'static str),
    Bind(Box<dyn QueryFragment<Pg> + Send + 'a>),
}

struct Bind<ST, U> {
    value: U,
    sql_type: PhantomData<ST>,
}

impl<ST, U> QueryFragment<Pg> for Bind<ST, U>
where
    Pg: HasSqlType<ST>,
    U: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, U>(&self.value)
    }
}

impl<'a> Statement<'a> {
    /// Appends SQL text. Only static text: the set of texts stays as small as the set of
    /// shapes, which is what makes caching them safe.
    pub fn sql(mut self, sql: &'static str) -> Self {
        self.parts.push(Part::Sql(sql));
        self
    }

    /// Appends a placeholder (`$n`) bound to `value`.
    pub fn bind<ST, U>(mut self, value: U) -> Self
    where
        Pg: HasSqlType<ST>,
        U: ToSql<ST, Pg> + Send + 'a,
        ST: Send + 'a,
    {
        self.parts.push(Part::Bind(Box::new(Bind {
            value,
            sql_type: PhantomData::<ST>,
        })));
        self
    }
}

impl QueryFragment<Pg> for Statement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(sql) => out.push_sql(sql),
                Part::Bind(bind) => bind.walk_ast(out.reborrow())?,
            }
        }
        Ok(())
    }
}

/// No static id: diesel caches the statement by its text (and bind types).
impl QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<PgConnection> for Statement<'_> {}

/// A fixed SQL condition. Unlike `diesel::dsl::sql`, whose text could differ between calls, it
/// keeps the query around it a prepared statement; and unlike a bound value, a literal in it
/// (`state = 'pending'`) lets every plan, generic ones included, use a partial index with
/// that predicate.
#[derive(Debug, Clone, Copy)]
pub struct Condition(pub &'static str);

impl diesel::Expression for Condition {
    type SqlType = diesel::sql_types::Bool;
}

impl QueryFragment<Pg> for Condition {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(self.0);
        Ok(())
    }
}

/// No static id: diesel caches the query by its text, which this fixes.
impl QueryId for Condition {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<QS> diesel::AppearsOnTable<QS> for Condition {}

impl<QS> diesel::SelectableExpression<QS> for Condition {}

impl diesel::expression::ValidGrouping<()> for Condition {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}
