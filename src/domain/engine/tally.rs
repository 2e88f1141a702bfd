//! How answers become results: a group's from its counts, a stage's from its groups.

use crate::domain::process::{Combine, Requirement, Rule};

use super::model::*;

/// A group's result from its counts, if it has one. Evaluated after every single answer: an
/// approval can then only approve and a rejection only reject, so both cannot be reached at
/// once.
pub(super) fn group_result(
    require: &Requirement,
    required: usize,
    approved: usize,
    rejected: usize,
    pending: usize,
) -> Option<Verdict> {
    // A `reject_at` of 0 would reject before anyone answered; validation refuses it, so read
    // it as absent rather than trust it.
    let reject_at = require.reject_at.filter(|&k| k > 0).map(|k| k as usize);
    if approved >= required {
        Some(Verdict::Approve)
    } else if approved + pending < required
        || (require.rule == Rule::FirstReply && rejected > 0)
        || reject_at.is_some_and(|k| rejected >= k)
    {
        Some(Verdict::Reject)
    } else {
        None
    }
}

/// A stage's result from its groups' statuses, if it has one. Skipped groups do not count.
/// With `first_group` (an `any` stage), the first group to reach a result decides: a stage is
/// evaluated after every answer, so the first settled group is the only one.
pub(super) fn combine(
    combine: Combine,
    first_group: bool,
    groups: &[GroupStatus],
) -> Option<Verdict> {
    let live: Vec<GroupStatus> = groups
        .iter()
        .copied()
        .filter(|g| *g != GroupStatus::Skipped)
        .collect();
    if live.is_empty() {
        return None;
    }
    let all = |s: GroupStatus| live.iter().all(|g| *g == s);
    let some = |s: GroupStatus| live.contains(&s);
    match combine {
        Combine::All if some(GroupStatus::Rejected) => Some(Verdict::Reject),
        Combine::All if all(GroupStatus::Approved) => Some(Verdict::Approve),
        Combine::Any if some(GroupStatus::Approved) => Some(Verdict::Approve),
        Combine::Any if first_group && some(GroupStatus::Rejected) => Some(Verdict::Reject),
        Combine::Any if all(GroupStatus::Rejected) => Some(Verdict::Reject),
        _ => None,
    }
}
