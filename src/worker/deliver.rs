//! Deliveries: claimed continuously, each attempt its own task under the global semaphore and
//! the per-endpoint cap, results recorded in batches by the lease holder only.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, oneshot};
use uuid::Uuid;

use super::Inner;
use super::held::AHEAD;
use super::supervise::{Healthy, LoopFuture};
use crate::db::webhooks::{self as q, ClaimRequest, Claimed, Recording};
use crate::webhooks::delivery::{self, Verdict};

/// Most deliveries claimed in one statement.
const CLAIM_MAX: usize = 256;
/// Most attempts recorded in one transaction.
const RECORD_MAX: usize = 512;
/// A held delivery starts only while its lease has at least this much left beyond the
/// timeout.
const START_MARGIN: Duration = Duration::from_secs(10);

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
    /// How long a lease lasts. A live worker finishes or gives up an attempt within the
    /// timeout, and starts none later than [`START_MARGIN`] plus the timeout before its lease
    /// ends; so only a dead worker's (or a wedged one's) lease is ever taken.
    fn lease(&self) -> Duration {
        self.settings.webhooks.timeout + Duration::from_secs(30)
    }

    /// Claims up to `limit` due deliveries for this worker, giving no endpoint more than
    /// `per_endpoint` held by it, and none above its low watermark.
    async fn claim(&self, limit: usize, per_endpoint: usize) -> anyhow::Result<Vec<Claimed>> {
        let (busy, full) = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .for_claim();
        let req = ClaimRequest {
            worker: self.key,
            lease_secs: self.lease().as_secs_f64(),
            limit: limit as i64,
            now: self.clock.now(),
            endpoint_cap: per_endpoint as i32,
            busy,
            full,
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

    /// Records a batch of attempts and their consequences for the endpoints: in one
    /// statement when all succeeded (the usual case), else in one transaction.
    async fn record(&self, batch: Vec<Outcome>) -> anyhow::Result<()> {
        let key = self.key;
        // The recordings go to the statement; what each means for its endpoint stays here,
        // in the same order.
        let (recordings, batch): (Vec<Recording>, Vec<(String, Uuid, Verdict)>) = batch
            .into_iter()
            .map(|o| (o.recording, (o.tenant, o.endpoint, o.verdict)))
            .unzip();
        if batch.iter().all(|(_, _, v)| *v == Verdict::Delivered) {
            return self
                .db
                .run(move |c| Ok(q::record_attempts(c, key, &recordings).map(drop)?))
                .await
                .map_err(|e| anyhow::anyhow!("recording attempts: {e}"));
        }
        let disable_after =
            chrono::Duration::from_std(self.settings.webhooks.disable_after).unwrap_or_default();
        let clock = self.clock.clone();
        self.db
            .tx(move |c| {
                let now = clock.now();
                let recorded = q::record_attempts(c, key, &recordings)?;
                let recorded: Vec<&(String, Uuid, Verdict)> = recordings
                    .iter()
                    .zip(&batch)
                    .filter(|(r, _)| recorded.contains(&r.delivery))
                    .map(|(_, o)| o)
                    .collect();
                // An endpoint that also answered well in this batch is not failing.
                let answered: Vec<Uuid> = recorded
                    .iter()
                    .filter(|(_, _, v)| *v == Verdict::Delivered)
                    .map(|(_, e, _)| *e)
                    .collect();
                for (tenant, endpoint, verdict) in recorded {
                    let endpoint = *endpoint;
                    match verdict {
                        Verdict::Delivered => {}
                        Verdict::Gone => q::disable_endpoint(
                            c,
                            tenant,
                            endpoint,
                            "the receiver answered 410 Gone",
                        )?,
                        Verdict::Retry { .. } if answered.contains(&endpoint) => {}
                        Verdict::Retry { .. } => {
                            let since = q::endpoint_failed(c, tenant, endpoint, now)?;
                            if let Some(since) = since
                                && now - since >= disable_after
                            {
                                q::disable_endpoint(
                                    c,
                                    tenant,
                                    endpoint,
                                    &format!(
                                        "failing without a success since {}",
                                        since.to_rfc3339()
                                    ),
                                )?;
                            }
                        }
                    }
                }
                Ok(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("recording attempts: {e}"))
    }

    /// Starts what may start among the deliveries held (each attempt its own task, holding
    /// a global slot and one of its endpoint's until the receiver answers), and gives back
    /// those held too long.
    fn pump(self: &Arc<Self>) {
        if self.is_stopping() {
            return;
        }
        let next = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next(Instant::now(), || {
                self.slots.clone().try_acquire_owned().ok()
            });
        if !next.expired.is_empty() {
            let (w, ids) = (self.clone(), next.expired);
            tokio::spawn(async move {
                let key = w.key;
                match w.db.run(move |c| Ok(q::give_back(c, key, &ids)?)).await {
                    Ok(n) => tracing::info!(given_back = n, "deliveries held too long to start"),
                    Err(e) => tracing::warn!(error = %e, "could not give back leases; they expire"),
                }
                w.wake.notify_one();
            });
        }
        for (claimed, permit) in next.start {
            let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.metrics.set_in_flight(n);
            let guard = InFlight {
                w: self.clone(),
                endpoint: claimed.endpoint_id,
                permit: Some(permit),
            };
            tokio::spawn(async move {
                let mut guard = guard;
                let outcome = guard.w.attempt(claimed).await;
                guard.sent();
                let (done, written) = oneshot::channel();
                if guard.w.recorder.send((outcome, done)).is_ok() {
                    let _ = written.await;
                }
                drop(guard);
            });
        }
    }
}

/// Frees an attempt's slots when it ends, however it ends, and starts what may start next.
struct InFlight {
    w: Arc<Inner>,
    endpoint: Uuid,
    permit: Option<OwnedSemaphorePermit>,
}

impl InFlight {
    /// The receiver answered (or the attempt gave up): its slots are free for the next,
    /// while the result waits to be written.
    fn sent(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        self.w
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sent(self.endpoint);
        drop(permit);
        self.w.pump();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let permit = self.permit.take();
        let cut_short = permit.is_some();
        self.w
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finished(self.endpoint, !cut_short);
        drop(permit);
        let left = self.w.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        self.w.metrics.set_in_flight(left);
        if left == 0 {
            self.w.idle.notify_waiters();
        }
        // Cut short before `sent`, its slots are freed only now: the next delivery held may
        // start (after `sent`, it has). The claim loop decides whether to claim (the endpoint
        // fell to its watermark, or the next event of this approval may be due now).
        if cut_short {
            self.w.pump();
        }
        self.w.freed.notify_one();
    }
}

/// Claims ahead of the free slots (see [`super::held`]), starting what may start at once;
/// then waits until a notification, an attempt's end that calls for a claim, or the poll
/// interval.
pub(super) fn claim_loop(w: Arc<Inner>, healthy: Healthy) -> LoopFuture {
    Box::pin(async move {
        healthy.set();
        let mut stopping = w.stopping.subscribe();
        let mut alive = w.alive.subscribe();
        let poll = w.settings.webhooks.poll_interval;
        let hold_max = AHEAD * w.settings.webhooks.concurrency;
        // Look at once: something may be due since before we started.
        let mut look = true;
        // What the last claim got: the next asks for up to twice that (at least an endpoint's
        // share), so a claim reads about as many candidates as it can use.
        let mut last_got = 0;
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
                look = true;
                continue;
            }
            let (room, per_endpoint) = {
                let mut held = w.held.lock().unwrap_or_else(|e| e.into_inner());
                look |= held.take_freed();
                (hold_max.saturating_sub(held.total()), held.per_endpoint())
            };
            if look && room > 0 {
                look = false;
                let limit = room.min(CLAIM_MAX).min((2 * last_got).max(per_endpoint));
                let asked = Instant::now();
                let claimed = w.claim(limit, per_endpoint).await?;
                let got = claimed.len();
                last_got = got;
                // Started later than this, an attempt could outlast its lease.
                let start_by = asked + w.lease() - w.settings.webhooks.timeout - START_MARGIN;
                w.held
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .hold(claimed, start_by);
                w.pump();
                if got == limit {
                    // There may be more due right now.
                    look = true;
                    continue;
                }
            }
            tokio::select! {
                _ = w.wake.notified() => look = true,
                _ = tokio::time::sleep(poll) => look = true,
                _ = w.freed.notified() => {}
                _ = stopping.changed() => {}
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
    let claimed = w
        .claim(
            w.settings.webhooks.concurrency,
            w.settings.webhooks.endpoint_concurrency,
        )
        .await?;
    let n = claimed.len();
    if n == 0 {
        return Ok(0);
    }
    let outcomes = futures_util::future::join_all(claimed.into_iter().map(|c| w.attempt(c))).await;
    w.record(outcomes).await?;
    Ok(n)
}
