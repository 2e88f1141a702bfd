//! Who sits in a stage: the directory's answer at stage start, turned into seats by the rules
//! of "one person, one answer". The caller (the service) reads the directory through
//! [`Resolve`]; everything decided from that answer is decided here, purely:
//!
//! - members are de-duplicated, and the ticket's requester and the approval's `requested_by`
//!   are removed unless the process allows self-approval;
//! - a delegation in force moves a seat to the delegate, unless the delegate already sits in a
//!   group that holds the delegator: delegation never shrinks a group. Hand-overs are decided
//!   from who was asked, all at once, so chains stop after one hop and a→b, b→a swap;
//! - a `count` group with some members but fewer than its count is short: refused, or capped
//!   when the process says `when_short: cap`; a group with nobody in it is skipped;
//! - every removal, skip and cap is written down with its reason.

use super::model::{Delegation, Parties, Policy, StagePlan};
use super::seats::{Candidate, Condition, Removal, Resolution, SkipReason};
use crate::domain::process::{Rule, WhenShort};

/// How a stage came out of seating.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Seated {
    /// Seats are taken; tasks can be created.
    Ready,
    /// The stage does not run.
    Skipped(SkipReason),
    /// This group has fewer members than its count and the process refuses that.
    Short { group: usize },
}

/// Seats one stage from the directory's answer. Changes `plan` (members, requirements, skip
/// reasons, notes) and records applied delegations; returns how the stage came out.
pub(super) fn seat(
    stage: usize,
    plan: &mut StagePlan,
    resolution: Resolution,
    parties: &Parties,
    policy: Policy,
    delegations: &mut Vec<Delegation>,
) -> Seated {
    plan.resolved = true;
    match resolution.condition {
        Condition::Holds => {}
        Condition::False => {
            plan.skip_reason = Some(SkipReason::Condition);
            plan.notes.push("skipped: its condition is false".into());
            for g in &mut plan.groups {
                g.members.clear();
                g.skip_reason = Some(SkipReason::Condition);
            }
            return Seated::Skipped(SkipReason::Condition);
        }
        Condition::Failed(why) => plan.notes.push(format!(
            "its condition could not be evaluated ({why}); the stage runs"
        )),
    }

    // Members as named, de-duplicated, without whoever may not approve this ticket.
    let mut named: Vec<Vec<Candidate>> = Vec::with_capacity(plan.groups.len());
    let mut resolved = resolution.groups.into_iter();
    for group in &mut plan.groups {
        let c = resolved.next().unwrap_or_default();
        group.removed = c.removed;
        let mut kept: Vec<Candidate> = Vec::with_capacity(c.members.len());
        let mut seen: std::collections::HashSet<String> =
            std::collections::HashSet::with_capacity(c.members.len());
        for m in c.members {
            if !seen.insert(m.id.clone()) {
                continue;
            }
            if let Some(reason) = parties.excludes(&m.id, policy) {
                group.removed.push(Removal {
                    principal_id: m.id,
                    reason,
                });
                continue;
            }
            kept.push(m);
        }
        for r in &group.removed {
            plan.notes.push(format!(
                "{} removed from {}: {}",
                r.principal_id,
                group.name,
                r.reason.says()
            ));
        }
        named.push(kept);
    }

    // Seats, then hand-overs decided from who was asked.
    let mut seats: Vec<Vec<String>> = named
        .iter()
        .map(|g| g.iter().map(|c| c.id.clone()).collect())
        .collect();
    let mut considered: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for candidate in named.iter().flatten() {
        let Some(delegate) = candidate.delegate.as_deref() else {
            continue;
        };
        if delegate == candidate.id || !considered.insert(&candidate.id) {
            continue;
        }
        if parties.excludes(delegate, policy).is_some() {
            plan.notes.push(format!(
                "delegation of {} to {delegate} not applied: {delegate} may not approve this ticket",
                candidate.id
            ));
            continue;
        }
        let holds: Vec<usize> = (0..named.len())
            .filter(|&g| named[g].iter().any(|c| c.id == candidate.id))
            .collect();
        if let Some(&g) = holds
            .iter()
            .find(|&&g| seats[g].iter().any(|s| s == delegate))
        {
            plan.notes.push(format!(
                "delegation of {} to {delegate} not applied: {delegate} already sits in {}, so {} keeps their seat",
                candidate.id, plan.groups[g].name, candidate.id
            ));
            continue;
        }
        for &g in &holds {
            for seat in seats[g].iter_mut().filter(|s| **s == candidate.id) {
                *seat = delegate.to_string();
            }
        }
        delegations.push(Delegation {
            stage,
            delegator: candidate.id.clone(),
            delegate: delegate.to_string(),
        });
    }

    // Requirements, fixed now for the life of the stage.
    let mut short = None;
    for (g, (group, members)) in plan.groups.iter_mut().zip(seats).enumerate() {
        group.members = members;
        let n = group.members.len();
        if !group.asked {
            group.skip_reason = Some(SkipReason::NotAsked);
            continue;
        }
        let wanted = match group.require.rule {
            Rule::Count { count } => count as usize,
            _ => 1,
        };
        // Nobody at all is an empty group (skipped, below); some people but fewer than the
        // count is short.
        if n > 0 && n < wanted && matches!(group.require.rule, Rule::Count { .. }) {
            match policy.when_short {
                WhenShort::Refuse => {
                    short.get_or_insert(g);
                    continue;
                }
                WhenShort::Cap => {
                    group.capped_from = Some(wanted);
                    plan.notes.push(format!(
                        "{}: count lowered from {wanted} to {n} (when_short: cap)",
                        group.name
                    ));
                }
            }
        }
        if n == 0 {
            group.skip_reason = Some(SkipReason::NoApprovers);
            plan.notes.push(format!("{}: nobody to ask", group.name));
            continue;
        }
        group.required = Some(group.require.rule.required(n).clamp(1, n));
    }
    if let Some(group) = short {
        return Seated::Short { group };
    }
    if plan.groups.iter().all(|g| !g.asked || g.members.is_empty()) {
        plan.skip_reason = Some(SkipReason::NoApprovers);
        plan.notes.push("skipped: nobody to ask".into());
        return Seated::Skipped(SkipReason::NoApprovers);
    }
    Seated::Ready
}
