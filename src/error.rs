//! Errors as RFC 9457 `application/problem+json`. This is the one place where database and
//! pool failures become HTTP answers: `NotFound` is 404, a lost database is 503, and anything
//! unexpected is an opaque 500 whose cause goes to the log only.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::validate::FieldError;

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

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}: {}", .0.code, .0.detail)]
    Problem(Box<Problem>),
    /// The database cannot be reached: 503, the client may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure: 500 with an opaque body.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        ApiError::Problem(Box::new(Problem {
            kind: format!("urn:signoff:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            errors: None,
            extra: Default::default(),
        }))
    }

    /// Adds a member to the problem document.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        if let ApiError::Problem(p) = &mut self {
            p.extra.insert(key.to_string(), value.into());
        }
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// Maps diesel's `NotFound` to a 404 naming `what`, and anything else as usual:
    /// `.map_err(ApiError::missing("process"))`.
    pub fn missing(what: &'static str) -> impl Fn(DieselError) -> ApiError {
        move |e| match e {
            DieselError::NotFound => ApiError::not_found(what),
            other => other.into(),
        }
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn forbidden(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn gone(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 422 listing every field at fault.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let n = errors.len();
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!(
                "{n} field{} at fault; see `errors`",
                if n == 1 { " is" } else { "s are" }
            ),
        );
        if let ApiError::Problem(p) = &mut e {
            p.errors = Some(errors);
        }
        e
    }

    /// 422 for a single field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// 422 with a specific code (not a field problem but a rule of the product).
    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn code(&self) -> &str {
        match self {
            ApiError::Problem(p) => &p.code,
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The problem document a client sees: internal causes never leave the process.
    pub fn problem(&self) -> Problem {
        match self {
            ApiError::Problem(p) => (**p).clone(),
            ApiError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "the database is unavailable; retry later",
            )
            .problem(),
            ApiError::Internal(_) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "an unexpected error occurred; it has been logged",
            )
            .problem(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Problem(p) => {
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "request failed"),
            ApiError::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            ApiError::Problem(_) => {}
        }
        let mut res = problem_response(&self.problem());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"signoff\", error=\"invalid_token\""),
            );
        }
        if let ApiError::Problem(p) = self
            && p.status == 429
            && let Some(wait) = p.extra.get("retry_after").and_then(|v| v.as_u64())
            && let Ok(v) = HeaderValue::from_str(&wait.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
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

/// Is this diesel error the database going away rather than a bad query?
fn is_connection_loss(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let m = info.message();
            m.contains("server closed the connection")
                || m.contains("terminating connection")
                || m.contains("connection to server")
                || m.contains("no connection to the server")
        }
        DieselError::BrokenTransactionManager => true,
        _ => false,
    }
}

impl From<DieselError> for ApiError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => ApiError::not_found("resource"),
            ref other if is_connection_loss(other) => ApiError::Unavailable(other.to_string()),
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(anyhow::anyhow!("blocking task failed: {e}"))
    }
}
