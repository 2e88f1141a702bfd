//! Approval storage that every flow shares: loading an approval for a command, and saving
//! what the command did (tasks, the row, timers, events with their recipients' links, and
//! the webhook fan-out) in the command's transaction. The flows (`approvals`, `links`,
//! `time`, `automation`) depend on it; it depends on none of them.

mod badge;
mod events;
mod links;
mod loaded;
mod save;
mod timers;

pub use badge::badge;
pub use events::{RECIPIENTS_PER_EVENT, TASKS_PER_STAGE_IN_EVENTS, notify};
pub use links::{Asker, DEFAULT_TTL_DAYS, Recipient, asked_by_principal, hash, issue, new_token};
pub use loaded::{Ctx, EventContext, Loaded, Saved, assemble, load, read, run_engine};
pub use save::{engine_text, save};
pub use timers::{
    MAX_REMINDERS, escalation_recipients, load_calendar, restart_deadline, schedule_started, timer,
};
