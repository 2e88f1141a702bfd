//! The worker's own database session: it holds the worker's liveness lock (a session-level
//! advisory lock, released by Postgres the moment the session ends, when the process dies
//! included) and LISTENs so new work is picked up within milliseconds of its commit.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio_postgres::Client;

use super::supervise::AbortOnDrop;
use crate::db::webhooks::{CHANNEL, LIVENESS_LOCK_NS};

/// An open session holding a worker's liveness lock.
pub struct Session {
    _client: Client,
    notes: mpsc::UnboundedReceiver<()>,
    _driver: AbortOnDrop<()>,
}

impl Session {
    /// Connects (over TLS when `url` asks for it), takes the liveness lock of `key` and, if
    /// `listen`, LISTENs for new work. Fails when another session holds the lock: a previous
    /// session of ours the server has not seen die yet (the caller retries).
    pub async fn open(url: &str, key: i32, listen: bool) -> anyhow::Result<Self> {
        let (tx, notes) = mpsc::unbounded_channel();
        let (client, driver) = super::tls::connect(url, tx).await?;
        let driver = AbortOnDrop(driver);
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&LIVENESS_LOCK_NS, &key],
            )
            .await?;
        if !row.get::<_, bool>(0) {
            anyhow::bail!("the liveness lock of worker {key} is held by another session");
        }
        if listen {
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        }
        Ok(Self {
            _client: client,
            notes,
            _driver: driver,
        })
    }

    /// Wakes the worker on every notification until the connection ends (an error: the
    /// supervisor reconnects).
    /// Each loop that waits for work has its own `Notify` in `wakes`.
    pub async fn forward(&mut self, wakes: &[&Arc<Notify>]) -> anyhow::Result<()> {
        // Work may have been committed before we listened.
        wakes.iter().for_each(|w| w.notify_one());
        while self.notes.recv().await.is_some() {
            wakes.iter().for_each(|w| w.notify_one());
        }
        anyhow::bail!("the worker's database session ended")
    }
}
