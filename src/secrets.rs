//! Secrets at rest: AES-256-GCM with keys from `SIGNOFF_SECRET_KEY` (and, during a key
//! rotation, `SIGNOFF_SECRET_KEY_PREVIOUS`). A bottom-layer module: it knows nothing of where
//! the values are stored.
//!
//! A sealed value reads `sealed:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id
//! (the first 4 bytes of the key's SHA-256, in hex) says which key opens it, so values sealed
//! with a previous key still open while they are re-sealed with the current one. Each value is
//! sealed for a `context` (authenticated, not stored), e.g. `webhook-endpoint:<id>`, so a
//! sealed value copied into another row or use does not open.
//!
//! Without a key nothing is sealed: [`seal`] returns the plaintext and [`open`] passes
//! unsealed values through, so turning encryption on needs no migration of existing rows.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed:v1:";
const NONCE_LEN: usize = 12;

/// Why a stored value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SecretError {
    #[error("the value is sealed but SIGNOFF_SECRET_KEY is not set")]
    NoKey,
    #[error(
        "the value is sealed with key {0}, which is neither SIGNOFF_SECRET_KEY nor in SIGNOFF_SECRET_KEY_PREVIOUS"
    )]
    UnknownKey(String),
    #[error("the sealed value is damaged or was sealed for another use")]
    Damaged,
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn parse(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "must be base64 (e.g. the output of `openssl rand -base64 32`)")?;
        if bytes.len() != 32 {
            return Err(format!(
                "must decode to 32 bytes (AES-256), not {}",
                bytes.len()
            ));
        }
        let digest = Sha256::digest(&bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| "is not a valid AES-256 key")?;
        Ok(Self { id, cipher })
    }
}

/// The current key and the previous ones still accepted for opening.
pub struct SecretKeys {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeys")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SecretKeys {
    /// `current`: one base64 key of 32 bytes; `previous`: comma-separated older keys. The
    /// error says which of the two is wrong.
    pub fn parse(current: &str, previous: Option<&str>) -> Result<Self, (bool, String)> {
        let current = Key::parse(current).map_err(|e| (true, e))?;
        let previous = previous
            .unwrap_or_default()
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| Key::parse(p).map_err(|e| (false, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { current, previous })
    }

    /// The id of the key new values are sealed with.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plaintext` for `context` with the current key.
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .current
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}:{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(out)
        )
    }

    /// Opens a value sealed for `context`; an unsealed value is returned as it is.
    pub fn open(&self, context: &str, stored: &str) -> Result<String, SecretError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, data) = rest.split_once(':').ok_or(SecretError::Damaged)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SecretError::UnknownKey(id.to_string()))?;
        let data = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| SecretError::Damaged)?;
        if data.len() < NONCE_LEN {
            return Err(SecretError::Damaged);
        }
        let (nonce, sealed) = data.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Damaged)?;
        let plain = key
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Damaged)?;
        String::from_utf8(plain).map_err(|_| SecretError::Damaged)
    }

    /// Is `stored` sealed with the current key? (False for plaintext and for older keys: those
    /// are what a re-seal pass rewrites.)
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(id, _)| id == self.current.id)
    }
}

/// Is `stored` a sealed value (rather than plaintext)?
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Seals with the configured keys, or keeps the plaintext when there are none.
pub fn seal(keys: Option<&SecretKeys>, context: &str, plaintext: &str) -> String {
    match keys {
        Some(k) => k.seal(context, plaintext),
        None => plaintext.to_string(),
    }
}

/// Opens a stored value: sealed ones with the configured keys, plaintext as it is.
pub fn open(keys: Option<&SecretKeys>, context: &str, stored: &str) -> Result<String, SecretError> {
    match keys {
        Some(k) => k.open(context, stored),
        None if is_sealed(stored) => Err(SecretError::NoKey),
        None => Ok(stored.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        STANDARD.encode(b)
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_context_and_hides_the_plaintext() {
        let keys = SecretKeys::parse(&key(), None).unwrap();
        let sealed = keys.seal("webhook-endpoint:1", "whsec_abc");
        assert!(sealed.starts_with("sealed:v1:"));
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            keys.seal("webhook-endpoint:1", "whsec_abc"),
            "fresh nonce"
        );
        assert_eq!(
            keys.open("webhook-endpoint:1", &sealed).unwrap(),
            "whsec_abc"
        );
        assert_eq!(
            keys.open("webhook-endpoint:2", &sealed),
            Err(SecretError::Damaged)
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            keys.open("webhook-endpoint:1", &tampered),
            Err(SecretError::Damaged)
        );
    }

    #[test]
    fn rotation_opens_old_values_with_the_previous_key_and_reseals_with_the_new() {
        let (old, new) = (key(), key());
        let before = SecretKeys::parse(&old, None).unwrap();
        let sealed = before.seal("c", "s3cret");
        let after = SecretKeys::parse(&new, Some(&old)).unwrap();
        assert!(!after.is_current(&sealed));
        assert_eq!(after.open("c", &sealed).unwrap(), "s3cret");
        let resealed = after.seal("c", "s3cret");
        assert!(after.is_current(&resealed));
        let only_new = SecretKeys::parse(&new, None).unwrap();
        assert!(matches!(
            only_new.open("c", &sealed),
            Err(SecretError::UnknownKey(_))
        ));
    }

    #[test]
    fn plaintext_passes_through_and_sealed_values_need_a_key() {
        assert_eq!(seal(None, "c", "plain"), "plain");
        assert_eq!(open(None, "c", "plain").unwrap(), "plain");
        let keys = SecretKeys::parse(&key(), None).unwrap();
        assert_eq!(keys.open("c", "plain").unwrap(), "plain");
        let sealed = seal(Some(&keys), "c", "x");
        assert_eq!(open(None, "c", &sealed), Err(SecretError::NoKey));
    }

    #[test]
    fn bad_keys_are_refused_naming_which() {
        assert!(matches!(SecretKeys::parse("short", None), Err((true, _))));
        assert!(matches!(
            SecretKeys::parse(&key(), Some("AAAA")),
            Err((false, _))
        ));
        let shown = format!("{:?}", SecretKeys::parse(&key(), None).unwrap());
        assert!(shown.contains("current"));
    }
}
