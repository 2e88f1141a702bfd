//! Approvals: request, read, decide, and the administrator's actions.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use diesel::Connection;
use diesel::pg::PgConnection;

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
use crate::db::Db;
use crate::db::approvals::{self as q, ListFilter};
use crate::domain::engine::Verdict;
use crate::domain::validate::{Faults, FieldError, is_external_id};
use crate::error::{AppError, AppResult};
use crate::service::approvals::{self as svc, DecisionInput, RequestApproval};
use crate::service::store::{self, Ctx};
use crate::service::view::ApprovalView;

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
    /// `pending`, `approved`, `rejected` or `cancelled`.
    pub state: Option<String>,
    /// Approvals running this process.
    pub process_id: Option<String>,
    /// Approvals where this principal has a task, in any stage and state.
    pub approver_id: Option<String>,
}

/// One stored event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `evt_…`, the same id the webhook carries.
    pub id: String,
    /// `approval.requested`, `approval.decision_recorded`, `approval.stage_advanced`,
    /// `approval.reminder`, `approval.approved`, `approval.rejected`, `approval.cancelled`.
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
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

/// Body of `POST /v1/approvals/{id}/cancel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelApproval {
    pub reason: String,
    #[serde(default)]
    pub actor_id: Option<String>,
}

/// Body of `POST /v1/approvals/{id}/bypass`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BypassApproval {
    pub decision: Verdict,
    pub reason: String,
    #[serde(default)]
    pub actor_id: Option<String>,
}

/// One decision of a bulk request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDecision {
    pub approval_id: String,
    pub approver_id: String,
    pub decision: Verdict,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub on_behalf_of: Option<String>,
}

/// Body of `POST /v1/decisions/bulk`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDecisions {
    /// At most 100 decisions, each applied on its own.
    pub items: Vec<BulkDecision>,
}

/// The result of one bulk item.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    pub approval_id: String,
    /// The HTTP status this decision would have had on its own.
    pub status: u16,
    pub error: Option<Problem>,
}

/// Answer of `POST /v1/decisions/bulk`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResults {
    pub results: Vec<BulkResult>,
}

pub const MAX_BULK: usize = 100;

fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::not_found("approval"))
}

fn to_json<T: Serialize>(v: &T) -> AppResult<Value> {
    serde_json::to_value(v).map_err(|e| AppError::Internal(anyhow::anyhow!("serialize: {e}")))
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
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:write` scope", body = Problem, content_type = "application/problem+json"),
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
        Ok(Answer::new(StatusCode::CREATED, loaded.into_view_json()?).header("location", location))
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
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:read` scope", body = Problem, content_type = "application/problem+json"),
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

/// List approvals, oldest first.
#[utoipa::path(
    tag = "approvals",
    params(PageParams, ApprovalFilter),
    responses(
        (status = 200, description = "A page of approvals", body = ApprovalList),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:read` scope", body = Problem, content_type = "application/problem+json"),
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
) -> AppResult<web::Json<ApprovalList>> {
    caller.require(Scope::ApprovalsRead)?;
    let limit = paging.limit()?;
    let after = cursor_uuid(&paging)?;
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
        && !["pending", "approved", "rejected", "cancelled"].contains(&s.as_str())
    {
        f.push("state", "must be pending, approved, rejected or cancelled");
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
    let (items, next_cursor) = db
        .read(move |c| {
            let rows = q::list(c, &tenant, &lf, after, limit + 1)?;
            let (rows, next) = page(rows, limit, |r| r.id.to_string());
            Ok((store::load_many(c, &tenant, rows)?, next))
        })
        .await?;
    Ok(web::Json(ApprovalList { items, next_cursor }))
}

fn cursor_uuid(paging: &PageParams) -> AppResult<Option<Uuid>> {
    paging.after_uuid()
}

/// Read an approval: stages, group tallies, tasks, who it waits for, and the outcome.
#[utoipa::path(
    tag = "approvals",
    params(("id" = String, Path, description = "Approval id")),
    responses(
        (status = 200, description = "The approval", body = ApprovalView),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:read` scope", body = Problem, content_type = "application/problem+json"),
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

/// The approval's audit trail: every event, in order.
#[utoipa::path(
    tag = "approvals",
    params(("id" = String, Path, description = "Approval id"), PageParams),
    responses(
        (status = 200, description = "Events in sequence order", body = EventList),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:read` scope", body = Problem, content_type = "application/problem+json"),
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
    let after: i64 = match paging.after()? {
        None => 0,
        Some(c) => c
            .parse()
            .map_err(|_| AppError::bad_request("invalid_cursor", "the cursor is not valid"))?,
    };
    let tenant = caller.tenant.clone();
    let rows = db
        .read(move |c| {
            q::find(c, &tenant, id).map_err(AppError::missing("approval"))?;
            Ok(q::events_of(c, &tenant, id, after, limit + 1)?)
        })
        .await?;
    let (rows, next_cursor) = page(rows, limit, |e| e.sequence.to_string());
    let items = rows
        .into_iter()
        .map(|e| EventView {
            id: format!("evt_{}", e.id.simple()),
            kind: e.kind,
            created_at: e.created_at,
            sequence: e.sequence,
            data: e.payload.get("data").cloned().unwrap_or(Value::Null),
        })
        .collect();
    Ok(web::Json(EventList { items, next_cursor }))
}

/// Record an approver's decision.
///
/// `approver_id` is who decides; with `on_behalf_of`, a substitute decides for that approver.
/// 403 `not_an_approver` for someone not asked in the running stage, 409 `already_decided` for
/// a second answer, 409 `approval_closed` once the approval has ended, 422 when the process
/// requires a comment to reject. Concurrent decisions are serialised on the approval: exactly
/// one outcome. Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "approvals",
    params(
        ("id" = String, Path, description = "Approval id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe"),
    ),
    request_body = DecisionInput,
    responses(
        (status = 200, description = "Recorded; the approval as it now stands", body = ApprovalView),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:decide` scope, not an approver (`not_an_approver`), not a substitute (`not_a_substitute`), already answered in this stage (`double_answer`), the requester or requested_by (`self_approval_not_allowed`), or inactive (`inactive_principal`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided (`already_decided`) or closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body, or a comment is required to reject", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:decide"]))
)]
#[post("/approvals/{id}/decisions")]
pub async fn decide(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    body: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsDecide)?;
    let id = parse_id(&id)?;
    let input = DecisionInput::parse(&body).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    idempotency::run(&db, &caller, &req, &body, move |c| {
        let loaded = svc::decide(c, &tenant, id, &input, &ctx)?;
        Ok(Answer::new(StatusCode::OK, loaded.into_view_json()?))
    })
    .await
}

fn check_reason(reason: &str) -> AppResult<()> {
    if reason.trim().is_empty() || reason.len() > 2_000 {
        return Err(AppError::invalid_field(
            "reason",
            "must be 1 to 2000 characters",
        ));
    }
    Ok(())
}

/// Cancel a pending approval.
#[utoipa::path(
    tag = "approvals",
    params(
        ("id" = String, Path, description = "Approval id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe"),
    ),
    request_body = CancelApproval,
    responses(
        (status = 200, description = "Cancelled", body = ApprovalView),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:admin"]))
)]
#[post("/approvals/{id}/cancel")]
pub async fn cancel(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    raw: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsAdmin)?;
    let body: CancelApproval = super::typed_body(&raw)?;
    let action = Close {
        verdict: None,
        reason: body.reason,
        actor_id: body.actor_id,
    };
    let (tenant, ctx, id) = (caller.tenant.clone(), ctx, parse_id(&id)?);
    check_reason(&action.reason)?;
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let view = close(c, &tenant, id, action, &ctx)?;
        Ok(Answer::new(StatusCode::OK, to_json(&view)?))
    })
    .await
}

/// An administrator closing an approval: a cancel, or a bypass with its verdict.
struct Close {
    verdict: Option<Verdict>,
    reason: String,
    actor_id: Option<String>,
}

fn close(
    c: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    action: Close,
    ctx: &Ctx,
) -> AppResult<ApprovalView> {
    let (reason, actor) = (action.reason.trim(), action.actor_id.as_deref());
    let loaded = match action.verdict {
        None => svc::cancel(c, tenant, id, reason, actor, ctx),
        Some(v) => svc::bypass(c, tenant, id, v, reason, actor, ctx),
    }?;
    Ok(loaded.view())
}

/// Force an outcome, recorded as a bypass.
#[utoipa::path(
    tag = "approvals",
    params(
        ("id" = String, Path, description = "Approval id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe"),
    ),
    request_body = BypassApproval,
    responses(
        (status = 200, description = "Decided by bypass", body = ApprovalView),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:admin` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing reason or decision", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:admin"]))
)]
#[post("/approvals/{id}/bypass")]
pub async fn bypass(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    raw: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsAdmin)?;
    let body: BypassApproval = super::typed_body(&raw)?;
    let action = Close {
        verdict: Some(body.decision),
        reason: body.reason,
        actor_id: body.actor_id,
    };
    let (tenant, ctx, id) = (caller.tenant.clone(), ctx, parse_id(&id)?);
    check_reason(&action.reason)?;
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let view = close(c, &tenant, id, action, &ctx)?;
        Ok(Answer::new(StatusCode::OK, to_json(&view)?))
    })
    .await
}

/// Re-notify the approvers who have not answered (`approval.reminder`).
#[utoipa::path(
    tag = "approvals",
    params(("id" = String, Path, description = "Approval id")),
    request_body(content = Object, description = "An empty object"),
    responses(
        (status = 202, description = "Reminder emitted"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:write` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:write"]))
)]
#[post("/approvals/{id}/remind")]
pub async fn remind(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsWrite)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    db.tx(move |c| svc::remind(c, &tenant, id, &ctx)).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status": "reminded"})))
}

/// Record many decisions at once (an approver's inbox, approved in bulk).
///
/// Each item is applied in its own transaction and answered with the status it would have had
/// alone; one failing item does not stop the others.
#[utoipa::path(
    tag = "approvals",
    request_body = BulkDecisions,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "One result per item, in order", body = BulkResults),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:decide` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a list of decisions, or more than 100", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:decide"]))
)]
#[post("/decisions/bulk")]
pub async fn bulk_decide(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    body: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsDecide)?;
    let (tenant, items) = (caller.tenant.clone(), body.clone());
    idempotency::run(&db, &caller, &req, &body, move |c| {
        let results = bulk(c, &tenant, &ctx, &items)?;
        Ok(Answer::new(StatusCode::OK, to_json(&results)?))
    })
    .await
}

/// Each item runs in its own savepoint of the request's transaction: a failing item is
/// rolled back alone.
fn bulk(c: &mut PgConnection, tenant: &str, ctx: &Ctx, body: &Value) -> AppResult<BulkResults> {
    if let Some(unknown) = body
        .as_object()
        .and_then(|m| m.keys().find(|k| k.as_str() != "items"))
    {
        return Err(AppError::invalid_field(unknown, "is not a known field"));
    }
    let items = match body.get("items").and_then(Value::as_array) {
        Some(items) if items.len() <= MAX_BULK => items.clone(),
        Some(_) => {
            return Err(AppError::invalid_field(
                "items",
                format!("at most {MAX_BULK} decisions"),
            ));
        }
        None => {
            return Err(AppError::invalid_field(
                "items",
                "is required: an array of decisions",
            ));
        }
    };
    // Each item is read on its own, but one that is not an object is a malformed request.
    let not_objects: Vec<FieldError> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| !item.is_object())
        .map(|(i, _)| FieldError {
            field: format!("items[{i}]"),
            message: "must be an object".into(),
        })
        .collect();
    if !not_objects.is_empty() {
        return Err(AppError::invalid(not_objects));
    }
    let mut results = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let approval_id = item
            .get("approval_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let outcome = (|| {
            let id = parse_id(&approval_id)?;
            let input = DecisionInput::parse(item).map_err(|errors| {
                AppError::invalid(
                    errors
                        .into_iter()
                        .map(|mut e| {
                            e.field = svc::bulk_path(i, &e.field);
                            e
                        })
                        .collect(),
                )
            })?;
            c.transaction(|c| svc::decide(c, tenant, id, &input, ctx))
                .map(|_| ())
        })();
        results.push(match outcome {
            Ok(()) => BulkResult {
                approval_id,
                status: 200,
                error: None,
            },
            Err(e) => BulkResult {
                approval_id,
                status: actix_web::ResponseError::status_code(&e).as_u16(),
                error: Some(super::problem::problem_of(&e)),
            },
        });
    }
    Ok(BulkResults { results })
}

/// A principal's inbox: pending approvals waiting for their answer in the running stage,
/// and, while a delegation to them is in force, those waiting for their delegators.
#[utoipa::path(
    tag = "approvals",
    params(("id" = String, Path, description = "Principal id"), PageParams),
    responses(
        (status = 200, description = "A page of approvals", body = ApprovalList),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:read` scope", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:read"]))
)]
#[get("/principals/{id}/pending-approvals")]
pub async fn pending_approvals(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
    paging: web::Query<PageParams>,
    now: super::Now,
) -> AppResult<web::Json<ApprovalList>> {
    caller.require(Scope::ApprovalsRead)?;
    let id = id.into_inner();
    check_id(&id)?;
    let limit = paging.limit()?;
    let after = cursor_uuid(&paging)?;
    let tenant = caller.tenant.clone();
    let (items, next_cursor) = db
        .read(move |c| {
            // A delegate in force also sees what waits for the people who delegated to them.
            let mut who = crate::db::time::delegators_of(c, &tenant, &id, now.0)?;
            who.push(id);
            let rows = q::inbox(c, &tenant, &who, after, limit + 1)?;
            let (rows, next) = page(rows, limit, |r| r.id.to_string());
            Ok((store::load_many(c, &tenant, rows)?, next))
        })
        .await?;
    Ok(web::Json(ApprovalList { items, next_cursor }))
}

/// Delete a ticket: the stored ticket, its approvals and their events (the host deleted it).
#[utoipa::path(
    tag = "tickets",
    params(("id" = String, Path, description = "The host's ticket id")),
    responses(
        (status = 204, description = "Deleted (also when there was nothing to delete)"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `approvals:write` scope", body = Problem, content_type = "application/problem+json"),
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
