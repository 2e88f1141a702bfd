//! Sending one delivery: sign the stored event, POST it, and decide what the answer means.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};

use super::signing::signature_header;
use super::ssrf;
use crate::config::WebhookSettings;
use crate::db::webhooks::{AttemptResult, Claimed};

/// Longest response excerpt kept per attempt.
const EXCERPT: usize = 512;
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

/// An HTTP client for webhooks: no redirects, a timeout, and (unless private targets are
/// allowed) a resolver that refuses non-public addresses.
pub fn client(settings: &WebhookSettings, allow_private: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(30));
    if !allow_private {
        b = b.dns_resolver(std::sync::Arc::new(ssrf::PublicOnly));
    }
    b.build().unwrap_or_default()
}

/// The secrets a delivery is signed with now: the current one, and the previous one during
/// its grace period.
fn secrets(c: &Claimed, now: DateTime<Utc>) -> Vec<&str> {
    let mut s = vec![c.secret.as_str()];
    if let (Some(prev), Some(until)) = (&c.previous_secret, c.previous_secret_expires_at)
        && until > now
    {
        s.push(prev);
    }
    s
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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

/// Sends one claimed delivery and reports the attempt.
pub async fn send(
    http: &reqwest::Client,
    claimed: &Claimed,
    allow_private: bool,
) -> (AttemptResult, Verdict) {
    let attempted_at = Utc::now();
    let started = Instant::now();
    // The body sent is the body signed, byte for byte.
    let body = serde_json::to_vec(&claimed.payload).unwrap_or_default();
    let msg_id = claimed.payload["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
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
    let signature = signature_header(&secrets(claimed, attempted_at), &msg_id, ts, &body);
    let res = http
        .post(&claimed.url)
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("signoff-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            let mut msg = format!("{kind}: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            return fail(msg, None, None, Verdict::Retry { not_before: None });
        }
    };
    let status = res.status();
    let wait = retry_after(res.headers());
    let excerpt = match res.text().await {
        Ok(t) if !t.is_empty() => Some(t.chars().take(EXCERPT).collect()),
        _ => None,
    };
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
