//! The approval engine's rules: pure functions and types, no web framework, no database.

pub mod calendar;
pub mod condition;
pub mod duration;
pub mod engine;
pub mod messages;
pub mod principal;
pub mod process;
pub mod ticket;
pub mod validate;
