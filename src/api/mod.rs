//! The HTTP API, the one edge that knows HTTP: a file of handlers per resource, what handlers
//! extract from requests (`extract`), the one body reader (`body`), the mapping of errors to
//! problem+json (`problem`), Idempotency-Key replays (`idempotency`), and the route table with
//! the OpenAPI document (`routes`, finished by `spec`).

pub mod approvals;
pub mod body;
pub mod calendars;
pub mod conditional;
pub mod decisions;
pub mod delegations;
pub mod deliveries;
pub mod extract;
pub mod host_actions;
pub mod idempotency;
pub mod ids;
pub mod inflight;
pub mod links;
pub mod ops;
pub mod pagination;
pub mod payloads;
pub mod principals;
pub mod problem;
pub mod processes;
pub mod ratelimit;
pub mod routes;
pub mod rules;
pub mod spec;
pub mod tickets;
pub mod versions;
pub mod webhooks;

pub use body::MAX_BODY_BYTES;
pub use extract::Now;
pub use problem::{Problem, problem_response};
pub use routes::{
    ApiDoc, configure, json_config, not_found, openapi, openapi_json, path_config, query_config,
};
