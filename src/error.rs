//! What can go wrong, in words every layer may use and none of them tied to HTTP. A refusal
//! is a [`Fault`]: its [`Kind`], a stable `code`, a detail, the fields at fault and extra
//! members. The API edge (`api::problem`) is the one place that turns an [`AppError`] into
//! an HTTP status and an RFC 9457 problem document. This module is also the one place where
//! database and pool failures are classified: diesel's `NotFound` is a missing resource, a
//! lost database is [`AppError::Unavailable`], and anything unexpected is
//! [`AppError::Internal`], whose cause goes to the log only.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::domain::engine::EngineError;
pub use crate::domain::validate::FieldError;

/// The kind of a refusal. Each is one HTTP status at the edge; below it, only the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request cannot be read (400).
    BadRequest,
    /// No valid credentials (401).
    Unauthorized,
    /// The caller may not do this (403).
    Forbidden,
    /// No such resource or route (404).
    NotFound,
    /// The resource does not take this method (405).
    MethodNotAllowed,
    /// The resource's state does not allow it (409).
    Conflict,
    /// Gone for good, like a used link (410).
    Gone,
    /// The resource changed since the version the caller named (412).
    PreconditionFailed,
    /// The body is over the size limit (413).
    PayloadTooLarge,
    /// The body is not JSON (415).
    UnsupportedMediaType,
    /// The input breaks a rule (422).
    Unprocessable,
    /// The caller must name the version it changes (428).
    PreconditionRequired,
    /// Too many attempts; `retry_after` says when to try again (429).
    TooManyRequests,
    /// A part of the service is not running; retry later (503).
    NotReady,
}

/// A refusal: the caller can act on it.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Kind,
    /// A stable machine-readable code (`urn:signoff:problem:<code>` on the wire).
    pub code: String,
    /// What went wrong this time, in plain words.
    pub detail: String,
    /// With [`Kind::Unprocessable`]: every field at fault.
    pub errors: Option<Vec<FieldError>>,
    /// Extra members some refusals carry (e.g. `pending_approval_id`, `retry_after`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Everything a flow, a query or a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{}: {}", .0.code, .0.detail)]
    Refused(Box<Fault>),
    /// The database cannot be reached: the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure: opaque to the caller, logged in full.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: Kind, code: &str, detail: impl Into<String>) -> Self {
        AppError::Refused(Box::new(Fault {
            kind,
            code: code.to_string(),
            detail: detail.into(),
            errors: None,
            extra: Default::default(),
        }))
    }

    /// Adds a member to the refusal (it becomes a member of the problem document).
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        if let AppError::Refused(f) = &mut self {
            f.extra.insert(key.to_string(), value.into());
        }
        self
    }

    /// An unexpected failure of `what`, for the log.
    pub fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        AppError::Internal(anyhow::anyhow!("{what}: {e}"))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Kind::NotFound, "not_found", format!("{what} not found"))
    }

    /// Maps diesel's `NotFound` to a missing `what`, and anything else as usual:
    /// `.map_err(AppError::missing("process"))`.
    pub fn missing(what: &'static str) -> impl Fn(DieselError) -> AppError {
        move |e| match e {
            DieselError::NotFound => AppError::not_found(what),
            other => other.into(),
        }
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, code, detail)
    }

    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, code, detail)
    }

    pub fn forbidden(code: &str, detail: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, code, detail)
    }

    pub fn gone(code: &str, detail: impl Into<String>) -> Self {
        Self::new(Kind::Gone, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(Kind::Unauthorized, "unauthorized", detail)
    }

    /// A refusal listing every field at fault.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let n = errors.len();
        let mut e = Self::new(
            Kind::Unprocessable,
            "validation_failed",
            format!(
                "{n} field{} at fault; see `errors`",
                if n == 1 { " is" } else { "s are" }
            ),
        );
        if let AppError::Refused(f) = &mut e {
            f.errors = Some(errors);
        }
        e
    }

    /// A refusal for a single field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// A rule of the product refused the input (not a field problem).
    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(Kind::Unprocessable, code, detail)
    }

    pub fn code(&self) -> &str {
        match self {
            AppError::Refused(f) => &f.code,
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }

    /// The refusal, when this is one (not a failure of ours).
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            AppError::Refused(f) => Some(f),
            _ => None,
        }
    }
}

/// The engine's refusals, each as the kind of refusal it is.
impl From<EngineError> for AppError {
    fn from(e: EngineError) -> Self {
        let kind = match e {
            EngineError::NoApprovers
            | EngineError::NotEnoughApprovers { .. }
            | EngineError::CommentRequired
            | EngineError::InvalidReassignment(_)
            | EngineError::InvalidApprover(_)
            | EngineError::UnknownGroup => Kind::Unprocessable,
            EngineError::NotAnApprover | EngineError::DoubleAnswer | EngineError::SelfApproval => {
                Kind::Forbidden
            }
            EngineError::Closed
            | EngineError::AlreadyDecided
            | EngineError::StageNotCurrent
            | EngineError::GroupDecided
            | EngineError::RevokeRefused(_)
            | EngineError::AwaitingInfo
            | EngineError::InfoRequestOpen
            | EngineError::NoOpenQuestion => Kind::Conflict,
        };
        AppError::new(kind, e.code(), e.to_string())
    }
}

impl AppError {
    /// Postgres aborted the statement as a deadlock victim or a serialization failure: run
    /// again, it may well succeed.
    pub fn is_retryable(&self) -> bool {
        let AppError::Internal(e) = self else {
            return false;
        };
        match e.downcast_ref::<DieselError>() {
            Some(DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => true,
            Some(DieselError::DatabaseError(_, info)) => {
                info.message().contains("deadlock detected")
            }
            _ => false,
        }
    }
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

impl From<DieselError> for AppError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => AppError::not_found("resource"),
            ref other if is_connection_loss(other) => AppError::Unavailable(other.to_string()),
            other => AppError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        AppError::Unavailable(e.to_string())
    }
}
