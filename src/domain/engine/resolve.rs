//! The directory as the engine reads it when a stage starts.

use super::model::*;
use super::seats::Resolution;

/// The directory, as the engine asks it when a stage starts. The service reads principals,
/// roles, delegations and the stage's condition; the engine applies the rules to the answer.
pub trait Resolve {
    /// Who the groups of `stage` name now, and what its condition says.
    fn resolve(&mut self, stage: usize, plan: &StagePlan) -> Resolution;
}

/// Answers the first stages from resolutions already read at request time, so the fail-fast
/// check and the stage that starts see one directory state.
pub(super) struct Cached<'a> {
    pub(super) read: Vec<Option<Resolution>>,
    pub(super) inner: &'a mut dyn Resolve,
}

impl Resolve for Cached<'_> {
    fn resolve(&mut self, stage: usize, plan: &StagePlan) -> Resolution {
        match self.read.get_mut(stage).and_then(Option::take) {
            Some(r) => r,
            None => self.inner.resolve(stage, plan),
        }
    }
}

/// How seating a stage went.
pub(super) enum Opened {
    /// It has tasks and can start.
    Ready,
    /// It was skipped; try the next one.
    Skipped,
    /// A group is short and the process refuses that.
    Short { group: usize },
}
