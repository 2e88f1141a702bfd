//! Bearer JWT authentication and per-endpoint scopes.
//!
//! Each key is pinned to one algorithm: the HS256 secret verifies only HS256, and each JWKS key
//! only the algorithm of its type (RSA: RS256 unless the JWK names another RSA algorithm, P-256:
//! ES256, Ed25519: EdDSA). A token's `alg` header therefore never chooses how it is verified,
//! which closes `none` and HS/RS confusion.

mod jwks;

use std::collections::HashSet;
use std::fmt;

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::config::JwtSettings;
use crate::error::AppError;
pub use jwks::JwksSource;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 30;

/// What a client may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    ProcessesRead,
    ProcessesWrite,
    ApprovalsRead,
    ApprovalsWrite,
    ApprovalsDecide,
    ApprovalsAdmin,
    DirectoryWrite,
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::ProcessesRead,
        Scope::ProcessesWrite,
        Scope::ApprovalsRead,
        Scope::ApprovalsWrite,
        Scope::ApprovalsDecide,
        Scope::ApprovalsAdmin,
        Scope::DirectoryWrite,
        Scope::WebhooksManage,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::ProcessesRead => "processes:read",
            Scope::ProcessesWrite => "processes:write",
            Scope::ApprovalsRead => "approvals:read",
            Scope::ApprovalsWrite => "approvals:write",
            Scope::ApprovalsDecide => "approvals:decide",
            Scope::ApprovalsAdmin => "approvals:admin",
            Scope::DirectoryWrite => "directory:write",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims we require.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// One audience or a list of them (RFC 7519); checked by the validation, not here.
    pub aud: serde_json::Value,
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    pub tenant: String,
    #[serde(default)]
    pub scope: String,
}

/// The authenticated caller: a client acting for one tenant.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: String,
    pub client: String,
    scopes: HashSet<Scope>,
}

impl Caller {
    /// Fails with 403 unless the token carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<&Self, AppError> {
        if self.scopes.contains(&scope) {
            Ok(self)
        } else {
            Err(AppError::forbidden(
                "insufficient_scope",
                format!("this operation needs the `{scope}` scope"),
            ))
        }
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Verifies tokens. Shared by every request.
pub struct Authenticator {
    hs256: Option<DecodingKey>,
    jwks: Option<JwksSource>,
    issuer: String,
    audience: String,
    /// The longest a token may live, in seconds (`SIGNOFF_JWT_MAX_LIFETIME`).
    max_lifetime: u64,
}

/// Splits a `scope` claim into scopes. RFC 6749 §3.3 separates scope tokens with the ASCII
/// space alone: any other whitespace (NBSP, U+3000, a tab) is part of a token, so
/// `"approvals:read\u{a0}approvals:admin"` is one unknown scope and grants nothing.
pub fn split_scopes(claim: &str) -> impl Iterator<Item = &str> {
    claim.split(' ').filter(|s| !s.is_empty())
}

impl Authenticator {
    pub fn new(settings: &JwtSettings, clock: crate::clock::Clock) -> anyhow::Result<Self> {
        let jwks = match &settings.jwks {
            Some(source) => Some(JwksSource::new(source, clock)?),
            None => None,
        };
        Ok(Self {
            hs256: settings
                .hs256_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes())),
            jwks,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            max_lifetime: settings.max_lifetime.as_secs(),
        })
    }

    /// Loads the JWKS once at start-up so a broken key source is noticed early: a bad file
    /// stops start-up; an unreachable URL is logged and tried again when a token needs it, so
    /// a key server's hiccup cannot keep every replica down.
    pub async fn warm_up(&self) -> anyhow::Result<()> {
        if let Some(j) = &self.jwks
            && let Err(e) = j.refresh(true).await
        {
            if j.is_url() {
                tracing::warn!(error = %e, "SIGNOFF_JWT_JWKS: cannot fetch the key set yet");
            } else {
                return Err(e);
            }
        }
        Ok(())
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v
    }

    /// Verifies a bearer token and returns the caller.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, AppError> {
        let invalid = |why: &str| AppError::unauthorized(format!("invalid token: {why}"));
        let header =
            decode_header(token).map_err(|_| invalid("malformed or unsupported header"))?;
        // RFC 7515 §4.1.11: extensions listed in `crit` must be understood, and we
        // understand none.
        if header.crit.is_some() {
            return Err(invalid(
                "critical header extensions (`crit`) are not supported",
            ));
        }
        let (key, alg) = match header.alg {
            Algorithm::HS256 => match &self.hs256 {
                Some(k) => (k.clone(), Algorithm::HS256),
                None => return Err(invalid("HS256 tokens are not accepted here")),
            },
            alg => {
                let jwks = self
                    .jwks
                    .as_ref()
                    .ok_or_else(|| invalid("only HS256 tokens are accepted here"))?;
                let (key, pinned) = jwks
                    .key(header.kid.as_deref())
                    .await
                    .ok_or_else(|| invalid("unknown signing key"))?;
                if pinned != alg {
                    return Err(invalid("algorithm does not match the key"));
                }
                (key, pinned)
            }
        };
        let data = decode::<Claims>(token, &key, &self.validation(alg)).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => invalid("expired"),
                K::InvalidIssuer => invalid("wrong issuer"),
                K::InvalidAudience => invalid("wrong audience"),
                K::InvalidSignature => invalid("bad signature"),
                K::MissingRequiredClaim(c) => invalid(&format!("missing claim `{c}`")),
                K::ImmatureSignature => invalid("not valid yet"),
                _ => invalid("claims could not be read (is `tenant` present?)"),
            }
        })?;
        let claims = data.claims;
        if !crate::domain::validate::is_external_id(&claims.tenant) {
            return Err(invalid("`tenant` claim is empty or malformed"));
        }
        if claims.sub.trim().is_empty() {
            return Err(invalid("`sub` claim is empty"));
        }
        if crate::domain::validate::has_hidden_characters(&claims.sub) {
            return Err(invalid(
                "`sub` claim holds control, zero-width or bidirectional characters",
            ));
        }
        // Measured from `iat`, or from now without one (or when `iat` lies ahead, so a
        // future `iat` cannot stretch the window).
        let now = jsonwebtoken::get_current_timestamp();
        let from = claims.iat.map_or(now, |iat| iat.min(now));
        if claims.exp.saturating_sub(from) > self.max_lifetime + LEEWAY_SECS {
            return Err(invalid(
                "lives longer than the maximum token lifetime (SIGNOFF_JWT_MAX_LIFETIME)",
            ));
        }
        Ok(Caller {
            tenant: claims.tenant,
            client: claims.sub,
            scopes: split_scopes(&claims.scope)
                .filter_map(Scope::parse)
                .collect(),
        })
    }
}

/// Mints a development token with the configured HS256 secret (`signoff token`).
pub fn mint_token(
    settings: &JwtSettings,
    tenant: &str,
    scope: &str,
    sub: &str,
    ttl_secs: u64,
) -> anyhow::Result<String> {
    let secret = settings
        .hs256_secret
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("SIGNOFF_JWT_HS256_SECRET: is required to mint tokens"))?;
    for s in split_scopes(scope) {
        if Scope::parse(s).is_none() {
            anyhow::bail!("unknown scope {s:?}; known scopes: {}", all_scopes());
        }
    }
    if ttl_secs > settings.max_lifetime.as_secs() {
        anyhow::bail!(
            "a token living {ttl_secs} s would be refused: SIGNOFF_JWT_MAX_LIFETIME allows {} s",
            settings.max_lifetime.as_secs()
        );
    }
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        iss: settings.issuer.clone(),
        aud: serde_json::Value::String(settings.audience.clone()),
        sub: sub.to_string(),
        exp: now + ttl_secs,
        iat: Some(now),
        tenant: tenant.to_string(),
        scope: scope.to_string(),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )?)
}

/// Every scope, space-separated.
pub fn all_scopes() -> String {
    Scope::ALL.map(|s| s.as_str()).join(" ")
}
