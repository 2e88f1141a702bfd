//! Changes to an approval while it waits: the requester's side withdrawing it, a seat handed
//! to someone else, an approver added to a group, an answer taken back. Each keeps the
//! four-eyes rules of the stage it touches.

use chrono::{DateTime, Utc};

use crate::domain::process::Rule;

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
        let why = ReassignReason::Reassign;
        self.hand_on(from, to, actor_id, comment, now, why)
    }

    /// At a deadline, moves `from`'s pending seat up to `to` (their manager), under the same
    /// rules as a reassignment: recorded with reason `escalation`.
    pub fn escalate_seat(
        &mut self,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        self.hand_on(from, to, None, None, now, ReassignReason::Escalation)
    }

    fn hand_on(
        &mut self,
        from: &str,
        to: &str,
        actor_id: Option<&str>,
        comment: Option<String>,
        now: DateTime<Utc>,
        reason: ReassignReason,
    ) -> Result<Vec<Effect>, EngineError> {
        let (stage, index) = self.pending_seat(from)?;
        if from == to {
            return Err(EngineError::InvalidReassignment(SeatRefusal::SamePerson));
        }
        self.may_sit(stage, to)
            .map_err(EngineError::InvalidReassignment)?;
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
            reason,
            actor_id: actor_id.map(str::to_string),
            comment: comment.clone(),
            at: now,
        });
        Ok(vec![Effect::Reassigned {
            stage,
            from: from.to_string(),
            to: to.to_string(),
            reason,
            actor_id: actor_id.map(str::to_string),
            comment,
        }])
    }

    /// Adds `who` to the group named `group` of the running stage, with a pending task: a group
    /// whose requirement is over its members (`all`, `majority`, `percent`) counts them, a
    /// `count` or `first_reply` stays as it was. The same four-eyes rules as a reassignment.
    pub fn add_approver(
        &mut self,
        group: &str,
        who: &str,
        actor_id: Option<&str>,
    ) -> Result<Vec<Effect>, EngineError> {
        let stage = self.running_stage().ok_or(EngineError::Closed)?;
        let g = self.plan[stage]
            .groups
            .iter()
            .position(|g| g.name == group && g.asked)
            .ok_or(EngineError::UnknownGroup)?;
        if self.stages[stage].groups[g] != GroupStatus::Pending {
            return Err(EngineError::GroupDecided);
        }
        self.may_sit(stage, who)
            .map_err(EngineError::InvalidApprover)?;
        self.tasks.push(Task::pending(stage, who));
        let plan = &mut self.plan[stage].groups[g];
        plan.members.push(who.to_string());
        if matches!(
            plan.require.rule,
            Rule::All | Rule::Majority | Rule::Percent { .. }
        ) {
            plan.required = Some(required(plan.require.rule, plan.members.len()));
        }
        Ok(vec![Effect::ApproverAdded {
            stage,
            group: group.to_string(),
            approver_id: who.to_string(),
            actor_id: actor_id.map(str::to_string),
        }])
    }

    /// Takes back `approver_id`'s answer in the running stage, given by `actor_id` no longer
    /// than `window` ago (None: the process allows no revoking), while the answer has not yet
    /// settled a group. The seat waits for an answer again.
    pub fn revoke(
        &mut self,
        approver_id: &str,
        actor_id: &str,
        window: Option<chrono::TimeDelta>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        let stage = self.running_stage().ok_or(EngineError::Closed)?;
        let refuse = |r| Err(EngineError::RevokeRefused(r));
        let window = match window {
            Some(w) => w,
            None => return refuse(RevokeRefusal::NotAllowed),
        };
        let index = self
            .tasks
            .iter()
            .position(|t| t.stage == stage && t.approver_id == approver_id)
            .ok_or(EngineError::NotAnApprover)?;
        let task = &self.tasks[index];
        let (Some(verdict), Some(at), TaskState::Approved | TaskState::Rejected) =
            (task.verdict, task.decided_at, task.state)
        else {
            return refuse(RevokeRefusal::NothingToRevoke);
        };
        if task.actor() != actor_id {
            return refuse(RevokeRefusal::NotYours);
        }
        if now - at > window {
            return refuse(RevokeRefusal::WindowPassed);
        }
        let settled = self.plan[stage].groups.iter().enumerate().any(|(g, plan)| {
            plan.members.iter().any(|m| m == approver_id)
                && self.stages[stage].groups[g] != GroupStatus::Pending
                && self.stages[stage].groups[g] != GroupStatus::Skipped
        });
        if settled {
            return refuse(RevokeRefusal::Counted);
        }
        self.tasks[index] = Task::pending(stage, approver_id);
        Ok(vec![Effect::DecisionRevoked {
            stage,
            approver_id: approver_id.to_string(),
            actor_id: actor_id.to_string(),
            verdict,
        }])
    }

    /// `approver_id` steps out of the running stage with `comment` (the process allows it:
    /// the caller's check). Each undecided group they sit in takes its requirement over the
    /// members who remain: `all`, `majority` and `percent` are recomputed; a `count` that the
    /// rest can no longer meet is lowered with `when_short: cap`, and otherwise (or when nobody
    /// remains) rejects the group, and a stage that this rejects ends with reason
    /// `not_enough_approvers`: never an approval on fewer people than asked for, nor on
    /// nobody's word. Then the stage is evaluated, as after
    /// an answer.
    pub fn abstain(
        &mut self,
        approver_id: &str,
        comment: Option<String>,
        now: DateTime<Utc>,
        directory: &mut dyn super::Resolve,
    ) -> Result<Vec<Effect>, EngineError> {
        let stage = self.running_stage().ok_or(EngineError::Closed)?;
        if self.status == ApprovalStatus::InfoRequested {
            return Err(EngineError::AwaitingInfo);
        }
        if self.parties.excludes(approver_id, self.policy).is_some() {
            return Err(EngineError::SelfApproval);
        }
        let (_, index) = self.pending_seat(approver_id)?;
        let Some(comment) = comment.filter(|c| !c.trim().is_empty()) else {
            return Err(EngineError::CommentRequired);
        };
        let task = &mut self.tasks[index];
        task.state = TaskState::Abstained;
        task.decided_at = Some(now);
        task.comment = Some(comment.clone());
        task.actor_id = Some(approver_id.to_string());
        let mut short = Vec::new();
        let cap = self.policy.when_short == crate::domain::process::WhenShort::Cap;
        for (g, plan) in self.plan[stage].groups.iter_mut().enumerate() {
            let Some(at) = plan.members.iter().position(|m| m == approver_id) else {
                continue;
            };
            plan.members.remove(at);
            if self.stages[stage].groups[g] != GroupStatus::Pending {
                continue;
            }
            let left = plan.members.len();
            match plan.require.rule {
                _ if left == 0 => short.push(g),
                Rule::All | Rule::Majority | Rule::Percent { .. } => {
                    plan.required = Some(required(plan.require.rule, left));
                }
                Rule::Count { .. } if plan.required() > left => {
                    if cap {
                        plan.capped_from.get_or_insert(plan.required());
                        plan.required = Some(left);
                    } else {
                        short.push(g);
                    }
                }
                Rule::Count { .. } | Rule::FirstReply => {}
            }
        }
        let mut effects = vec![Effect::Abstained {
            stage,
            approver_id: approver_id.to_string(),
            comment,
        }];
        // A group that can no longer reach its count is rejected; its stage then ends as its
        // groups combine (an `any` stage may still be approved by another group).
        for &g in &short {
            self.stages[stage].groups[g] = GroupStatus::Rejected;
        }
        if let Some(verdict) = self.evaluate_stage(stage) {
            let reason = if verdict == Verdict::Reject && !short.is_empty() {
                OutcomeReason::NotEnoughApprovers
            } else {
                OutcomeReason::Decisions
            };
            self.conclude(stage, verdict, reason, now, directory, &mut effects);
        }
        Ok(effects)
    }

    /// An approver's question to the requester: answers wait (409 `awaiting_info`) until
    /// [`Approval::info_provided`]. Who may ask, and the stage's clock, are the caller's.
    pub fn info_requested(&mut self) -> Result<Vec<Effect>, EngineError> {
        self.running_stage().ok_or(EngineError::Closed)?;
        if self.status == ApprovalStatus::InfoRequested {
            return Err(EngineError::InfoRequestOpen);
        }
        self.status = ApprovalStatus::InfoRequested;
        Ok(vec![Effect::InfoRequested])
    }

    /// The requester answered: the approval waits for answers again.
    pub fn info_provided(&mut self) -> Result<Vec<Effect>, EngineError> {
        self.running_stage().ok_or(EngineError::Closed)?;
        if self.status != ApprovalStatus::InfoRequested {
            return Err(EngineError::NoOpenQuestion);
        }
        self.status = ApprovalStatus::Pending;
        Ok(vec![Effect::InfoProvided])
    }

    /// May `who` take a seat in `stage`? Not a party (unless the process allows
    /// self-approval), not seated there already, and not someone who answered there, for
    /// themselves or for another: one person, one answer.
    fn may_sit(&self, stage: usize, who: &str) -> Result<(), SeatRefusal> {
        if self.parties.excludes(who, self.policy).is_some() {
            return Err(SeatRefusal::Party);
        }
        let mut seated = false;
        for t in self.tasks.iter().filter(|t| t.stage == stage) {
            let answered_for_another = t.actor_id.as_deref() == Some(who);
            if answered_for_another || (t.approver_id == who && t.decided_at.is_some()) {
                return Err(SeatRefusal::AlreadyAnswered);
            }
            seated |= t.approver_id == who;
        }
        if seated {
            return Err(SeatRefusal::AlreadySeated);
        }
        Ok(())
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
