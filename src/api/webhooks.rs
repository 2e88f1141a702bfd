//! Webhook endpoints: where signoff sends signed events, their secrets and delivery logs.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::conditional::{Precondition, content_tag, read_answer, tagged};
use super::idempotency::{self, Answer};
use super::pagination::{PageParams, page};
use super::problem::Problem;
use crate::api::body::JsonBody;
use crate::auth::{Caller, Scope};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::models::EndpointRow;
use crate::db::webhooks as q;
use crate::db::{Db, Order};
use crate::domain::duration::IsoDuration;
use crate::domain::validate::{Faults, index};
use crate::error::{AppError, AppResult};
use crate::secrets;
use crate::webhooks::{EVENT_TYPES, reseal, signing, ssrf};

/// Longest grace period of a secret rotation.
const MAX_GRACE_SECS: i64 = 7 * 24 * 3600;

/// A webhook endpoint. `secret` appears only when it is created and when it is rotated.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    #[schema(example = "https://helpdesk.example.com/hooks/signoff")]
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered here, or `["*"]` for all.
    #[schema(example = json!(["approval.approved", "approval.rejected"]))]
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why the endpoint was disabled (410 Gone, failing for days).
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `whsec_…`: verify signatures with it. Shown on create and rotate only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Body of `POST /v1/webhook-endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// https URL (http and private addresses only when SIGNOFF_WEBHOOK_ALLOW_PRIVATE=true).
    pub url: String,
    /// Event types, or `["*"]`; default `["*"]`.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Body of `PATCH /v1/webhook-endpoints/{id}`: any of the fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// `true` re-enables a disabled endpoint and clears its failure history.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Body of `POST /v1/webhook-endpoints/{id}/rotate-secret` (an empty body takes the defaults).
#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long deliveries stay signed with the replaced secret too; default `PT24H`, at most
    /// 7 days. Earlier secrets keep their own grace periods, never extended past this one, so
    /// `PT0S` ends every previous secret at once (after a leak, say).
    #[serde(default)]
    pub grace_period: Option<IsoDuration>,
}

/// A page of endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub items: Vec<EndpointView>,
    pub next_cursor: Option<String>,
}

fn view(r: EndpointRow, secret: Option<String>) -> EndpointView {
    EndpointView {
        id: r.id.to_string(),
        url: r.url,
        description: r.description,
        events: r.event_types.into_iter().flatten().collect(),
        enabled: r.enabled,
        disabled_reason: r.disabled_reason,
        created_at: r.created_at,
        updated_at: r.updated_at,
        secret,
    }
}

pub fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::not_found("webhook endpoint"))
}

/// Checks url, events and description, whichever are given.
fn check_fields(
    f: &mut Faults,
    url: Option<&str>,
    events: Option<&[String]>,
    description: Option<&str>,
    allow_private: bool,
) {
    if let Some(url) = url
        && let Err(e) = ssrf::check_url(url, allow_private)
    {
        f.push("url", e);
    }
    if let Some(events) = events {
        if events.is_empty() {
            f.push("events", "must list at least one event type, or \"*\"");
        }
        for (i, e) in events.iter().enumerate() {
            if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
                f.push(
                    index("events", i),
                    format!("must be \"*\" or one of: {}", EVENT_TYPES.join(", ")),
                );
            }
        }
    }
    if description.is_some_and(|d| d.len() > 1_000) {
        f.push("description", "must be at most 1000 characters");
    }
}

/// Register a webhook endpoint. The answer carries its `whsec_` secret, shown this once.
#[utoipa::path(
    tag = "webhooks",
    request_body = CreateEndpoint,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe; the replay carries the same secret")),
    responses(
        (status = 201, description = "Created, with its secret", body = EndpointView, headers(("ETag" = String, description = "The endpoint's entity tag (of its view without the secret)"))),
        (status = 422, description = "Invalid URL or event type", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[post("/webhook-endpoints")]
pub async fn create_endpoint(
    caller: Caller,
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    req: HttpRequest,
    raw: JsonBody<Value>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let body: CreateEndpoint = super::extract::typed_body(&raw)?;
    let (row, secret) = new_endpoint(&caller, &settings, body, now.0)?;
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let row = q::insert_endpoint(c, &row)?;
        let tag = content_tag(&view(row.clone(), None));
        let view = view(row, Some(secret));
        let location = format!("/v1/webhook-endpoints/{}", view.id);
        Ok(Answer::of(StatusCode::CREATED, &view)?
            .header("location", location)
            .header("etag", tag.to_string())
            .holding_secret())
    })
    .await
}

/// A checked endpoint with a new secret (sealed in the row), ready to insert, and the secret
/// in the clear for the one answer that shows it.
fn new_endpoint(
    caller: &Caller,
    settings: &Settings,
    body: CreateEndpoint,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<(EndpointRow, String)> {
    let events = body.events.unwrap_or_else(|| vec!["*".into()]);
    let mut f = Faults::default();
    check_fields(
        &mut f,
        Some(&body.url),
        Some(&events),
        body.description.as_deref(),
        settings.webhook_allow_private,
    );
    if !f.is_empty() {
        return Err(AppError::invalid(f.errors));
    }
    let secret = signing::new_secret();
    let id = Uuid::now_v7();
    let row = EndpointRow {
        tenant_id: caller.tenant.clone(),
        id,
        url: body.url,
        description: body.description,
        event_types: events.into_iter().map(Some).collect(),
        enabled: body.enabled.unwrap_or(true),
        disabled_reason: None,
        secret: secrets::seal(
            settings.secret_keys.as_deref(),
            &q::secret_context(id),
            &secret,
        ),
        previous_secrets: Value::Array(vec![]),
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    Ok((row, secret))
}

/// List webhook endpoints.
#[utoipa::path(
    tag = "webhooks",
    params(PageParams),
    responses(
        (status = 200, description = "A page of endpoints", body = EndpointList),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[get("/webhook-endpoints")]
pub async fn list_endpoints(
    caller: Caller,
    db: web::Data<Db>,
    paging: web::Query<PageParams>,
) -> AppResult<web::Json<EndpointList>> {
    caller.require(Scope::WebhooksManage)?;
    let limit = paging.limit()?;
    let order = paging.order(Order::Asc);
    let after = paging.after_uuid(order)?;
    let tenant = caller.tenant.clone();
    let rows = db
        .query(move |c| Ok(q::list_endpoints(c, &tenant, order, after, limit + 1)?))
        .await?;
    let (rows, next_cursor) = page(rows, limit, order, |r| r.id.to_string());
    Ok(web::Json(EndpointList {
        items: rows.into_iter().map(|r| view(r, None)).collect(),
        next_cursor,
    }))
}

/// Read a webhook endpoint (without its secret), with its `ETag` (304 when `If-None-Match`
/// names it).
#[utoipa::path(
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "Endpoint id"),
        ("If-None-Match" = Option<String>, Header, description = "ETags already held: 304 when one is current"),
    ),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView, headers(("ETag" = String, description = "The endpoint's entity tag"))),
        (status = 304, description = "Not modified: the ETag in If-None-Match is current", headers(("ETag" = String, description = "The endpoint's entity tag"))),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[get("/webhook-endpoints/{id}")]
pub async fn get_endpoint(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    let row = db
        .query(move |c| {
            q::find_endpoint(c, &tenant, id).map_err(AppError::missing("webhook endpoint"))
        })
        .await?;
    let v = view(row, None);
    Ok(read_answer(&req, content_tag(&v), &v))
}

/// Change an endpoint: URL, events, description, or re-enable it. `If-Match` is optional: with
/// it, the endpoint changes only if it is still the one read (412 otherwise).
#[utoipa::path(
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "Endpoint id"),
        ("If-Match" = Option<String>, Header, description = "Change only if the endpoint's ETag is still this one"),
    ),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, description = "Updated", body = EndpointView, headers(("ETag" = String, description = "The endpoint's entity tag"))),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names another version (`version_mismatch`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid URL or event type", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[patch("/webhook-endpoints/{id}")]
pub async fn update_endpoint(
    caller: Caller,
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    req: HttpRequest,
    id: web::Path<String>,
    body: JsonBody<UpdateEndpoint>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let id = parse_id(&id)?;
    let body = body.into_inner();
    let mut f = Faults::default();
    check_fields(
        &mut f,
        body.url.as_deref(),
        body.events.as_deref(),
        body.description.as_deref(),
        settings.webhook_allow_private,
    );
    if !f.is_empty() {
        return Err(AppError::invalid(f.errors));
    }
    let precondition = Precondition::read(&req);
    let tenant = caller.tenant.clone();
    let row = db
        .tx(move |c| {
            let mut row = q::find_endpoint_for_update(c, &tenant, id)
                .map_err(AppError::missing("webhook endpoint"))?;
            let tag = content_tag(&view(row.clone(), None));
            precondition.check(Some(&tag), "webhook endpoint")?;
            let was_enabled = row.enabled;
            if let Some(url) = body.url {
                row.url = url;
            }
            if let Some(events) = body.events {
                row.event_types = events.into_iter().map(Some).collect();
            }
            if let Some(d) = body.description {
                row.description = Some(d);
            }
            match body.enabled {
                Some(true) if !row.enabled => {
                    row.enabled = true;
                    row.disabled_reason = None;
                    row.failing_since = None;
                }
                Some(false) if row.enabled => {
                    row.enabled = false;
                    row.disabled_reason = Some("disabled through the API".into());
                }
                _ => {}
            }
            let row = q::update_endpoint(c, &row)?;
            if was_enabled && !row.enabled {
                // Queued deliveries and their retries stop with the endpoint. An endpoint that
                // was disabled already keeps its reason (410 Gone, failing since...).
                q::disable_endpoint(c, &row.tenant_id, row.id, "disabled through the API")?;
            }
            Ok(row)
        })
        .await?;
    let v = view(row, None);
    Ok(tagged(HttpResponse::Ok(), content_tag(&v), &v))
}

/// Delete an endpoint and its delivery log.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[delete("/webhook-endpoints/{id}")]
pub async fn delete_endpoint(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    let n = db
        .run(move |c| Ok(q::delete_endpoint(c, &tenant, id)?))
        .await?;
    if n == 0 {
        return Err(AppError::not_found("webhook endpoint"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Replace the endpoint's secret. During the grace period every delivery carries signatures
/// from both the old and the new secret, so the receiver can switch without losing any.
#[utoipa::path(
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "Endpoint id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the replay answers the same new secret instead of rotating again"),
    ),
    request_body(content = RotateSecret, description = "Optional grace period"),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = EndpointView),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown field, or grace period not a duration from PT0S to P7D", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[post("/webhook-endpoints/{id}/rotate-secret")]
pub async fn rotate_secret(
    caller: Caller,
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    clock: web::Data<Clock>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let id = parse_id(&id)?;
    // No body takes the defaults; anything else must be a valid body: a typo or a bad
    // duration is refused, never read as "no grace period given".
    let raw: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        let json = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if !json {
            return Err(AppError::new(
                crate::error::Kind::UnsupportedMediaType,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        serde_json::from_slice(&body).map_err(|e| {
            AppError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
        })?
    };
    let parsed: RotateSecret = super::extract::typed_body(&raw)?;
    let grace = parsed.grace_period.map(|d| d.seconds).unwrap_or(24 * 3600);
    if !(0..=MAX_GRACE_SECS).contains(&grace) {
        return Err(AppError::invalid_field(
            "grace_period",
            "must be from PT0S to P7D",
        ));
    }
    let tenant = caller.tenant.clone();
    let keys = settings.secret_keys.clone();
    let now = clock.now();
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let view = rotate(c, &tenant, keys.as_deref(), now, id, grace)?;
        Ok(Answer::of(StatusCode::OK, &view)?.holding_secret())
    })
    .await
}

/// Gives the endpoint a new secret, in the caller's transaction; the old ones keep signing
/// until their grace period ends.
fn rotate(
    c: &mut diesel::PgConnection,
    tenant: &str,
    keys: Option<&crate::secrets::SecretKeys>,
    now: chrono::DateTime<chrono::Utc>,
    id: Uuid,
    grace: i64,
) -> AppResult<EndpointView> {
    let secret = signing::new_secret();
    let new = secret.clone();
    let row = {
        {
            let mut row = q::find_endpoint_for_update(c, tenant, id)
                .map_err(AppError::missing("webhook endpoint"))?;
            let context = q::secret_context(id);
            let until = now + chrono::Duration::seconds(grace);
            // Earlier secrets keep their grace, never past this rotation's.
            let mut previous: Vec<q::PreviousSecret> = q::previous_secrets(&row.previous_secrets)
                .into_iter()
                .map(|p| q::PreviousSecret {
                    expires_at: p.expires_at.min(until),
                    ..p
                })
                .filter(|p| p.expires_at > now)
                .collect();
            if grace > 0 {
                let replaced = match keys {
                    Some(k) => reseal::reseal_one(k, &context, &row.secret)
                        .map_err(|e| AppError::Internal(anyhow::anyhow!("endpoint secret: {e}")))?,
                    None => row.secret.clone(),
                };
                previous.insert(
                    0,
                    q::PreviousSecret {
                        secret: replaced,
                        expires_at: until,
                    },
                );
            }
            previous.truncate(q::MAX_PREVIOUS_SECRETS);
            row.secret = secrets::seal(keys, &context, &new);
            row.previous_secrets = serde_json::to_value(&previous).map_err(anyhow::Error::from)?;
            q::update_endpoint(c, &row)?
        }
    };
    Ok(view(row, Some(secret)))
}
