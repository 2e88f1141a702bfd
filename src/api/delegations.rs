//! Out-of-office delegation: during a time range a principal's new tasks go to a delegate,
//! who may also act on their open ones.

use actix_web::{HttpRequest, HttpResponse, delete, get, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::conditional::{Precondition, content_tag, read_answer, tagged};
use super::principals::check_id;
use super::problem::Problem;
use crate::api::body::JsonBody;
use crate::auth::{Caller, Scope};
use crate::db::Db;
use crate::db::models::DelegationRow;
use crate::db::{principals, time as q};
use crate::domain::validate::Faults;
use crate::error::{AppError, AppResult};

/// Body of `PUT /v1/principals/{id}/delegation`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegationInput {
    /// Who receives the principal's tasks.
    pub delegate_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A delegation.
#[derive(Debug, Serialize, ToSchema)]
pub struct DelegationView {
    pub principal_id: String,
    pub delegate_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub note: Option<String>,
    /// True while the delegation is in force.
    pub active: bool,
}

fn view(r: DelegationRow, now: chrono::DateTime<Utc>) -> DelegationView {
    DelegationView {
        active: r.starts_at <= now && now < r.ends_at,
        principal_id: r.principal_id,
        delegate_id: r.delegate_id,
        starts_at: r.starts_at,
        ends_at: r.ends_at,
        note: r.note,
    }
}

/// Set a principal's delegation (replacing any earlier one).
///
/// Only one hop is followed: if the delegate is away too, their own delegation is not
/// applied to tasks they receive this way, so chains and cycles cannot hang a request.
///
/// Answers with the delegation's `ETag` (it changes when `active` does). `If-Match` is
/// optional: with it, the delegation is replaced only if it is still the one read (412
/// otherwise, and when there is no delegation yet).
#[utoipa::path(
    tag = "directory",
    params(
        ("id" = String, Path, description = "The principal who is away"),
        ("If-Match" = Option<String>, Header, description = "Replace only if the delegation's ETag is still this one"),
    ),
    request_body = DelegationInput,
    responses(
        (status = 200, description = "The delegation", body = DelegationView, headers(("ETag" = String, description = "The delegation's entity tag"))),
        (status = 404, description = "No such principal", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names another version (`version_mismatch`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown delegate, self-delegation, or an empty or past range", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["directory:write"]))
)]
#[put("/principals/{id}/delegation")]
pub async fn put_delegation(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    body: JsonBody<DelegationInput>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::DirectoryWrite)?;
    let id = id.into_inner();
    check_id(&id)?;
    let body = body.into_inner();
    let mut f = Faults::default();
    if body.delegate_id == id {
        f.push("delegate_id", "a principal cannot delegate to themselves");
    }
    if body.ends_at <= body.starts_at {
        f.push("ends_at", "must be after starts_at");
    } else if body.ends_at <= now.0 {
        f.push("ends_at", "must be in the future");
    }
    if body.note.as_ref().is_some_and(|n| n.len() > 1_000) {
        f.push("note", "must be at most 1000 characters");
    }
    if !f.is_empty() {
        return Err(AppError::invalid(f.errors));
    }
    let precondition = Precondition::read(&req);
    let tenant = caller.tenant.clone();
    let row = db
        .tx(move |c| {
            principals::find(c, &tenant, &id).map_err(AppError::missing("principal"))?;
            if !matches!(precondition, Precondition::None) {
                let current = q::find_delegation_for_update(c, &tenant, &id)?;
                let tag = current.map(|r| content_tag(&view(r, now.0)));
                precondition.check(tag.as_ref(), "delegation")?;
            }
            if principals::find(c, &tenant, &body.delegate_id).is_err() {
                return Err(AppError::invalid_field(
                    "delegate_id",
                    "no such principal in the directory",
                ));
            }
            Ok(q::upsert_delegation(
                c,
                &DelegationRow {
                    tenant_id: tenant.clone(),
                    principal_id: id,
                    delegate_id: body.delegate_id,
                    starts_at: body.starts_at,
                    ends_at: body.ends_at,
                    note: body.note,
                    created_at: now.0,
                },
            )?)
        })
        .await?;
    let v = view(row, now.0);
    Ok(tagged(HttpResponse::Ok(), content_tag(&v), &v))
}

/// Read a principal's delegation, with its `ETag` (304 when `If-None-Match` names it).
#[utoipa::path(
    tag = "directory",
    params(
        ("id" = String, Path, description = "Principal id"),
        ("If-None-Match" = Option<String>, Header, description = "ETags already held: 304 when one is current"),
    ),
    responses(
        (status = 200, description = "The delegation", body = DelegationView, headers(("ETag" = String, description = "The delegation's entity tag"))),
        (status = 304, description = "Not modified: the ETag in If-None-Match is current", headers(("ETag" = String, description = "The delegation's entity tag"))),
        (status = 404, description = "No delegation", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/principals/{id}/delegation")]
pub async fn get_delegation(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    check_id(&id)?;
    let tenant = caller.tenant.clone();
    let row = db
        .query(move |c| {
            q::find_delegation(c, &tenant, &id).map_err(AppError::missing("delegation"))
        })
        .await?;
    let v = view(row, now.0);
    Ok(read_answer(&req, content_tag(&v), &v))
}

/// End a principal's delegation now.
#[utoipa::path(
    tag = "directory",
    params(("id" = String, Path, description = "Principal id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "No delegation", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["directory:write"]))
)]
#[delete("/principals/{id}/delegation")]
pub async fn delete_delegation(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::DirectoryWrite)?;
    let id = id.into_inner();
    check_id(&id)?;
    let tenant = caller.tenant.clone();
    let n = db
        .run(move |c| Ok(q::delete_delegation(c, &tenant, &id)?))
        .await?;
    if n == 0 {
        return Err(AppError::not_found("delegation"));
    }
    Ok(HttpResponse::NoContent().finish())
}
