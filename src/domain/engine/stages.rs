//! How a stage runs inside an approval: read, seated, started, evaluated after each answer,
//! ended, and how the approval concludes.

use chrono::{DateTime, Utc};

use crate::domain::process::WhenShort;

use super::model::*;
use super::resolve::{Opened, Resolve};
use super::seating::{Seated, seat};
use super::seats::{Resolution, SkipReason};
use super::tally::{combine, group_result};

impl Approval {
    /// The stage taking answers, if the approval is still pending.
    pub(super) fn running_stage(&self) -> Option<usize> {
        match self.status {
            ApprovalStatus::Pending | ApprovalStatus::InfoRequested => self.current_stage,
            _ => None,
        }
    }

    /// The first stage after `after` (or the first stage) that has not run.
    pub(super) fn next_stage(&self, after: Option<usize>) -> Option<usize> {
        let from = after.map_or(0, |s| s + 1);
        (from..self.stages.len()).find(|&s| self.stages[s].status == StageStatus::Waiting)
    }

    /// Reads every stage once, on copies: the resolutions (to reuse for the stages that start
    /// now), whether anyone could be asked anywhere, and whether someone was removed for
    /// being on the asking side.
    pub(super) fn read_all(
        &self,
        plan: &[StagePlan],
        directory: &mut dyn Resolve,
    ) -> (Vec<Option<Resolution>>, bool, bool) {
        let mut read = Vec::with_capacity(plan.len());
        let (mut anyone, mut self_removed) = (false, false);
        for (s, stage) in plan.iter().enumerate() {
            if stage.resolved {
                anyone |= stage
                    .groups
                    .iter()
                    .any(|g| g.asked && !g.members.is_empty());
                read.push(None);
                continue;
            }
            let resolution = directory.resolve(s, stage);
            let mut probe = stage.clone();
            let mut scratch = Vec::new();
            let capped = Policy {
                when_short: WhenShort::Cap,
                ..self.policy
            };
            let seated = seat(
                s,
                &mut probe,
                resolution.clone(),
                &self.parties,
                capped,
                &mut scratch,
            );
            anyone |= seated == Seated::Ready;
            self_removed |= probe
                .groups
                .iter()
                .any(|g| g.removed.iter().any(|r| r.reason.is_self()));
            read.push(Some(resolution));
        }
        (read, anyone, self_removed)
    }

    /// Seats `stage` (if it was not seated at request time), or records why it does not run.
    pub(super) fn open_stage(
        &mut self,
        stage: usize,
        directory: &mut dyn Resolve,
        effects: &mut Vec<Effect>,
    ) -> Opened {
        if !self.plan[stage].resolved {
            let resolution = directory.resolve(stage, &self.plan[stage]);
            let seated = seat(
                stage,
                &mut self.plan[stage],
                resolution,
                &self.parties,
                self.policy,
                &mut self.delegations,
            );
            match seated {
                Seated::Ready => {}
                Seated::Short { group } => return Opened::Short { group },
                Seated::Skipped(reason) => {
                    self.skip_stage(stage, reason, effects);
                    return Opened::Skipped;
                }
            }
            for (g, group) in self.plan[stage].groups.iter().enumerate() {
                if group.skip_reason.is_some() {
                    self.stages[stage].groups[g] = GroupStatus::Skipped;
                }
            }
            self.create_tasks(stage);
        }
        if !self.tasks.iter().any(|t| t.stage == stage) {
            self.skip_stage(stage, SkipReason::NoApprovers, effects);
            return Opened::Skipped;
        }
        Opened::Ready
    }

    pub(super) fn skip_stage(
        &mut self,
        stage: usize,
        reason: SkipReason,
        effects: &mut Vec<Effect>,
    ) {
        self.plan[stage].skip_reason.get_or_insert(reason);
        self.stages[stage].status = StageStatus::Skipped;
        self.stages[stage].groups.fill(GroupStatus::Skipped);
        effects.push(Effect::StageSkipped { stage, reason });
    }

    /// One pending task per seated person of the stage's asked groups.
    pub(super) fn create_tasks(&mut self, stage: usize) {
        let mut added: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for group in self.plan[stage].groups.iter().filter(|g| g.asked) {
            for member in &group.members {
                if added.insert(member) {
                    self.tasks.push(Task::pending(stage, member));
                }
            }
        }
    }

    /// Distinct people who approved and rejected among a group's members in a stage, and
    /// unanswered tasks. People, not seats: one actor counts once whatever seats they filled.
    pub(super) fn count(&self, stage: usize, group: &GroupPlan) -> (usize, usize, usize) {
        let mut approved: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut rejected: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut pending = 0;
        let members: std::collections::HashSet<&str> =
            group.members.iter().map(String::as_str).collect();
        for task in self
            .tasks
            .iter()
            .filter(|t| t.stage == stage && members.contains(t.approver_id.as_str()))
        {
            let into = match (task.state, task.verdict) {
                (TaskState::Pending, _) => {
                    pending += 1;
                    continue;
                }
                (TaskState::Superseded, _) | (_, None) => continue,
                (_, Some(Verdict::Approve)) => &mut approved,
                (_, Some(Verdict::Reject)) => &mut rejected,
            };
            into.insert(task.actor());
        }
        (approved.len(), rejected.len(), pending)
    }

    /// Settles the groups of a running stage that reached a result, and returns the stage's
    /// result if it has one. A group keeps the first result it reaches.
    pub(super) fn evaluate_stage(&mut self, stage: usize) -> Option<Verdict> {
        for (g, group) in self.plan[stage].groups.iter().enumerate() {
            if self.stages[stage].groups[g] != GroupStatus::Pending {
                continue;
            }
            let (approved, rejected, pending) = self.count(stage, group);
            if let Some(result) = group_result(
                &group.require,
                group.required(),
                approved,
                rejected,
                pending,
            ) {
                self.stages[stage].groups[g] = result.group_status();
            }
        }
        let plan = &self.plan[stage];
        combine(plan.combine, plan.first_group, &self.stages[stage].groups)
    }

    /// Starts a seated stage and applies reused answers one at a time. Returns the stage's
    /// result if the reused answers already decide it.
    pub(super) fn start_stage(
        &mut self,
        stage: usize,
        now: DateTime<Utc>,
        effects: &mut Vec<Effect>,
    ) -> Option<Verdict> {
        self.current_stage = Some(stage);
        let state = &mut self.stages[stage];
        state.status = StageStatus::Pending;
        state.started_at = Some(now);
        for g in &mut state.groups {
            if *g == GroupStatus::Waiting {
                *g = GroupStatus::Pending;
            }
        }
        effects.push(Effect::StageStarted { stage });
        if !self.policy.reuse_previous_answers {
            return None;
        }
        for i in 0..self.tasks.len() {
            if self.tasks[i].stage != stage || self.tasks[i].state != TaskState::Pending {
                continue;
            }
            let Some(verdict) = self.own_earlier_verdict(stage, &self.tasks[i].approver_id) else {
                continue;
            };
            let task = &mut self.tasks[i];
            task.state = TaskState::Reused;
            task.verdict = Some(verdict);
            task.decided_at = Some(now);
            task.actor_id = Some(task.approver_id.clone());
            effects.push(Effect::AnswerReused {
                stage,
                approver_id: task.approver_id.clone(),
                verdict,
            });
            // One at a time, like live answers, so "the first answer decides" stays meaningful;
            // once the stage is decided the remaining tasks are superseded, not reused.
            if let Some(result) = self.evaluate_stage(stage) {
                return Some(result);
            }
        }
        None
    }

    /// The approver's own answer in the latest earlier stage where they gave one for their own
    /// seat. An answer given on someone's behalf, or on a seat held for a delegator, is never
    /// reused.
    pub(super) fn own_earlier_verdict(&self, stage: usize, approver_id: &str) -> Option<Verdict> {
        self.tasks
            .iter()
            .filter(|t| t.stage < stage && t.approver_id == approver_id)
            .filter(|t| t.actor() == approver_id && t.on_behalf_of.is_none())
            .filter(|t| self.delegated_from(t.stage, approver_id).is_none())
            .filter(|t| {
                matches!(
                    t.state,
                    TaskState::Approved | TaskState::Rejected | TaskState::Reused
                )
            })
            .max_by_key(|t| t.stage)
            .and_then(|t| t.verdict)
    }

    /// Ends a stage with a result and carries the consequence through: a rejection finishes
    /// the approval, an approval starts the next stage that runs (whose reused answers may end
    /// it in turn) or finishes the approval after the last one. A later stage that starts
    /// short under `when_short: refuse` rejects the approval.
    pub(super) fn conclude(
        &mut self,
        mut stage: usize,
        mut verdict: Verdict,
        mut reason: OutcomeReason,
        now: DateTime<Utc>,
        directory: &mut dyn Resolve,
        effects: &mut Vec<Effect>,
    ) {
        loop {
            let mut superseded = self.end_stage(stage, verdict, reason, now, effects);
            if verdict == Verdict::Reject {
                self.finish(verdict, reason, superseded, now, effects);
                return;
            }
            let mut from = stage;
            let opened = loop {
                let Some(next) = self.next_stage(Some(from)) else {
                    break None;
                };
                if superseded > 0 {
                    effects.push(Effect::TasksSuperseded { count: superseded });
                    superseded = 0;
                }
                match self.open_stage(next, directory, effects) {
                    Opened::Skipped => from = next,
                    Opened::Short { .. } => {
                        self.current_stage = Some(next);
                        let superseded = self.end_stage(
                            next,
                            Verdict::Reject,
                            OutcomeReason::NotEnoughApprovers,
                            now,
                            effects,
                        );
                        self.finish(
                            Verdict::Reject,
                            OutcomeReason::NotEnoughApprovers,
                            superseded,
                            now,
                            effects,
                        );
                        return;
                    }
                    Opened::Ready => break Some(next),
                }
            };
            let Some(next) = opened else {
                self.finish(verdict, reason, superseded, now, effects);
                return;
            };
            effects.push(Effect::StageAdvanced {
                from: stage,
                to: next,
            });
            match self.start_stage(next, now, effects) {
                Some(result) => {
                    stage = next;
                    verdict = result;
                    reason = OutcomeReason::Decisions;
                }
                None => return,
            }
        }
    }

    /// Records a stage's result, skips its undecided groups and supersedes its unanswered
    /// tasks. Returns how many tasks were superseded, for the caller to report.
    pub(super) fn end_stage(
        &mut self,
        stage: usize,
        verdict: Verdict,
        reason: OutcomeReason,
        now: DateTime<Utc>,
        effects: &mut Vec<Effect>,
    ) -> usize {
        let state = &mut self.stages[stage];
        state.status = verdict.stage_status();
        state.ended_at = Some(now);
        state.reason = Some(reason);
        for (g, status) in state.groups.iter_mut().enumerate() {
            if matches!(*status, GroupStatus::Waiting | GroupStatus::Pending) {
                *status = GroupStatus::Skipped;
                self.plan[stage].groups[g]
                    .skip_reason
                    .get_or_insert(SkipReason::Closed);
            }
        }
        let mut count = 0;
        for task in self
            .tasks
            .iter_mut()
            .filter(|t| t.stage == stage && t.state == TaskState::Pending)
        {
            task.state = TaskState::Superseded;
            count += 1;
        }
        effects.push(Effect::StageEnded {
            stage,
            status: verdict.stage_status(),
            reason,
        });
        count
    }

    /// Gives the approval its outcome. `superseded` counts the tasks the last stage's end
    /// already superseded, so one report covers every task this finish made unanswerable.
    pub(super) fn finish(
        &mut self,
        verdict: Verdict,
        reason: OutcomeReason,
        superseded: usize,
        now: DateTime<Utc>,
        effects: &mut Vec<Effect>,
    ) {
        let count = superseded + self.close(now);
        let outcome = Outcome {
            decision: verdict.decision(),
            reason,
            decided_at: now,
        };
        self.status = verdict.decision();
        self.outcome = Some(outcome.clone());
        if count > 0 {
            effects.push(Effect::TasksSuperseded { count });
        }
        effects.push(Effect::Finished { outcome });
    }

    /// Stops everything still running or waiting: stages and groups without a result are
    /// skipped, unanswered tasks superseded. Returns how many tasks were superseded.
    pub(super) fn close(&mut self, now: DateTime<Utc>) -> usize {
        self.current_stage = None;
        for (s, state) in self.stages.iter_mut().enumerate() {
            if matches!(state.status, StageStatus::Waiting | StageStatus::Pending) {
                state.status = StageStatus::Skipped;
                self.plan[s].skip_reason.get_or_insert(SkipReason::Closed);
            }
            if state.status == StageStatus::Skipped
                && state.started_at.is_some()
                && state.ended_at.is_none()
            {
                state.ended_at = Some(now);
            }
            for (g, status) in state.groups.iter_mut().enumerate() {
                if matches!(*status, GroupStatus::Waiting | GroupStatus::Pending) {
                    *status = GroupStatus::Skipped;
                    self.plan[s].groups[g]
                        .skip_reason
                        .get_or_insert(SkipReason::Closed);
                }
            }
        }
        let mut count = 0;
        for task in self
            .tasks
            .iter_mut()
            .filter(|t| t.state == TaskState::Pending)
        {
            task.state = TaskState::Superseded;
            count += 1;
        }
        count
    }
}
