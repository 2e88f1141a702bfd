//! Integration tests: the real application over HTTP against a real Postgres.

mod approvals;
mod architecture;
mod auth;
mod automation;
mod browser;
mod concurrency;
mod conditional;
mod config;
mod contract;
mod event_schemas;
mod four_eyes;
mod helpers;
mod host_actions;
mod idempotency;
mod integrity;
mod links;
mod ops;
mod ordering;
mod plans;
mod principals;
mod processes;
mod regressions;
mod time;
mod tutorial;
mod webhooks;
mod worker;
