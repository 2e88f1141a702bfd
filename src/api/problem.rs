//! The one place where an [`AppError`] becomes HTTP: each [`Kind`] is one status, and every
//! refusal is an RFC 9457 `application/problem+json` document. Failures of ours are an
//! opaque 500 (or a 503 when the database is away) whose cause goes to the log only.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, FieldError, Kind};

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:signoff:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:signoff:problem:validation_failed")]
    pub kind: String,
    /// A short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong this time, in plain words.
    pub detail: String,
    /// A stable machine-readable code; switch on this, not on `title` or `detail`.
    #[schema(example = "validation_failed")]
    pub code: String,
    /// With 422: every field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Extra members some problems carry (e.g. `pending_approval_id`).
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(ignore)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The HTTP status of a kind of refusal.
pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::BadRequest => StatusCode::BAD_REQUEST,
        Kind::Unauthorized => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::Gone => StatusCode::GONE,
        Kind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
        Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        Kind::NotReady => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn document(status: StatusCode, code: &str, detail: &str) -> Problem {
    Problem {
        kind: format!("urn:signoff:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail: detail.to_string(),
        code: code.to_string(),
        errors: None,
        extra: Default::default(),
    }
}

/// The problem document a client sees: internal causes never leave the process.
pub fn problem_of(e: &AppError) -> Problem {
    match e {
        AppError::Refused(f) => Problem {
            errors: f.errors.clone(),
            extra: f.extra.clone(),
            ..document(status_of(f.kind), &f.code, &f.detail)
        },
        AppError::Unavailable(_) => document(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the database is unavailable; retry later",
        ),
        AppError::Internal(_) => document(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred; it has been logged",
        ),
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Refused(f) => status_of(f.kind),
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AppError::Internal(e) => tracing::error!(error = ?e, "request failed"),
            AppError::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            AppError::Refused(_) => {}
        }
        let mut res = problem_response(&problem_of(self));
        let headers = res.headers_mut();
        match self {
            AppError::Refused(f) if f.kind == Kind::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"signoff\", error=\"invalid_token\""),
                );
            }
            AppError::Refused(f) if f.kind == Kind::TooManyRequests => {
                if let Some(wait) = f.extra.get("retry_after").and_then(|v| v.as_u64())
                    && let Ok(v) = HeaderValue::from_str(&wait.to_string())
                {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            AppError::Refused(f) if f.kind == Kind::NotReady => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            AppError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        res
    }
}

/// Renders a problem document with its content type.
pub fn problem_response(p: &Problem) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/problem+json")
        .json(p)
}

/// The answer for an error, as actix's error handlers (query, path, JSON) need it.
pub fn error_response(e: &AppError) -> HttpResponse {
    ResponseError::error_response(e)
}
