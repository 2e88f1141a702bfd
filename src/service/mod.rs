//! Flows that combine the engine with the database.

pub mod approvals;
pub mod automation;
pub mod directory;
pub mod host_actions;
pub mod links;
pub mod listing;
pub mod store;
pub mod time;
pub mod view;
