//! Flows that combine the engine with the database.

pub mod approvals;
pub mod automation;
pub mod directory;
pub mod idempotency;
pub mod links;
pub mod time;
pub mod view;

/// The current time at the precision Postgres stores (microseconds), so an answer built from
/// memory equals the same resource read back later.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
