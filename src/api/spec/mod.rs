//! The finishing pass over the OpenAPI document utoipa derives from the handlers and types.
//!
//! utoipa says what each type looks like; this pass says what the whole API promises, in the
//! shape client generators and fuzzers read best:
//! - tagged unions are `oneOf` over named schemas with a `discriminator` (`type`, a mapping),
//!   and `Requirement` is one such union whose every variant carries `reject_at`, never an
//!   `allOf` over a `oneOf`;
//! - every status an operation can send is declared, with the `Problem` schema and the headers
//!   that come with it (`WWW-Authenticate`, `Retry-After`, `Idempotent-Replayed`);
//! - fields a response always carries are `required` (nullable where they can be null);
//! - closed sets (`Problem.code`, event types, delivery states) are enums; new values may be
//!   added, and clients must accept ones they do not know;
//! - `servers`, `security: []` on the public operations, a description on every operation,
//!   `info.license` as an SPDX identifier, and `contact`;
//! - every event type has a typed envelope, united as `Event` (what the events endpoint lists)
//!   and listed in the OpenAPI 3.1 `webhooks` section.

mod catalog;
mod events;
mod operations;
mod schemas;

use serde_json::{Value, json};

pub use catalog::{EVENT_TYPES, PROBLEM_CODES};
use operations::operations;
use schemas::{
    closed_request_objects, closed_sets, discriminate_unions, null_is_absent,
    required_response_fields, requirement_union,
};

/// Applies every finishing step to the derived document.
pub fn finish(spec: &mut Value) {
    info(spec);
    requirement_union(spec);
    discriminate_unions(spec);
    closed_sets(spec);
    closed_request_objects(spec);
    null_is_absent(spec);
    required_response_fields(spec);
    events::events(spec);
    operations(spec);
}

fn info(spec: &mut Value) {
    spec["info"]["license"] = json!({"name": "Apache-2.0", "identifier": "Apache-2.0"});
    spec["info"]["contact"] = json!({
        "name": "signoff maintainers",
        "url": "https://github.com/signoff-dev/signoff"
    });
    spec["servers"] = json!([{
        "url": "/",
        "description": "The origin that serves this document: signoff serves the API and `/openapi.json` together (`make run`: http://127.0.0.1:8080)."
    }]);
}
