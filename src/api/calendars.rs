//! Business-hours calendars used by stage timeouts.

use actix_web::{HttpRequest, HttpResponse, get, put, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::conditional::{Precondition, content_tag, read_answer, tagged};
use super::problem::Problem;
use crate::api::body::JsonBody;
use crate::auth::{Caller, Scope};
use crate::db::Db;
use crate::db::models::CalendarRow;
use crate::db::time as q;
use crate::domain::calendar::{Calendar, CalendarDef};
use crate::domain::validate::is_external_id;
use crate::error::{AppError, AppResult};

/// A calendar as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarView {
    #[schema(example = "office")]
    pub id: String,
    #[serde(flatten)]
    pub definition: CalendarDef,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(row: CalendarRow) -> AppResult<CalendarView> {
    Ok(CalendarView {
        definition: serde_json::from_value(row.definition)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("stored calendar: {e}")))?,
        id: row.id,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Create or replace a calendar: an IANA time zone, weekly working windows (several a day,
/// windows may cross midnight) and holidays. Stage timeouts naming it count only its hours.
///
/// Answers with the calendar's `ETag`. `If-Match` is optional: with it, the calendar is replaced
/// only if it is still the one read (412 otherwise, and for a calendar that does not exist yet).
#[utoipa::path(
    tag = "calendars",
    params(
        ("id" = String, Path, description = "Your id for the calendar"),
        ("If-Match" = Option<String>, Header, description = "Replace only if the calendar's ETag is still this one"),
    ),
    request_body = CalendarDef,
    responses(
        (status = 200, description = "Replaced", body = CalendarView, headers(("ETag" = String, description = "The calendar's entity tag"))),
        (status = 201, description = "Created", body = CalendarView, headers(("ETag" = String, description = "The calendar's entity tag"))),
        (status = 412, description = "If-Match names another version (`version_mismatch`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid calendar, every fault listed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:write"]))
)]
#[put("/calendars/{id}")]
pub async fn put_calendar(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
    body: JsonBody<Value>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesWrite)?;
    let id = id.into_inner();
    if !is_external_id(&id) {
        return Err(AppError::not_found("calendar"));
    }
    let cal: Calendar = CalendarDef::parse(&body).map_err(AppError::invalid)?;
    let stored = serde_json::to_value(cal.definition()).map_err(anyhow::Error::from)?;
    let precondition = Precondition::read(&req);
    let tenant = caller.tenant.clone();
    let (row, created) = db
        .tx(move |c| {
            if !matches!(precondition, Precondition::None) {
                let tag = match q::find_calendar_for_update(c, &tenant, &id)? {
                    Some(r) => Some(content_tag(&view(r)?)),
                    None => None,
                };
                precondition.check(tag.as_ref(), "calendar")?;
            }
            Ok(q::upsert_calendar(c, &tenant, &id, &stored)?)
        })
        .await?;
    let res = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    let v = view(row)?;
    Ok(tagged(res, content_tag(&v), &v))
}

/// Read a calendar, with its `ETag` (304 when `If-None-Match` names it).
#[utoipa::path(
    tag = "calendars",
    params(
        ("id" = String, Path, description = "Calendar id"),
        ("If-None-Match" = Option<String>, Header, description = "ETags already held: 304 when one is current"),
    ),
    responses(
        (status = 200, description = "The calendar", body = CalendarView, headers(("ETag" = String, description = "The calendar's entity tag"))),
        (status = 304, description = "Not modified: the ETag in If-None-Match is current", headers(("ETag" = String, description = "The calendar's entity tag"))),
        (status = 404, description = "No such calendar", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:read"]))
)]
#[get("/calendars/{id}")]
pub async fn get_calendar(
    caller: Caller,
    db: web::Data<Db>,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    caller.require(Scope::ProcessesRead)?;
    let id = id.into_inner();
    if !is_external_id(&id) {
        return Err(AppError::not_found("calendar"));
    }
    let tenant = caller.tenant.clone();
    let row = db
        .query(move |c| q::find_calendar(c, &tenant, &id).map_err(AppError::missing("calendar")))
        .await?;
    let v = view(row)?;
    Ok(read_answer(&req, content_tag(&v), &v))
}
