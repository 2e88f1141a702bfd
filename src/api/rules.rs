//! Rules: which process starts when a ticket enters a status, under which condition.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::conditional::{Precondition, read_answer, tagged, version_tag};
use super::idempotency::{self, Answer};
use super::pagination::{PageParams, page};
use super::problem::Problem;
use crate::api::body::JsonBody;
use crate::auth::{Caller, Scope};
use crate::db::automation as q;
use crate::db::{Db, Order};
use crate::error::{AppError, AppResult};
use crate::service::automation::{
    self as svc, RuleInput, RuleView, RulesTest, RulesTestInput, rule_row,
};

/// A page of rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    pub items: Vec<RuleView>,
    /// Pass as `cursor` to read the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Filters of the rule list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleFilter {
    /// Rules of this ticket status only.
    pub on_status: Option<String>,
}

fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::not_found("rule"))
}

fn with_etag(res: actix_web::HttpResponseBuilder, v: &RuleView) -> HttpResponse {
    tagged(res, version_tag(v.version), v)
}

/// Create a rule.
///
/// The condition is compiled now: a syntax error is a 422 naming `condition` with its line and
/// column. Answers the rule with its version in `ETag`. Honours `Idempotency-Key`.
#[utoipa::path(
    tag = "rules",
    request_body = RuleInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body answer the first result")),
    responses(
        (status = 201, description = "Created", body = RuleView, headers(("ETag" = String, description = "The version"), ("Location" = String, description = "The rule's URL"))),
        (status = 409, description = "The key is in use", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid rule (unknown process, bad condition…), every fault listed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:write"]))
)]
#[post("/rules")]
pub async fn create_rule(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    body: JsonBody<Value>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesWrite)?;
    let input = RuleInput::parse(&body).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    idempotency::run(&db, &caller, &req, &body, move |c| {
        let row = rule_row(c, &tenant, Uuid::now_v7(), &input, now.0)?;
        let v = RuleView::from(q::insert_rule(c, &row)?);
        Ok(Answer::of(StatusCode::CREATED, &v)?
            .header("etag", version_tag(v.version).to_string())
            .header("location", format!("/v1/rules/{}", v.id)))
    })
    .await
}

/// List rules, oldest first (`order=desc`: newest first).
#[utoipa::path(
    tag = "rules",
    params(PageParams, RuleFilter),
    responses(
        (status = 200, description = "A page of rules", body = RuleList),
        (status = 400, description = "Invalid cursor (`invalid_cursor`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:read"]))
)]
#[get("/rules")]
pub async fn list_rules(
    caller: Caller,
    db: web::Data<Db>,
    paging: web::Query<PageParams>,
    filter: web::Query<RuleFilter>,
) -> AppResult<web::Json<RuleList>> {
    caller.require(Scope::ProcessesRead)?;
    let limit = paging.limit()?;
    let order = paging.order(Order::Asc);
    let after = paging.after_uuid(order)?;
    let tenant = caller.tenant.clone();
    let status = filter.into_inner().on_status;
    // Postgres cannot hold a NUL, and no stored status has a control character: refused, not a 500.
    if let Some(s) = &status
        && !crate::domain::validate::is_storable_text(s, 100)
    {
        return Err(AppError::invalid_field(
            "on_status",
            "must be at most 100 characters without control characters",
        ));
    }
    let (items, next_cursor) = db
        .read(move |c| {
            let rows = q::list_rules(c, &tenant, status.as_deref(), order, after, limit + 1)?;
            Ok(page(rows, limit, order, |r| r.id.to_string()))
        })
        .await?;
    Ok(web::Json(RuleList {
        items: items.into_iter().map(RuleView::from).collect(),
        next_cursor,
    }))
}

/// Which rule a ticket would run.
///
/// Tries the enabled rules of the ticket's status in order, as a report entering that status
/// would, and says which would start an approval. Writes nothing.
#[utoipa::path(
    tag = "rules",
    request_body = RulesTestInput,
    responses(
        (status = 200, description = "Each rule's verdict and the one chosen", body = RulesTest),
        (status = 422, description = "Invalid ticket", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:read"]))
)]
#[post("/rules/test")]
pub async fn test_rules(
    caller: Caller,
    db: web::Data<Db>,
    body: JsonBody<Value>,
) -> AppResult<web::Json<RulesTest>> {
    caller.require(Scope::ProcessesRead)?;
    let input = RulesTestInput::parse(&body).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    let answer = db
        .read(move |c| svc::test(c, &tenant, &input.ticket))
        .await?;
    Ok(web::Json(answer))
}

/// Read a rule, with its version in `ETag`.
#[utoipa::path(
    tag = "rules",
    params(
        ("id" = String, Path, description = "Rule id"),
        ("If-None-Match" = Option<String>, Header, description = "ETags already held: 304 when one is current"),
    ),
    responses(
        (status = 200, description = "The rule", body = RuleView, headers(("ETag" = String, description = "The version"))),
        (status = 304, description = "Not modified: the ETag in If-None-Match is current", headers(("ETag" = String, description = "The version"))),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:read"]))
)]
#[get("/rules/{id}")]
pub async fn get_rule(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesRead)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    let row = db
        .read(move |c| q::find_rule(c, &tenant, id).map_err(AppError::missing("rule")))
        .await?;
    let v = RuleView::from(row);
    Ok(read_answer(&req, version_tag(v.version), &v))
}

/// Replace a rule.
///
/// Needs `If-Match` with the current `ETag`: 428 without it, 412 when it is stale. Approvals
/// the rule already started go on.
#[utoipa::path(
    tag = "rules",
    params(
        ("id" = String, Path, description = "Rule id"),
        ("If-Match" = String, Header, description = "The ETag read last"),
    ),
    request_body = RuleInput,
    responses(
        (status = 200, description = "The new version", body = RuleView, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match (`version_mismatch`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid rule", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing (`if_match_required`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:write"]))
)]
#[put("/rules/{id}")]
pub async fn update_rule(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    body: JsonBody<Value>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesWrite)?;
    let id = parse_id(&id)?;
    let expected = Precondition::require(&req, "rule")?;
    let input = RuleInput::parse(&body).map_err(AppError::invalid)?;
    let tenant = caller.tenant.clone();
    let row = db
        .tx(move |c| {
            let old = q::find_rule_for_update(c, &tenant, id).map_err(AppError::missing("rule"))?;
            expected.check_version(old.version, "rule")?;
            let row = rule_row(c, &tenant, id, &input, now.0)?;
            Ok(q::update_rule(c, &row)?)
        })
        .await?;
    Ok(with_etag(HttpResponse::Ok(), &RuleView::from(row)))
}

/// Delete a rule. Approvals it started go on.
#[utoipa::path(
    tag = "rules",
    params(("id" = String, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:write"]))
)]
#[delete("/rules/{id}")]
pub async fn delete_rule(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesWrite)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    let n = db.tx(move |c| Ok(q::delete_rule(c, &tenant, id)?)).await?;
    if n == 0 {
        return Err(AppError::not_found("rule"));
    }
    Ok(HttpResponse::NoContent().finish())
}
