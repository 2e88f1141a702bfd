//! Changes to an approval while it waits: the requester's side withdrawing it, and a seat
//! handed to someone else. Each keeps the four-eyes rules of the stage it touches.

use chrono::{DateTime, Utc};

use super::model::*;

impl Approval {
    /// The requester's side takes the approval back: it ends as `withdrawn`, with an outcome
    /// saying so, and its pending tasks are superseded. Who may withdraw is the caller's
    /// check ([`Parties::is_party`]).
    pub fn withdraw(
        &mut self,
        actor_id: &str,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        self.running_stage().ok_or(EngineError::Closed)?;
        let count = self.close(now);
        self.status = ApprovalStatus::Withdrawn;
        self.outcome = Some(Outcome {
            decision: ApprovalStatus::Withdrawn,
            reason: OutcomeReason::Withdrawn,
            decided_at: now,
        });
        let mut effects = Vec::new();
        if count > 0 {
            effects.push(Effect::TasksSuperseded { count });
        }
        effects.push(Effect::Withdrawn {
            reason,
            actor_id: actor_id.to_string(),
        });
        Ok(effects)
    }

    /// Hands `from`'s pending seat in the running stage to `to`: the old task becomes
    /// `reassigned`, `to` gets a pending task in the same groups, and the stage's counts and
    /// deadline stay as they were. `to` must be allowed to approve (not a party), and must not
    /// already sit or have answered in the stage: one person, one answer. Whether `to` is an
    /// active principal, and whether the actor may move the seat, are the caller's checks.
    pub fn reassign(
        &mut self,
        from: &str,
        to: &str,
        actor_id: Option<&str>,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        let (stage, index) = self.pending_seat(from)?;
        let refuse = |r| Err(EngineError::InvalidReassignment(r));
        if from == to {
            return refuse(ReassignRefusal::SamePerson);
        }
        if self.parties.excludes(to, self.policy).is_some() {
            return refuse(ReassignRefusal::Party);
        }
        let in_stage = self.tasks.iter().filter(|t| t.stage == stage);
        let mut seated = false;
        for t in in_stage {
            let answered_for_another = t.actor_id.as_deref() == Some(to);
            if answered_for_another || (t.approver_id == to && t.decided_at.is_some()) {
                return refuse(ReassignRefusal::AlreadyAnswered);
            }
            seated |= t.approver_id == to;
        }
        if seated {
            return refuse(ReassignRefusal::AlreadySeated);
        }
        self.tasks[index].state = TaskState::Reassigned;
        self.tasks.push(Task::pending(stage, to));
        for group in &mut self.plan[stage].groups {
            for member in group.members.iter_mut().filter(|m| *m == from) {
                *member = to.to_string();
            }
        }
        let comment = comment.filter(|c| !c.trim().is_empty());
        self.reassignments.push(Reassignment {
            stage,
            from: from.to_string(),
            to: to.to_string(),
            actor_id: actor_id.map(str::to_string),
            comment: comment.clone(),
            at: now,
        });
        Ok(vec![Effect::Reassigned {
            stage,
            from: from.to_string(),
            to: to.to_string(),
            actor_id: actor_id.map(str::to_string),
            comment,
        }])
    }

    /// The running stage and the index of `who`'s task in it, when that task still waits for
    /// an answer: the seat that can be handed on.
    pub fn pending_seat(&self, who: &str) -> Result<(usize, usize), EngineError> {
        let stage = self.running_stage().ok_or(EngineError::Closed)?;
        let index = self
            .tasks
            .iter()
            .position(|t| t.stage == stage && t.approver_id == who)
            .ok_or(EngineError::NotAnApprover)?;
        if self.tasks[index].state != TaskState::Pending {
            return Err(EngineError::AlreadyDecided);
        }
        Ok((stage, index))
    }

    /// Who `from`'s seat in `stage` went to, if it was handed on.
    pub fn reassigned_to(&self, stage: usize, from: &str) -> Option<&str> {
        self.reassignments
            .iter()
            .rev()
            .find(|r| r.stage == stage && r.from == from)
            .map(|r| r.to.as_str())
    }
}

impl Parties {
    /// Is `id` the ticket's requester or the approval's `requested_by`?
    pub fn is_party(&self, id: &str) -> bool {
        self.requester.as_deref() == Some(id) || self.requested_by.as_deref() == Some(id)
    }
}
