//! The operations on an approval: start (and preview), decide, cancel, bypass, time out, and
//! what it reads back (tallies, who it waits for).

use chrono::{DateTime, Utc};

use crate::domain::process::{Rule, TimeoutOutcome, WhenNoApprovers, WhenShort};

use super::model::*;
use super::resolve::{Cached, Opened, Resolve};
use super::seating::{Seated, seat};
use super::seats::SkipReason;

impl Approval {
    /// Creates the approval and starts its first stage that has somebody to ask, seating each
    /// stage from `directory` when it starts. Before anything starts, every stage is read
    /// once: with nobody to ask anywhere the request is refused
    /// ([`EngineError::NoApprovers`]) or approved at once, as the policy says, except that an
    /// approval only its requester could have given is always refused. A first stage that
    /// starts short is refused ([`EngineError::NotEnoughApprovers`]) unless the policy caps.
    pub fn start(
        plan: Vec<StagePlan>,
        policy: Policy,
        parties: Parties,
        now: DateTime<Utc>,
        directory: &mut dyn Resolve,
    ) -> Result<(Approval, Vec<Effect>), EngineError> {
        let stages = plan
            .iter()
            .map(|s| StageState {
                status: StageStatus::Waiting,
                started_at: None,
                ended_at: None,
                reason: None,
                groups: vec![GroupStatus::Waiting; s.groups.len()],
            })
            .collect();
        let mut approval = Approval {
            status: ApprovalStatus::Pending,
            current_stage: None,
            plan,
            stages,
            tasks: Vec::new(),
            outcome: None,
            policy,
            parties,
            delegations: Vec::new(),
            reassignments: Vec::new(),
        };
        let fresh = approval.plan.clone();
        let (read, anyone, self_removed) = approval.read_all(&fresh, directory);
        if !anyone {
            if self_removed || policy.when_no_approvers == WhenNoApprovers::Refuse {
                return Err(EngineError::NoApprovers);
            }
            for s in 0..approval.plan.len() {
                approval.plan[s].resolved = true;
                approval.plan[s].skip_reason = Some(SkipReason::NoApprovers);
                approval.stages[s].status = StageStatus::Skipped;
                approval.stages[s].groups.fill(GroupStatus::Skipped);
            }
            let mut effects = Vec::new();
            approval.finish(
                Verdict::Approve,
                OutcomeReason::Decisions,
                0,
                now,
                &mut effects,
            );
            return Ok((approval, effects));
        }
        let mut cached = Cached {
            read,
            inner: directory,
        };
        let mut effects = Vec::new();
        let mut from = None;
        loop {
            let Some(next) = approval.next_stage(from) else {
                // Someone could be asked when every stage was read, yet no stage runs: never
                // approve on nobody's word.
                return Err(EngineError::NoApprovers);
            };
            match approval.open_stage(next, &mut cached, &mut effects) {
                Opened::Skipped => from = Some(next),
                Opened::Short { group } => {
                    return Err(EngineError::NotEnoughApprovers { stage: next, group });
                }
                Opened::Ready => {
                    let Some(verdict) = approval.start_stage(next, now, &mut effects) else {
                        return Ok((approval, effects));
                    };
                    approval.conclude(
                        next,
                        verdict,
                        OutcomeReason::Decisions,
                        now,
                        &mut cached,
                        &mut effects,
                    );
                    return Ok((approval, effects));
                }
            }
        }
    }

    /// Reads every stage from the directory as if it started now, without starting anything:
    /// what a request would do. Every stage is seated (short groups are capped and noted, so
    /// the view shows who would be asked) and given pending tasks; the first stage that would
    /// run is the current one. Returns the notes of every stage, prefixed with its name.
    pub fn preview(
        plan: Vec<StagePlan>,
        policy: Policy,
        parties: Parties,
        directory: &mut dyn Resolve,
    ) -> (Approval, Vec<String>) {
        let capped = Policy {
            when_short: WhenShort::Cap,
            ..policy
        };
        let mut approval = Approval {
            status: ApprovalStatus::Pending,
            current_stage: None,
            stages: Vec::with_capacity(plan.len()),
            plan,
            tasks: Vec::new(),
            outcome: None,
            policy,
            parties,
            delegations: Vec::new(),
            reassignments: Vec::new(),
        };
        let mut notes = Vec::new();
        for s in 0..approval.plan.len() {
            let resolution = directory.resolve(s, &approval.plan[s]);
            let mut plan = approval.plan[s].clone();
            if policy.when_short == WhenShort::Refuse {
                // Say which group would refuse the request before capping it for the view.
                let mut probe = plan.clone();
                let mut scratch = Vec::new();
                if let Seated::Short { group } = seat(
                    s,
                    &mut probe,
                    resolution.clone(),
                    &approval.parties,
                    policy,
                    &mut scratch,
                ) {
                    notes.push(format!(
                        "{}: {} has fewer members than its count: the request would be refused (not_enough_approvers)",
                        plan.name, plan.groups[group].name
                    ));
                }
            }
            let seated = seat(
                s,
                &mut plan,
                resolution,
                &approval.parties,
                capped,
                &mut approval.delegations,
            );
            let groups = plan
                .groups
                .iter()
                .map(|g| match (&seated, g.skip_reason) {
                    (Seated::Ready, None) => GroupStatus::Pending,
                    _ => GroupStatus::Skipped,
                })
                .collect();
            let status = if seated == Seated::Ready {
                StageStatus::Waiting
            } else {
                StageStatus::Skipped
            };
            notes.extend(plan.notes.iter().map(|n| format!("{}: {n}", plan.name)));
            approval.plan[s] = plan;
            approval.stages.push(StageState {
                status,
                started_at: None,
                ended_at: None,
                reason: None,
                groups,
            });
            if seated == Seated::Ready {
                approval.create_tasks(s);
            }
        }
        approval.current_stage = approval.next_stage(None);
        if let Some(s) = approval.current_stage {
            approval.stages[s].status = StageStatus::Pending;
        }
        (approval, notes)
    }

    /// Records an answer by `approver_id`, given by `actor_id` (the approver, a substitute or
    /// a delegate; the caller checks that the actor may answer for them and is active), then
    /// moves the approval on as far as the answer takes it, seating any stage that starts
    /// from `directory`.
    pub fn decide(
        &mut self,
        approver_id: &str,
        actor_id: &str,
        verdict: Verdict,
        comment: Option<String>,
        now: DateTime<Utc>,
        directory: &mut dyn Resolve,
    ) -> Result<Vec<Effect>, EngineError> {
        let stage = self.running_stage().ok_or(EngineError::Closed)?;
        if self.status == ApprovalStatus::InfoRequested {
            return Err(EngineError::AwaitingInfo);
        }
        // Before "not asked": the requester and `requested_by` are not asked *because* they
        // may not decide, and that is the answer they should get.
        if self.parties.excludes(actor_id, self.policy).is_some() {
            return Err(EngineError::SelfApproval);
        }
        let index = self
            .tasks
            .iter()
            .position(|t| t.stage == stage && t.approver_id == approver_id)
            .ok_or(EngineError::NotAnApprover)?;
        if self.tasks[index].state != TaskState::Pending {
            return Err(EngineError::AlreadyDecided);
        }
        // One person, one answer: someone who sits in this stage, or has already answered in
        // it, may not also answer for someone else.
        if actor_id != approver_id
            && self.tasks.iter().any(|t| {
                t.stage == stage
                    && (t.approver_id == actor_id || t.actor_id.as_deref() == Some(actor_id))
            })
        {
            return Err(EngineError::DoubleAnswer);
        }
        // A blank comment says nothing; store none rather than whitespace.
        let comment = comment.filter(|c| !c.trim().is_empty());
        if verdict == Verdict::Reject && self.policy.reject_requires_comment && comment.is_none() {
            return Err(EngineError::CommentRequired);
        }

        let task = &mut self.tasks[index];
        task.state = verdict.task_state();
        task.verdict = Some(verdict);
        task.decided_at = Some(now);
        task.comment.clone_from(&comment);
        task.actor_id = Some(actor_id.to_string());
        task.on_behalf_of = (actor_id != approver_id).then(|| approver_id.to_string());
        let mut effects = vec![Effect::DecisionRecorded {
            stage,
            approver_id: approver_id.to_string(),
            actor_id: actor_id.to_string(),
            verdict,
            comment,
        }];
        if let Some(result) = self.evaluate_stage(stage) {
            self.conclude(
                stage,
                result,
                OutcomeReason::Decisions,
                now,
                directory,
                &mut effects,
            );
        }
        Ok(effects)
    }

    /// Withdraws a pending approval. It gets no outcome; pending tasks are superseded.
    pub fn cancel(
        &mut self,
        reason: &str,
        actor_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        self.running_stage().ok_or(EngineError::Closed)?;
        let count = self.close(now);
        self.status = ApprovalStatus::Cancelled;
        let mut effects = Vec::new();
        if count > 0 {
            effects.push(Effect::TasksSuperseded { count });
        }
        effects.push(Effect::Cancelled {
            reason: reason.to_string(),
            actor_id: actor_id.map(str::to_string),
        });
        Ok(effects)
    }

    /// Forces the outcome: the running stage ends with `verdict` and so does the approval,
    /// whatever stages remain, both recorded as a bypass.
    pub fn bypass(
        &mut self,
        verdict: Verdict,
        now: DateTime<Utc>,
    ) -> Result<Vec<Effect>, EngineError> {
        let stage = self.running_stage().ok_or(EngineError::Closed)?;
        let mut effects = Vec::new();
        let superseded = self.end_stage(stage, verdict, OutcomeReason::Bypass, now, &mut effects);
        self.finish(
            verdict,
            OutcomeReason::Bypass,
            superseded,
            now,
            &mut effects,
        );
        Ok(effects)
    }

    /// Ends `stage` at its deadline with the process's default outcome, then moves on as an
    /// answer would. A timer for a stage that is not the running one (it ended, or the
    /// approval closed) gets [`EngineError::StageNotCurrent`], which timers may ignore.
    pub fn time_out(
        &mut self,
        stage: usize,
        outcome: TimeoutOutcome,
        now: DateTime<Utc>,
        directory: &mut dyn Resolve,
    ) -> Result<Vec<Effect>, EngineError> {
        if self.running_stage() != Some(stage) {
            return Err(EngineError::StageNotCurrent);
        }
        let mut effects = Vec::new();
        self.conclude(
            stage,
            outcome.into(),
            OutcomeReason::Timeout,
            now,
            directory,
            &mut effects,
        );
        Ok(effects)
    }

    /// The counts and status of one group, or None if there is no such stage or group.
    pub fn group_tally(&self, stage: usize, group: usize) -> Option<GroupTally> {
        let plan = self.plan.get(stage)?.groups.get(group)?;
        let status = *self.stages.get(stage)?.groups.get(group)?;
        if !plan.asked {
            // Nobody was asked for this group; any answers its members gave belong to others.
            return Some(GroupTally {
                status,
                required: 0,
                approved: 0,
                rejected: 0,
                pending: 0,
            });
        }
        let (approved, rejected, pending) = self.count(stage, plan);
        Some(GroupTally {
            status,
            required: plan.required(),
            approved,
            rejected,
            pending,
        })
    }

    /// What the running stage waits for, in plain words, one line per undecided group:
    /// `Manager: 1 more approval from u-42`. Empty once the approval is closed.
    pub fn waiting_for(&self) -> Vec<String> {
        self.waiting_for_named(&|id| id.to_string())
    }

    /// [`Approval::waiting_for`] with people named by `name` (their display names).
    pub fn waiting_for_named(&self, name: &dyn Fn(&str) -> String) -> Vec<String> {
        let Some(stage) = self.running_stage() else {
            return Vec::new();
        };
        let plan = &self.plan[stage];
        let state = &self.stages[stage];
        let active = state
            .groups
            .iter()
            .filter(|g| **g != GroupStatus::Skipped)
            .count();
        let mut lines = Vec::new();
        for (g, group) in plan.groups.iter().enumerate() {
            if state.groups.get(g) != Some(&GroupStatus::Pending) {
                continue;
            }
            let members: std::collections::HashSet<&str> =
                group.members.iter().map(String::as_str).collect();
            let waiting: Vec<String> = self
                .tasks
                .iter()
                .filter(|t| t.stage == stage && t.state == TaskState::Pending)
                .filter(|t| members.contains(t.approver_id.as_str()))
                .map(|t| name(&t.approver_id))
                .collect();
            // With several groups the stage name alone would not say which one is meant.
            let label = if active > 1 {
                format!("{} ({})", plan.name, group.name)
            } else {
                plan.name.clone()
            };
            let needed = if group.require.rule == Rule::FirstReply {
                "an answer".to_string()
            } else {
                let (approved, _, _) = self.count(stage, group);
                let more = group.required().saturating_sub(approved);
                format!("{more} more approval{}", if more == 1 { "" } else { "s" })
            };
            lines.push(format!("{label}: {needed} from {}", name_list(&waiting)));
        }
        lines
    }

    /// The approvers of the running stage who have not answered yet, in task order.
    pub fn pending_approvers(&self) -> Vec<String> {
        let Some(stage) = self.running_stage() else {
            return Vec::new();
        };
        self.tasks
            .iter()
            .filter(|t| t.stage == stage && t.state == TaskState::Pending)
            .map(|t| t.approver_id.clone())
            .collect()
    }

    /// The delegator whose seat `delegate` holds in `stage`, if any.
    pub fn delegated_from(&self, stage: usize, delegate: &str) -> Option<&str> {
        self.delegations
            .iter()
            .find(|d| d.stage == stage && d.delegate == delegate)
            .map(|d| d.delegator.as_str())
    }
}

/// Names joined for a sentence, the first [`NAMES_IN_A_LINE`] of them and a count of the rest,
/// so a group of thousands stays one readable line.
pub fn name_list(names: &[String]) -> String {
    if names.len() <= NAMES_IN_A_LINE {
        return names.join(", ");
    }
    let rest = names.len() - NAMES_IN_A_LINE;
    format!(
        "{} and {rest} other{}",
        names[..NAMES_IN_A_LINE].join(", "),
        if rest == 1 { "" } else { "s" }
    )
}

/// Names spelled out in a `waiting_for` line before the rest are counted.
pub const NAMES_IN_A_LINE: usize = 10;
