//! Conditional requests (RFC 9110 §13): the one place that makes `ETag`s, reads `If-Match` and
//! `If-None-Match`, and answers 304, 412 and 428.
//!
//! Two kinds of entity tag:
//! - [`version_tag`]: resources with a `version` column (processes, rules) use the version, so
//!   the tag is the number the 412 problem's `current_version` names.
//! - [`content_tag`]: the others (principals, calendars, delegations, webhook endpoints) have no
//!   version column; their tag is a SHA-256 of the JSON view the server sends. `updated_at` was
//!   the other candidate, but delegations have none and a hash of the representation is exactly
//!   what a strong tag promises (same tag ⇔ same bytes), so a derived field that changes on its
//!   own (a delegation's `active` once it starts) changes the tag too. No migration needed.
//!
//! `If-Match` uses the strong comparison (`W/"1"` never matches), `If-None-Match` the weak one,
//! as §13.1.1 and §13.1.2 say.

use actix_web::http::header::{self, EntityTag, Header, IfMatch, IfNoneMatch};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult, Kind};

/// The tag of a versioned resource: its version, strong.
pub fn version_tag(version: i32) -> EntityTag {
    EntityTag::new_strong(version.to_string())
}

/// The tag of a resource without a version column: the first 128 bits of the SHA-256 of its
/// JSON view, strong.
pub fn content_tag<T: Serialize>(view: &T) -> EntityTag {
    let bytes = serde_json::to_vec(view).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    EntityTag::new_strong(hex)
}

/// An `If-Match` precondition as the request sent it.
#[derive(Debug, Clone)]
pub enum Precondition {
    /// No `If-Match`: the update is unconditional.
    None,
    /// `If-Match: *`: the resource must exist.
    Exists,
    /// `If-Match` with tags: one must equal the current tag (strongly). A header that does not
    /// parse is kept as an empty list, which matches nothing: a 412, never a silent pass.
    OneOf(Vec<EntityTag>),
}

impl Precondition {
    /// Read `If-Match`, which may be absent (an upsert may be unconditional).
    pub fn read(req: &HttpRequest) -> Self {
        if !req.headers().contains_key(header::IF_MATCH) {
            return Self::None;
        }
        match IfMatch::parse(req) {
            Ok(IfMatch::Any) => Self::Exists,
            Ok(IfMatch::Items(tags)) => Self::OneOf(tags),
            Err(_) => Self::OneOf(Vec::new()),
        }
    }

    /// Read `If-Match`, which must be present: 428 `if_match_required` without it.
    pub fn require(req: &HttpRequest, what: &str) -> AppResult<Self> {
        match Self::read(req) {
            Self::None => Err(AppError::new(
                Kind::PreconditionRequired,
                "if_match_required",
                format!("send the {what}'s ETag in If-Match to update it"),
            )),
            p => Ok(p),
        }
    }

    /// Whether the precondition holds for the current tag (`None`: no such resource yet).
    pub fn holds(&self, current: Option<&EntityTag>) -> bool {
        match self {
            Self::None => true,
            Self::Exists => current.is_some(),
            Self::OneOf(tags) => current.is_some_and(|c| tags.iter().any(|t| t.strong_eq(c))),
        }
    }

    /// 412 `version_mismatch` unless the precondition holds.
    pub fn check(&self, current: Option<&EntityTag>, what: &str) -> AppResult<()> {
        if self.holds(current) {
            return Ok(());
        }
        let detail = match current {
            Some(tag) => format!(
                "the {what} has changed since you read it (its ETag is {tag}); read it again"
            ),
            None => format!("there is no such {what} yet; send the request without If-Match"),
        };
        Err(AppError::new(
            Kind::PreconditionFailed,
            "version_mismatch",
            detail,
        ))
    }

    /// [`check`](Self::check) for a versioned resource; the 412 names `current_version`.
    pub fn check_version(&self, current: i32, what: &str) -> AppResult<()> {
        self.check(Some(&version_tag(current)), what)
            .map_err(|e| e.with("current_version", current))
    }
}

/// An answer carrying `ETag`.
pub fn tagged<T: Serialize>(
    mut res: HttpResponseBuilder,
    tag: EntityTag,
    body: &T,
) -> HttpResponse {
    res.insert_header(header::ETag(tag)).json(body)
}

/// A GET's answer: 304 with the `ETag` and no body when `If-None-Match` names the current tag
/// (weak comparison) or is `*`; otherwise 200 with the body and its `ETag`.
pub fn read_answer<T: Serialize>(req: &HttpRequest, tag: EntityTag, body: &T) -> HttpResponse {
    if not_modified(req, &tag) {
        return HttpResponse::NotModified()
            .insert_header(header::ETag(tag))
            .finish();
    }
    tagged(HttpResponse::Ok(), tag, body)
}

fn not_modified(req: &HttpRequest, current: &EntityTag) -> bool {
    if !req.headers().contains_key(header::IF_NONE_MATCH) {
        return false;
    }
    match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(current)),
        // A header that does not parse names no tag: answer in full.
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn with_if_match(v: &str) -> HttpRequest {
        TestRequest::default()
            .insert_header((header::IF_MATCH, v))
            .to_http_request()
    }

    #[test]
    fn if_match_compares_strongly() {
        let current = version_tag(1);
        assert!(Precondition::read(&with_if_match("\"1\"")).holds(Some(&current)));
        assert!(!Precondition::read(&with_if_match("W/\"1\"")).holds(Some(&current)));
        assert!(!Precondition::read(&with_if_match("\"2\"")).holds(Some(&current)));
        assert!(Precondition::read(&with_if_match("\"2\", \"1\"")).holds(Some(&current)));
        assert!(!Precondition::read(&with_if_match("1")).holds(Some(&current)));
        assert!(Precondition::read(&with_if_match("*")).holds(Some(&current)));
        assert!(!Precondition::read(&with_if_match("*")).holds(None));
        assert!(Precondition::read(&TestRequest::default().to_http_request()).holds(None));
    }

    #[test]
    fn content_tags_follow_the_bytes() {
        let a = content_tag(&serde_json::json!({"a": 1}));
        assert_eq!(a, content_tag(&serde_json::json!({"a": 1})));
        assert_ne!(a, content_tag(&serde_json::json!({"a": 2})));
        assert!(!a.weak);
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let current = version_tag(3);
        let req = |v: &str| {
            TestRequest::default()
                .insert_header((header::IF_NONE_MATCH, v))
                .to_http_request()
        };
        assert!(not_modified(&req("W/\"3\""), &current));
        assert!(not_modified(&req("\"3\""), &current));
        assert!(not_modified(&req("*"), &current));
        assert!(!not_modified(&req("\"4\""), &current));
        assert!(!not_modified(
            &TestRequest::default().to_http_request(),
            &current
        ));
    }
}
