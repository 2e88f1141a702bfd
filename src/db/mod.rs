//! Postgres access: the pool, embedded migrations, and a helper that runs diesel's blocking
//! work on actix's blocking pool with the caller's tracing span.

pub mod approvals;
pub mod automation;
pub mod idempotency;
pub mod links;
pub mod listing;
pub mod models;
pub mod principals;
pub mod processes;
pub mod schema;
pub mod statement;
pub mod time;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{AppError, AppResult};

/// The direction a list is read in, on its key (an id or a sequence): ascending pages go after
/// the cursor's position, descending ones before it. Both walk the same index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// Keyset paging on a boxed query: keeps the rows past `$after` (an `Option`) on `$key` in
/// `$order`: after it ascending, before it descending.
macro_rules! past {
    ($q:expr, $key:expr, $order:expr, $after:expr) => {
        match ($order, $after) {
            (_, None) => $q,
            ($crate::db::Order::Asc, Some(after)) => $q.filter($key.gt(after)),
            ($crate::db::Order::Desc, Some(after)) => $q.filter($key.lt(after)),
        }
    };
}

/// [`past!`], then ordered by `$key` in `$order`: one page of a list.
macro_rules! keyset {
    ($q:expr, $key:expr, $order:expr, $after:expr) => {
        match $order {
            $crate::db::Order::Asc => $crate::db::past!($q, $key, $order, $after).order($key.asc()),
            $crate::db::Order::Desc => {
                $crate::db::past!($q, $key, $order, $after).order($key.desc())
            }
        }
    };
}
pub(crate) use {keyset, past};

/// Rows per multi-row INSERT: Postgres takes at most 65,535 bound parameters per statement, so
/// a fan-out of thousands (a role with 20,000 members) is written in several statements.
pub const ROWS_PER_INSERT: usize = 2_000;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Key of the advisory lock that serialises migrations across replicas starting together.
const MIGRATION_LOCK: i64 = 0x5167_0ff0_0001;

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type Conn = PooledConnection<ConnectionManager<PgConnection>>;

/// Runs pending migrations while holding a Postgres advisory lock, so several replicas can
/// start at once: the first migrates, the others wait and then find nothing to do.
pub fn run_migrations(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|done| done.iter().map(|v| v.to_string()).collect())
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
    result
}

/// The database handle shared by handlers and workers.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    waiters: Arc<AtomicI64>,
}

impl Db {
    /// Builds the pool without connecting: the service starts (and `/readyz` answers 503) even
    /// while the database is down.
    pub fn new(url: &str, size: u32, timeout: Duration) -> Self {
        let manager = ConnectionManager::<PgConnection>::new(url);
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(timeout)
            .test_on_check_out(false)
            .build_unchecked(manager);
        Self {
            pool,
            waiters: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Takes a connection, counting how many callers are waiting for one.
    pub fn get(&self) -> AppResult<Conn> {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let conn = self.pool.get();
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        Ok(conn?)
    }

    /// Connections open, idle and callers waiting: for `/metrics`.
    pub fn stats(&self) -> (u32, u32, i64) {
        let state = self.pool.state();
        (
            state.connections,
            state.idle_connections,
            self.waiters.load(Ordering::Relaxed),
        )
    }

    pub fn max_size(&self) -> u32 {
        self.pool.max_size()
    }

    /// Runs `f` with a connection on the blocking pool.
    pub async fn run<F, T>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut PgConnection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = db.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| AppError::internal("blocking task", e))?
    }

    /// Runs `f` inside one transaction: its writes and their events commit together or not at all.
    pub async fn tx<F, T>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut PgConnection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| conn.transaction::<T, AppError, _>(f))
            .await
    }

    /// Runs `f` in one read-only REPEATABLE READ transaction: every statement of `f` reads the
    /// same snapshot, so a view built from several queries (an approval and its tasks) never
    /// mixes the states before and after a commit that lands between them.
    pub async fn read<F, T>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut PgConnection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| {
            conn.build_transaction()
                .read_only()
                .repeatable_read()
                .run::<T, AppError, _>(f)
        })
        .await
    }

    /// Is the database answering? Used by `/readyz`.
    pub async fn ping(&self) -> AppResult<()> {
        self.run(|conn| {
            conn.batch_execute("SELECT 1")?;
            Ok(())
        })
        .await
    }
}

/// Removes what nobody needs any more: idempotency keys past their 24 hours and timers
/// fired over a day ago. Bounded per call so it never holds locks for long.
pub fn housekeeping(conn: &mut PgConnection) -> diesel::QueryResult<usize> {
    use diesel::RunQueryDsl;
    let keys = diesel::sql_query(
        "DELETE FROM idempotency_keys WHERE ctid IN (
           SELECT ctid FROM idempotency_keys WHERE created_at < now() - interval '25 hours' LIMIT 1000)",
    )
    .execute(conn)?;
    let timers = diesel::sql_query(
        "DELETE FROM timers WHERE id IN (
           SELECT id FROM timers WHERE fired_at < now() - interval '1 day' LIMIT 1000)",
    )
    .execute(conn)?;
    Ok(keys + timers)
}
