//! What handlers take from a request besides its body: the caller (from the bearer token),
//! the time on the application's clock, and a command's context.

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, http::header, web};

use super::body;
use crate::auth::{Authenticator, Caller};
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::AppError;
use crate::service::store::Ctx;

/// The time on the application's [`Clock`], for a handler that records when something
/// happened: take `now: Now`. Tests run the app on a manual clock, so handlers never read the
/// system's.
pub struct Now(pub chrono::DateTime<chrono::Utc>);

fn clock_of(req: &HttpRequest) -> Clock {
    req.app_data::<web::Data<Clock>>()
        .map_or_else(Clock::system, |c| c.get_ref().clone())
}

impl FromRequest for Now {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Now(clock_of(req).now())))
    }
}

/// What a command needs besides its input: the time on the application's clock and the
/// base of approver links.
impl FromRequest for Ctx {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = req
            .app_data::<web::Data<Settings>>()
            .map(|s| Ctx::new(clock_of(req).now(), &s.public_url))
            .ok_or_else(|| AppError::internal("request context", "no settings"));
        std::future::ready(ctx)
    }
}

/// The authenticated caller of a request, from its bearer token (checked once per request).
impl FromRequest for Caller {
    type Error = AppError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(c) = req.extensions().get::<Caller>() {
            let c = c.clone();
            return Box::pin(async move { Ok(c) });
        }
        let auth = req.app_data::<web::Data<Authenticator>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_string());
        let req = req.clone();
        Box::pin(async move {
            let auth =
                auth.ok_or_else(|| AppError::Internal(anyhow::anyhow!("no authenticator")))?;
            let token = token
                .ok_or_else(|| AppError::unauthorized("send `Authorization: Bearer <token>`"))?;
            let caller = auth.authenticate(&token).await?;
            tracing::Span::current().record("tenant", caller.tenant.as_str());
            req.extensions_mut().insert(caller.clone());
            Ok(caller)
        })
    }
}

/// Reads a typed body from JSON kept as a `Value` (for the Idempotency-Key hash); a body that
/// does not fit is a 422 naming the field at fault.
pub fn typed_body<T: serde::de::DeserializeOwned>(raw: &serde_json::Value) -> Result<T, AppError> {
    body::typed(raw.clone())
}
