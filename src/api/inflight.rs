//! Changes to a pending approval that are not answers: withdraw and reassign.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::approvals::parse_id;
use super::body::JsonBody;
use super::idempotency::{self, Answer};
use super::problem::Problem;
use crate::auth::{Caller, Scope};
use crate::db::Db;
use crate::domain::validate::{Faults, is_external_id, is_storable_text};
use crate::error::{AppError, AppResult};
use crate::service::approvals::{self as svc, Reassign};
use crate::service::store::Ctx;

/// Body of `POST /v1/approvals/{id}/withdraw`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawApproval {
    /// The ticket's requester or the approval's `requested_by`.
    #[schema(example = "u-7", min_length = 1, max_length = 200)]
    pub actor_id: String,
    /// Why, in the requester's words (at most 2000 characters).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
}

/// Body of `POST /v1/approvals/{id}/reassign`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignSeat {
    /// The approver whose pending seat in the running stage moves.
    #[schema(example = "u-42", min_length = 1, max_length = 200)]
    pub from: String,
    /// Who takes it: an active principal, not the requester or `requested_by`, not already
    /// seated or answering in the stage.
    #[schema(example = "u-50", min_length = 1, max_length = 200)]
    pub to: String,
    /// Who moves it. Without `approvals:admin` it must be `from`.
    #[serde(default)]
    #[schema(example = "u-42", min_length = 1, max_length = 200)]
    pub actor_id: Option<String>,
    /// Shown in the event and the audit trail (at most 2000 characters).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}

fn check_id(f: &mut Faults, field: &str, id: Option<&str>) {
    if id.is_some_and(|id| !is_external_id(id)) {
        f.push(
            field,
            "is not a valid id (1 to 200 characters, no space, slash or control)",
        );
    }
}

fn check_text(f: &mut Faults, field: &str, text: Option<&str>) {
    if text.is_some_and(|t| !is_storable_text(t, 2_000)) {
        f.push(
            field,
            "must be at most 2000 characters, without control characters but line breaks and tabs",
        );
    }
}

/// Withdraw a pending approval (the requester's side).
///
/// The ticket's requester or the approval's `requested_by` takes the request back: the
/// approval ends as `withdrawn`, its links stop working, and `approval.withdrawn` carries the
/// process's `on_withdrawn_status` in `data.ticket.status_to_set`. Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "approvals",
    params(
        ("id" = String, Path, description = "Approval id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe"),
    ),
    request_body = WithdrawApproval,
    responses(
        (status = 200, description = "Withdrawn; the approval as it now stands", body = crate::service::view::ApprovalView),
        (status = 403, description = "Missing `approvals:write` scope, or the actor is not the requester (`not_the_requester`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:write"]))
)]
#[post("/approvals/{id}/withdraw")]
pub async fn withdraw(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    raw: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsWrite)?;
    let id = parse_id(&id)?;
    let body: WithdrawApproval = super::extract::typed_body(&raw)?;
    let mut f = Faults::default();
    check_id(&mut f, "actor_id", Some(&body.actor_id));
    check_text(&mut f, "reason", body.reason.as_deref());
    f.finish(Some(())).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let loaded = svc::withdraw(c, &tenant, id, &body.actor_id, body.reason.as_deref(), &ctx)?;
        Answer::of(StatusCode::OK, &loaded.view())
    })
    .await
}

/// Hand a pending seat to someone else.
///
/// The seat keeps its group and its deadline: the old task becomes `reassigned` (with
/// `reassigned_to`) and its links stop working; the new approver gets a pending task and fresh
/// links, in `approval.reassigned`'s `recipients`. An approver may hand on their own seat
/// (`actor_id` = `from`) when the process allows it (`settings.allow_reassign`, the default);
/// a caller with `approvals:admin` may move any pending seat. 422 `invalid_reassignment` with
/// `reason` (`party`, `inactive`, `unknown_principal`, `already_seated`, `already_answered`,
/// `same_person`) when the new approver cannot take it. Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "approvals",
    params(
        ("id" = String, Path, description = "Approval id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe"),
    ),
    request_body = ReassignSeat,
    responses(
        (status = 200, description = "Reassigned; the approval as it now stands", body = crate::service::view::ApprovalView),
        (status = 403, description = "Missing scope, the actor is not `from` (`not_the_approver`), the process does not let approvers reassign (`reassign_not_allowed`), or `from` has no seat in the running stage (`not_an_approver`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`from` has already answered (`already_decided`), or the approval is closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body, or the new approver cannot take the seat (`invalid_reassignment`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:decide"]), ("bearer" = ["approvals:admin"]))
)]
#[post("/approvals/{id}/reassign")]
pub async fn reassign(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    raw: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    let admin = caller.has(Scope::ApprovalsAdmin);
    if !admin {
        caller.require(Scope::ApprovalsDecide)?;
    }
    let id = parse_id(&id)?;
    let body: ReassignSeat = super::extract::typed_body(&raw)?;
    let mut f = Faults::default();
    check_id(&mut f, "from", Some(&body.from));
    check_id(&mut f, "to", Some(&body.to));
    check_id(&mut f, "actor_id", body.actor_id.as_deref());
    check_text(&mut f, "comment", body.comment.as_deref());
    f.finish(Some(())).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let r = Reassign {
            from: &body.from,
            to: &body.to,
            actor_id: body.actor_id.as_deref(),
            comment: body.comment.as_deref(),
            admin,
        };
        let loaded = svc::reassign(c, &tenant, id, &r, &ctx)?;
        Answer::of(StatusCode::OK, &loaded.view())
    })
    .await
}
