//! Approvals: request, read, decide, and the administrator's actions.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::idempotency::{self, Answer};
use super::pagination::{PageParams, page};
use super::principals::check_id;
use super::problem::Problem;
use crate::api::body::JsonBody;
use crate::auth::{Caller, Scope};
use crate::db::approvals as q;
use crate::db::listing::{self, ListFilter};
use crate::db::{Db, Order};
use crate::domain::engine::ApprovalStatus;
use crate::domain::validate::{Faults, is_external_id};
use crate::error::{AppError, AppResult};
use crate::service::approvals::{self as svc, RequestApproval};
use crate::service::listing::{page_json, views};
use crate::service::store::{self, Ctx};
use crate::service::view::ApprovalView;

// The shape of a page, for the document; pages are written by `service::listing::page_json`.
/// A page of approvals.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalList {
    pub items: Vec<ApprovalView>,
    /// Pass as `cursor` to read the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Filters of the approval list.
/// `POST /v1/approvals/preview`: what a request would start.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalPreview {
    /// The approval as it would start: `state` is `preview`, `id` the nil UUID.
    pub approval: ApprovalView,
    /// What would be skipped, removed or refused, and why, in plain words.
    pub notes: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalFilter {
    /// Approvals on this ticket.
    pub ticket_id: Option<String>,
    /// `pending`, `approved`, `rejected`, `cancelled` or `withdrawn`.
    pub state: Option<String>,
    /// Approvals running this process.
    pub process_id: Option<String>,
    /// Approvals where this principal has a task, in any stage and state.
    pub approver_id: Option<String>,
}

/// One stored event: the webhook's envelope, with its `sequence`. The published schema is the
/// typed union `Event` (`spec::events`), one envelope per type with its `data` typed.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `evt_…`, the same id the webhook carries.
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The tenant the event belongs to.
    pub tenant: String,
    /// Position in this approval's event stream, from 1.
    pub sequence: i64,
    /// The webhook body's `data`.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub items: Vec<EventView>,
    pub next_cursor: Option<String>,
}

/// An approval id from a path: one that is not a UUID names no approval.
pub fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::not_found("approval"))
}

/// Request approval on a ticket.
///
/// From a process (pinned to its current version) or ad-hoc (`approvers`, optional `require`).
/// Each stage's approvers are read from the directory when the stage starts; the first starts now and `approval.requested` is emitted with
/// the recipients to notify. A second request on a ticket with a pending approval is refused
/// with 409 `approval_pending` (naming it) unless `supersede` is true. Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "approvals",
    request_body = RequestApproval,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body answer the first result")),
    responses(
        (status = 201, description = "Requested", body = ApprovalView, headers(("Location" = String, description = "The approval's URL"))),
        (status = 409, description = "A pending approval exists (`approval_pending`, with `pending_approval_id`), the process is disabled (`process_disabled`), or the key is in use", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request, or nobody to ask (`no_approvers`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:write"]))
)]
#[post("/approvals")]
pub async fn request_approval(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    body: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsWrite)?;
    let input = RequestApproval::parse(&body).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    idempotency::run(&db, &caller, &req, &body, move |c| {
        let loaded = svc::request(c, &tenant, &input, &ctx)?;
        let location = format!("/v1/approvals/{}", loaded.row.id);
        Ok(
            Answer::text(StatusCode::CREATED, loaded.into_view_text()?)
                .header("location", location),
        )
    })
    .await
}

/// What a request would do.
///
/// Takes the body of `POST /v1/approvals` and answers the approval it would start with
/// (`state: preview`, the nil id), every stage resolved as if it started now, with `notes` on
/// what would be skipped, removed or refused. Writes nothing and emits nothing.
#[utoipa::path(
    tag = "approvals",
    request_body = RequestApproval,
    responses(
        (status = 200, description = "The approval a request would start, and notes", body = ApprovalPreview),
        (status = 409, description = "The process is disabled (`process_disabled`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:read"]))
)]
#[post("/approvals/preview")]
pub async fn preview_approval(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    body: JsonBody<Value>,
) -> AppResult<web::Json<ApprovalPreview>> {
    caller.require(Scope::ApprovalsRead)?;
    let input = RequestApproval::parse(&body).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    let (approval, notes) = db
        .read(move |c| svc::preview(c, &tenant, &input, &ctx))
        .await?;
    Ok(web::Json(ApprovalPreview { approval, notes }))
}

/// List approvals, oldest first (`order=desc`: newest first).
#[utoipa::path(
    tag = "approvals",
    params(PageParams, ApprovalFilter),
    responses(
        (status = 200, description = "A page of approvals", body = ApprovalList),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:read"]))
)]
#[get("/approvals")]
pub async fn list_approvals(
    caller: Caller,
    db: web::Data<Db>,
    paging: web::Query<PageParams>,
    filter: web::Query<ApprovalFilter>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsRead)?;
    let limit = paging.limit()?;
    let order = paging.order(Order::Asc);
    let after = paging.after_uuid(order)?;
    let mut f = Faults::default();
    for (name, value) in [
        ("ticket_id", &filter.ticket_id),
        ("approver_id", &filter.approver_id),
    ] {
        if value.as_deref().is_some_and(|v| !is_external_id(v)) {
            f.push(name, "is not a valid id");
        }
    }
    if let Some(s) = &filter.state
        && !matches!(
            crate::service::view::parse_enum::<ApprovalStatus>(s),
            Some(st) if st != ApprovalStatus::Preview
        )
    {
        f.push(
            "state",
            "must be pending, approved, rejected, cancelled or withdrawn",
        );
    }
    let process_id = match &filter.process_id {
        None => None,
        Some(p) => match Uuid::parse_str(p) {
            Ok(u) => Some(u),
            Err(_) => {
                f.push("process_id", "is not a process id");
                None
            }
        },
    };
    if !f.is_empty() {
        return Err(AppError::invalid(f.errors));
    }
    let lf = ListFilter {
        ticket_id: filter.ticket_id.clone(),
        state: filter.state.clone(),
        process_id,
        approver_id: filter.approver_id.clone(),
    };
    let tenant = caller.tenant.clone();
    // One statement reads the page and its tasks, so it needs no transaction of its own.
    let (items, next_cursor) = db
        .query(move |c| {
            let rows = listing::list(c, &tenant, &lf, order, after, limit + 1)?;
            let (rows, next) = page(rows, limit, order, |r| r.id.to_string());
            Ok((views(rows)?, next))
        })
        .await?;
    json_page(&items, next_cursor.as_deref())
}

fn json_page(
    items: &[crate::service::listing::Listed],
    next_cursor: Option<&str>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(page_json(items, next_cursor)?))
}

/// Read an approval: stages, group tallies, tasks, who it waits for, and the outcome.
#[utoipa::path(
    tag = "approvals",
    params(("id" = String, Path, description = "Approval id")),
    responses(
        (status = 200, description = "The approval", body = ApprovalView),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:read"]))
)]
#[get("/approvals/{id}")]
pub async fn get_approval(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<web::Json<ApprovalView>> {
    caller.require(Scope::ApprovalsRead)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    let loaded = db.read(move |c| store::load(c, &tenant, id, false)).await?;
    Ok(web::Json(loaded.view()))
}

/// The approval's audit trail: every event, in sequence order (`order=desc`: newest first).
#[utoipa::path(
    tag = "approvals",
    params(("id" = String, Path, description = "Approval id"), PageParams),
    responses(
        (status = 200, description = "Events in sequence order", body = EventList),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:read"]))
)]
#[get("/approvals/{id}/events")]
pub async fn list_events(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
    paging: web::Query<PageParams>,
) -> AppResult<web::Json<EventList>> {
    caller.require(Scope::ApprovalsRead)?;
    let id = parse_id(&id)?;
    let limit = paging.limit()?;
    let order = paging.order(Order::Asc);
    let after = paging.after_number(order)?;
    let tenant = caller.tenant.clone();
    let rows = db
        .read(move |c| {
            q::find(c, &tenant, id).map_err(AppError::missing("approval"))?;
            Ok(q::events_of(c, &tenant, id, order, after, limit + 1)?)
        })
        .await?;
    let (rows, next_cursor) = page(rows, limit, order, |e| e.sequence.to_string());
    let items = rows
        .into_iter()
        .map(|e| EventView {
            id: crate::webhooks::event_id(&e.id),
            kind: e.kind,
            created_at: e.created_at,
            tenant: e.tenant_id,
            sequence: e.sequence,
            data: e.payload.get("data").cloned().unwrap_or(Value::Null),
        })
        .collect();
    Ok(web::Json(EventList { items, next_cursor }))
}

/// A principal's inbox: pending approvals waiting for their answer in the running stage,
/// and, while a delegation to them is in force, those waiting for their delegators.
#[utoipa::path(
    tag = "approvals",
    params(("id" = String, Path, description = "Principal id"), PageParams),
    responses(
        (status = 200, description = "A page of approvals", body = ApprovalList),
    ),
    security(("bearer" = ["approvals:read"]))
)]
#[get("/principals/{id}/pending-approvals")]
pub async fn pending_approvals(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
    paging: web::Query<PageParams>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsRead)?;
    let id = id.into_inner();
    check_id(&id)?;
    let limit = paging.limit()?;
    let order = paging.order(Order::Asc);
    let after = paging.after_uuid(order)?;
    let tenant = caller.tenant.clone();
    let (items, next_cursor) = db
        .query(move |c| {
            // A delegate in force also sees what waits for the people who delegated to them.
            // The page is one statement (the approvals and their tasks in one snapshot); who
            // it is for may be read a moment before, as if the request had come then.
            let mut who = crate::db::time::delegators_of(c, &tenant, &id, now.0)?;
            who.push(id);
            let rows = listing::inbox(c, &tenant, &who, order, after, limit + 1)?;
            let (rows, next) = page(rows, limit, order, |r| r.id.to_string());
            Ok((views(rows)?, next))
        })
        .await?;
    json_page(&items, next_cursor.as_deref())
}

/// Delete a ticket: the stored ticket, its approvals and their events (the host deleted it).
#[utoipa::path(
    tag = "tickets",
    params(("id" = String, Path, description = "The host's ticket id")),
    responses(
        (status = 204, description = "Deleted (also when there was nothing to delete)"),
    ),
    security(("bearer" = ["approvals:write"]))
)]
#[delete("/tickets/{id}")]
pub async fn delete_ticket(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsWrite)?;
    let id = id.into_inner();
    if !is_external_id(&id) {
        return Err(AppError::not_found("ticket"));
    }
    let tenant = caller.tenant.clone();
    db.tx(move |c| {
        q::lock_ticket(c, &tenant, &id)?;
        crate::db::automation::delete_ticket(c, &tenant, &id)?;
        Ok(q::delete_ticket(c, &tenant, &id)?)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
