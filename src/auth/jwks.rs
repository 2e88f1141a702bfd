//! A JWKS read from a file or a URL, cached, and re-read when a token names an unknown `kid`
//! (key rotation) at most once every few seconds, so a flood of forged kids cannot turn us
//! into a load generator against the key server.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

const MIN_REFETCH: Duration = Duration::from_secs(5);
/// Keys are re-read this often even when every kid is known, so a key withdrawn upstream
/// stops being accepted.
const MAX_AGE: Duration = Duration::from_secs(600);

#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    alg: Algorithm,
}

enum Location {
    File(String),
    Url(String),
}

pub struct JwksSource {
    location: Location,
    keys: RwLock<HashMap<String, Key>>,
    last_fetch: Mutex<Option<DateTime<Utc>>>,
    /// The app's clock: tests move it instead of waiting out the throttle.
    clock: Clock,
    client: reqwest::Client,
}

/// The one algorithm a JWK may verify. Symmetric keys and unknown types are refused: a JWKS
/// publishes public keys, and an `oct` key there would reopen HS/RS confusion.
fn pinned_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let named = jwk.common.key_algorithm;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => match named {
            None | Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
            Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
            Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
            Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
            Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
            Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
            _ => None,
        },
        AlgorithmParameters::EllipticCurve(ec) => match (ec.curve.clone(), named) {
            (EllipticCurve::P256, None | Some(KeyAlgorithm::ES256)) => Some(Algorithm::ES256),
            (EllipticCurve::P384, None | Some(KeyAlgorithm::ES384)) => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => match (okp.curve.clone(), named) {
            (EllipticCurve::Ed25519, None | Some(KeyAlgorithm::EdDSA)) => Some(Algorithm::EdDSA),
            _ => None,
        },
        _ => None,
    }
}

/// Parses a JWKS document into pinned keys; keys we cannot use are skipped with a warning.
fn parse(text: &str) -> anyhow::Result<HashMap<String, Key>> {
    let set: JwkSet = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("SIGNOFF_JWT_JWKS: not a JWKS document: {e}"))?;
    let mut keys = HashMap::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        let Some(alg) = pinned_algorithm(jwk) else {
            tracing::warn!(
                kid,
                index = i,
                "JWKS key skipped: unsupported type or algorithm"
            );
            continue;
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(decoding) => {
                keys.insert(kid, Key { decoding, alg });
            }
            Err(e) => tracing::warn!(kid, error = %e, "JWKS key skipped: unreadable"),
        }
    }
    Ok(keys)
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl JwksSource {
    pub fn new(source: &str, clock: Clock) -> anyhow::Result<Self> {
        let location = if source.starts_with("http://") || source.starts_with("https://") {
            Location::Url(source.to_string())
        } else {
            Location::File(source.to_string())
        };
        Ok(Self {
            location,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            clock,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()?,
        })
    }

    pub fn is_url(&self) -> bool {
        matches!(self.location, Location::Url(_))
    }

    async fn load(&self) -> anyhow::Result<String> {
        match &self.location {
            Location::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| anyhow::anyhow!("SIGNOFF_JWT_JWKS: cannot read {path}: {e}")),
            Location::Url(url) => {
                let res = self.client.get(url).send().await?.error_for_status()?;
                Ok(res.text().await?)
            }
        }
    }

    /// Re-reads the key set unless it was read less than [`MIN_REFETCH`] ago.
    pub async fn refresh(&self, force: bool) -> anyhow::Result<()> {
        let mut last = self.last_fetch.lock().await;
        let now = self.clock.now();
        if !force && last.is_some_and(|t| now - t < chrono_of(MIN_REFETCH)) {
            return Ok(());
        }
        *last = Some(now);
        let keys = parse(&self.load().await?)?;
        *self.keys.write().await = keys;
        Ok(())
    }

    async fn lookup(&self, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
        let keys = self.keys.read().await;
        let key = match kid {
            Some(kid) => keys.get(kid),
            // Without a kid, only an unambiguous single-key set can be used.
            None if keys.len() == 1 => keys.values().next(),
            None => None,
        };
        key.map(|k| (k.decoding.clone(), k.alg))
    }

    /// The key for `kid`, re-reading the set once if it is unknown or the set is old.
    pub async fn key(&self, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
        let stale = self
            .last_fetch
            .lock()
            .await
            .is_none_or(|t| self.clock.now() - t > chrono_of(MAX_AGE));
        if stale && let Err(e) = self.refresh(false).await {
            tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys we have");
        }
        if let Some(found) = self.lookup(kid).await {
            return Some(found);
        }
        if let Err(e) = self.refresh(false).await {
            tracing::warn!(error = %e, "JWKS refresh failed");
        }
        self.lookup(kid).await
    }
}
