//! An endpoint's deliveries: every event sent (or to be sent) to it, with each attempt, and
//! a retry on demand.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::pagination::{PageParams, page};
use super::problem::Problem;
use super::webhooks::parse_id;
use crate::auth::{Caller, Scope};
use crate::db::models::{AttemptRow, DeliveryRow};
use crate::db::webhooks as q;
use crate::db::{Db, Order};
use crate::error::{AppError, AppResult};

/// One attempt to deliver.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; null when no answer came (timeout, connection refused).
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    /// The start of the receiver's answer (at most 4 KiB; the rest is never read).
    pub response_excerpt: Option<String>,
}

/// One event's delivery to this endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// `evt_…`, also the `webhook-id` header.
    pub event_id: String,
    pub event_type: String,
    pub approval_id: Option<String>,
    /// `pending`, `succeeded` or `failed` (gave up, or the endpoint was disabled).
    pub state: String,
    pub attempt_count: i32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub attempts: Vec<AttemptView>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryView>,
    pub next_cursor: Option<String>,
}

fn delivery_view(d: DeliveryRow, attempts: &[AttemptRow]) -> DeliveryView {
    DeliveryView {
        id: d.id.to_string(),
        event_id: format!("evt_{}", d.event_id.simple()),
        event_type: d.event_type,
        approval_id: d.approval_id.map(|a| a.to_string()),
        next_attempt_at: (d.state == "pending").then_some(d.next_attempt_at),
        state: d.state,
        attempt_count: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        created_at: d.created_at,
        attempts: attempts
            .iter()
            .filter(|a| a.delivery_id == d.id)
            .map(|a| AttemptView {
                attempted_at: a.attempted_at,
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error: a.error.clone(),
                response_excerpt: a.response_excerpt.clone(),
            })
            .collect(),
    }
}

/// An endpoint's deliveries, newest first (`order=asc`: oldest first), each with its attempts.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id"), PageParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryList),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[get("/webhook-endpoints/{id}/deliveries")]
pub async fn list_deliveries(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
    paging: web::Query<PageParams>,
) -> AppResult<web::Json<DeliveryList>> {
    caller.require(Scope::WebhooksManage)?;
    let id = parse_id(&id)?;
    let limit = paging.limit()?;
    let order = paging.order(Order::Desc);
    let after = paging.after_number(order)?;
    let tenant = caller.tenant.clone();
    let (rows, attempts) = db
        .query(move |c| {
            q::find_endpoint(c, &tenant, id).map_err(AppError::missing("webhook endpoint"))?;
            Ok(q::list_deliveries(c, &tenant, id, order, after, limit + 1)?)
        })
        .await?;
    let (rows, next_cursor) = page(rows, limit, order, |d| d.event_position.to_string());
    Ok(web::Json(DeliveryList {
        items: rows
            .into_iter()
            .map(|d| delivery_view(d, &attempts))
            .collect(),
        next_cursor,
    }))
}

/// Send a delivery again now (after fixing the receiver, say).
#[utoipa::path(
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "Endpoint id"),
        ("delivery_id" = String, Path, description = "Delivery id"),
    ),
    responses(
        (status = 202, description = "Scheduled"),
        (status = 404, description = "No such endpoint or delivery", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled (`endpoint_disabled`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:manage"]))
)]
#[post("/webhook-endpoints/{id}/deliveries/{delivery_id}/retry")]
pub async fn retry_delivery(
    caller: Caller,
    db: web::Data<Db>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::WebhooksManage)?;
    let (id, delivery) = path.into_inner();
    let id = parse_id(&id)?;
    let delivery = Uuid::parse_str(&delivery).map_err(|_| AppError::not_found("delivery"))?;
    let tenant = caller.tenant.clone();
    db.tx(move |c| {
        let endpoint =
            q::find_endpoint(c, &tenant, id).map_err(AppError::missing("webhook endpoint"))?;
        if !endpoint.enabled {
            return Err(AppError::conflict(
                "endpoint_disabled",
                "re-enable the endpoint before retrying its deliveries",
            ));
        }
        match q::retry_delivery(c, &tenant, id, delivery)? {
            0 => Err(AppError::not_found("delivery")),
            _ => Ok(()),
        }
    })
    .await?;
    Ok(HttpResponse::Accepted().json(Value::Object(Default::default())))
}
