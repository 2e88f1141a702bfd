//! `Idempotency-Key` on creating and deciding POSTs.
//!
//! The first request with a key claims it (a row in `running` state, committed at once); its
//! answer is stored when it finishes. A replay with the same payload gets the stored answer;
//! with another payload, 422; while the first is still running, 409. Keys live at least 24 hours;
//! an older record is forgotten. A 5xx answer is not stored, so the client may retry.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::db::Db;
use crate::db::schema::idempotency_keys::dsl as k;
use crate::error::{ApiError, ApiResult};

/// How long a key is remembered.
pub const RETENTION_HOURS: i64 = 24;
/// A claim older than this is taken to belong to a request that died mid-way.
const STALE_CLAIM_SECS: i64 = 60;

/// A claimed key, to complete once the answer is known.
pub struct Claim {
    tenant: String,
    client: String,
    key: String,
}

/// What to do with a request that carries a key.
pub enum Begin {
    /// First time: run it, then [`complete`].
    Run(Claim),
    /// Seen before: answer this.
    Replay(StoredAnswer),
}

/// An answer: status, JSON body and the headers that matter (Location, ETag).
pub struct Answer {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn new(status: StatusCode, body: serde_json::Value) -> Self {
        Self {
            status,
            body,
            headers: vec![],
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn into_response(self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        for (k, v) in &self.headers {
            res.insert_header((k.as_str(), v.as_str()));
        }
        res.json(self.body)
    }
}

/// An answer kept for replays.
pub struct StoredAnswer {
    status: StatusCode,
    body: serde_json::Value,
    headers: Vec<(String, String)>,
}

impl StoredAnswer {
    fn response(self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.insert_header(("idempotent-replayed", "true"));
        for (k, v) in &self.headers {
            res.insert_header((k.as_str(), v.as_str()));
        }
        if self.status.is_client_error() {
            res.content_type("application/problem+json");
        }
        res.json(self.body)
    }
}

/// Hash of what makes two requests "the same": method, path and body.
pub fn fingerprint(req: &HttpRequest, body: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update(b" ");
    h.update(req.path());
    h.update(b"\n");
    h.update(body.to_string());
    format!("{:x}", h.finalize())
}

fn key_of(req: &HttpRequest) -> ApiResult<Option<String>> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("").trim();
    if s.is_empty() || s.len() > 255 {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 printable characters",
        ));
    }
    Ok(Some(s.to_string()))
}

/// Claims the request's key, or finds the stored answer. `None` when there is no key.
pub async fn begin(
    db: &Db,
    caller: &Caller,
    req: &HttpRequest,
    body: &serde_json::Value,
) -> ApiResult<Option<Begin>> {
    let Some(key) = key_of(req)? else {
        return Ok(None);
    };
    let hash = fingerprint(req, body);
    let (tenant, client) = (caller.tenant.clone(), caller.client.clone());
    let claim = Claim {
        tenant: tenant.clone(),
        client: client.clone(),
        key: key.clone(),
    };
    db.tx(move |c| {
        let now = Utc::now();
        // Forget an expired record, or a claim whose request died, so the key can be used again.
        diesel::delete(k::idempotency_keys)
            .filter(
                k::tenant_id
                    .eq(&tenant)
                    .and(k::client_id.eq(&client))
                    .and(k::key.eq(&key)),
            )
            .filter(
                k::created_at
                    .lt(now - Duration::hours(RETENTION_HOURS))
                    .or(k::completed_at
                        .is_null()
                        .and(k::created_at.lt(now - Duration::seconds(STALE_CLAIM_SECS)))),
            )
            .execute(c)?;
        let inserted = diesel::insert_into(k::idempotency_keys)
            .values((
                k::tenant_id.eq(&tenant),
                k::client_id.eq(&client),
                k::key.eq(&key),
                k::request_hash.eq(&hash),
            ))
            .on_conflict_do_nothing()
            .execute(c)?;
        if inserted == 1 {
            return Ok(Some(Begin::Run(claim)));
        }
        let (stored_hash, status, response, headers): (
            String,
            Option<i16>,
            Option<serde_json::Value>,
            Option<serde_json::Value>,
        ) = k::idempotency_keys
            .filter(
                k::tenant_id
                    .eq(&tenant)
                    .and(k::client_id.eq(&client))
                    .and(k::key.eq(&key)),
            )
            .select((k::request_hash, k::status, k::response, k::headers))
            .first(c)?;
        if stored_hash != hash {
            return Err(ApiError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used with another request",
            ));
        }
        match (status, response) {
            (Some(status), Some(body)) => Ok(Some(Begin::Replay(StoredAnswer {
                status: StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
                body,
                headers: headers
                    .and_then(|h| serde_json::from_value(h).ok())
                    .unwrap_or_default(),
            }))),
            _ => Err(ApiError::conflict(
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still being processed",
            )),
        }
    })
    .await
}

/// Stores the answer for a claimed key (or frees the key after a 5xx).
pub async fn complete(
    db: &Db,
    claim: Claim,
    status: StatusCode,
    body: &serde_json::Value,
    headers: &[(String, String)],
) -> ApiResult<()> {
    let body = body.clone();
    let headers = serde_json::to_value(headers).unwrap_or_default();
    db.run(move |c| {
        let target = k::idempotency_keys.filter(
            k::tenant_id
                .eq(&claim.tenant)
                .and(k::client_id.eq(&claim.client))
                .and(k::key.eq(&claim.key)),
        );
        if status.is_server_error() {
            diesel::delete(target).execute(c)?;
        } else {
            diesel::update(target)
                .set((
                    k::status.eq(status.as_u16() as i16),
                    k::response.eq(&body),
                    k::headers.eq(&headers),
                    k::completed_at.eq(diesel::dsl::now),
                ))
                .execute(c)?;
        }
        Ok(())
    })
    .await
}

/// Runs `f` under the request's Idempotency-Key (if any).
pub async fn run<F, Fut>(
    db: &Db,
    caller: &Caller,
    req: &HttpRequest,
    body: &serde_json::Value,
    f: F,
) -> ApiResult<HttpResponse>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ApiResult<Answer>>,
{
    let claim = match begin(db, caller, req, body).await? {
        None => None,
        Some(Begin::Replay(answer)) => return Ok(answer.response()),
        Some(Begin::Run(claim)) => Some(claim),
    };
    let result = f().await;
    if let Some(claim) = claim {
        match &result {
            Ok(a) => complete(db, claim, a.status, &a.body, &a.headers).await?,
            Err(e) => {
                let problem = serde_json::to_value(e.problem()).unwrap_or_default();
                complete(
                    db,
                    claim,
                    actix_web::ResponseError::status_code(e),
                    &problem,
                    &[],
                )
                .await?
            }
        }
    }
    Ok(result?.into_response())
}
