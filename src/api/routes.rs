//! The route table and the OpenAPI document derived from it, and the handlers that keep every
//! failure actix answers by itself (a bad query or path, an unknown route, a wrong method) in
//! problem+json.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{AppExt, scope};

use super::body::MAX_BODY_BYTES;
use super::problem::{Problem, problem_of, problem_response};
use super::{
    approvals, calendars, decisions, delegations, deliveries, host_actions, inflight, links, ops,
    principals, processes, rules, spec, tickets, versions, webhooks,
};
use crate::error::AppError;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "A JWT with claims iss, aud, sub, exp, tenant and scope (space-separated scopes)."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// The OpenAPI document's fixed parts; paths are collected from the registered handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "signoff",
        description = "Headless approval engine for ticketing platforms. Define approval \
processes, request approval on tickets, record decisions; signoff tells the host what happened \
through signed webhooks.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(
        Problem,
        crate::domain::validate::FieldError,
        super::pagination::ListOrder
    )),
    tags(
        (name = "approvals", description = "Approval requests on tickets, decisions and audit trail"),
        (name = "processes", description = "Reusable, versioned approval definitions"),
        (name = "rules", description = "Rules that start approvals when a ticket enters a status"),
        (name = "tickets", description = "Tickets as the host reports them, with their approval badge"),
        (name = "directory", description = "Principals: people who can approve"),
        (name = "webhooks", description = "Signed event delivery to the host"),
        (name = "actions", description = "Requests signoff sends to the host's own API on events (set a status, comment)"),
        (name = "calendars", description = "Business hours for stage timeouts"),
        (name = "links", description = "One-time approver links: no account, the token is the credential"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// Registers every documented route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(ops::livez)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(
            scope::scope("/v1")
                .service(principals::put_principal)
                .service(principals::get_principal)
                .service(processes::create_process)
                .service(processes::list_processes)
                .service(processes::get_process)
                .service(processes::update_process)
                .service(processes::delete_process)
                .service(processes::restore_process)
                .service(processes::disable_process)
                .service(versions::list_versions)
                .service(versions::get_version)
                .service(rules::create_rule)
                .service(rules::list_rules)
                .service(rules::test_rules)
                .service(rules::get_rule)
                .service(rules::update_rule)
                .service(rules::delete_rule)
                .service(tickets::put_ticket)
                .service(tickets::get_ticket)
                .service(approvals::request_approval)
                .service(approvals::preview_approval)
                .service(approvals::list_approvals)
                .service(approvals::get_approval)
                .service(approvals::list_events)
                .service(decisions::decide)
                .service(decisions::cancel)
                .service(decisions::bypass)
                .service(decisions::remind)
                .service(inflight::withdraw)
                .service(inflight::reassign)
                .service(inflight::add_approver)
                .service(inflight::revoke)
                .service(inflight::ask_requester)
                .service(inflight::answer_question)
                .service(decisions::bulk_decide)
                .service(approvals::pending_approvals)
                .service(approvals::delete_ticket)
                .service(webhooks::create_endpoint)
                .service(webhooks::list_endpoints)
                .service(webhooks::get_endpoint)
                .service(webhooks::update_endpoint)
                .service(webhooks::delete_endpoint)
                .service(webhooks::rotate_secret)
                .service(deliveries::list_deliveries)
                .service(deliveries::retry_delivery)
                .service(host_actions::create_host_action)
                .service(host_actions::list_host_actions)
                .service(host_actions::get_host_action)
                .service(host_actions::replace_host_action)
                .service(host_actions::delete_host_action)
                .service(host_actions::list_action_deliveries)
                .service(host_actions::retry_action_delivery)
                .service(calendars::put_calendar)
                .service(calendars::get_calendar)
                .service(delegations::put_delegation)
                .service(delegations::get_delegation)
                .service(delegations::delete_delegation)
                .service(links::get_link)
                .service(links::post_link),
        );
}

/// The OpenAPI document as utoipa derives it from the handlers and types.
fn derived() -> utoipa::openapi::OpenApi {
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi().merge_from(super::payloads::Payloads::openapi()))
        .configure(configure)
        .split_for_parts();
    api
}

/// The OpenAPI document signoff publishes: the derived one, finished by [`spec::finish`].
pub fn openapi() -> serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(derived()).unwrap_or_default();
        spec::finish(&mut doc);
        doc
    })
    .clone()
}

/// The spec as the committed `openapi/openapi.json` holds it.
pub fn openapi_json() -> String {
    let mut s = serde_json::to_string_pretty(&openapi()).unwrap_or_default();
    s.push('\n');
    s
}

/// `web::Json` bodies, for the one handler not yet on [`body::JsonBody`]: size limit, and
/// problem+json for every way a body can be wrong.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| {
            let e = match &err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => AppError::new(
                    crate::error::Kind::PayloadTooLarge,
                    "body_too_large",
                    format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                ),
                JsonPayloadError::ContentType => AppError::new(
                    crate::error::Kind::UnsupportedMediaType,
                    "unsupported_media_type",
                    "send the body as application/json",
                ),
                JsonPayloadError::Deserialize(e) if e.is_data() => {
                    AppError::invalid_field("body", e.to_string())
                }
                JsonPayloadError::Deserialize(e) => AppError::bad_request(
                    "invalid_json",
                    format!("the body is not valid JSON: {e}"),
                ),
                other => AppError::bad_request("invalid_body", other.to_string()),
            };
            actix_web::error::InternalError::from_response(err, e_response(&e)).into()
        })
}

fn e_response(e: &AppError) -> HttpResponse {
    actix_web::ResponseError::error_response(e)
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        let e = AppError::bad_request("invalid_query", format!("query parameters: {err}"));
        actix_web::error::InternalError::from_response(err, e_response(&e)).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        let e = AppError::not_found("resource");
        actix_web::error::InternalError::from_response(err, e_response(&e)).into()
    })
}

/// Unknown routes.
/// Unknown routes, and known paths asked with a method they do not have (405 with `Allow`).
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let allowed = allowed_methods(req.path());
    if !allowed.is_empty() {
        let e = AppError::new(
            crate::error::Kind::MethodNotAllowed,
            "method_not_allowed",
            format!(
                "{} is not allowed here; use {}",
                req.method(),
                allowed.join(", ")
            ),
        );
        let mut res = problem_response(&problem_of(&e));
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allowed.join(", ")) {
            res.headers_mut().insert(actix_web::http::header::ALLOW, v);
        }
        return res;
    }
    let e = AppError::new(
        crate::error::Kind::NotFound,
        "route_not_found",
        format!("no route for {} {}", req.method(), req.path()),
    );
    problem_response(&problem_of(&e))
}

/// The methods the OpenAPI document lists for the path template matching `path`.
fn allowed_methods(path: &str) -> Vec<String> {
    static ROUTES: std::sync::OnceLock<Vec<(Vec<String>, Vec<String>)>> =
        std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        let spec = openapi();
        spec["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(template, item)| {
                        let segments = template.split('/').map(str::to_string).collect();
                        let methods = item
                            .as_object()
                            .map(|m| m.keys().map(|k| k.to_uppercase()).collect())
                            .unwrap_or_default();
                        (segments, methods)
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let parts: Vec<&str> = path.split('/').collect();
    routes
        .iter()
        .find(|(segments, _)| {
            segments.len() == parts.len()
                && segments.iter().zip(&parts).all(|(t, p)| {
                    (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p
                })
        })
        .map(|(_, methods)| methods.clone())
        .unwrap_or_default()
}
