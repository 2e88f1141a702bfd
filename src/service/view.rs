//! The approval view of API.md, built from what the engine holds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::models::{ApprovalRow, TaskRow};
use std::collections::BTreeMap;

use crate::domain::engine::{
    Approval, ApprovalStatus, Delegation, GroupStatus, Outcome, OutcomeReason, Parties, Policy,
    Reassignment, Removal, SkipReason, StagePlan, StageState, StageStatus, Task, TaskState,
    Verdict,
};

pub use crate::domain::ticket::Ticket;

/// Which process (and version) an approval runs.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProcessRef {
    pub id: String,
    pub name: String,
    pub version: i32,
}

/// The rule that started an approval.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RuleRef {
    pub id: String,
    pub name: String,
}

/// A group's tally.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GroupView {
    pub name: String,
    pub state: GroupStatus,
    /// Approvals needed (distinct people), fixed when the stage started.
    pub required: usize,
    /// Distinct people who approved.
    pub approved: usize,
    /// Distinct people who rejected.
    pub rejected: usize,
    pub pending: usize,
    /// The count the process asked for, when `when_short: cap` lowered it to `required`.
    pub capped_from: Option<usize>,
    /// Why the group took no part, when it did not.
    pub skip_reason: Option<SkipReason>,
    /// People its source named who do not sit in it, with the reason.
    pub removed: Vec<Removal>,
}

/// One approver's slot in a stage.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub approver_id: String,
    /// The approver's display name, as the directory had it when the stage started.
    pub approver_name: Option<String>,
    pub state: TaskState,
    /// For `reused` tasks, the earlier answer that was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Verdict>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    /// The approver this answer was given for, when a substitute or delegate gave it.
    pub on_behalf_of: Option<String>,
    /// Who actually answered (the approver, a substitute or a delegate).
    pub decided_by: Option<String>,
    /// The out-of-office approver this task was delegated from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated_from: Option<String>,
    /// For `reassigned` tasks, who the seat went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reassigned_to: Option<String>,
}

/// One stage.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StageView {
    pub name: String,
    pub state: StageStatus,
    /// When the stage times out; null without a timeout.
    pub deadline: Option<DateTime<Utc>>,
    pub groups: Vec<GroupView>,
    pub tasks: Vec<TaskView>,
    /// Why the stage did not run, when it did not.
    pub skip_reason: Option<SkipReason>,
    /// Removals, skips, caps and condition failures, in plain words.
    pub notes: Vec<String>,
}

/// How an approval ended.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OutcomeView {
    /// `approved`, `rejected` or `withdrawn`.
    pub decision: ApprovalStatus,
    pub reason: OutcomeReason,
    /// The ticket status the host should set (the process's on-approved, on-rejected or
    /// on-withdrawn status).
    pub status_to_set: Option<String>,
    pub decided_at: DateTime<Utc>,
}

/// The action that closed the approval: an administrator's cancel or bypass, or the
/// requester's side withdrawing it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AdminAction {
    /// `cancel`, `bypass` or `withdraw`.
    pub action: String,
    pub reason: String,
    pub actor_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// An approval as integrators read it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    pub id: String,
    pub state: ApprovalStatus,
    pub ticket: Ticket,
    /// Null for ad-hoc approvals.
    pub process: Option<ProcessRef>,
    pub description: Option<String>,
    pub requested_by: Option<String>,
    /// The display name of the ticket's requester, when the directory knows them.
    pub requester_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Index of the running stage; null once the approval has ended.
    pub current_stage: Option<usize>,
    pub stages: Vec<StageView>,
    /// Who the approval is waiting for, in plain words.
    pub waiting_for: Vec<String>,
    pub outcome: Option<OutcomeView>,
    /// Set when an administrator cancelled or bypassed the approval.
    pub closed_by: Option<AdminAction>,
    /// The rule that started the approval (`requested_by` is then `rule:<id>`); null otherwise.
    pub rule: Option<RuleRef>,
    /// Questions to the requester and their answers, oldest first (`state` is
    /// `info_requested` while the last question waits).
    pub conversation: Vec<ConversationEntry>,
}

/// What the approvals row stores in `engine`: the engine's state without its tasks (they live
/// in their own table), plus the administrator's closing action.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "EngineDocument")]
pub struct StoredEngine {
    #[serde(flatten)]
    pub approval: Approval,
    #[serde(default)]
    pub closed_by: Option<AdminAction>,
    /// Per-stage deadlines, filled in when stages with a timeout start (and again at each
    /// escalation).
    #[serde(default)]
    pub deadlines: Vec<Option<DateTime<Utc>>>,
    /// Per stage, how many times its deadline escalated the pending seats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalations: Vec<u32>,
    /// Questions to the requester and their answers, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversation: Vec<ConversationEntry>,
    /// While a question is open: when it was asked, and the stage's timers it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Paused>,
    /// Tasks given to a delegate, in approvals stored before the engine recorded them itself
    /// ([`Approval::delegations`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegated: Vec<Delegated>,
    /// Display names of the people involved, read when their stage started.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// The request's `selected_approvers`, for `requester_selected` groups of later stages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selected: Vec<String>,
    /// The rule that started the approval, as it was named then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleRef>,
}

/// [`StoredEngine`] as stored, field by field: what it is read through. `StoredEngine`
/// flattens [`Approval`] into itself, which made serde buffer the whole document before
/// reading it; this reads it in one pass. The defaults are theirs, and building the two from it
/// names every field, so a field added to either does not compile until it is read here too.
/// `tasks` is stored empty: they live in their own table.
#[derive(Deserialize)]
struct EngineDocument {
    status: ApprovalStatus,
    current_stage: Option<usize>,
    plan: Vec<StagePlan>,
    stages: Vec<StageState>,
    outcome: Option<Outcome>,
    policy: Policy,
    #[serde(default)]
    parties: Parties,
    #[serde(default)]
    delegations: Vec<Delegation>,
    #[serde(default)]
    reassignments: Vec<Reassignment>,
    #[serde(default)]
    closed_by: Option<AdminAction>,
    #[serde(default)]
    deadlines: Vec<Option<DateTime<Utc>>>,
    #[serde(default)]
    escalations: Vec<u32>,
    #[serde(default)]
    conversation: Vec<ConversationEntry>,
    #[serde(default)]
    paused: Option<Paused>,
    #[serde(default)]
    delegated: Vec<Delegated>,
    #[serde(default)]
    names: BTreeMap<String, String>,
    #[serde(default)]
    selected: Vec<String>,
    #[serde(default)]
    rule: Option<RuleRef>,
    #[serde(default)]
    tasks: Vec<Task>,
}

impl From<EngineDocument> for StoredEngine {
    fn from(this: EngineDocument) -> Self {
        StoredEngine {
            approval: Approval {
                status: this.status,
                current_stage: this.current_stage,
                plan: this.plan,
                stages: this.stages,
                tasks: this.tasks,
                outcome: this.outcome,
                policy: this.policy,
                parties: this.parties,
                delegations: this.delegations,
                reassignments: this.reassignments,
            },
            closed_by: this.closed_by,
            deadlines: this.deadlines,
            escalations: this.escalations,
            conversation: this.conversation,
            paused: this.paused,
            delegated: this.delegated,
            names: this.names,
            selected: this.selected,
            rule: this.rule,
        }
    }
}

impl StoredEngine {
    /// A person's display name, or their id when the directory had none.
    pub fn name_of(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}

/// One line of the conversation between approvers and the requester.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ConversationEntry {
    /// From 1; an answer carries the number of its question.
    pub n: u32,
    /// `question` or `answer`.
    pub kind: String,
    pub by: String,
    /// The display name of `by`, when the directory knows them.
    pub by_name: Option<String>,
    pub text: String,
    pub at: DateTime<Utc>,
}

/// The timers a question stopped, as they were due.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Paused {
    pub at: DateTime<Utc>,
    pub timers: Vec<PausedTimer>,
}

/// A stopped timer: its kind, stage and number, and when it was due.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PausedTimer {
    pub kind: String,
    pub stage: i32,
    pub seq: i32,
    pub due_at: DateTime<Utc>,
}

/// A task that went to a delegate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Delegated {
    pub stage: usize,
    pub delegate: String,
    pub delegator: String,
}

fn enum_str<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A stored enum value (`pending`, `approve`, …) read by its serde name, without allocating.
pub fn parse_enum<'de, T: Deserialize<'de>>(s: &'de str) -> Option<T> {
    use serde::de::IntoDeserializer;
    T::deserialize(s.into_deserializer())
        .map_err(|_: serde::de::value::Error| ())
        .ok()
}

pub fn status_str(s: ApprovalStatus) -> String {
    enum_str(&s)
}

/// A task as stored.
pub fn task_row(tenant: &str, approval: uuid::Uuid, t: &Task) -> TaskRow {
    TaskRow {
        tenant_id: tenant.to_string(),
        approval_id: approval,
        stage: t.stage as i32,
        approver_id: t.approver_id.clone(),
        state: enum_str(&t.state),
        verdict: t.verdict.map(|v| enum_str(&v)),
        decided_at: t.decided_at,
        comment: t.comment.clone(),
        actor_id: t.actor_id.clone(),
        on_behalf_of: t.on_behalf_of.clone(),
    }
}

/// A task as the engine sees it.
pub fn task_from_row(r: &TaskRow) -> Task {
    Task {
        stage: r.stage as usize,
        approver_id: r.approver_id.clone(),
        state: parse_enum(&r.state).unwrap_or(TaskState::Pending),
        verdict: r.verdict.as_deref().and_then(parse_enum),
        decided_at: r.decided_at,
        comment: r.comment.clone(),
        actor_id: r.actor_id.clone(),
        on_behalf_of: r.on_behalf_of.clone(),
    }
}

/// What a view shows of the approval's row besides the engine's state.
pub struct Head {
    pub id: uuid::Uuid,
    pub ticket: Ticket,
    pub process: Option<ProcessRef>,
    pub description: Option<String>,
    pub requested_by: Option<String>,
    pub status_to_set: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Head {
    /// The process reference of a row's columns: none for an ad-hoc approval.
    pub fn process(
        id: Option<uuid::Uuid>,
        name: Option<String>,
        version: Option<i32>,
    ) -> Option<ProcessRef> {
        match (id, name, version) {
            (Some(id), Some(name), Some(version)) => Some(ProcessRef {
                id: id.to_string(),
                name,
                version,
            }),
            _ => None,
        }
    }

    /// The stored ticket, or one with only its id when it cannot be read.
    pub fn ticket(read: Option<Ticket>, ticket_id: &str) -> Ticket {
        read.unwrap_or_else(|| Ticket {
            id: ticket_id.to_string(),
            title: None,
            requester_id: None,
            status: None,
            attributes: Default::default(),
        })
    }
}

/// Builds the view. `tasks` must be the engine's current tasks.
pub fn approval_view(row: &ApprovalRow, stored: &StoredEngine) -> ApprovalView {
    let head = Head {
        id: row.id,
        ticket: Head::ticket(Ticket::deserialize(&row.ticket).ok(), &row.ticket_id),
        process: Head::process(
            row.process_id,
            row.process_name.clone(),
            row.process_version,
        ),
        description: row.description.clone(),
        requested_by: row.requested_by.clone(),
        status_to_set: row.status_to_set.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    };
    view_of(head, stored)
}

/// Builds the view of an approval from its row's fields and the engine's state, whose tasks
/// must be its current ones.
pub fn view_of(head: Head, stored: &StoredEngine) -> ApprovalView {
    let engine = &stored.approval;
    let ticket = head.ticket;
    let requester_name = ticket
        .requester_id
        .as_ref()
        .and_then(|r| stored.names.get(r).cloned());
    let stages = engine
        .plan
        .iter()
        .enumerate()
        .map(|(s, plan)| {
            let state = engine.stages.get(s);
            StageView {
                name: plan.name.clone(),
                state: state.map(|st| st.status).unwrap_or(StageStatus::Waiting),
                deadline: stored.deadlines.get(s).copied().flatten(),
                groups: plan
                    .groups
                    .iter()
                    .enumerate()
                    .filter_map(|(g, group)| {
                        engine.group_tally(s, g).map(|t| GroupView {
                            name: group.name.clone(),
                            state: t.status,
                            required: t.required,
                            approved: t.approved,
                            rejected: t.rejected,
                            pending: t.pending,
                            capped_from: group.capped_from,
                            skip_reason: group.skip_reason,
                            removed: group.removed.clone(),
                        })
                    })
                    .collect(),
                tasks: engine
                    .tasks
                    .iter()
                    .filter(|t| t.stage == s)
                    .map(|t| TaskView {
                        approver_id: t.approver_id.clone(),
                        approver_name: stored.names.get(&t.approver_id).cloned(),
                        state: t.state,
                        decision: if t.state == TaskState::Reused {
                            t.verdict
                        } else {
                            None
                        },
                        decided_at: t.decided_at,
                        comment: t.comment.clone(),
                        on_behalf_of: t.on_behalf_of.clone(),
                        decided_by: t.actor_id.clone(),
                        delegated_from: engine
                            .delegated_from(s, &t.approver_id)
                            .map(str::to_string)
                            .or_else(|| {
                                stored
                                    .delegated
                                    .iter()
                                    .find(|d| d.stage == s && d.delegate == t.approver_id)
                                    .map(|d| d.delegator.clone())
                            }),
                        reassigned_to: (t.state == TaskState::Reassigned)
                            .then(|| engine.reassigned_to(s, &t.approver_id))
                            .flatten()
                            .map(str::to_string),
                    })
                    .collect(),
                skip_reason: plan.skip_reason,
                notes: plan.notes.clone(),
            }
        })
        .collect();
    ApprovalView {
        id: head.id.to_string(),
        state: engine.status,
        ticket,
        process: head.process,
        description: head.description,
        requested_by: head.requested_by,
        requester_name,
        created_at: head.created_at,
        updated_at: head.updated_at,
        current_stage: engine.current_stage.filter(|_| {
            matches!(
                engine.status,
                ApprovalStatus::Pending | ApprovalStatus::InfoRequested
            )
        }),
        stages,
        waiting_for: engine.waiting_for_named(&|id| stored.name_of(id)),
        outcome: engine.outcome.as_ref().map(|o| OutcomeView {
            decision: o.decision,
            reason: o.reason,
            status_to_set: head.status_to_set,
            decided_at: o.decided_at,
        }),
        closed_by: stored.closed_by.clone(),
        rule: stored.rule.clone(),
        conversation: stored.conversation.clone(),
    }
}

/// A principal as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Principal {
    #[schema(example = "u-7")]
    pub id: String,
    pub kind: crate::domain::principal::PrincipalKind,
    pub display_name: String,
    pub email: Option<String>,
    pub locale: String,
    pub time_zone: String,
    pub manager_id: Option<String>,
    pub roles: Vec<String>,
    pub active: bool,
}

impl From<crate::db::models::PrincipalRow> for Principal {
    fn from(r: crate::db::models::PrincipalRow) -> Self {
        Self {
            kind: crate::domain::principal::PrincipalKind::parse(&r.kind)
                .unwrap_or(crate::domain::principal::PrincipalKind::User),
            id: r.id,
            display_name: r.display_name,
            email: r.email,
            locale: r.locale,
            time_zone: r.time_zone,
            manager_id: r.manager_id,
            roles: r.roles.into_iter().flatten().collect(),
            active: r.active,
        }
    }
}
