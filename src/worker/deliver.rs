//! Deliveries: claimed continuously, each attempt its own task under the global semaphore and
//! the per-endpoint cap, results recorded in batches by the lease holder only.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{OwnedSemaphorePermit, oneshot};
use uuid::Uuid;

use super::Inner;
use super::supervise::{Healthy, LoopFuture};
use crate::db::webhooks::{self as q, ClaimRequest, Claimed, Recording};
use crate::webhooks::delivery::{self, Verdict};

/// Most deliveries claimed in one statement.
const CLAIM_MAX: usize = 256;
/// Most attempts recorded in one transaction.
const RECORD_MAX: usize = 512;

/// An attempt's result on its way to the recorder, and who waits for it to be written.
pub(super) type ToRecord = (Outcome, oneshot::Sender<()>);

/// An attempt made, ready to record.
pub(super) struct Outcome {
    tenant: String,
    endpoint: Uuid,
    verdict: Verdict,
    recording: Recording,
}

impl Inner {
    /// Claims up to `limit` due deliveries for this worker.
    async fn claim(&self, limit: usize) -> anyhow::Result<Vec<Claimed>> {
        let busy: Vec<(Uuid, i32)> = self
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        let req = ClaimRequest {
            worker: self.key,
            // A live worker finishes or gives up an attempt within the timeout; the lease
            // outlasts it so only a dead worker's (or a wedged one's) lease is ever taken.
            lease_secs: (self.settings.webhooks.timeout + std::time::Duration::from_secs(30))
                .as_secs_f64(),
            limit: limit as i64,
            now: self.clock.now(),
            endpoint_cap: self.settings.webhooks.endpoint_concurrency as i32,
            busy,
        };
        self.db
            .run(move |c| Ok(q::claim(c, &req)?))
            .await
            .map_err(|e| anyhow::anyhow!("claiming deliveries: {e}"))
    }

    /// Sends one delivery and decides what it comes to.
    async fn attempt(&self, claimed: Claimed) -> Outcome {
        let (result, verdict) = delivery::send(
            &self.http,
            &claimed,
            self.settings.webhook_allow_private,
            self.settings.secret_keys.as_deref(),
            self.settings.webhooks.timeout,
        )
        .await;
        self.metrics
            .observe_attempt(verdict.label(), result.latency_ms);
        let (state, next_attempt_at) = match &verdict {
            Verdict::Delivered => ("succeeded", result.attempted_at),
            Verdict::Gone => ("failed", result.attempted_at),
            Verdict::Retry { not_before } => {
                let done = claimed.attempts as usize + 1;
                match delivery::next_attempt(
                    &self.settings.webhooks.retry_schedule,
                    done,
                    *not_before,
                    self.clock.now(),
                ) {
                    Some(at) => ("pending", at),
                    None => ("failed", result.attempted_at),
                }
            }
        };
        Outcome {
            tenant: claimed.tenant_id,
            endpoint: claimed.endpoint_id,
            verdict,
            recording: Recording {
                delivery: claimed.id,
                result,
                state,
                next_attempt_at,
            },
        }
    }

    /// Records a batch of attempts and their consequences for the endpoints, in one
    /// transaction.
    async fn record(&self, batch: Vec<Outcome>) -> anyhow::Result<()> {
        let key = self.key;
        let disable_after =
            chrono::Duration::from_std(self.settings.webhooks.disable_after).unwrap_or_default();
        let clock = self.clock.clone();
        self.db
            .tx(move |c| {
                let now = clock.now();
                let recordings: Vec<Recording> =
                    batch.iter().map(|o| o.recording.clone()).collect();
                let recorded = q::record_attempts(c, key, &recordings)?;
                let mut healthy = Vec::new();
                for o in batch
                    .iter()
                    .filter(|o| recorded.contains(&o.recording.delivery))
                {
                    match &o.verdict {
                        Verdict::Delivered => healthy.push(o.endpoint),
                        Verdict::Gone => q::disable_endpoint(
                            c,
                            &o.tenant,
                            o.endpoint,
                            "the receiver answered 410 Gone",
                        )?,
                        Verdict::Retry { .. } => {
                            let since = q::endpoint_failed(c, &o.tenant, o.endpoint, now)?;
                            if let Some(since) = since
                                && now - since >= disable_after
                            {
                                q::disable_endpoint(
                                    c,
                                    &o.tenant,
                                    o.endpoint,
                                    &format!(
                                        "failing without a success since {}",
                                        since.to_rfc3339()
                                    ),
                                )?;
                            }
                        }
                    }
                }
                healthy.sort();
                healthy.dedup();
                q::endpoints_succeeded(c, &healthy)?;
                Ok(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("recording attempts: {e}"))
    }

    /// Starts one attempt as its own task, holding its global slot and its endpoint's.
    fn start(self: &Arc<Self>, claimed: Claimed, permit: OwnedSemaphorePermit) {
        *self
            .busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(claimed.endpoint_id)
            .or_default() += 1;
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.metrics.set_in_flight(n);
        let guard = InFlight {
            w: self.clone(),
            endpoint: claimed.endpoint_id,
            _permit: permit,
        };
        tokio::spawn(async move {
            let outcome = guard.w.attempt(claimed).await;
            let (done, written) = oneshot::channel();
            if guard.w.recorder.send((outcome, done)).is_ok() {
                let _ = written.await;
            }
            drop(guard);
        });
    }
}

/// Frees an attempt's slots when it ends, however it ends.
struct InFlight {
    w: Arc<Inner>,
    endpoint: Uuid,
    _permit: OwnedSemaphorePermit,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut busy = self.w.busy.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = busy.get_mut(&self.endpoint) {
                *n -= 1;
                if *n <= 0 {
                    busy.remove(&self.endpoint);
                }
            }
        }
        let left = self.w.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        self.w.metrics.set_in_flight(left);
        if left == 0 {
            self.w.idle.notify_waiters();
        }
        // The next event of this approval may be due now, or a slot was all that was missing.
        self.w.wake.notify_one();
    }
}

/// Claims while there are free slots, starting each claimed delivery at once; sleeps until
/// woken (new work, an attempt finished) or the poll interval passes.
pub(super) fn claim_loop(w: Arc<Inner>, healthy: Healthy) -> LoopFuture {
    Box::pin(async move {
        healthy.set();
        let mut stopping = w.stopping.subscribe();
        let mut alive = w.alive.subscribe();
        let poll = w.settings.webhooks.poll_interval;
        loop {
            if w.is_stopping() {
                return Ok(());
            }
            if !*alive.borrow_and_update() {
                // Without our liveness lock our leases would look dead to everyone.
                tokio::select! {
                    _ = alive.changed() => {}
                    _ = stopping.changed() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
                continue;
            }
            let first = tokio::select! {
                p = w.slots.clone().acquire_owned() => p?,
                _ = stopping.changed() => continue,
            };
            let mut permits = vec![first];
            while permits.len() < CLAIM_MAX {
                match w.slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let claimed = w.claim(permits.len()).await?;
            let got = claimed.len();
            for c in claimed {
                let Some(p) = permits.pop() else { break };
                w.start(c, p);
            }
            drop(permits);
            if got == 0 {
                tokio::select! {
                    _ = w.wake.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = stopping.changed() => {}
                }
            }
        }
    })
}

/// Writes results as they come, as many as are waiting in one transaction.
pub(super) fn recorder_loop(w: Arc<Inner>, healthy: Healthy) -> LoopFuture {
    Box::pin(async move {
        healthy.set();
        let mut rx = w.recorder_rx.lock().await;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < RECORD_MAX {
                match rx.try_recv() {
                    Ok(x) => batch.push(x),
                    Err(_) => break,
                }
            }
            let (outcomes, done): (Vec<Outcome>, Vec<oneshot::Sender<()>>) =
                batch.into_iter().unzip();
            if let Err(e) = w.record(outcomes).await {
                // The leases stay ours until they expire; then the deliveries are tried again.
                tracing::warn!(error = %e, "could not record delivery attempts");
            }
            for d in done {
                let _ = d.send(());
            }
        }
        Ok(())
    })
}

/// One round by hand: claims what is due (within the caps), sends it all, records it all.
/// Returns how many deliveries were attempted.
pub(super) async fn run_round(w: &Arc<Inner>) -> anyhow::Result<usize> {
    let claimed = w.claim(w.settings.webhooks.concurrency).await?;
    let n = claimed.len();
    if n == 0 {
        return Ok(0);
    }
    let outcomes = futures_util::future::join_all(claimed.into_iter().map(|c| w.attempt(c))).await;
    w.record(outcomes).await?;
    Ok(n)
}
