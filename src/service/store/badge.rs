//! The badge line of an approval: where it stands, with the names a person reads.

use crate::domain::engine::{ApprovalStatus, OutcomeReason, TaskState, Verdict};
use crate::domain::messages::Badge;

use super::loaded::Loaded;

/// Where an approval stands, with the names a badge shows.
pub fn badge(loaded: &Loaded) -> Badge {
    let engine = &loaded.stored.approval;
    let name = |id: &str| loaded.stored.name_of(id);
    let decider = |verdict: Verdict| {
        let admin = loaded.stored.closed_by.as_ref();
        if engine.outcome.as_ref().map(|o| o.reason) == Some(OutcomeReason::Bypass) {
            return admin.and_then(|a| a.actor_id.as_deref()).map(name);
        }
        engine
            .tasks
            .iter()
            .filter(|t| t.verdict == Some(verdict) && t.state != TaskState::Reused)
            .filter(|t| t.decided_at.is_some())
            .max_by_key(|t| t.decided_at)
            .map(|t| name(t.actor_id.as_deref().unwrap_or(&t.approver_id)))
    };
    match engine.status {
        ApprovalStatus::Pending | ApprovalStatus::Preview => {
            let mut waiting: Vec<String> = Vec::new();
            for t in &engine.tasks {
                if Some(t.stage) == engine.current_stage && t.state == TaskState::Pending {
                    let n = name(&t.approver_id);
                    if !waiting.contains(&n) {
                        waiting.push(n);
                    }
                }
            }
            Badge::Awaiting(waiting)
        }
        ApprovalStatus::Approved => Badge::Approved(decider(Verdict::Approve)),
        ApprovalStatus::Rejected => Badge::Rejected(decider(Verdict::Reject)),
        ApprovalStatus::Cancelled => Badge::Cancelled,
        ApprovalStatus::Withdrawn => Badge::Withdrawn,
        ApprovalStatus::InfoRequested => Badge::AwaitingInfo,
    }
}
