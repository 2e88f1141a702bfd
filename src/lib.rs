//! signoff: a headless approval engine for ticketing platforms.

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod secrets;
pub mod service;
pub mod startup;
pub mod telemetry;
pub mod webhooks;
pub mod worker;
