//! Changes to a pending approval besides answers: withdraw, reassign, add an approver, revoke
//! an answer.

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
use crate::service::approvals::{self as svc, AddApprover, Reassign};
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

/// An `approvals:admin` caller (true), or one with `approvals:decide` acting as an approver
/// (false); 403 `insufficient_scope` with neither.
fn admin_or_approver(caller: &Caller) -> AppResult<bool> {
    if caller.has(Scope::ApprovalsAdmin) {
        return Ok(true);
    }
    caller.require(Scope::ApprovalsDecide)?;
    Ok(false)
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
    let admin = admin_or_approver(&caller)?;
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

/// Body of `POST /v1/approvals/{id}/approvers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddApproverBody {
    /// The name of a group of the running stage.
    #[schema(example = "cab", min_length = 1, max_length = 200)]
    pub group: String,
    /// Who joins it: an active principal, not the requester or `requested_by`, not already
    /// seated or answering in the stage.
    #[schema(example = "u-51", min_length = 1, max_length = 200)]
    pub approver_id: String,
    /// Who adds them. Without `approvals:admin`, an approver waiting to answer in the stage.
    #[serde(default)]
    #[schema(example = "u-42", min_length = 1, max_length = 200)]
    pub actor_id: Option<String>,
}

/// Body of `POST /v1/approvals/{id}/decisions/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeDecision {
    /// Whose seat the answer is on.
    #[schema(example = "u-42", min_length = 1, max_length = 200)]
    pub approver_id: String,
    /// Who gave the answer and takes it back; defaults to `approver_id`.
    #[serde(default)]
    #[schema(example = "u-42", min_length = 1, max_length = 200)]
    pub actor_id: Option<String>,
}

/// Add an approver to a group of the running stage.
///
/// The new member gets a pending task and links, in `approval.approver_added`'s `recipients`.
/// A group whose requirement is over its members (`all`, `majority`, `percent`) counts them; a
/// `count` stays as it was. A caller with `approvals:admin` may add anyone who may sit; an
/// approver waiting to answer in the stage may, with `approvals:decide`, when the process
/// allows it (`settings.allow_add_approver`). 422 `invalid_approver` with `reason` (`party`,
/// `inactive`, `unknown_principal`, `already_seated`, `already_answered`). Honours
/// `Idempotency-Key`.
#[utoipa::path(
    tag = "approvals",
    params(
        ("id" = String, Path, description = "Approval id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe"),
    ),
    request_body = AddApproverBody,
    responses(
        (status = 200, description = "Added; the approval as it now stands", body = crate::service::view::ApprovalView),
        (status = 403, description = "Missing scope, the actor has no pending seat in the stage (`not_an_approver`), or the process does not let approvers add others (`add_approver_not_allowed`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The group has already reached its result (`group_decided`), or the approval is closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body, no such group in the running stage (field `group`), or the person cannot sit (`invalid_approver`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:decide"]), ("bearer" = ["approvals:admin"]))
)]
#[post("/approvals/{id}/approvers")]
pub async fn add_approver(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    raw: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    let admin = admin_or_approver(&caller)?;
    let id = parse_id(&id)?;
    let body: AddApproverBody = super::extract::typed_body(&raw)?;
    let mut f = Faults::default();
    if !is_storable_text(&body.group, 200) || body.group.trim().is_empty() {
        f.push("group", "must be a group name of 1 to 200 characters");
    }
    check_id(&mut f, "approver_id", Some(&body.approver_id));
    check_id(&mut f, "actor_id", body.actor_id.as_deref());
    f.finish(Some(())).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let r = AddApprover {
            group: &body.group,
            approver_id: &body.approver_id,
            actor_id: body.actor_id.as_deref(),
            admin,
        };
        let loaded = svc::add_approver(c, &tenant, id, &r, &ctx)?;
        Answer::of(StatusCode::OK, &loaded.view())
    })
    .await
}

/// Take back an answer.
///
/// Whoever gave an answer may take it back within the process's `settings.revoke_window` of
/// giving it, while its stage runs and before it decided its group: the seat is pending again
/// and gets fresh links, in `approval.decision_revoked`'s `recipients`. 409
/// `revoke_not_allowed` with `reason` (`not_allowed`: the process sets no window,
/// `window_passed`, `counted`, `nothing_to_revoke`, `not_yours`). Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "approvals",
    params(
        ("id" = String, Path, description = "Approval id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe"),
    ),
    request_body = RevokeDecision,
    responses(
        (status = 200, description = "Taken back; the approval as it now stands", body = crate::service::view::ApprovalView),
        (status = 403, description = "Missing `approvals:decide` scope, or `approver_id` has no seat in the running stage (`not_an_approver`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The answer cannot be taken back (`revoke_not_allowed`), or the approval is closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:decide"]))
)]
#[post("/approvals/{id}/decisions/revoke")]
pub async fn revoke(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    raw: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsDecide)?;
    let id = parse_id(&id)?;
    let body: RevokeDecision = super::extract::typed_body(&raw)?;
    let mut f = Faults::default();
    check_id(&mut f, "approver_id", Some(&body.approver_id));
    check_id(&mut f, "actor_id", body.actor_id.as_deref());
    f.finish(Some(())).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let actor = body.actor_id.as_deref().unwrap_or(&body.approver_id);
        let loaded = svc::revoke(c, &tenant, id, &body.approver_id, actor, &ctx)?;
        Answer::of(StatusCode::OK, &loaded.view())
    })
    .await
}

/// Body of `POST /v1/approvals/{id}/info-requests`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequester {
    /// The approver asking: waiting to answer in the running stage (any id with
    /// `approvals:admin`).
    #[schema(example = "u-42", min_length = 1, max_length = 200)]
    pub actor_id: String,
    #[schema(
        example = "Which model do you mean?",
        min_length = 1,
        max_length = 2000
    )]
    pub question: String,
}

/// Body of `POST /v1/approvals/{id}/info-requests/{n}/answer`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerQuestion {
    /// The ticket's requester or the approval's `requested_by`.
    #[schema(example = "u-7", min_length = 1, max_length = 200)]
    pub actor_id: String,
    #[schema(example = "The 14-inch one.", min_length = 1, max_length = 2000)]
    pub answer: String,
}

fn check_required_text(f: &mut Faults, field: &str, text: &str) {
    if text.trim().is_empty() {
        f.push(field, "must not be empty");
    } else {
        check_text(f, field, Some(text));
    }
}

/// Ask the requester a question.
///
/// The approval waits in `info_requested`: answers are refused (409 `awaiting_info`, links
/// too), and the stage's clock stops (its timeout, reminders and substitutes). The question
/// joins the view's `conversation`; `approval.info_requested` carries it, with the requester
/// (and `requested_by` when another principal) in `recipients`, each with a message in their
/// language. 409 `info_request_open` while a question waits. Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "approvals",
    params(
        ("id" = String, Path, description = "Approval id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe"),
    ),
    request_body = AskRequester,
    responses(
        (status = 201, description = "Asked; the approval as it now stands", body = crate::service::view::ApprovalView),
        (status = 403, description = "Missing scope, or the actor has no pending seat in the running stage (`not_an_approver`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A question is already open (`info_request_open`), or the approval is closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:decide"]), ("bearer" = ["approvals:admin"]))
)]
#[post("/approvals/{id}/info-requests")]
pub async fn ask_requester(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    raw: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    let admin = admin_or_approver(&caller)?;
    let id = parse_id(&id)?;
    let body: AskRequester = super::extract::typed_body(&raw)?;
    let mut f = Faults::default();
    check_id(&mut f, "actor_id", Some(&body.actor_id));
    check_required_text(&mut f, "question", &body.question);
    f.finish(Some(())).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let question = body.question.trim();
        let loaded = svc::info::ask(c, &tenant, id, &body.actor_id, question, admin, &ctx)?;
        Answer::of(StatusCode::CREATED, &loaded.view())
    })
    .await
}

/// Answer the open question.
///
/// The ticket's requester or the approval's `requested_by` answers question `n` (the last
/// one): the approval waits for answers again, every deadline of the stage moved by the time it
/// waited (in business time where the stage's timeout counts a calendar), and
/// `approval.info_provided` carries the answer to the approvers who still have to decide, with
/// fresh links. 409 `no_open_question` (with `open_question`) when `n` is not the open
/// question. Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "approvals",
    params(
        ("id" = String, Path, description = "Approval id"),
        ("n" = u32, Path, description = "The question's number in `conversation`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe"),
    ),
    request_body = AnswerQuestion,
    responses(
        (status = 200, description = "Answered; the approval as it now stands", body = crate::service::view::ApprovalView),
        (status = 403, description = "Missing `approvals:write` scope, or the actor is not the requester (`not_the_requester`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such approval", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No such open question (`no_open_question`), or the approval is closed (`approval_closed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:write"]))
)]
#[post("/approvals/{id}/info-requests/{n}/answer")]
pub async fn answer_question(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    req: HttpRequest,
    path: web::Path<(String, u32)>,
    raw: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsWrite)?;
    let (id, n) = path.into_inner();
    let id = parse_id(&id)?;
    let body: AnswerQuestion = super::extract::typed_body(&raw)?;
    let mut f = Faults::default();
    check_id(&mut f, "actor_id", Some(&body.actor_id));
    check_required_text(&mut f, "answer", &body.answer);
    f.finish(Some(())).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    idempotency::run(&db, &caller, &req, &raw, move |c| {
        let text = body.answer.trim();
        let loaded = svc::info::answer(c, &tenant, id, n, &body.actor_id, text, &ctx)?;
        Answer::of(StatusCode::OK, &loaded.view())
    })
    .await
}
