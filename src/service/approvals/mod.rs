//! Approval flows: reading request and decision bodies, requesting (and previewing) an
//! approval, and the commands on a running one (decide, cancel, bypass, remind, withdraw,
//! reassign). Each runs
//! the engine and stores what it did through `service::store`, in the caller's transaction.

mod commands;
mod inflight;
pub mod info;
mod input;
mod requests;

pub use commands::*;
pub use inflight::*;
pub use input::*;
pub use requests::*;
