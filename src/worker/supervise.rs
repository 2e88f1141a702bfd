//! Every worker loop runs under a supervisor: an error, a panic or an unexpected end is
//! logged, counted in `/metrics` (`signoff_worker_loop_failures_total`), and the loop is
//! restarted after a backoff that starts again from the minimum once a run was healthy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Inner;

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Aborts its task when dropped, so stopping a supervisor stops what it supervises.
pub struct AbortOnDrop<T>(pub JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Set by a loop once it is doing its job (connected, listening...): the next restart after
/// it ends begins from the minimum backoff.
#[derive(Clone, Default)]
pub struct Healthy(Arc<AtomicBool>);

impl Healthy {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub type LoopFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Runs `body` as loop `name` until the worker stops, restarting it whenever it fails.
pub fn spawn(
    name: &'static str,
    w: Arc<Inner>,
    body: fn(Arc<Inner>, Healthy) -> LoopFuture,
) -> JoinHandle<()> {
    w.metrics.loop_up(name, true);
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        loop {
            let healthy = Healthy::default();
            w.metrics.loop_up(name, true);
            let mut run = AbortOnDrop(tokio::spawn(body(w.clone(), healthy.clone())));
            let ended = (&mut run.0).await;
            let stopping = w.is_stopping();
            match ended {
                Ok(Ok(())) if stopping => {
                    w.metrics.loop_up(name, false);
                    return;
                }
                Ok(Ok(())) => {
                    tracing::error!(worker_loop = name, "worker loop ended; restarting");
                    w.metrics.loop_failed(name, "ended");
                }
                Ok(Err(e)) => {
                    tracing::warn!(worker_loop = name, error = %e, "worker loop failed; restarting");
                    w.metrics.loop_failed(name, "error");
                }
                Err(e) if e.is_panic() => {
                    tracing::error!(worker_loop = name, "worker loop panicked; restarting");
                    w.metrics.loop_failed(name, "panic");
                }
                Err(_) => {
                    w.metrics.loop_up(name, false);
                    return;
                }
            }
            w.metrics.loop_up(name, false);
            if healthy.get() {
                backoff = MIN_BACKOFF;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}
