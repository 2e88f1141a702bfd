//! Decisions on a running approval, one or in bulk, and the administrator's actions on it:
//! cancel, bypass, remind.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use diesel::Connection;
use diesel::pg::PgConnection;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::approvals::parse_id;
use super::body::JsonBody;
use super::idempotency::{self, Answer};
use super::problem::Problem;
use crate::auth::{Caller, Scope};
use crate::db::Db;
use crate::domain::engine::Verdict;
use crate::domain::validate::FieldError;
use crate::error::{AppError, AppResult};
use crate::service::approvals::{self as svc, DecisionBody, DecisionInput};
use crate::service::store::Ctx;
use crate::service::view::ApprovalView;

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

/// Record an approver's decision.
///
/// `approver_id` is who decides; with `on_behalf_of`, a substitute decides for that approver.
/// 403 `not_an_approver` for someone not asked in the running stage, 409 `already_decided` for
/// a second answer, 409 `approval_closed` once the approval has ended, 422 when the process
/// requires a comment to reject. Concurrent decisions are serialised on the approval: exactly
/// one outcome. `"decision": "abstain"` (with a `comment`, not on someone's behalf) steps out
/// where the process allows it (`settings.allow_abstain`, else 422 `abstain_not_allowed`): the
/// approver's groups then count the members who remain (`approval.abstained`). Honours
/// `Idempotency-Key`.
#[utoipa::path(
    tag = "approvals",
    params(
        ("id" = String, Path, description = "Approval id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe"),
    ),
    request_body = DecisionInput,
    responses(
        (status = 200, description = "Recorded; the approval as it now stands", body = ApprovalView),
        (status = 403, description = "Missing `approvals:decide` scope, not an approver (`not_an_approver`), not a substitute (`not_a_substitute`), already answered in this stage (`double_answer`), the requester or requested_by (`self_approval_not_allowed`), or inactive (`inactive_principal`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided (`already_decided`) or closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body, a comment is required (to reject, or to abstain), or the process does not allow abstaining (`abstain_not_allowed`)", body = Problem, content_type = "application/problem+json"),
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
    let input = match DecisionBody::parse(&body).map_err(AppError::invalid)? {
        DecisionBody::Answer(input) => input,
        DecisionBody::Abstain {
            approver_id,
            comment,
        } => {
            let tenant = caller.tenant.clone();
            return idempotency::run(&db, &caller, &req, &body, move |c| {
                let loaded = svc::abstain(c, &tenant, id, &approver_id, comment.as_deref(), &ctx)?;
                Answer::of(StatusCode::OK, &loaded.view())
            })
            .await;
        }
    };
    let tenant = caller.tenant.clone();
    idempotency::run_atomic(&db, &caller, &req, &body, move |c, in_transaction| {
        let loaded = if in_transaction {
            svc::decide(c, &tenant, id, &input, &ctx)?
        } else {
            svc::decide_at_once(c, &tenant, id, &input, &ctx)?
        };
        Ok(Answer::text(StatusCode::OK, loaded.into_view_text()?))
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
    let body: CancelApproval = super::extract::typed_body(&raw)?;
    let action = Close {
        verdict: None,
        reason: body.reason,
        actor_id: body.actor_id,
    };
    close_over_http(caller, ctx, db, req, &id, raw, action).await
}

/// An administrator closing an approval: a cancel, or a bypass with its verdict.
struct Close {
    verdict: Option<Verdict>,
    reason: String,
    actor_id: Option<String>,
}

/// Runs a cancel or a bypass as a request: the reason checked, under its Idempotency-Key.
async fn close_over_http(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    id: &str,
    raw: JsonBody<Value>,
    action: Close,
) -> AppResult<HttpResponse> {
    let (tenant, id) = (caller.tenant.clone(), parse_id(id)?);
    check_reason(&action.reason)?;
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let view = close(c, &tenant, id, action, &ctx)?;
        Answer::of(StatusCode::OK, &view)
    })
    .await
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
    let body: BypassApproval = super::extract::typed_body(&raw)?;
    let action = Close {
        verdict: Some(body.decision),
        reason: body.reason,
        actor_id: body.actor_id,
    };
    close_over_http(caller, ctx, db, req, &id, raw, action).await
}

/// Body of `POST /v1/approvals/{id}/remind`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemindInput {
    /// Remind only these approvers, each waiting to answer in the running stage; every
    /// approver who has not answered when absent.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 1000)]
    pub approver_ids: Option<Vec<String>>,
}

/// Re-notify the approvers who have not answered (`approval.reminder`).
///
/// All of them, or only `approver_ids`. 409 `reminders_disabled` where the process turns manual
/// reminders off (`settings.manual_reminders: false`).
#[utoipa::path(
    tag = "approvals",
    params(("id" = String, Path, description = "Approval id")),
    request_body(content = RemindInput, description = "An empty object, or the approvers to remind"),
    responses(
        (status = 202, description = "Reminder emitted"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed (`approval_closed`), or the process turns manual reminders off (`reminders_disabled`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An approver id that is not waiting to answer in the running stage (field `approver_ids[i]`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:write"]))
)]
#[post("/approvals/{id}/remind")]
pub async fn remind(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    id: web::Path<String>,
    body: JsonBody<RemindInput>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsWrite)?;
    let id = parse_id(&id)?;
    let only = body.into_inner().approver_ids;
    if let Some(ids) = &only {
        let mut f = crate::domain::validate::Faults::default();
        if ids.is_empty() || ids.len() > 1000 {
            f.push("approver_ids", "must list 1 to 1000 approvers");
        }
        for (i, a) in ids.iter().enumerate() {
            if !crate::domain::validate::is_external_id(a) {
                f.push(format!("approver_ids[{i}]"), "is not a valid principal id");
            }
        }
        f.finish(Some(())).map_err(AppError::invalid)?;
    }
    let tenant = caller.tenant.clone();
    db.tx(move |c| svc::remind(c, &tenant, id, only.as_deref(), &ctx))
        .await?;
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
        Answer::of(StatusCode::OK, &results)
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
    // Applied in the order of their approval ids, so that two bulk requests over the same
    // approvals lock them in the same order and never deadlock each other; answered in the
    // order asked.
    let id_of = |item: &Value| {
        item.get("approval_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| id_of(&items[i]));
    let mut results: Vec<Option<BulkResult>> = (0..items.len()).map(|_| None).collect();
    for i in order {
        let item = &items[i];
        let approval_id = id_of(item);
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
            // A deadlock with another kind of request is Postgres's to break: the victim's
            // savepoint is rolled back, and the item is applied again.
            let mut tries = 0;
            loop {
                tries += 1;
                match c.transaction(|c| svc::decide(c, tenant, id, &input, ctx)) {
                    Err(e) if e.is_retryable() && tries < 3 => continue,
                    other => return other.map(|_| ()),
                }
            }
        })();
        if let Err(e @ AppError::Internal(_)) = &outcome {
            tracing::error!(error = ?e, item = i, approval_id, "bulk decision failed");
        }
        results[i] = Some(match outcome {
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
    Ok(BulkResults {
        results: results.into_iter().flatten().collect(),
    })
}
