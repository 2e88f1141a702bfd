//! A process's versions: every saved definition stays readable.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::Problem;
use super::processes::parse_id;
use crate::auth::{Caller, Scope};
use crate::db::Db;
use crate::db::processes;
use crate::domain::process::ProcessDefinition;
use crate::error::{AppError, AppResult};

/// One stored version of a process.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummary {
    pub version: i32,
    pub created_at: DateTime<Utc>,
}

/// The versions of a process, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    pub items: Vec<VersionSummary>,
}

/// One version's full definition.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessVersionView {
    pub process_id: String,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub definition: ProcessDefinition,
}

/// List a process's versions, newest first.
#[utoipa::path(
    tag = "processes",
    params(("id" = String, Path, description = "Process id")),
    responses(
        (status = 200, description = "The versions", body = VersionList),
        (status = 404, description = "No such process", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:read"]))
)]
#[get("/processes/{id}/versions")]
pub async fn list_versions(
    caller: Caller,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> AppResult<web::Json<VersionList>> {
    caller.require(Scope::ProcessesRead)?;
    let id = parse_id(&id)?;
    let tenant = caller.tenant.clone();
    let rows = db
        .read(move |c| {
            processes::find(c, &tenant, id).map_err(AppError::missing("process"))?;
            Ok(processes::versions(c, &tenant, id)?)
        })
        .await?;
    Ok(web::Json(VersionList {
        items: rows
            .into_iter()
            .map(|r| VersionSummary {
                version: r.version,
                created_at: r.created_at,
            })
            .collect(),
    }))
}

/// Read one version's full definition.
#[utoipa::path(
    tag = "processes",
    params(
        ("id" = String, Path, description = "Process id"),
        ("version" = i32, Path, description = "Version number, from 1"),
    ),
    responses(
        (status = 200, description = "That version", body = ProcessVersionView),
        (status = 404, description = "No such process or version", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["processes:read"]))
)]
#[get("/processes/{id}/versions/{version}")]
pub async fn get_version(
    caller: Caller,
    db: web::Data<Db>,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<ProcessVersionView>> {
    caller.require(Scope::ProcessesRead)?;
    let (id, version) = path.into_inner();
    let id = parse_id(&id)?;
    let version: i32 = version
        .parse()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| AppError::not_found("version"))?;
    let tenant = caller.tenant.clone();
    let row = db
        .read(move |c| {
            processes::find(c, &tenant, id).map_err(AppError::missing("process"))?;
            processes::find_version(c, &tenant, id, version).map_err(AppError::missing("version"))
        })
        .await?;
    let definition: ProcessDefinition = serde_json::from_value(row.definition)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored definition unreadable: {e}")))?;
    Ok(web::Json(ProcessVersionView {
        process_id: id.to_string(),
        version: row.version,
        created_at: row.created_at,
        definition,
    }))
}
