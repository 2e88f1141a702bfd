//! Tickets as the host reports them: storing one runs the rules of the status it enters.

use actix_web::{HttpResponse, get, put, web};
use serde_json::Value;

use super::problem::Problem;
use crate::api::body::JsonBody;
use crate::auth::{Caller, Scope};
use crate::db::Db;
use crate::domain::validate::is_external_id;
use crate::error::{AppError, AppResult};
use crate::service::automation::{self as svc, TicketAnswer, TicketReport, TicketView};
use crate::service::store::Ctx;

fn ticket_id(id: String) -> AppResult<String> {
    if is_external_id(&id) {
        Ok(id)
    } else {
        Err(AppError::not_found("ticket"))
    }
}

/// Report a ticket.
///
/// Stores the ticket as the host has it now. When its status changes (or it is first reported
/// with one), rules run: a pending approval a rule started is cancelled when the ticket leaves
/// that rule's status (`on_leave: cancel`), and the enabled rules of the status entered are
/// tried by priority; the first whose condition holds supersedes the ticket's pending
/// rule-started approvals and starts its own. A report with the same status changes nothing.
/// All in one transaction under the ticket's lock; `effects` lists what happened.
#[utoipa::path(
    tag = "tickets",
    params(("id" = String, Path, description = "The host's ticket id")),
    request_body = TicketReport,
    responses(
        (status = 200, description = "Stored; the effects of the change", body = TicketAnswer),
        (status = 404, description = "Not a valid ticket id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid ticket, every fault listed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:write"]))
)]
#[put("/tickets/{id}")]
pub async fn put_ticket(
    caller: Caller,
    ctx: Ctx,
    db: web::Data<Db>,
    id: web::Path<String>,
    body: JsonBody<Value>,
) -> AppResult<web::Json<TicketAnswer>> {
    caller.require(Scope::ApprovalsWrite)?;
    let id = ticket_id(id.into_inner())?;
    let input = TicketReport::parse(&body).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    let answer = db
        .tx(move |c| svc::report(c, &tenant, &id, &input, &ctx))
        .await?;
    Ok(web::Json(answer))
}

/// Read a ticket and its latest approval, with the badge line.
#[utoipa::path(
    tag = "tickets",
    params(("id" = String, Path, description = "The host's ticket id")),
    responses(
        (status = 200, description = "The ticket", body = TicketView),
        (status = 404, description = "No such ticket", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["approvals:read"]))
)]
#[get("/tickets/{id}")]
pub async fn get_ticket(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ApprovalsRead)?;
    let id = ticket_id(id.into_inner())?;
    let tenant = caller.tenant.clone();
    let view: TicketView = db.read(move |c| svc::find(c, &tenant, &id)).await?;
    Ok(HttpResponse::Ok().json(view))
}
