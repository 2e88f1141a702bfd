//! What an approval is made of: its plan, stages, groups and tasks, what it decided, the
//! effects an operation returns and the refusals it can answer with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::process::{
    Combine, ProcessSettings, Requirement, Rule, TimeoutOutcome, WhenNoApprovers, WhenShort,
};

pub use super::refusal::*;
use super::seats::{Removal, RemovalReason, SkipReason};

/// Where an approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for answers.
    Pending,
    /// An approver asked the requester a question: answers wait, and so does the stage's
    /// clock, until the requester replies.
    InfoRequested,
    /// The last stage approved (or a bypass or timeout approved it).
    Approved,
    /// A stage rejected (or a bypass or timeout rejected it).
    Rejected,
    /// An administrator cancelled the request (or a newer one superseded it); it has no
    /// outcome.
    Cancelled,
    /// The requester's side took the request back; its outcome says so.
    Withdrawn,
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
    /// The seat was handed to someone else ([`Reassignment`]); its links stop working.
    Reassigned,
    /// The approver stepped out of the decision, with a comment; their groups' requirements
    /// are taken over the members who remain.
    Abstained,
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
    /// The requester's side took the request back.
    Withdrawn,
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
            .unwrap_or_else(|| required(self.require.rule, self.members.len()))
    }
}

/// A stage of one approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StagePlan {
    /// The stage's name in the process.
    pub name: String,
    /// How the stage combines its groups.
    pub combine: Combine,
    /// An `any` stage that the first group to reach a result decides, either way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_group: bool,
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
            first_group: false,
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
    pub(super) fn pending(stage: usize, approver_id: &str) -> Self {
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
    pub(super) fn actor(&self) -> &str {
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
    /// `approved`, `rejected` or `withdrawn`.
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

/// Why a seat moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReassignReason {
    /// Its holder or an administrator handed it on.
    #[default]
    Reassign,
    /// The stage's deadline passed and the seat moved up to the approver's manager.
    Escalation,
}

/// A seat handed from one person to another while its stage ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    pub stage: usize,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub reason: ReassignReason,
    /// Who moved the seat: `from` themselves, or an administrator.
    pub actor_id: Option<String>,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
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
    /// Set once, when the approval is approved, rejected or withdrawn; None when cancelled.
    pub outcome: Option<Outcome>,
    pub policy: Policy,
    #[serde(default)]
    pub parties: Parties,
    /// Seats handed to delegates.
    #[serde(default)]
    pub delegations: Vec<Delegation>,
    /// Seats handed to someone else while their stage ran, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reassignments: Vec<Reassignment>,
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
    /// The requester's side took the approval back: `approval.withdrawn`.
    Withdrawn {
        reason: Option<String>,
        actor_id: String,
    },
    /// Someone joined a group of the running stage: `approval.approver_added`.
    ApproverAdded {
        stage: usize,
        group: String,
        approver_id: String,
        actor_id: Option<String>,
    },
    /// An answer was taken back; the seat waits again: `approval.decision_revoked`.
    DecisionRevoked {
        stage: usize,
        approver_id: String,
        actor_id: String,
        verdict: Verdict,
    },
    /// An approver asked the requester a question: `approval.info_requested`.
    InfoRequested,
    /// The requester answered it; the approval waits for answers again:
    /// `approval.info_provided`.
    InfoProvided,
    /// An approver stepped out: `approval.abstained`.
    Abstained {
        stage: usize,
        approver_id: String,
        comment: String,
    },
    /// A pending seat moved from one person to another: `approval.reassigned`.
    Reassigned {
        stage: usize,
        from: String,
        to: String,
        reason: ReassignReason,
        actor_id: Option<String>,
        comment: Option<String>,
    },
}

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
    pub(super) fn task_state(self) -> TaskState {
        match self {
            Verdict::Approve => TaskState::Approved,
            Verdict::Reject => TaskState::Rejected,
        }
    }

    pub(super) fn stage_status(self) -> StageStatus {
        match self {
            Verdict::Approve => StageStatus::Approved,
            Verdict::Reject => StageStatus::Rejected,
        }
    }

    pub(super) fn group_status(self) -> GroupStatus {
        match self {
            Verdict::Approve => GroupStatus::Approved,
            Verdict::Reject => GroupStatus::Rejected,
        }
    }

    pub(super) fn decision(self) -> ApprovalStatus {
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

impl Parties {
    /// Why `id` may not sit in a group or answer for anyone, if they may not.
    pub fn excludes(&self, id: &str, policy: Policy) -> Option<RemovalReason> {
        if policy.allow_self_approval {
            None
        } else if self.requester.as_deref() == Some(id) {
            Some(RemovalReason::Requester)
        } else if self.requested_by.as_deref() == Some(id) {
            Some(RemovalReason::RequestedBy)
        } else {
            None
        }
    }
}

/// What a group's requirement resolves to for `members` people, the way the stage fixed it.
pub(super) fn required(rule: Rule, members: usize) -> usize {
    if members == 0 {
        0
    } else {
        rule.required(members).clamp(1, members)
    }
}
