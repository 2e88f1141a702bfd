//! Host actions: due deliveries claimed continuously, each run as its own task under the
//! worker's host-action slots and a per-action cap (a slow or hanging host holds only its own
//! slots). A delivery's requests run in order; each attempt is recorded as it ends, so a failed
//! request is retried on the webhook schedule before the next one runs, and a worker that dies
//! mid-way leaves the delivery at the request it had reached.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use super::Inner;
use super::supervise::{Healthy, LoopFuture};
use crate::db::host_actions::{self as q, ActionAttempt, ClaimedAction, Next};
use crate::domain::condition;
use crate::service::host_actions::open_secrets;
use crate::webhooks::actions::{self, ActionRequest, MAX_REQUESTS};
use crate::webhooks::delivery::{self, Verdict};

/// Most deliveries claimed in one statement.
const CLAIM_MAX: usize = 64;

/// Per action, how many deliveries this worker holds.
#[derive(Default)]
pub(super) struct ActionsHeld(HashMap<Uuid, i32>);

impl ActionsHeld {
    fn busy(&self) -> Vec<(Uuid, i32)> {
        self.0.iter().map(|(k, v)| (*k, *v)).collect()
    }

    fn take(&mut self, action: Uuid) {
        *self.0.entry(action).or_default() += 1;
    }

    fn give(&mut self, action: Uuid) {
        if let Some(n) = self.0.get_mut(&action) {
            *n -= 1;
            if *n <= 0 {
                self.0.remove(&action);
            }
        }
    }
}

impl Inner {
    /// A lease outlasts every request of a delivery, each bounded by the timeout.
    fn action_lease(&self) -> Duration {
        self.settings.webhooks.timeout * MAX_REQUESTS as u32 + Duration::from_secs(30)
    }

    async fn claim_actions(&self, limit: usize) -> anyhow::Result<Vec<ClaimedAction>> {
        let busy = self
            .actions_held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .busy();
        let (key, lease, now) = (
            self.key,
            self.action_lease().as_secs_f64(),
            self.clock.now(),
        );
        let per_action = self.settings.webhooks.endpoint_concurrency as i32;
        self.db
            .run(move |c| {
                Ok(q::claim(
                    c,
                    key,
                    lease,
                    limit as i64,
                    now,
                    per_action,
                    &busy,
                )?)
            })
            .await
            .map_err(|e| anyhow::anyhow!("claiming host action deliveries: {e}"))
    }

    async fn record_action(
        &self,
        c: &ClaimedAction,
        attempt: Option<ActionAttempt>,
        next: Next,
    ) -> bool {
        let (tenant, id, key) = (c.tenant_id.clone(), c.id, self.key);
        match self
            .db
            .run(move |conn| Ok(q::record(conn, &tenant, id, key, attempt.as_ref(), next)?))
            .await
        {
            Ok(kept) => kept,
            Err(e) => {
                // The lease stays ours until it expires; then the step is tried again.
                tracing::warn!(delivery = %c.id, error = %e, "could not record a host action attempt");
                false
            }
        }
    }

    /// Runs one claimed delivery from its current request to the end, or to the first failure.
    async fn run_action(&self, c: ClaimedAction) {
        let event = &c.event;
        if let Some(when) = &c.when_condition {
            match condition::evaluate_over(when, &[("event", event)]) {
                Ok(true) => {}
                Ok(false) => {
                    self.record_action(&c, None, Next::Skipped).await;
                    return;
                }
                Err(e) => {
                    // Sending is the safe side for an approval, not for a host's API: fail,
                    // visibly, in the log.
                    let attempt = self.unsendable(&c, format!("when: {e}"));
                    self.record_action(&c, Some(attempt), Next::Failed).await;
                    return;
                }
            }
        }
        let requests: Vec<ActionRequest> = match serde_json::from_value(c.requests.clone()) {
            Ok(r) => r,
            Err(e) => {
                let attempt = self.unsendable(&c, format!("stored requests: {e}"));
                self.record_action(&c, Some(attempt), Next::Failed).await;
                return;
            }
        };
        let secrets = match open_secrets(
            c.action_id,
            &c.secrets,
            self.settings.secret_keys.as_deref(),
        ) {
            Ok(s) => s,
            Err(e) => {
                // A key missing from this replica's configuration: retry, another may have it.
                let attempt = self.unsendable(&c, e);
                let next = self.retry_at(&c, None);
                self.record_action(&c, Some(attempt), next).await;
                return;
            }
        };
        let ctx = actions::context(event);
        let mut step = c.step.max(0) as usize;
        while step < requests.len() {
            if self.is_stopping() {
                // The lease lapses; whoever claims next goes on from this step.
                return;
            }
            let rendered = match actions::render(&requests[step], &ctx, &secrets) {
                Ok(r) => r,
                Err(e) => {
                    let mut attempt = self.unsendable(&c, actions::redact(&e, &secrets));
                    attempt.step = step as i32;
                    self.record_action(&c, Some(attempt), Next::Failed).await;
                    return;
                }
            };
            let (mut result, verdict) = actions::send(
                &self.http,
                &rendered,
                self.settings.webhook_allow_private,
                self.settings.webhooks.timeout,
            )
            .await;
            self.metrics
                .observe_action_attempt(verdict.label(), result.latency_ms);
            result.error = result.error.map(|e| actions::redact(&e, &secrets));
            result.response_excerpt = result
                .response_excerpt
                .map(|e| actions::redact(&e, &secrets));
            let attempt = ActionAttempt {
                step: step as i32,
                method: rendered.method,
                url: rendered.url,
                result,
            };
            let next = match verdict {
                Verdict::Delivered if step + 1 == requests.len() => Next::Succeeded,
                Verdict::Delivered => Next::Step(step as i32 + 1),
                Verdict::Retry { not_before } => self.retry_at(&c, not_before),
                // A host action's target is the host's API: 410 is one more failure.
                Verdict::Gone => self.retry_at(&c, None),
            };
            let kept = self.record_action(&c, Some(attempt), next).await;
            if !kept || !matches!(next, Next::Step(_)) {
                return;
            }
            step += 1;
        }
    }

    /// When to try the current request again, or `Failed` when the schedule is spent.
    fn retry_at(&self, c: &ClaimedAction, not_before: Option<Duration>) -> Next {
        match delivery::next_attempt(
            &self.settings.webhooks.retry_schedule,
            c.attempts as usize + 1,
            not_before,
            self.clock.now(),
        ) {
            Some(at) => Next::Retry(at),
            None => Next::Failed,
        }
    }

    /// The log entry of a request that could not be sent at all.
    fn unsendable(&self, c: &ClaimedAction, error: String) -> ActionAttempt {
        ActionAttempt {
            step: c.step,
            method: String::new(),
            url: String::new(),
            result: crate::db::webhooks::AttemptResult {
                attempted_at: chrono::Utc::now(),
                status_code: None,
                latency_ms: 0,
                error: Some(error),
                response_excerpt: None,
            },
        }
    }
}

/// Frees a delivery's slot and its action's count however its task ends.
struct Running {
    w: Arc<Inner>,
    action: Uuid,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.w
            .actions_held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .give(self.action);
        self.w.action_freed.notify_one();
    }
}

/// Claims as many due deliveries as there are free slots and starts each; then waits for a
/// notification, a freed slot or the poll interval.
pub(super) fn actions_loop(w: Arc<Inner>, healthy: Healthy) -> LoopFuture {
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
                tokio::select! {
                    _ = alive.changed() => {}
                    _ = stopping.changed() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
                continue;
            }
            let room = w.action_slots.available_permits().min(CLAIM_MAX);
            let mut got = 0;
            if room > 0 {
                let claimed = w.claim_actions(room).await?;
                got = claimed.len();
                start_all(&w, claimed);
            }
            if got == room && room > 0 {
                continue;
            }
            tokio::select! {
                _ = w.action_wake.notified() => {}
                _ = w.action_freed.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = stopping.changed() => {}
            }
        }
    })
}

fn start_all(w: &Arc<Inner>, claimed: Vec<ClaimedAction>) {
    for c in claimed {
        let Ok(permit) = w.action_slots.clone().try_acquire_owned() else {
            // Claimed beyond the free slots (cannot happen with one claim loop): the lease
            // lapses and the delivery is claimed again.
            continue;
        };
        w.actions_held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(c.action_id);
        let running = Running {
            w: w.clone(),
            action: c.action_id,
            _permit: permit,
        };
        tokio::spawn(async move {
            running.w.run_action(c).await;
            drop(running);
        });
    }
}

/// One round by hand, for tests: claims what is due and runs it all to its end.
pub(super) async fn run_round(w: &Arc<Inner>) -> anyhow::Result<usize> {
    let claimed = w.claim_actions(CLAIM_MAX).await?;
    let n = claimed.len();
    futures_util::future::join_all(claimed.into_iter().map(|c| w.run_action(c))).await;
    Ok(n)
}

/// Gives back this worker's leases at shutdown.
pub(super) async fn release(w: &Arc<Inner>) {
    let key = w.key;
    match w.db.run(move |c| Ok(q::release_leases(c, key)?)).await {
        Ok(n) if n > 0 => tracing::info!(released = n, "host action leases given back"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not give back host action leases; they expire"),
    }
}
