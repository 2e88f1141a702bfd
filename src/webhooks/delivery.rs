//! Sending one delivery: sign the stored event, POST it, and decide what the answer means.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};

use super::signing::signature_header;
use super::ssrf;
use crate::config::WebhookSettings;
use crate::db::webhooks::{AttemptResult, Claimed, previous_secrets, secret_context};
use crate::secrets::{self, SecretKeys};

/// Bytes of a receiver's answer kept for the delivery log; the rest is never read (the
/// connection is dropped with it), so a receiver cannot make us hold more than this.
pub const EXCERPT_BYTES: usize = 4096;
/// `Retry-After` is honoured up to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What the worker must do after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Delivered,
    /// Retry, no sooner than the receiver asked.
    Retry {
        not_before: Option<Duration>,
    },
    /// 410 Gone: the receiver wants no more; disable the endpoint.
    Gone,
}

impl Verdict {
    /// The `result` label of the attempt metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Retry { .. } => "retry",
            Verdict::Gone => "gone",
        }
    }
}

/// The HTTP client for webhooks: no redirects, a timeout, no proxy but `SIGNOFF_WEBHOOK_PROXY`
/// (the environment's `HTTPS_PROXY` and friends are ignored: a proxy resolves names past our
/// address check), and, unless private targets are allowed, a resolver that refuses
/// non-public addresses, applied when each connection is made. A client that cannot be built
/// is an error: there is no fallback to a default client without these guards.
pub fn client(settings: &WebhookSettings, allow_private: bool) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(settings.endpoint_concurrency)
        .no_proxy();
    if let Some(proxy) = &settings.proxy {
        b = b.proxy(
            reqwest::Proxy::all(proxy.as_str())
                .map_err(|e| anyhow::anyhow!("SIGNOFF_WEBHOOK_PROXY: {e}"))?,
        );
    }
    if !allow_private {
        b = b.dns_resolver(std::sync::Arc::new(ssrf::PublicOnly));
    }
    b.build()
        .map_err(|e| anyhow::anyhow!("cannot build the webhook HTTP client: {e}"))
}

/// The secrets a delivery is signed with now, opened: the current one, then every previous
/// one still in its grace period.
fn secrets(
    c: &Claimed,
    keys: Option<&SecretKeys>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, secrets::SecretError> {
    let context = secret_context(c.endpoint_id);
    let mut out = vec![secrets::open(keys, &context, &c.secret)?];
    for p in previous_secrets(&c.previous_secrets) {
        if p.expires_at > now {
            out.push(secrets::open(keys, &context, &p.secret)?);
        }
    }
    Ok(out)
}

/// Reads at most [`EXCERPT_BYTES`] of the answer; the rest stays unread and the connection is
/// closed when the response is dropped.
pub(crate) async fn excerpt(mut res: reqwest::Response) -> Option<String> {
    let mut kept: Vec<u8> = Vec::new();
    while kept.len() < EXCERPT_BYTES {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                let room = EXCERPT_BYTES - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    drop(res);
    if kept.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&kept);
    // A cut may split a character: drop the replacement char it leaves at the end.
    Some(text.trim_end_matches('\u{fffd}').to_string())
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = DateTime::parse_from_rfc2822(v.trim()).ok()?;
    (at.with_timezone(&Utc) - Utc::now())
        .to_std()
        .ok()
        .map(|d| d.min(MAX_RETRY_AFTER))
}

/// Sends one claimed delivery and reports the attempt. The whole attempt, answer included, is
/// bounded by `timeout`.
pub async fn send(
    http: &reqwest::Client,
    claimed: &Claimed,
    allow_private: bool,
    keys: Option<&SecretKeys>,
    timeout: Duration,
) -> (AttemptResult, Verdict) {
    let attempted_at = Utc::now();
    let started = Instant::now();
    match tokio::time::timeout(
        timeout,
        attempt(http, claimed, allow_private, keys, attempted_at),
    )
    .await
    {
        Ok(done) => done,
        Err(_) => (
            AttemptResult {
                attempted_at,
                status_code: None,
                latency_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
                error: Some(format!(
                    "timed out: no complete answer within {} ms",
                    timeout.as_millis()
                )),
                response_excerpt: None,
            },
            Verdict::Retry { not_before: None },
        ),
    }
}

async fn attempt(
    http: &reqwest::Client,
    claimed: &Claimed,
    allow_private: bool,
    keys: Option<&SecretKeys>,
    attempted_at: DateTime<Utc>,
) -> (AttemptResult, Verdict) {
    let started = Instant::now();
    // The body sent is the body signed, byte for byte.
    let body = claimed.body.as_bytes();
    let msg_id = claimed.msg_id.as_str();
    let ts = attempted_at.timestamp();
    let fail = |error: String, status: Option<i32>, excerpt: Option<String>, verdict: Verdict| {
        (
            AttemptResult {
                attempted_at,
                status_code: status,
                latency_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
                error: Some(error),
                response_excerpt: excerpt,
            },
            verdict,
        )
    };
    if let Err(e) = ssrf::check_url(&claimed.url, allow_private) {
        return fail(
            format!("target refused: URL {e}"),
            None,
            None,
            Verdict::Retry { not_before: None },
        );
    }
    let secrets = match secrets(claimed, keys, attempted_at) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                format!("cannot sign: endpoint secret: {e}"),
                None,
                None,
                Verdict::Retry { not_before: None },
            );
        }
    };
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let signature = signature_header(&secrets, msg_id, ts, body);
    let res = http
        .post(&claimed.url)
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("signoff-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(claimed.body.clone())
        .send()
        .await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            return fail(
                describe_error(&e),
                None,
                None,
                Verdict::Retry { not_before: None },
            );
        }
    };
    let status = res.status();
    let wait = retry_after(res.headers());
    let excerpt = excerpt(res).await;
    let code = Some(status.as_u16() as i32);
    if status.is_success() {
        return (
            AttemptResult {
                attempted_at,
                status_code: code,
                latency_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
                error: None,
                response_excerpt: excerpt,
            },
            Verdict::Delivered,
        );
    }
    let verdict = if status.as_u16() == 410 {
        Verdict::Gone
    } else {
        Verdict::Retry { not_before: wait }
    };
    let error = if status.is_redirection() {
        format!("answered {status}; redirects are not followed")
    } else {
        format!("answered {status}")
    };
    fail(error, code, excerpt, verdict)
}

/// A failed request in words, with every cause.
pub(crate) fn describe_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut msg = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// When to try again after `attempts_done` failed attempts, or `None` when the schedule is
/// spent. The delay gets ±10% jitter so a recovering receiver is not hit by a thundering herd.
pub fn next_attempt(
    schedule: &[Duration],
    attempts_done: usize,
    not_before: Option<Duration>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let base = *schedule.get(attempts_done)?;
    let jitter = if base.is_zero() {
        1.0
    } else {
        rand::thread_rng().gen_range(0.9..=1.1)
    };
    let delay = base.mul_f64(jitter).max(not_before.unwrap_or_default());
    Some(now + chrono::Duration::from_std(delay).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_followed_with_jitter_and_ends() {
        let schedule = [
            Duration::ZERO,
            Duration::from_secs(5),
            Duration::from_secs(300),
        ];
        let now = Utc::now();
        let first = next_attempt(&schedule, 1, None, now).unwrap();
        let secs = (first - now).num_milliseconds();
        assert!((4_500..=5_500).contains(&secs), "{secs}");
        assert!(next_attempt(&schedule, 3, None, now).is_none());
    }

    #[test]
    fn retry_after_is_honoured_when_longer() {
        let schedule = [Duration::ZERO, Duration::from_secs(5)];
        let now = Utc::now();
        let at = next_attempt(&schedule, 1, Some(Duration::from_secs(60)), now).unwrap();
        assert_eq!((at - now).num_seconds(), 60);
    }
}
