//! Flows that combine the engine with the database.

pub mod approvals;
pub mod idempotency;
pub mod view;
