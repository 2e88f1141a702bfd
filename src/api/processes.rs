//! Approval processes: create, read, list, version on update, delete, disable, restore, and
//! the versions kept.

use super::conditional::{Precondition, read_answer, tagged, version_tag};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::idempotency::{self, Answer};
use super::pagination::{PageParams, page};
use super::problem::Problem;
use crate::api::body::JsonBody;
use crate::auth::{Caller, Scope};
use crate::db::models::{NewProcess, ProcessRow, ProcessVersionRow};
use crate::db::processes::{self, EnabledFilter};
use crate::db::{Db, Order};
use crate::domain::process::ProcessDefinition;
use crate::error::{AppError, AppResult};
use actix_web::http::StatusCode;

/// A process: its current definition plus what signoff adds.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessView {
    pub id: String,
    /// Increases with every update; running approvals keep the version they started with.
    pub version: i32,
    /// False once expired, deleted or disabled; requests on a disabled process are refused.
    pub enabled: bool,
    /// Why the process is disabled (`expired`), when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(flatten)]
    pub definition: ProcessDefinition,
}

/// A page of processes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessList {
    pub items: Vec<ProcessView>,
    /// Pass as `cursor` to read the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Body of `POST /v1/processes/{id}/restore`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreProcess {
    /// The new expiry; null for none.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Body of `POST /v1/processes/{id}/disable`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableProcess {
    /// Why, shown as `disabled_reason`.
    #[schema(example = "holiday freeze")]
    pub reason: String,
}

/// Filters of the process list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProcessFilter {
    /// `true` for enabled processes only, `false` for disabled ones only.
    pub enabled: Option<bool>,
}

fn view(row: ProcessRow, version: ProcessVersionRow, now: DateTime<Utc>) -> AppResult<ProcessView> {
    let mut definition: ProcessDefinition = serde_json::from_value(version.definition)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored definition unreadable: {e}")))?;
    // Expiry lives on the process row: `restore` changes it without a new version.
    definition.expires_at = row.expires_at;
    let enabled = row.is_enabled(now);
    let disabled_reason = if enabled {
        None
    } else if row.disabled_reason.is_some() {
        row.disabled_reason.clone()
    } else if row.expires_at.is_some_and(|at| at <= now) {
        Some("expired".into())
    } else {
        Some("disabled".into())
    };
    Ok(ProcessView {
        id: row.id.to_string(),
        version: version.version,
        enabled,
        disabled_reason,
        created_at: row.created_at,
        updated_at: row.updated_at,
        definition,
    })
}

/// Every calendar a definition names must exist in the tenant.
fn check_calendars(
    c: &mut diesel::PgConnection,
    tenant: &str,
    def: &ProcessDefinition,
) -> AppResult<()> {
    let named: Vec<(usize, String)> = def
        .stages
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.timeout
                .as_ref()
                .and_then(|t| t.calendar_id.clone())
                .map(|c| (i, c))
        })
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = named.iter().map(|(_, c)| c.clone()).collect();
    let found = crate::db::time::existing_calendars(c, tenant, &ids)?;
    let missing: Vec<crate::domain::validate::FieldError> = named
        .into_iter()
        .filter(|(_, c)| !found.contains(c))
        .map(|(i, c)| crate::domain::validate::FieldError {
            field: format!("stages[{i}].timeout.calendar_id"),
            message: format!("no calendar {c:?}; create it with PUT /v1/calendars/{c}"),
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(AppError::invalid(missing))
    }
}

fn with_etag(res: actix_web::HttpResponseBuilder, v: &ProcessView) -> HttpResponse {
    tagged(res, version_tag(v.version), v)
}

/// Process ids are UUIDs; anything else cannot exist.
pub fn parse_id(id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| AppError::not_found("process"))
}

fn name_taken(e: diesel::result::Error, name: &str) -> AppError {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => AppError::conflict(
            "process_name_taken",
            format!("a process named {name:?} already exists"),
        ),
        other => other.into(),
    }
}

/// Create a process.
///
/// The definition is validated deeply and every fault is listed in one 422. The answer carries
/// the version in `ETag`; `PUT` needs it back in `If-Match`.
#[utoipa::path(
    tag = "processes",
    request_body = ProcessDefinition,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 201, description = "Created", body = ProcessView, headers(("ETag" = String, description = "The version"))),
        (status = 409, description = "Name already used (`process_name_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid definition, every fault listed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:write"]))
)]
#[post("/processes")]
pub async fn create_process(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    body: JsonBody<Value>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesWrite)?;
    let (tenant, def) = (caller.tenant.clone(), body.clone());
    idempotency::run(&db, &caller, &req, &body, move |c| {
        create(c, tenant, def, now.0)
    })
    .await
}

fn create(
    c: &mut diesel::PgConnection,
    tenant: String,
    body: Value,
    now: chrono::DateTime<Utc>,
) -> AppResult<Answer> {
    let def = ProcessDefinition::parse(&body, now).map_err(AppError::invalid)?;
    let stored = serde_json::to_value(&def).map_err(anyhow::Error::from)?;
    let new = NewProcess {
        tenant_id: tenant,
        id: Uuid::now_v7(),
        name: def.name.clone(),
        current_version: 1,
        expires_at: def.expires_at,
    };
    check_calendars(c, &new.tenant_id, &def)?;
    let (row, version) =
        processes::insert(c, &new, &stored).map_err(|e| name_taken(e, &new.name))?;
    let v = view(row, version, now)?;
    let etag = version_tag(v.version).to_string();
    Ok(Answer::of(StatusCode::CREATED, &v)?
        .header("etag", etag)
        .header("location", format!("/v1/processes/{}", v.id)))
}

/// List processes, oldest first (`order=desc`: newest first).
#[utoipa::path(
    tag = "processes",
    params(PageParams, ProcessFilter),
    responses(
        (status = 200, description = "A page of processes", body = ProcessList),
    ),
    security(("bearer" = ["processes:read"]))
)]
#[get("/processes")]
pub async fn list_processes(
    caller: Caller,
    db: web::Data<Db>,
    paging: web::Query<PageParams>,
    filter: web::Query<ProcessFilter>,
    now: super::extract::Now,
) -> AppResult<web::Json<ProcessList>> {
    caller.require(Scope::ProcessesRead)?;
    let limit = paging.limit()?;
    let order = paging.order(Order::Asc);
    let after = paging.after_uuid(order)?;
    let filter = match filter.enabled {
        None => EnabledFilter::Any,
        Some(true) => EnabledFilter::Enabled,
        Some(false) => EnabledFilter::Disabled,
    };
    let tenant = caller.tenant.clone();
    let now = now.0;
    let rows = db
        .query(move |c| {
            Ok(processes::list(
                c,
                &tenant,
                filter,
                order,
                after,
                limit + 1,
                now,
            )?)
        })
        .await?;
    let (rows, next_cursor) = page(rows, limit, order, |(r, _)| r.id.to_string());
    let items = rows
        .into_iter()
        .map(|(r, v)| view(r, v, now))
        .collect::<AppResult<_>>()?;
    Ok(web::Json(ProcessList { items, next_cursor }))
}

/// Read a process's current definition.
#[utoipa::path(
    tag = "processes",
    params(
        ("id" = String, Path, description = "Process id"),
        ("If-None-Match" = Option<String>, Header, description = "ETags already held: 304 when one is current"),
    ),
    responses(
        (status = 200, description = "The process", body = ProcessView, headers(("ETag" = String, description = "The version"))),
        (status = 304, description = "Not modified: the ETag in If-None-Match is current", headers(("ETag" = String, description = "The version"))),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:read"]))
)]
#[get("/processes/{id}")]
pub async fn get_process(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesRead)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    let (row, version) = db
        .query(move |c| processes::find(c, &tenant, id).map_err(AppError::missing("process")))
        .await?;
    let v = view(row, version, now.0)?;
    Ok(read_answer(&req, version_tag(v.version), &v))
}

/// Replace a process's definition, making a new version.
///
/// Running approvals keep the version they started with. Needs `If-Match` with the current
/// `ETag`: 428 without it, 412 when it is stale.
#[utoipa::path(
    tag = "processes",
    params(
        ("id" = String, Path, description = "Process id"),
        ("If-Match" = String, Header, description = "The ETag read last"),
    ),
    request_body = ProcessDefinition,
    responses(
        (status = 200, description = "The new version", body = ProcessView, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name already used", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match (`version_mismatch`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid definition", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing (`if_match_required`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:write"]))
)]
#[put("/processes/{id}")]
pub async fn update_process(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    body: JsonBody<Value>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesWrite)?;
    let id = parse_id(&id)?;
    let expected = Precondition::require(&req, "process")?;
    let now = now.0;
    let def = ProcessDefinition::parse(&body, now).map_err(AppError::invalid)?;
    let stored = serde_json::to_value(&def).map_err(anyhow::Error::from)?;
    let tenant = caller.tenant.clone();
    let (row, version) = db
        .tx(move |c| {
            let row =
                processes::find_for_update(c, &tenant, id).map_err(AppError::missing("process"))?;
            check_calendars(c, &tenant, &def)?;
            expected.check_version(row.current_version, "process")?;
            processes::update(c, &row, &def.name, def.expires_at, &stored)
                .map_err(|e| name_taken(e, &def.name))
        })
        .await?;
    let v = view(row, version, now)?;
    Ok(with_etag(HttpResponse::Ok(), &v))
}

/// Delete a process.
///
/// New requests on it are refused at once; approvals already running finish with the version
/// they started with. A deleted process cannot be restored.
#[utoipa::path(
    tag = "processes",
    params(("id" = String, Path, description = "Process id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:write"]))
)]
#[delete("/processes/{id}")]
pub async fn delete_process(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesWrite)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    let n = db
        .tx(move |c| Ok(processes::delete(c, &tenant, id)?))
        .await?;
    if n == 0 {
        return Err(AppError::not_found("process"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Re-enable a disabled (for example expired) process with a new expiry.
#[utoipa::path(
    tag = "processes",
    params(("id" = String, Path, description = "Process id")),
    request_body = RestoreProcess,
    responses(
        (status = 200, description = "Enabled again", body = ProcessView),
        (status = 404, description = "No such process, or deleted", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The process is not disabled (`process_not_disabled`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Expiry in the past", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:write"]))
)]
#[post("/processes/{id}/restore")]
pub async fn restore_process(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
    body: JsonBody<RestoreProcess>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesWrite)?;
    let id = parse_id(&id)?;
    let now = now.0;
    let expires_at = body.expires_at;
    if expires_at.is_some_and(|at| at <= now) {
        return Err(AppError::invalid_field(
            "expires_at",
            "must be in the future",
        ));
    }
    let v = switch(&db, caller.tenant.clone(), id, now, false, move |c, row| {
        processes::restore(c, row, expires_at)
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), &v))
}

/// Turns a live process on or off in one transaction: `op` runs on the locked row when the
/// process is `enabled` now as expected (409 otherwise); answers the process as it is after.
async fn switch(
    db: &Db,
    tenant: String,
    id: Uuid,
    now: DateTime<Utc>,
    enabled: bool,
    op: impl FnOnce(&mut diesel::PgConnection, &ProcessRow) -> diesel::QueryResult<ProcessRow>
    + Send
    + 'static,
) -> AppResult<ProcessView> {
    let (row, version) = db
        .tx(move |c| {
            let row =
                processes::find_for_update(c, &tenant, id).map_err(AppError::missing("process"))?;
            match (enabled, row.is_enabled(now)) {
                (true, false) => {
                    return Err(AppError::conflict(
                        "process_disabled",
                        "the process is already disabled",
                    ));
                }
                (false, true) => {
                    return Err(AppError::conflict(
                        "process_not_disabled",
                        "only a disabled process can be restored",
                    ));
                }
                _ => {}
            }
            let row = op(c, &row)?;
            let version = processes::find_version(c, &tenant, id, row.current_version)?;
            Ok((row, version))
        })
        .await?;
    view(row, version, now)
}

/// Disable a process by hand.
///
/// New requests on it are refused (409 `process_disabled`), rules naming it start nothing;
/// running approvals go on. `restore` enables it again.
#[utoipa::path(
    tag = "processes",
    params(("id" = String, Path, description = "Process id")),
    request_body = DisableProcess,
    responses(
        (status = 200, description = "Disabled", body = ProcessView, headers(("ETag" = String, description = "The version"))),
        (status = 404, description = "No such process, or deleted", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already disabled (`process_disabled`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or empty reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:write"]))
)]
#[post("/processes/{id}/disable")]
pub async fn disable_process(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
    body: JsonBody<DisableProcess>,
    now: super::extract::Now,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesWrite)?;
    let id = parse_id(&id)?;
    let mut f = crate::domain::validate::Faults::default();
    let reason = f.check_text(&body.reason, "reason", 500);
    let reason = f.finish(reason).map_err(AppError::invalid)?;
    let now = now.0;
    let v = switch(&db, caller.tenant.clone(), id, now, true, move |c, row| {
        processes::disable(c, row, &reason)
    })
    .await?;
    Ok(with_etag(HttpResponse::Ok(), &v))
}
