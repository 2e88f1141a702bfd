//! The background worker inside `serve`: delivers webhooks from the Postgres outbox, and runs
//! durable timers and process expiry. Any number of replicas may run it.
//!
//! Four supervised loops (see [`supervise`]): `session` holds this worker's liveness lock and
//! LISTENs; `deliveries` claims due deliveries continuously and runs each attempt as its own
//! task under a global cap and a per-endpoint cap; `recorder` writes the attempts' results in
//! batches; `timers` fires timers, expires processes and keeps the outbox's statistics fresh. Each lease names its worker, and a
//! worker whose liveness lock is gone (the process died) has its leases taken over at once.

mod actions;
mod deliver;
mod held;
mod listener;
mod supervise;
mod tls;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::service::store::Ctx;
use crate::service::time;
use crate::webhooks::delivery;

/// How often old idempotency keys and fired timers are cleared, and secrets re-sealed.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(300);

/// Timers handled per round.
const TIMER_BATCH: usize = 16;

/// How often the outbox's statistics are checked (and refreshed when a burst made them stale).
const STATISTICS_EVERY: Duration = Duration::from_secs(1);

/// The loops a running worker has; `/readyz` fails while one is down.
const LOOPS: &[&str] = &["session", "deliveries", "recorder", "timers", "actions"];

/// What [`Worker::run_pending`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ran {
    pub deliveries: usize,
    pub timers: usize,
    /// Host action deliveries run (each to its end or its first failure).
    pub actions: usize,
}

/// Handle to the worker; cheap to clone.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    db: Db,
    http: reqwest::Client,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    clock: Clock,
    /// This worker's number: the second key of its liveness lock, and `leased_by`.
    key: i32,
    /// New work may be there: a notification arrived.
    wake: Arc<Notify>,
    /// An attempt ended; [`held::Held::take_freed`] says whether to claim for it.
    freed: Notify,
    /// True while the session holds the liveness lock; nothing is claimed otherwise.
    alive: watch::Sender<bool>,
    stopping: watch::Sender<bool>,
    slots: Arc<Semaphore>,
    /// The deliveries this worker holds, waiting or in flight, per endpoint.
    held: Mutex<held::Held>,
    in_flight: AtomicUsize,
    idle: Notify,
    recorder: mpsc::UnboundedSender<deliver::ToRecord>,
    recorder_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<deliver::ToRecord>>,
    /// A session opened by [`Worker::run_pending`] when no loop runs.
    manual_session: tokio::sync::Mutex<Option<listener::Session>>,
    loops: Mutex<Vec<supervise::AbortOnDrop<()>>>,
    /// Host action deliveries that may run at once, their count per action, and the loop's
    /// wake-ups (new work, a slot freed).
    action_slots: Arc<Semaphore>,
    actions_held: Mutex<actions::ActionsHeld>,
    action_wake: Arc<Notify>,
    action_freed: Notify,
}

impl Inner {
    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// A context for timers, reading this worker's clock.
    fn ctx(&self) -> Ctx {
        Ctx::new(self.clock.now(), &self.settings.public_url)
    }

    /// Fires due timers and expires processes, each in its own transaction, up to a batch.
    async fn timer_round(&self) -> anyhow::Result<usize> {
        let mut handled = 0;
        while handled < TIMER_BATCH {
            let ctx = self.ctx();
            let fired = self
                .db
                .tx(move |c| {
                    if time::fire_next(c, &ctx)? {
                        return Ok(true);
                    }
                    time::expire_next_process(c, &ctx)
                })
                .await?;
            if !fired {
                break;
            }
            handled += 1;
        }
        Ok(handled)
    }

    async fn refresh_statistics(&self) {
        match self
            .db
            .run(|c| Ok(crate::db::webhooks::refresh_outbox_statistics(c)?))
            .await
        {
            Ok(true) => tracing::info!("outbox analyzed after a burst"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not refresh the outbox's statistics"),
        }
    }

    async fn housekeeping(&self) {
        match self.db.run(|c| Ok(crate::db::housekeeping(c)?)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "housekeeping"),
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
        if let Some(keys) = self.settings.secret_keys.clone() {
            let endpoint_keys = keys.clone();
            match self
                .db
                .run(move |c| Ok(crate::webhooks::reseal::reseal_all(c, &endpoint_keys)?))
                .await
            {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(endpoints = n, "webhook secrets sealed with the current key")
                }
                Err(e) => tracing::warn!(error = %e, "re-sealing webhook secrets failed"),
            }
            match self
                .db
                .run(move |c| crate::service::host_actions::reseal_all(c, &keys))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    actions = n,
                    "host action secrets sealed with the current key"
                ),
                Err(e) => tracing::warn!(error = %e, "re-sealing host action secrets failed"),
            }
        }
    }
}

fn timers_loop(w: Arc<Inner>, healthy: supervise::Healthy) -> supervise::LoopFuture {
    Box::pin(async move {
        healthy.set();
        let mut stopping = w.stopping.subscribe();
        let mut last_housekeeping: Option<std::time::Instant> = None;
        let mut last_statistics = std::time::Instant::now();
        loop {
            if w.is_stopping() {
                return Ok(());
            }
            if last_statistics.elapsed() >= STATISTICS_EVERY {
                last_statistics = std::time::Instant::now();
                w.refresh_statistics().await;
            }
            if last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
                last_housekeeping = Some(std::time::Instant::now());
                w.housekeeping().await;
            }
            if w.timer_round().await? < TIMER_BATCH {
                tokio::select! {
                    _ = tokio::time::sleep(w.settings.webhooks.poll_interval) => {}
                    _ = stopping.changed() => {}
                }
            }
        }
    })
}

fn session_loop(w: Arc<Inner>, healthy: supervise::Healthy) -> supervise::LoopFuture {
    Box::pin(async move {
        let mut session = listener::Session::open(w.settings.database_url(), w.key, true).await?;
        w.alive.send_replace(true);
        healthy.set();
        let ended = session.forward(&[&w.wake, &w.action_wake]).await;
        w.alive.send_replace(false);
        ended
    })
}

impl Worker {
    /// Builds the worker; a delivery client that cannot be built is an error (start-up stops).
    pub fn new(
        db: Db,
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let http = delivery::client(&settings.webhooks, settings.webhook_allow_private)?;
        let (recorder, recorder_rx) = mpsc::unbounded_channel();
        let slots = Arc::new(Semaphore::new(settings.webhooks.concurrency));
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                http,
                metrics,
                clock,
                key: rand::thread_rng().gen_range(1..i32::MAX),
                wake: Arc::new(Notify::new()),
                freed: Notify::new(),
                alive: watch::Sender::new(false),
                stopping: watch::Sender::new(false),
                slots,
                held: Mutex::new(held::Held::new(settings.webhooks.endpoint_concurrency)),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                recorder,
                recorder_rx: tokio::sync::Mutex::new(recorder_rx),
                manual_session: tokio::sync::Mutex::new(None),
                loops: Mutex::new(Vec::new()),
                action_slots: Arc::new(Semaphore::new(settings.webhooks.concurrency)),
                actions_held: Mutex::new(actions::ActionsHeld::default()),
                action_wake: Arc::new(Notify::new()),
                action_freed: Notify::new(),
                settings,
            }),
        })
    }

    /// This worker's number, as its leases show it in `leased_by`.
    pub fn key(&self) -> i32 {
        self.inner.key
    }

    /// Starts the supervised loops on the current runtime.
    pub fn start(&self) {
        let w = &self.inner;
        w.metrics.expect_loops(LOOPS);
        let mut loops = w.loops.lock().unwrap_or_else(|e| e.into_inner());
        loops.push(supervise::AbortOnDrop(supervise::spawn(
            "session",
            w.clone(),
            session_loop,
        )));
        loops.push(supervise::AbortOnDrop(supervise::spawn(
            "recorder",
            w.clone(),
            deliver::recorder_loop,
        )));
        loops.push(supervise::AbortOnDrop(supervise::spawn(
            "deliveries",
            w.clone(),
            deliver::claim_loop,
        )));
        loops.push(supervise::AbortOnDrop(supervise::spawn(
            "timers",
            w.clone(),
            timers_loop,
        )));
        loops.push(supervise::AbortOnDrop(supervise::spawn(
            "actions",
            w.clone(),
            actions::actions_loop,
        )));
        tracing::info!(worker = w.key, "worker started");
    }

    /// Stops claiming new work (SIGTERM); [`Worker::shutdown`] finishes the rest.
    pub fn begin_shutdown(&self) {
        if !self.inner.stopping.send_replace(true) {
            tracing::info!("worker stopping: no new work is claimed");
        }
    }

    /// Stops claiming, lets attempts in flight finish (each bounded by the webhook timeout)
    /// and records them, gives back the leases of anything not attempted, then stops the
    /// loops (the session last, so our leases stay ours until then).
    pub async fn shutdown(&self) {
        let w = &self.inner;
        self.begin_shutdown();
        // What was claimed but not started is given back below, with the other leases.
        w.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drop_waiting();
        let limit = w.settings.webhooks.timeout + Duration::from_secs(5);
        let drained = tokio::time::timeout(limit, async {
            loop {
                let idle = w.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if w.in_flight.load(Ordering::SeqCst) == 0 {
                    break;
                }
                idle.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("attempts still in flight at shutdown were abandoned");
        }
        // Host actions stop between requests; the one in flight ends within its timeout.
        let all = w.settings.webhooks.concurrency as u32;
        if tokio::time::timeout(limit, w.action_slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("host action requests still in flight at shutdown were abandoned");
        }
        actions::release(w).await;
        let key = w.key;
        match w
            .db
            .run(move |c| Ok(crate::db::webhooks::release_leases(c, key)?))
            .await
        {
            Ok(n) if n > 0 => tracing::info!(released = n, "leases given back"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not give back leases; they expire"),
        }
        let mut loops = std::mem::take(&mut *w.loops.lock().unwrap_or_else(|e| e.into_inner()));
        // Dropping aborts; the session is first in the list, so drop it last.
        while let Some(l) = loops.pop() {
            drop(l);
        }
        *w.manual_session.lock().await = None;
        tracing::info!("worker stopped");
    }

    /// Runs the worker once by hand, for tests: fires every due timer, then claims, sends and
    /// records every due delivery, round after round until nothing is due. Returns what it
    /// did. Works whether or not the loops run (without them it opens its own session).
    pub async fn run_pending(&self) -> anyhow::Result<Ran> {
        let w = &self.inner;
        self.ensure_session().await?;
        let mut ran = Ran::default();
        loop {
            let n = w.timer_round().await?;
            ran.timers += n;
            if n < TIMER_BATCH {
                break;
            }
        }
        loop {
            let n = deliver::run_round(w).await?;
            let a = actions::run_round(w).await?;
            if n == 0 && a == 0 {
                break;
            }
            ran.deliveries += n;
            ran.actions += a;
        }
        Ok(ran)
    }

    /// Makes sure this worker holds its liveness lock: the running session's, or one of its own.
    async fn ensure_session(&self) -> anyhow::Result<()> {
        let w = &self.inner;
        if !w.loops.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            let mut alive = w.alive.subscribe();
            tokio::time::timeout(Duration::from_secs(10), alive.wait_for(|a| *a))
                .await
                .map_err(|_| anyhow::anyhow!("the worker session did not start"))??;
            return Ok(());
        }
        let mut manual = w.manual_session.lock().await;
        if manual.is_none() {
            *manual = Some(listener::Session::open(w.settings.database_url(), w.key, false).await?);
        }
        Ok(())
    }
}
