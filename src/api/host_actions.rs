//! Host actions: the requests signoff sends to the host's own API for the events it names
//! (set the ticket's status, comment on it), and their delivery log.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::conditional::{Precondition, read_answer, tagged, version_tag};
use super::idempotency::{self, Answer};
use super::pagination::{PageParams, page};
use super::problem::Problem;
use crate::api::body::JsonBody;
use crate::auth::{Caller, Scope};
use crate::config::Settings;
use crate::db::{Db, Order};
use crate::error::{AppError, AppResult};
use crate::service::host_actions::{
    self as svc, ActionDeliveryView, HostActionInput, HostActionView, Policy,
};

/// A page of host actions.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostActionList {
    pub items: Vec<HostActionView>,
    /// Pass as `cursor` to read the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of an action's deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionDeliveryList {
    pub items: Vec<ActionDeliveryView>,
    /// Pass as `cursor` to read the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::not_found("host action"))
}

fn policy(settings: &Settings) -> Policy {
    Policy {
        keys: settings.secret_keys.clone(),
        allow_private: settings.webhook_allow_private,
    }
}

/// Create a host action.
///
/// Templates are compiled now (422 naming `requests[i].url`, `requests[i].headers.<name>` or
/// `requests[i].body`), the URL's origin must be literal and allowed by the outbound address
/// policy, and `secrets` are sealed; the answer names them in `secret_names` and never shows
/// their values. Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "actions",
    request_body = HostActionInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body answer the first result")),
    responses(
        (status = 201, description = "Created", body = HostActionView, headers(("ETag" = String, description = "The version"), ("Location" = String, description = "The action's URL"))),
        (status = 409, description = "The key is in use", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid action, every fault listed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[post("/host-actions")]
pub async fn create_host_action(
    caller: Caller,
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    req: HttpRequest,
    raw: JsonBody<Value>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let input: HostActionInput = super::extract::typed_body(&raw)?;
    let row = svc::new_action(&caller.tenant, &input, &policy(&settings), now.0)?;
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let v = svc::create(c, &row)?;
        Ok(Answer::of(StatusCode::CREATED, &v)?
            .header("etag", version_tag(v.version).to_string())
            .header("location", format!("/v1/host-actions/{}", v.id)))
    })
    .await
}

/// List host actions, oldest first (`order=desc`: newest first).
#[utoipa::path(
    tag = "actions",
    params(PageParams),
    responses(
        (status = 200, description = "A page of host actions", body = HostActionList),
        (status = 400, description = "Invalid cursor (`invalid_cursor`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[get("/host-actions")]
pub async fn list_host_actions(
    caller: Caller,
    db: web::Data<Db>,
    paging: web::Query<PageParams>,
) -> AppResult<web::Json<HostActionList>> {
    caller.require(Scope::WebhooksManage)?;
    let limit = paging.limit()?;
    let order = paging.order(Order::Asc);
    let after = paging.after_uuid(order)?;
    let tenant = caller.tenant.clone();
    let (items, next_cursor) = db
        .read(move |c| {
            let rows = svc::list(c, &tenant, order, after, limit + 1)?;
            Ok(page(rows, limit, order, |r| r.id.clone()))
        })
        .await?;
    Ok(web::Json(HostActionList { items, next_cursor }))
}

/// Read a host action, with its version in `ETag` (secrets by name only).
#[utoipa::path(
    tag = "actions",
    params(
        ("id" = String, Path, description = "Host action id"),
        ("If-None-Match" = Option<String>, Header, description = "ETags already held: 304 when one is current"),
    ),
    responses(
        (status = 200, description = "The action", body = HostActionView, headers(("ETag" = String, description = "The version"))),
        (status = 304, description = "Not modified", headers(("ETag" = String, description = "The version"))),
        (status = 404, description = "No such action", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[get("/host-actions/{id}")]
pub async fn get_host_action(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    let v = db.read(move |c| svc::find(c, &tenant, id)).await?;
    Ok(read_answer(&req, version_tag(v.version), &v))
}

/// Replace a host action.
///
/// Needs `If-Match` with the current `ETag`: 428 without it, 412 when it is stale. `secrets`
/// merge: names given are set, names given `null` removed, the others kept. Deliveries already
/// pending run with the new definition.
#[utoipa::path(
    tag = "actions",
    params(
        ("id" = String, Path, description = "Host action id"),
        ("If-Match" = String, Header, description = "The ETag read last"),
    ),
    request_body = HostActionInput,
    responses(
        (status = 200, description = "The new version", body = HostActionView, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "No such action", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match (`version_mismatch`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid action", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing (`if_match_required`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[put("/host-actions/{id}")]
pub async fn replace_host_action(
    caller: Caller,
    db: web::Data<Db>,
    settings: web::Data<Settings>,
    req: HttpRequest,
    id: web::Path<String>,
    raw: JsonBody<Value>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let id = parse_id(&id)?;
    let expected = Precondition::require(&req, "host action")?;
    let input: HostActionInput = super::extract::typed_body(&raw)?;
    let policy = policy(&settings);
    let tenant = caller.tenant.clone();
    let v = db
        .tx(move |c| {
            svc::replace(c, &tenant, id, &input, &policy, now.0, |v| {
                expected.check_version(v, "host action")
            })
        })
        .await?;
    Ok(tagged(HttpResponse::Ok(), version_tag(v.version), &v))
}

/// Delete a host action, with its pending deliveries and its log.
#[utoipa::path(
    tag = "actions",
    params(("id" = String, Path, description = "Host action id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such action", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[delete("/host-actions/{id}")]
pub async fn delete_host_action(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    db.tx(move |c| svc::delete(c, &tenant, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An action's deliveries, newest first (`order=asc`: oldest first), each with the attempts of
/// its requests.
#[utoipa::path(
    tag = "actions",
    params(("id" = String, Path, description = "Host action id"), PageParams),
    responses(
        (status = 200, description = "A page of deliveries", body = ActionDeliveryList),
        (status = 404, description = "No such action", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[get("/host-actions/{id}/deliveries")]
pub async fn list_action_deliveries(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
    paging: web::Query<PageParams>,
) -> AppResult<web::Json<ActionDeliveryList>> {
    caller.require(Scope::WebhooksManage)?;
    let id = parse_id(&id)?;
    let limit = paging.limit()?;
    let order = paging.order(Order::Desc);
    let after = paging.after_number(order)?;
    let tenant = caller.tenant.clone();
    let rows = db
        .query(move |c| svc::deliveries(c, &tenant, id, order, after, limit + 1))
        .await?;
    let (rows, next_cursor) = page(rows, limit, order, |(p, _)| p.to_string());
    Ok(web::Json(ActionDeliveryList {
        items: rows.into_iter().map(|(_, d)| d).collect(),
        next_cursor,
    }))
}

/// Run a delivery again now, from the request that failed (after fixing the host, say).
#[utoipa::path(
    tag = "actions",
    params(
        ("id" = String, Path, description = "Host action id"),
        ("delivery_id" = String, Path, description = "Delivery id"),
    ),
    responses(
        (status = 202, description = "Scheduled"),
        (status = 404, description = "No such action or delivery (or it succeeded)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[post("/host-actions/{id}/deliveries/{delivery_id}/retry")]
pub async fn retry_action_delivery(
    caller: Caller,
    db: web::Data<Db>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let (id, delivery) = path.into_inner();
    let id = parse_id(&id)?;
    let delivery = Uuid::parse_str(&delivery).map_err(|_| AppError::not_found("delivery"))?;
    let tenant = caller.tenant.clone();
    db.tx(move |c| svc::retry(c, &tenant, id, delivery)).await?;
    Ok(HttpResponse::Accepted().json(Value::Object(Default::default())))
}
