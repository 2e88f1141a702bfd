//! Health, readiness and metrics: no authentication, for orchestrators and Prometheus.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::problem::Problem;
use crate::db::Db;
use crate::metrics::Metrics;

/// Health answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up. Never touches the database.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/livez")]
pub async fn livez() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// Readiness: the database answers. 503 while it does not.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "The database is unavailable, or a worker loop of this replica is not running (`worker_not_running`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(
    db: web::Data<Db>,
    m: web::Data<Metrics>,
) -> Result<web::Json<Health>, crate::error::AppError> {
    db.ping().await?;
    let down = m.loops_down();
    if !down.is_empty() {
        return Err(crate::error::AppError::new(
            crate::error::Kind::NotReady,
            "worker_not_running",
            format!("worker loop(s) not running: {}", down.join(", ")),
        ));
    }
    Ok(web::Json(Health { status: "ready" }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"))
)]
#[get("/metrics")]
pub async fn metrics(metrics: web::Data<Metrics>, db: web::Data<Db>) -> HttpResponse {
    // Queue gauges come from the outbox itself, so every replica reports the same truth.
    if let Ok(stats) = db.run(|c| Ok(crate::db::webhooks::queue_stats(c)?)).await {
        metrics.set_queue(stats.depth, stats.oldest_due_secs);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render(&db))
}
