//! The directory: principals upserted by the host.

use actix_web::{HttpRequest, HttpResponse, get, put, web};
use serde_json::Value;

use super::conditional::{Precondition, content_tag, read_answer, tagged};
use super::problem::Problem;
use crate::api::body::JsonBody;
use crate::auth::{Caller, Scope};
use crate::db::models::PrincipalForm;
use crate::db::{Db, principals};
use crate::domain::principal::PrincipalInput;
use crate::domain::validate::is_external_id;
use crate::error::{AppError, AppResult};

pub use crate::service::view::Principal;

/// Fails with 404 for an id no principal can have, before touching the database.
pub fn check_id(id: &str) -> AppResult<()> {
    if is_external_id(id) {
        Ok(())
    } else {
        Err(AppError::not_found("principal"))
    }
}

/// Create or replace a principal.
///
/// The host owns its people; signoff keeps the copy it needs to resolve approvers and address
/// them. Answers 201 when the principal is new, 200 when it replaced an existing one, with its
/// `ETag`. `If-Match` is optional: with it, the principal is replaced only if it is still the
/// one read (412 otherwise, and for a principal that does not exist yet).
#[utoipa::path(
    tag = "directory",
    params(
        ("id" = String, Path, description = "The host's id for this principal"),
        ("If-Match" = Option<String>, Header, description = "Replace only if the principal's ETag is still this one"),
    ),
    request_body = PrincipalInput,
    responses(
        (status = 200, description = "Replaced", body = Principal, headers(("ETag" = String, description = "The principal's entity tag"))),
        (status = 201, description = "Created", body = Principal, headers(("ETag" = String, description = "The principal's entity tag"))),
        (status = 412, description = "If-Match names another version (`version_mismatch`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, all listed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["directory:write"]))
)]
#[put("/principals/{id}")]
pub async fn put_principal(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    body: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::DirectoryWrite)?;
    let id = id.into_inner();
    check_id(&id)?;
    let input = PrincipalInput::parse(&id, &body).map_err(AppError::invalid)?;
    let precondition = Precondition::read(&req);
    let form = PrincipalForm {
        tenant_id: caller.tenant.clone(),
        id,
        kind: input.kind.as_str().to_string(),
        display_name: input.display_name,
        email: input.email,
        locale: input.locale.unwrap_or_else(|| "en".into()),
        time_zone: input.time_zone.unwrap_or_else(|| "UTC".into()),
        manager_id: input.manager_id,
        roles: input.roles.into_iter().map(Some).collect(),
        active: input.active,
    };
    let (row, created) = db
        .tx(move |c| {
            if !matches!(precondition, Precondition::None) {
                let current = principals::find_for_update(c, &form.tenant_id, &form.id)?;
                let tag = current.map(|r| content_tag(&Principal::from(r)));
                precondition.check(tag.as_ref(), "principal")?;
            }
            Ok(principals::upsert(c, &form)?)
        })
        .await?;
    let res = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    let view = Principal::from(row);
    Ok(tagged(res, content_tag(&view), &view))
}

/// Read a principal, with its `ETag` (304 when `If-None-Match` names it).
#[utoipa::path(
    tag = "directory",
    params(
        ("id" = String, Path, description = "The host's id for this principal"),
        ("If-None-Match" = Option<String>, Header, description = "ETags already held: 304 when one is current"),
    ),
    responses(
        (status = 200, description = "The principal", body = Principal, headers(("ETag" = String, description = "The principal's entity tag"))),
        (status = 304, description = "Not modified: the ETag in If-None-Match is current", headers(("ETag" = String, description = "The principal's entity tag"))),
        (status = 404, description = "No such principal in this tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/principals/{id}")]
pub async fn get_principal(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    check_id(&id)?;
    let tenant = caller.tenant.clone();
    let row = db
        .query(move |c| principals::find(c, &tenant, &id).map_err(AppError::missing("principal")))
        .await?;
    let view = Principal::from(row);
    Ok(read_answer(&req, content_tag(&view), &view))
}
