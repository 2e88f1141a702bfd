//! LISTEN on a dedicated connection so work is picked up within milliseconds of its commit.
//! If the connection fails (or the server needs TLS we do not speak here), polling still works
//! and we retry the connection with a backoff.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::db::webhooks::CHANNEL;

pub fn spawn(url: String, wake: Arc<Notify>) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(500);
        loop {
            if let Err(e) = listen(&url, &wake).await {
                tracing::debug!(error = %e, "LISTEN connection lost; polling meanwhile");
            } else {
                backoff = Duration::from_millis(500);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    });
}

async fn listen(url: &str, wake: &Notify) -> anyhow::Result<()> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    // The connection must be polled for anything to happen, queries included.
    let driver = tokio::spawn(async move {
        loop {
            match futures_util::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Work may have been committed before we listened.
    wake.notify_one();
    while rx.recv().await.is_some() {
        wake.notify_one();
    }
    driver.abort();
    anyhow::bail!("notification stream ended")
}
