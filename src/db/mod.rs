//! Postgres access: the pool, embedded migrations, and a helper that runs diesel's blocking
//! work on actix's blocking pool with the caller's tracing span.

pub mod approvals;
pub mod automation;
pub mod host_actions;
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
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// The pool's gauges.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub open: u32,
    pub idle: u32,
    pub waiting: i64,
    pub reads_waiting: i64,
}

/// The database handle shared by handlers and workers.
///
/// Reads ([`Db::query`], [`Db::read`]) take one of a few read lanes, first come first served,
/// and run on a pool of their own with a connection per lane. A read waits on nothing but
/// Postgres's CPU, so more of them at once than it has cores only queues them inside Postgres,
/// where a backend descheduled mid-page holds up the others: on two cores, 8 concurrent list
/// pages through 8 connections had a p99 of 14 to 36 ms and stalls of 100 ms or more; through
/// 2 lanes, 5 to 8 ms at the same throughput. Writes wait on their commit's flush as well, so
/// they are not limited beyond their pool.
///
/// The read pool's sessions are read-only, and use the generic plan of every prepared
/// statement from its first call: the plans the tests check are the plans that run. (With
/// Postgres's default, a connection's first five calls of a statement are planned for their
/// values: at a million approvals, the inbox of a principal asked on every pending approval
/// was then planned as a scan and sort of all their 35,000 pending tasks, 250 ms a page,
/// instead of a walk of a page of them, 1 ms.) Without JIT compilation: a generic plan does
/// not know its `LIMIT`, so Postgres costs a page of 50 as a tenth of the table, and at a
/// million approvals compiled every page of the approval list, 110 ms of a 112 ms page.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    waiters: Arc<AtomicI64>,
    reads: PgPool,
    lanes: Arc<Semaphore>,
    lane_waiters: Arc<AtomicI64>,
    timeout: Duration,
}

/// What a connection of the read pool is told once, when it opens.
#[derive(Debug)]
struct ReadSession;

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for ReadSession {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(
            "SET default_transaction_read_only = on; SET plan_cache_mode = force_generic_plan; \
             SET jit = off",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Db {
    /// Builds the pools without connecting: the service starts (and `/readyz` answers 503)
    /// even while the database is down. `size` connections for writes and everything else,
    /// `reads` read lanes with a connection each.
    pub fn new(url: &str, size: u32, reads: u32, timeout: Duration) -> Self {
        let builder = |size: u32| {
            Pool::builder()
                .max_size(size)
                .min_idle(Some(0))
                .connection_timeout(timeout)
                .test_on_check_out(false)
        };
        let manager = || ConnectionManager::<PgConnection>::new(url);
        let lanes = reads.max(1);
        Self {
            pool: builder(size).build_unchecked(manager()),
            waiters: Arc::new(AtomicI64::new(0)),
            reads: builder(lanes)
                .connection_customizer(Box::new(ReadSession))
                .build_unchecked(manager()),
            lanes: Arc::new(Semaphore::new(lanes as usize)),
            lane_waiters: Arc::new(AtomicI64::new(0)),
            timeout,
        }
    }

    /// Takes a connection, counting how many callers are waiting for one.
    pub fn get(&self) -> AppResult<Conn> {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let conn = self.pool.get();
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        Ok(conn?)
    }

    /// Connections open, idle and callers waiting for one; reads waiting for a lane: for
    /// `/metrics`.
    pub fn stats(&self) -> PoolStats {
        let state = self.pool.state();
        PoolStats {
            open: state.connections,
            idle: state.idle_connections,
            waiting: self.waiters.load(Ordering::Relaxed),
            reads_waiting: self.lane_waiters.load(Ordering::Relaxed),
        }
    }

    pub fn max_size(&self) -> u32 {
        self.pool.max_size()
    }

    /// Read lanes: reads that may run at once (a connection of the read pool each).
    pub fn read_lanes(&self) -> u32 {
        self.reads.max_size()
    }

    /// Waits (in turn, at most the pool's timeout) for a read lane, held until the read it is
    /// moved into ends, even when the request that asked for it is dropped first.
    async fn lane(&self) -> AppResult<OwnedSemaphorePermit> {
        self.lane_waiters.fetch_add(1, Ordering::Relaxed);
        let lane = tokio::time::timeout(self.timeout, self.lanes.clone().acquire_owned()).await;
        self.lane_waiters.fetch_sub(1, Ordering::Relaxed);
        match lane {
            Ok(Ok(lane)) => Ok(lane),
            Ok(Err(closed)) => Err(AppError::internal("read lanes", closed)),
            Err(_) => Err(AppError::Unavailable(format!(
                "no read lane free within {:?}",
                self.timeout
            ))),
        }
    }

    /// Runs `f` with a connection on the blocking pool.
    pub async fn run<F, T>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut PgConnection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.blocking(None, f).await
    }

    /// Runs `f`, which only reads, in a read lane (a read-only session): one statement, or
    /// several that need not share a snapshot (else [`Db::read`]).
    pub async fn query<F, T>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut PgConnection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let lane = self.lane().await?;
        self.blocking(Some(lane), f).await
    }

    async fn blocking<F, T>(&self, lane: Option<OwnedSemaphorePermit>, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut PgConnection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = match lane {
                Some(_) => db.reads.get()?,
                None => db.get()?,
            };
            let done = f(&mut conn);
            // The connection back in the read pool first, then the lane free: the next read
            // in the lane finds it there.
            drop(conn);
            drop(lane);
            done
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
        self.query(move |conn| {
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
