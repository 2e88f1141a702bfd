//! What a process says: its stages, groups, sources, requirements, timeouts and settings, as
//! stored (JSONB, read back with serde) and as the API shows them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::duration::IsoDuration;

/// Limits that keep one definition within what a person can reason about.
pub const MAX_STAGES: usize = 20;
pub const MAX_GROUPS: usize = 20;
pub const MAX_LISTED_PRINCIPALS: usize = 500;

/// A whole approval process definition: the body of `POST /v1/processes` and `PUT`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ProcessDefinition {
    /// Unique name within the tenant.
    #[schema(example = "Laptop purchase")]
    pub name: String,
    /// What the process is for.
    #[serde(default)]
    pub description: Option<String>,
    /// When the process disables itself; null means never.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Ticket status the host should set when an approval is approved.
    #[serde(default)]
    pub on_approved_status: Option<String>,
    /// Ticket status the host should set when an approval is rejected.
    #[serde(default)]
    pub on_rejected_status: Option<String>,
    /// Ticket status the host should set when an approval starts ("waiting for approval"),
    /// carried by `approval.requested`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_started_status: Option<String>,
    /// Ticket status the host should set when an approval is cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_cancelled_status: Option<String>,
    /// Ticket status the host should set when the requester's side withdraws an approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_withdrawn_status: Option<String>,
    #[serde(default)]
    pub settings: ProcessSettings,
    /// Stages run in order; approvers inside a stage decide in parallel.
    pub stages: Vec<StageDef>,
    /// Message templates per locale, used to render notifications.
    #[serde(default)]
    pub templates: Option<Templates>,
}

/// Behaviour switches of a process.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(default)]
pub struct ProcessSettings {
    /// May the ticket's requester approve their own request?
    pub allow_self_approval: bool,
    /// Apply a principal's earlier answer in later stages of the same approval.
    pub reuse_previous_answers: bool,
    /// A rejection must carry a comment.
    pub reject_requires_comment: bool,
    /// Refuse a second pending approval on the same ticket.
    pub one_active_per_ticket: bool,
    /// What happens when no stage has any approver.
    pub when_no_approvers: WhenNoApprovers,
    /// What happens when a `count` group resolves to fewer members than its count.
    pub when_short: WhenShort,
    /// May an approver hand their own pending seat to someone else
    /// (`POST /v1/approvals/{id}/reassign`)? Administrators always may.
    pub allow_reassign: bool,
    /// May an approver of the running stage add someone to one of its groups
    /// (`POST /v1/approvals/{id}/approvers`)? Administrators always may.
    pub allow_add_approver: bool,
    /// May an approver step out of the decision with a comment (`"decision": "abstain"`)?
    pub allow_abstain: bool,
    /// May `POST /v1/approvals/{id}/remind` remind approvers by hand? Scheduled reminders are
    /// not affected.
    pub manual_reminders: bool,
    /// How long after answering a person may take their answer back
    /// (`POST /v1/approvals/{id}/decisions/revoke`), while it has not decided its group. None:
    /// answers are final.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_window: Option<IsoDuration>,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        Self {
            allow_self_approval: false,
            reuse_previous_answers: false,
            reject_requires_comment: false,
            one_active_per_ticket: true,
            when_no_approvers: WhenNoApprovers::Refuse,
            when_short: WhenShort::Refuse,
            allow_reassign: true,
            allow_add_approver: false,
            allow_abstain: false,
            manual_reminders: true,
            revoke_window: None,
        }
    }
}

/// What a `count` group with fewer members than its count does: requirements never weaken
/// silently.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenShort {
    /// A request whose first stage starts short is refused with 422 `not_enough_approvers`; a
    /// later stage that starts short rejects the approval (reason `not_enough_approvers`).
    #[default]
    Refuse,
    /// The count is lowered to the members there are; the view and the stage's event say so.
    Cap,
}

/// What a request does when every stage resolves to nobody.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenNoApprovers {
    /// Refuse the request with 422 `no_approvers`.
    #[default]
    Refuse,
    /// Approve at once.
    Approve,
}

/// One level of a process.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct StageDef {
    #[schema(example = "Manager")]
    pub name: String,
    /// How the stage combines its groups.
    #[serde(default)]
    pub combine: Combine,
    /// With `combine: any`, `first_group`: the first group to reach a result decides the
    /// stage, approved or rejected. Without it, an `any` stage rejects only when every group
    /// has rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decide: Option<StageDecide>,
    pub groups: Vec<GroupDef>,
    /// When the stage ends by itself if nobody answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutDef>,
    /// Automatic reminders to approvers who have not answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminders: Option<RemindersDef>,
    /// Who may answer for an approver who has not, and when they are told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitutes: Option<SubstitutesDef>,
    /// A CEL condition over `ticket` and `requester`, evaluated when the stage starts: false
    /// skips the stage (`skip_reason: condition`); an evaluation error runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "ticket.attributes.amount > 100")]
    pub when: Option<String>,
}

/// How an `any` stage is decided.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StageDecide {
    /// The first group to reach a result decides, whichever it is.
    FirstGroup,
}

/// `all`: every group must approve; `any`: one group approving is enough.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    #[default]
    All,
    Any,
}

/// A set of approvers inside a stage, with a requirement.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct GroupDef {
    #[schema(example = "finance")]
    pub name: String,
    pub source: Source,
    pub require: Requirement,
}

/// Where a group's members come from; resolved when the stage starts.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    /// The listed principal ids.
    Principals { ids: Vec<String> },
    /// Every active principal with this role.
    Role { role: String },
    /// Chosen in the approval request (`selected_approvers`).
    RequesterSelected,
    /// The manager of the ticket's requester.
    RequesterManager,
    /// A principal id read from `ticket.attributes.<field>`.
    TicketField { field: String },
}

/// How many approvals a group needs.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Requirement {
    #[serde(flatten)]
    pub rule: Rule,
    /// This many rejections reject the group even if the rule could still be met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_at: Option<u32>,
}

/// The approval rule of a group.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rule {
    /// At least `count` approvals.
    Count { count: u32 },
    /// Every member approves.
    All,
    /// More than half of the members approve.
    Majority,
    /// At least `percent`% of the members approve (rounded up).
    Percent { percent: u32 },
    /// The first answer, approve or reject, decides.
    FirstReply,
}

/// What happens when a stage's time runs out.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TimeoutDef {
    /// How long the stage waits, e.g. `PT48H`.
    pub after: IsoDuration,
    /// Count only the business hours of this calendar; wall time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_id: Option<String>,
    /// The stage's outcome at the deadline.
    pub outcome: TimeoutOutcome,
    /// Before the outcome applies: move the pending seats up, and start the deadline again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<EscalateDef>,
}

/// Escalation at a stage's deadline: up to `levels` times, each pending seat moves to its
/// approver's manager (`approval.reassigned`, reason `escalation`) and the deadline starts
/// again; then, or when no seat can move, the timeout's `outcome` applies.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct EscalateDef {
    /// How many times, 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub levels: u32,
    /// Who a seat moves to: `approver_manager`.
    pub to: EscalateTo,
}

/// Who an escalated seat moves to.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EscalateTo {
    /// The pending approver's manager (`manager_id` in the directory).
    ApproverManager,
}

/// Outcome applied at a deadline.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutOutcome {
    Approve,
    Reject,
}

/// Reminder schedule: every `every` (at most `max` times), and/or at percentages of the timeout.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RemindersDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<IsoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_percent: Option<Vec<u32>>,
}

/// Substitutes of approvers who have not answered.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SubstitutesDef {
    /// At this percentage of the timeout, substitutes are notified.
    pub notify_at_percent: u32,
    pub source: SubstituteSource,
}

/// Who substitutes for an approver.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SubstituteSource {
    /// The approver's manager.
    ApproverManager,
    /// The listed principals.
    Principals { ids: Vec<String> },
}

pub use crate::domain::messages::{MessageTemplate, Templates};

impl Rule {
    /// Approvals needed out of `members`. `FirstReply` needs one.
    pub fn required(&self, members: usize) -> usize {
        let m = members;
        match *self {
            Rule::Count { count } => count as usize,
            Rule::All => m,
            Rule::Majority => m / 2 + 1,
            Rule::Percent { percent } => (m * percent as usize).div_ceil(100),
            Rule::FirstReply => 1,
        }
    }
}

impl ProcessDefinition {
    /// The group of this name, with its stage index.
    pub fn find_group(&self, name: &str) -> Option<(usize, &GroupDef)> {
        self.stages
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.groups.iter().find(|g| g.name == name).map(|g| (i, g)))
    }
}
