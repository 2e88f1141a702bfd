//! Business-hours calendars used by stage timeouts.

use actix_web::{HttpResponse, get, put, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

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
#[utoipa::path(
    tag = "calendars",
    params(("id" = String, Path, description = "Your id for the calendar")),
    request_body = CalendarDef,
    responses(
        (status = 200, description = "Replaced", body = CalendarView),
        (status = 201, description = "Created", body = CalendarView),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `processes:write` scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid calendar, every fault listed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:write"]))
)]
#[put("/calendars/{id}")]
pub async fn put_calendar(
    caller: Caller,
    db: web::Data<Db>,
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
    let tenant = caller.tenant.clone();
    let (row, created) = db
        .run(move |c| Ok(q::upsert_calendar(c, &tenant, &id, &stored)?))
        .await?;
    let mut res = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.json(view(row)?))
}

/// Read a calendar.
#[utoipa::path(
    tag = "calendars",
    params(("id" = String, Path, description = "Calendar id")),
    responses(
        (status = 200, description = "The calendar", body = CalendarView),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing `processes:read` scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such calendar", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:read"]))
)]
#[get("/calendars/{id}")]
pub async fn get_calendar(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<web::Json<CalendarView>> {
    caller.require(Scope::ProcessesRead)?;
    let id = id.into_inner();
    if !is_external_id(&id) {
        return Err(AppError::not_found("calendar"));
    }
    let tenant = caller.tenant.clone();
    let row = db
        .run(move |c| q::find_calendar(c, &tenant, &id).map_err(AppError::missing("calendar")))
        .await?;
    Ok(web::Json(view(row)?))
}
