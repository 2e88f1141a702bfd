//! The background worker inside `serve`: delivers webhooks from the Postgres outbox (and runs
//! durable timers). Any number of replicas may run it: work is claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease, so each attempt is made by one worker, and a worker
//! that dies leaves a lease that expires and lets another pick the work up.

mod listener;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::db::webhooks::{self as q, Claimed};
use crate::metrics::Metrics;
use crate::service::approvals::Ctx;
use crate::service::time;
use crate::webhooks::delivery::{self, Verdict};

/// How often old idempotency keys and fired timers are cleared.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(300);

/// Deliveries claimed per round.
const BATCH: i64 = 16;

/// Handle to a running worker.
pub struct Worker {
    db: Db,
    http: reqwest::Client,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    clock: Clock,
}

impl Worker {
    pub fn new(db: Db, settings: Arc<Settings>, metrics: Arc<Metrics>, clock: Clock) -> Self {
        Self {
            http: delivery::client(&settings.webhooks, settings.webhook_allow_private),
            db,
            settings,
            metrics,
            wake: Arc::new(Notify::new()),
            clock,
        }
    }

    /// Starts the worker and its LISTEN connection on the current runtime.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        listener::spawn(self.settings.database_url().to_string(), self.wake.clone());
        tokio::spawn(async move { self.run().await })
    }

    async fn run(self) {
        tracing::info!("worker started");
        let mut last_housekeeping = std::time::Instant::now() - HOUSEKEEPING_EVERY;
        loop {
            if last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
                last_housekeeping = std::time::Instant::now();
                match self.db.run(|c| Ok(crate::db::housekeeping(c)?)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "housekeeping"),
                    Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
                }
            }
            let timers = match self.timer_round().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "timer round failed");
                    0
                }
            };
            let done = match self.deliver_round().await {
                Ok(n) => n + timers,
                Err(e) => {
                    tracing::warn!(error = %e, "worker round failed");
                    timers
                }
            };
            if done == 0 {
                // Nothing due: sleep until notified or the poll interval passes.
                let _ = tokio::time::timeout(
                    self.settings.webhooks.poll_interval,
                    self.wake.notified(),
                )
                .await;
            }
        }
    }

    /// Fires due timers and expires processes, each in its own transaction, up to a batch.
    /// Returns how many were handled.
    pub async fn timer_round(&self) -> anyhow::Result<usize> {
        let mut handled = 0;
        while handled < BATCH as usize {
            let ctx = Ctx::new(&self.settings.public_url);
            let fired = self
                .db
                .tx(move |c| {
                    if time::fire_next(c, &ctx)? {
                        return Ok(true);
                    }
                    time::expire_next_process(c, &ctx)
                })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if !fired {
                break;
            }
            handled += 1;
        }
        Ok(handled)
    }

    /// Claims a batch of due deliveries, sends them concurrently, records each result.
    /// Returns how many were handled.
    pub async fn deliver_round(&self) -> anyhow::Result<usize> {
        let lease = (self.settings.webhooks.timeout + Duration::from_secs(30)).as_secs_f64();
        let claimed = self
            .db
            .run(move |c| Ok(q::claim(c, lease, BATCH)?))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let n = claimed.len();
        let sends = claimed.into_iter().map(|c| self.deliver(c));
        futures_util::future::join_all(sends).await;
        Ok(n)
    }

    async fn deliver(&self, claimed: Claimed) {
        let (result, verdict) =
            delivery::send(&self.http, &claimed, self.settings.webhook_allow_private).await;
        self.metrics.observe_attempt(&verdict, result.latency_ms);
        let schedule = self.settings.webhooks.retry_schedule.clone();
        let disable_after = self.settings.webhooks.disable_after;
        let id = claimed.id;
        let clock = self.clock.clone();
        let recorded = self
            .db
            .tx(move |c| {
                let now = clock.now();
                match &verdict {
                    Verdict::Delivered => {
                        q::record_attempt(c, &claimed, &result, true, None)?;
                        q::endpoint_succeeded(c, &claimed.tenant_id, claimed.endpoint_id)?;
                    }
                    Verdict::Gone => {
                        q::record_attempt(c, &claimed, &result, false, None)?;
                        q::disable_endpoint(
                            c,
                            &claimed.tenant_id,
                            claimed.endpoint_id,
                            "the receiver answered 410 Gone",
                        )?;
                    }
                    Verdict::Retry { not_before } => {
                        let done = claimed.attempts as usize + 1;
                        let retry_at = delivery::next_attempt(&schedule, done, *not_before, now);
                        q::record_attempt(c, &claimed, &result, false, retry_at)?;
                        let since =
                            q::endpoint_failed(c, &claimed.tenant_id, claimed.endpoint_id, now)?;
                        let limit = chrono::Duration::from_std(disable_after).unwrap_or_default();
                        if since.is_some_and(|s| now - s >= limit) {
                            q::disable_endpoint(
                                c,
                                &claimed.tenant_id,
                                claimed.endpoint_id,
                                &format!(
                                    "failing without a success since {}",
                                    since.unwrap_or(now).to_rfc3339()
                                ),
                            )?;
                        }
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = recorded {
            // The lease will expire and the delivery will be attempted again.
            tracing::warn!(delivery = %id, error = %e, "could not record a delivery attempt");
        }
    }
}
