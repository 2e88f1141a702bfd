//! The life of one approval as pure rules: who is asked, what each answer does, when a stage
//! ends and when the approval does.
//!
//! Every operation takes the whole [`Approval`] as loaded from the database, changes it in
//! place, and returns the [`Effect`]s the database layer turns into stored events and webhooks,
//! in order. An operation that fails returns an [`EngineError`] and leaves the approval exactly
//! as it was, so the caller can map the error to a response without rolling anything back.
//!
//! Answers are applied one at a time and the stage is evaluated after each, so "as soon as"
//! in the rules has a meaning: a group's result is the first one its answers reach, and it
//! never changes afterwards (a `first_reply` group rejected by its first answer stays rejected
//! when a later member of another group approves). That is why [`StageState`] stores the
//! status of each group instead of recomputing it from the counts.

mod approval;
mod inflight;
mod model;
mod refusal;
mod resolve;
mod seating;
mod seats;
mod stages;
mod tally;

pub use approval::{NAMES_IN_A_LINE, name_list};
pub use model::*;

pub use resolve::Resolve;
pub use seats::{Candidate, Candidates, Condition, Removal, RemovalReason, Resolution, SkipReason};

#[cfg(test)]
mod four_eyes_tests;
#[cfg(test)]
mod inflight_tests;
#[cfg(test)]
mod tests;
