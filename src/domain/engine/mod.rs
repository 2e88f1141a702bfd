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

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod seating;

use seating::Seated;
pub use seating::{
    Candidate, Candidates, Condition, Removal, RemovalReason, Resolution, SkipReason,
};

use super::process::{
    Combine, ProcessSettings, Requirement, Rule, TimeoutOutcome, WhenNoApprovers, WhenShort,
};

/// Where an approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for answers.
    Pending,
    /// The last stage approved (or a bypass or timeout approved it).
    Approved,
    /// A stage rejected (or a bypass or timeout rejected it).
    Rejected,
    /// An administrator withdrew the request; it has no outcome.
    Cancelled,
    /// Only in a preview (`POST /v1/approvals/preview`): what a request would start.
    Preview,
}

/// Where a stage stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Not started yet.
    Waiting,
    /// Started and waiting for answers.
    Pending,
    Approved,
    Rejected,
    /// Ended or never ran without an outcome of its own: nobody to ask, or the approval
    /// closed before or while it ran.
    Skipped,
}

/// Where a group stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupStatus {
    /// Its stage has not started yet.
    Waiting,
    /// Its stage runs and the group has not reached a result.
    Pending,
    Approved,
    Rejected,
    /// Not part of the decision: no members, not asked (`request_from` named another group),
    /// or its stage ended before the group reached a result.
    Skipped,
}

/// Where one approver's slot in one stage stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// No answer yet. Tasks of stages that have not started are pending too.
    Pending,
    Approved,
    Rejected,
    /// The stage or the approval ended without this answer; its links stop working.
    Superseded,
    /// The approver's answer from an earlier stage was applied (`reuse_previous_answers`).
    Reused,
}

/// One approver's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

/// Why a stage or an approval ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeReason {
    /// The approvers' answers, reused answers included, or nobody to ask.
    Decisions,
    /// The stage's deadline passed and its default outcome applied.
    Timeout,
    /// An administrator forced the result.
    Bypass,
    /// A stage started with a group short of its count and the process refuses that
    /// (`when_short: refuse`).
    NotEnoughApprovers,
}

/// A group of one approval's stage. Its members are seated when the stage starts (see
/// [`seating`]); until then they are empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupPlan {
    /// The group's name in the process.
    pub name: String,
    /// How many approvals the group needs.
    pub require: Requirement,
    /// Who sits in the group: principal ids, de-duplicated, delegations applied.
    pub members: Vec<String>,
    /// False when the request named another group of an `any` stage (`request_from`): the
    /// group is skipped and its members are asked only if another asked group holds them.
    pub asked: bool,
    /// Approvals needed, fixed when the stage started. None in approvals stored before
    /// stage-start seating, whose requirement is computed from the members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<usize>,
    /// The count the process asked for, when `when_short: cap` lowered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capped_from: Option<usize>,
    /// Why the group took no part, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
    /// People its source named who do not sit in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<Removal>,
}

impl GroupPlan {
    /// A group whose members are seated when its stage starts.
    pub fn unseated(name: impl Into<String>, require: Requirement, asked: bool) -> Self {
        Self {
            name: name.into(),
            require,
            members: Vec::new(),
            asked,
            required: None,
            capped_from: None,
            skip_reason: None,
            removed: Vec::new(),
        }
    }

    /// Approvals the group needs, as its stage fixed it.
    pub fn required(&self) -> usize {
        self.required
            .unwrap_or_else(|| seating::required(self.require.rule, self.members.len()))
    }
}

/// A stage of one approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagePlan {
    /// The stage's name in the process.
    pub name: String,
    /// How the stage combines its groups.
    pub combine: Combine,
    pub groups: Vec<GroupPlan>,
    /// True once the directory was read for this stage (at its start). Approvals stored before
    /// stage-start seating were resolved at request time.
    #[serde(default = "yes")]
    pub resolved: bool,
    /// Why the stage did not run, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
    /// Removals, skips, caps and condition failures, in plain words, for the view and events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn yes() -> bool {
    true
}

impl StagePlan {
    /// A stage whose groups are seated when it starts.
    pub fn unseated(name: impl Into<String>, combine: Combine, groups: Vec<GroupPlan>) -> Self {
        Self {
            name: name.into(),
            combine,
            groups,
            resolved: false,
            skip_reason: None,
            notes: Vec::new(),
        }
    }
}

/// One approver's slot in one stage. Nobody has two tasks in one stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Index of the stage in [`Approval::plan`].
    pub stage: usize,
    /// The principal who sits in the seat.
    pub approver_id: String,
    pub state: TaskState,
    /// The answer; for a reused task, the earlier answer. None while pending or superseded.
    pub verdict: Option<Verdict>,
    /// When the answer was given or reused.
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    /// Who actually answered: the approver, a substitute or a delegate; for a reused answer,
    /// the approver who gave it earlier.
    pub actor_id: Option<String>,
    /// The approver, when someone else answered for them.
    pub on_behalf_of: Option<String>,
}

impl Task {
    fn pending(stage: usize, approver_id: &str) -> Self {
        Self {
            stage,
            approver_id: approver_id.to_string(),
            state: TaskState::Pending,
            verdict: None,
            decided_at: None,
            comment: None,
            actor_id: None,
            on_behalf_of: None,
        }
    }

    /// Who gave this task's answer.
    fn actor(&self) -> &str {
        self.actor_id.as_deref().unwrap_or(&self.approver_id)
    }
}

/// The running state of one stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageState {
    pub status: StageStatus,
    /// When the stage started; deadlines and reminders count from here.
    pub started_at: Option<DateTime<Utc>>,
    /// When the stage ended, by an outcome or because the approval closed while it ran.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why the stage reached its outcome; None while it has none.
    pub reason: Option<OutcomeReason>,
    /// Status of each group, in plan order. Stored because a group's result is the first one
    /// its answers reached, which the final counts alone cannot tell.
    pub groups: Vec<GroupStatus>,
}

/// How an approval ended. Reached at most once, never changed afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Outcome {
    /// `approved` or `rejected`.
    pub decision: ApprovalStatus,
    pub reason: OutcomeReason,
    pub decided_at: DateTime<Utc>,
}

/// The process settings the engine applies, copied into the approval at request time so a
/// later process version cannot change a running approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    /// Apply a principal's own answer from an earlier stage when a later stage starts.
    pub reuse_previous_answers: bool,
    /// A rejection must carry a non-blank comment.
    pub reject_requires_comment: bool,
    /// What [`Approval::start`] does when no stage has anybody to ask.
    pub when_no_approvers: WhenNoApprovers,
    /// May the requester and `requested_by` sit in groups and answer?
    #[serde(default)]
    pub allow_self_approval: bool,
    /// What a `count` group with fewer members than its count does.
    #[serde(default)]
    pub when_short: WhenShort,
}

impl From<&ProcessSettings> for Policy {
    fn from(s: &ProcessSettings) -> Self {
        Self {
            reuse_previous_answers: s.reuse_previous_answers,
            reject_requires_comment: s.reject_requires_comment,
            when_no_approvers: s.when_no_approvers,
            allow_self_approval: s.allow_self_approval,
            when_short: s.when_short,
        }
    }
}

/// The people on the asking side of an approval, who may not approve it (unless the process
/// allows self-approval).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parties {
    /// The ticket's requester.
    pub requester: Option<String>,
    /// Whoever asked for the approval (`requested_by`).
    pub requested_by: Option<String>,
}

/// A seat handed to a delegate when its stage started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub stage: usize,
    pub delegator: String,
    pub delegate: String,
}

/// The whole state of one approval, as loaded from and stored to the database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub status: ApprovalStatus,
    /// The running stage; None once the approval is closed.
    pub current_stage: Option<usize>,
    /// The stages; each is seated when it starts.
    pub plan: Vec<StagePlan>,
    /// One entry per stage of the plan.
    pub stages: Vec<StageState>,
    /// Every task of every started stage, in stage order.
    pub tasks: Vec<Task>,
    /// Set once, when the approval is approved or rejected; None when cancelled.
    pub outcome: Option<Outcome>,
    pub policy: Policy,
    #[serde(default)]
    pub parties: Parties,
    /// Seats handed to delegates.
    #[serde(default)]
    pub delegations: Vec<Delegation>,
}

/// Something that happened, in order. The database layer stores each as an event and sends
/// the matching webhooks; it reads recipients and links from the approval's final state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// The stage started: issue links and emit `approval.requested` for its tasks that are
    /// still pending (reused answers may already have ended it).
    StageStarted { stage: usize },
    /// The stage did not run; the reason is in its plan.
    StageSkipped { stage: usize, reason: SkipReason },
    /// An approver, substitute or delegate answered.
    DecisionRecorded {
        stage: usize,
        approver_id: String,
        actor_id: String,
        verdict: Verdict,
        comment: Option<String>,
    },
    /// The approver's own earlier answer was applied to their seat in this stage.
    AnswerReused {
        stage: usize,
        approver_id: String,
        verdict: Verdict,
    },
    /// The stage reached its outcome.
    StageEnded {
        stage: usize,
        status: StageStatus,
        reason: OutcomeReason,
    },
    /// The approval moved on: `approval.stage_advanced`.
    StageAdvanced { from: usize, to: usize },
    /// This many pending tasks were superseded; their links must stop working.
    TasksSuperseded { count: usize },
    /// The approval reached its outcome: `approval.approved` or `approval.rejected`.
    Finished { outcome: Outcome },
    /// The approval was cancelled: `approval.cancelled`.
    Cancelled {
        reason: String,
        actor_id: Option<String>,
    },
}

/// Why an operation was refused. The approval is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// Nobody to ask in any stage and the process refuses that, or only the requester could
    /// have been asked (422).
    NoApprovers,
    /// The first stage's group has fewer members than its count and the process refuses
    /// that (422).
    NotEnoughApprovers { stage: usize, group: usize },
    /// The approval is not pending any more (409).
    Closed,
    /// This principal has no task in the current stage (403).
    NotAnApprover,
    /// This principal's task in the current stage already has an answer (409).
    AlreadyDecided,
    /// The actor already answers in this stage, for themselves or someone else (403).
    DoubleAnswer,
    /// The actor is the requester or `requested_by` and the process does not allow
    /// self-approval: they may not decide, for themselves or anyone else (403).
    SelfApproval,
    /// The process requires a comment to reject (422).
    CommentRequired,
    /// The stage is not the running one, e.g. a stale timer (409; timers may ignore it).
    StageNotCurrent,
}

impl EngineError {
    /// Stable machine-readable code for problem+json.
    pub fn code(self) -> &'static str {
        match self {
            EngineError::NoApprovers => "no_approvers",
            EngineError::NotEnoughApprovers { .. } => "not_enough_approvers",
            EngineError::Closed => "approval_closed",
            EngineError::NotAnApprover => "not_an_approver",
            EngineError::AlreadyDecided => "already_decided",
            EngineError::DoubleAnswer => "double_answer",
            EngineError::SelfApproval => "self_approval_not_allowed",
            EngineError::CommentRequired => "comment_required",
            EngineError::StageNotCurrent => "stage_not_current",
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineError::NoApprovers => "no stage of this process has anybody to ask",
            EngineError::NotEnoughApprovers { .. } => {
                "a group has fewer members than its count requires"
            }
            EngineError::Closed => "the approval is no longer pending",
            EngineError::NotAnApprover => "this principal is not asked in the current stage",
            EngineError::AlreadyDecided => "this principal has already answered in this stage",
            EngineError::DoubleAnswer => {
                "this principal already answers in this stage and may not answer twice"
            }
            EngineError::SelfApproval => {
                "the requester may not approve or decide on anyone's behalf"
            }
            EngineError::CommentRequired => "a rejection needs a comment",
            EngineError::StageNotCurrent => "the stage is not the running one",
        })
    }
}

impl std::error::Error for EngineError {}

/// The counts behind one group's status, for the approval view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupTally {
    pub status: GroupStatus,
    /// Approvals the group needs; 0 for a group nobody in it was asked.
    pub required: usize,
    /// Distinct people who approved, reused answers included.
    pub approved: usize,
    /// Distinct people who rejected, reused answers included.
    pub rejected: usize,
    /// Members whose task has no answer yet.
    pub pending: usize,
}

impl Verdict {
    fn task_state(self) -> TaskState {
        match self {
            Verdict::Approve => TaskState::Approved,
            Verdict::Reject => TaskState::Rejected,
        }
    }

    fn stage_status(self) -> StageStatus {
        match self {
            Verdict::Approve => StageStatus::Approved,
            Verdict::Reject => StageStatus::Rejected,
        }
    }

    fn group_status(self) -> GroupStatus {
        match self {
            Verdict::Approve => GroupStatus::Approved,
            Verdict::Reject => GroupStatus::Rejected,
        }
    }

    fn decision(self) -> ApprovalStatus {
        match self {
            Verdict::Approve => ApprovalStatus::Approved,
            Verdict::Reject => ApprovalStatus::Rejected,
        }
    }
}

impl From<TimeoutOutcome> for Verdict {
    fn from(o: TimeoutOutcome) -> Self {
        match o {
            TimeoutOutcome::Approve => Verdict::Approve,
            TimeoutOutcome::Reject => Verdict::Reject,
        }
    }
}

/// A group's result from its counts, if it has one. Evaluated after every single answer: an
/// approval can then only approve and a rejection only reject, so both cannot be reached at
/// once.
fn group_result(
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
fn combine(combine: Combine, groups: &[GroupStatus]) -> Option<Verdict> {
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
        Combine::Any if all(GroupStatus::Rejected) => Some(Verdict::Reject),
        _ => None,
    }
}

/// The directory, as the engine asks it when a stage starts. The service reads principals,
/// roles, delegations and the stage's condition; the engine applies the rules to the answer.
pub trait Resolve {
    /// Who the groups of `stage` name now, and what its condition says.
    fn resolve(&mut self, stage: usize, plan: &StagePlan) -> Resolution;
}

/// Answers the first stages from resolutions already read at request time, so the fail-fast
/// check and the stage that starts see one directory state.
struct Cached<'a> {
    read: Vec<Option<Resolution>>,
    inner: &'a mut dyn Resolve,
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
enum Opened {
    /// It has tasks and can start.
    Ready,
    /// It was skipped; try the next one.
    Skipped,
    /// A group is short and the process refuses that.
    Short { group: usize },
}

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
        };
        let mut notes = Vec::new();
        for s in 0..approval.plan.len() {
            let resolution = directory.resolve(s, &approval.plan[s]);
            let mut plan = approval.plan[s].clone();
            if policy.when_short == WhenShort::Refuse {
                // Say which group would refuse the request before capping it for the view.
                let mut probe = plan.clone();
                let mut scratch = Vec::new();
                if let Seated::Short { group } = seating::seat(
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
            let seated = seating::seat(
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

    /// The stage taking answers, if the approval is still pending.
    fn running_stage(&self) -> Option<usize> {
        match self.status {
            ApprovalStatus::Pending => self.current_stage,
            _ => None,
        }
    }

    /// The first stage after `after` (or the first stage) that has not run.
    fn next_stage(&self, after: Option<usize>) -> Option<usize> {
        let from = after.map_or(0, |s| s + 1);
        (from..self.stages.len()).find(|&s| self.stages[s].status == StageStatus::Waiting)
    }

    /// Reads every stage once, on copies: the resolutions (to reuse for the stages that start
    /// now), whether anyone could be asked anywhere, and whether someone was removed for
    /// being on the asking side.
    fn read_all(
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
            let seated = seating::seat(
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
    fn open_stage(
        &mut self,
        stage: usize,
        directory: &mut dyn Resolve,
        effects: &mut Vec<Effect>,
    ) -> Opened {
        if !self.plan[stage].resolved {
            let resolution = directory.resolve(stage, &self.plan[stage]);
            let seated = seating::seat(
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

    fn skip_stage(&mut self, stage: usize, reason: SkipReason, effects: &mut Vec<Effect>) {
        self.plan[stage].skip_reason.get_or_insert(reason);
        self.stages[stage].status = StageStatus::Skipped;
        self.stages[stage].groups.fill(GroupStatus::Skipped);
        effects.push(Effect::StageSkipped { stage, reason });
    }

    /// One pending task per seated person of the stage's asked groups.
    fn create_tasks(&mut self, stage: usize) {
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
    fn count(&self, stage: usize, group: &GroupPlan) -> (usize, usize, usize) {
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
    fn evaluate_stage(&mut self, stage: usize) -> Option<Verdict> {
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
        combine(self.plan[stage].combine, &self.stages[stage].groups)
    }

    /// Starts a seated stage and applies reused answers one at a time. Returns the stage's
    /// result if the reused answers already decide it.
    fn start_stage(
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
    fn own_earlier_verdict(&self, stage: usize, approver_id: &str) -> Option<Verdict> {
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
    fn conclude(
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
    fn end_stage(
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
    fn finish(
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
    fn close(&mut self, now: DateTime<Utc>) -> usize {
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

#[cfg(test)]
mod four_eyes_tests;
#[cfg(test)]
mod tests;

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
