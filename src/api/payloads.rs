//! What each event carries, as OpenAPI schemas: the `data` of every event type, delivered by
//! webhook and listed by `GET /v1/approvals/{id}/events`.
//!
//! The server builds events as JSON (`crate::service::store::events`, `crate::service::time`);
//! these types exist to document that JSON, one schema per event type, and the spec's finishing
//! pass (`super::spec::events`) wraps each in the envelope `{id, type, created_at, tenant,
//! data}`, unites them under `Event` (a `oneOf` with a discriminator on `type`) and lists them
//! in the document's `webhooks`. `tests/api/event_schemas.rs` checks real events against them.

#![allow(dead_code)] // built for their schemas only; the server writes the same JSON with json!

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::engine::{ApprovalStatus, OutcomeReason, Verdict};
use crate::domain::messages::Message;
use crate::service::view::{AdminAction, ApprovalView, Principal};

/// The ticket an approval event is about.
#[derive(Serialize, ToSchema)]
pub struct EventTicket {
    /// The host's ticket id.
    pub id: String,
    /// The status to set on the ticket: the process's `on_started_status` on
    /// `approval.requested`, then `on_approved_status`, `on_rejected_status` or
    /// `on_cancelled_status` on the outcome, `on_withdrawn_status` on `approval.withdrawn`;
    /// null where the process names none.
    pub status_to_set: Option<String>,
}

/// Links for one approver a substitute answers for.
#[derive(Serialize, ToSchema)]
pub struct AnswerFor {
    pub approver_id: String,
    pub display_name: String,
    /// One-time link that approves on this approver's behalf.
    pub approve_url: String,
    /// One-time link that rejects on this approver's behalf.
    pub reject_url: String,
    /// The hosted decision page for this approver's task.
    pub page_url: String,
}

/// A person to notify, with their one-time links and the message in their language. signoff
/// sends no mail: the host does.
#[derive(Serialize, ToSchema)]
pub struct Recipient {
    pub principal: Principal,
    /// The approver this person answers for (a substitute or delegate), else null.
    pub on_behalf_of: Option<String>,
    /// One-time link that approves (opens the hosted page with the choice made).
    pub approve_url: String,
    /// One-time link that rejects.
    pub reject_url: String,
    /// The hosted decision page.
    pub page_url: String,
    /// When the links stop working.
    pub expires_at: DateTime<Utc>,
    pub message: Message,
    /// A substitute covering several approvers: each of them with its own links. Absent
    /// otherwise.
    pub answers_for: Option<Vec<AnswerFor>>,
}

/// Which page of recipients this event carries, when a stage asks more than 100 people.
/// Absent when one event carries them all.
#[derive(Serialize, ToSchema)]
pub struct RecipientsPage {
    #[schema(minimum = 1)]
    pub page: u32,
    #[schema(minimum = 1)]
    pub of: u32,
    /// Recipients over every page.
    pub total: u32,
}

/// `approval.requested`: a stage started.
#[derive(Serialize, ToSchema)]
pub struct StageStartedDetail {
    /// The stage's index, from 0.
    pub stage: u32,
    pub stage_name: Option<String>,
    /// What was decided about the stage as it started (groups skipped, short groups).
    pub notes: Option<Vec<String>>,
}

/// `approval.decision_recorded`: an answer was recorded, or an earlier one reused (`reused`).
#[derive(Serialize, ToSchema)]
pub struct DecisionDetail {
    pub stage: u32,
    /// Whose task the answer is on.
    pub approver_id: String,
    pub decision: Verdict,
    /// Who answered: the approver, or a delegate or substitute. Absent on a reused answer.
    pub decided_by: Option<String>,
    /// Absent on a reused answer.
    pub comment: Option<String>,
    /// The approver answered for, when someone else answered. Absent on a reused answer.
    pub on_behalf_of: Option<String>,
    /// True when the approver's answer in an earlier stage was reused. Absent otherwise.
    pub reused: Option<bool>,
}

/// `approval.stage_advanced`: a stage was approved and the next one starts.
#[derive(Serialize, ToSchema)]
pub struct StageAdvancedDetail {
    pub from: u32,
    pub to: u32,
    pub from_name: Option<String>,
    pub to_name: Option<String>,
}

/// `approval.reminder` and `approval.escalated`: the stage whose approvers are reminded, or
/// whose substitutes are asked.
#[derive(Serialize, ToSchema)]
pub struct StageDetail {
    pub stage: Option<u32>,
}

/// `approval.approved` and `approval.rejected`: how the approval ended.
#[derive(Serialize, ToSchema)]
pub struct OutcomeDetail {
    pub decision: ApprovalStatus,
    pub reason: OutcomeReason,
    /// Set the ticket to this status.
    pub status_to_set: Option<String>,
    /// The administrator's bypass, when one ended it.
    pub admin: Option<AdminAction>,
}

/// `approval.cancelled`: cancelled by an administrator, or superseded by a newer request.
#[derive(Serialize, ToSchema)]
pub struct CancelledDetail {
    pub reason: String,
    pub actor_id: Option<String>,
}

/// `approval.withdrawn`: the requester's side took the approval back.
#[derive(Serialize, ToSchema)]
pub struct WithdrawnDetail {
    /// The ticket's requester or the approval's `requested_by`.
    pub actor_id: String,
    pub reason: Option<String>,
    /// Set the ticket to this status (the process's `on_withdrawn_status`).
    pub status_to_set: Option<String>,
}

/// `approval.reassigned`: a pending seat moved from one person to another.
#[derive(Serialize, ToSchema)]
pub struct ReassignedDetail {
    pub stage: u32,
    /// Who held the seat; their links no longer work.
    pub from: String,
    /// Who holds it now; `recipients` carries their links.
    pub to: String,
    /// `reassign` (by its holder or an administrator) or `escalation` (at the stage's deadline,
    /// to the approver's manager).
    pub reason: crate::domain::engine::ReassignReason,
    /// Who moved it: `from`, or an administrator's `actor_id` (null when none was given).
    pub actor_id: Option<String>,
    pub comment: Option<String>,
}

/// `approval.approver_added`: someone joined a group of the running stage.
#[derive(Serialize, ToSchema)]
pub struct ApproverAddedDetail {
    pub stage: u32,
    /// The group's name.
    pub group: String,
    /// Who joined; `recipients` carries their links.
    pub approver_id: String,
    /// Who added them (null when an administrator gave no `actor_id`).
    pub actor_id: Option<String>,
}

/// `approval.info_requested`: an approver's question to the requester.
#[derive(Serialize, ToSchema)]
pub struct InfoRequestedDetail {
    /// The question's number in the view's `conversation`.
    pub n: u32,
    /// Who asked.
    pub by: String,
    pub question: String,
}

/// `approval.info_provided`: the requester's answer.
#[derive(Serialize, ToSchema)]
pub struct InfoProvidedDetail {
    /// The number of the question answered.
    pub n: u32,
    /// Who answered: the requester or `requested_by`.
    pub by: String,
    pub answer: String,
}

/// Someone on the requester's side to tell of a question (no links: they answer in the host).
#[derive(Serialize, ToSchema)]
pub struct InfoRecipient {
    pub principal: Principal,
    /// `requester` or `requested_by`.
    pub role: String,
    pub message: Message,
}

/// `data` of `approval.info_requested`.
#[derive(Serialize, ToSchema)]
pub struct InfoRequestedData {
    pub approval: ApprovalView,
    pub ticket: EventTicket,
    pub summary: String,
    pub sequence: i64,
    pub detail: InfoRequestedDetail,
    /// The requester, and `requested_by` when another principal of the directory.
    pub recipients: Vec<InfoRecipient>,
}

/// `approval.abstained`: an approver stepped out of the decision.
#[derive(Serialize, ToSchema)]
pub struct AbstainedDetail {
    pub stage: u32,
    pub approver_id: String,
    pub comment: String,
}

/// `approval.decision_revoked`: an answer was taken back.
#[derive(Serialize, ToSchema)]
pub struct DecisionRevokedDetail {
    pub stage: u32,
    /// Whose seat waits again; `recipients` carries fresh links.
    pub approver_id: String,
    /// Who had given the answer and took it back.
    pub decided_by: String,
    /// The answer taken back.
    pub decision: Verdict,
}

/// `data` of `approval.requested`, `approval.reminder` and `approval.escalated`: the approval
/// as it stood after the event, the `detail` of its type, and the people to notify.
macro_rules! notify_data {
    ($name:ident, $detail:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            /// The approval as it stood after the event (a stage of more than 100 tasks lists
            /// the first 100 and counts the rest in `tasks_omitted`).
            pub approval: ApprovalView,
            pub ticket: EventTicket,
            /// The badge line as of the event ("Awaiting approval from Grace Hopper",
            /// "Approved by Grace Hopper"), in the process's default language.
            pub summary: String,
            /// The event's place in the approval's trail, from 1.
            pub sequence: i64,
            pub detail: $detail,
            /// At most 100; more are paged over several events of the same type.
            pub recipients: Vec<Recipient>,
            pub recipients_page: Option<RecipientsPage>,
        }
    };
}

/// `data` of the other approval events: the approval as it stood after the event and the
/// `detail` of its type.
macro_rules! approval_data {
    ($name:ident, $detail:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            /// The approval as it stood after the event (a stage of more than 100 tasks lists
            /// the first 100 and counts the rest in `tasks_omitted`).
            pub approval: ApprovalView,
            pub ticket: EventTicket,
            /// The badge line as of the event ("Awaiting approval from Grace Hopper",
            /// "Approved by Grace Hopper"), in the process's default language.
            pub summary: String,
            /// The event's place in the approval's trail, from 1.
            pub sequence: i64,
            pub detail: $detail,
        }
    };
}

notify_data!(
    RequestedData,
    StageStartedDetail,
    "`data` of `approval.requested`."
);
notify_data!(ReminderData, StageDetail, "`data` of `approval.reminder`.");
notify_data!(
    ApproverAddedData,
    ApproverAddedDetail,
    "`data` of `approval.approver_added`: `recipients` is the new approver."
);
notify_data!(
    DecisionRevokedData,
    DecisionRevokedDetail,
    "`data` of `approval.decision_revoked`: `recipients` is the approver whose seat waits again."
);
notify_data!(
    InfoProvidedData,
    InfoProvidedDetail,
    "`data` of `approval.info_provided`: `recipients` are the approvers who still have to decide."
);
notify_data!(
    ReassignedData,
    ReassignedDetail,
    "`data` of `approval.reassigned`: `recipients` is the person the seat went to."
);
notify_data!(
    EscalatedData,
    StageDetail,
    "`data` of `approval.escalated`."
);
approval_data!(
    DecisionRecordedData,
    DecisionDetail,
    "`data` of `approval.decision_recorded`."
);
approval_data!(
    StageAdvancedData,
    StageAdvancedDetail,
    "`data` of `approval.stage_advanced`."
);
approval_data!(
    OutcomeData,
    OutcomeDetail,
    "`data` of `approval.approved` and `approval.rejected`."
);
approval_data!(
    CancelledData,
    CancelledDetail,
    "`data` of `approval.cancelled`."
);
approval_data!(
    AbstainedData,
    AbstainedDetail,
    "`data` of `approval.abstained`."
);
approval_data!(
    WithdrawnData,
    WithdrawnDetail,
    "`data` of `approval.withdrawn`."
);

/// The process that expired.
#[derive(Serialize, ToSchema)]
pub struct ExpiredProcess {
    pub id: String,
    pub name: String,
    /// Its current version.
    pub version: i32,
    pub expires_at: Option<DateTime<Utc>>,
}

/// `data` of `process.expired`: a process passed its `expires_at` and disabled itself.
#[derive(Serialize, ToSchema)]
pub struct ProcessExpiredData {
    pub process: ExpiredProcess,
}

/// The payload schema of each event type, by name: what `spec::events` wraps in envelopes.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    EventTicket,
    AnswerFor,
    Recipient,
    RecipientsPage,
    StageStartedDetail,
    DecisionDetail,
    StageAdvancedDetail,
    StageDetail,
    OutcomeDetail,
    CancelledDetail,
    ExpiredProcess,
    ProcessExpiredData,
    RequestedData,
    ReminderData,
    EscalatedData,
    DecisionRecordedData,
    StageAdvancedData,
    OutcomeData,
    CancelledData,
    WithdrawnData,
    AbstainedData,
    ReassignedData,
    ApproverAddedData,
    DecisionRevokedData,
    InfoRequestedData,
    InfoProvidedData,
)))]
pub struct Payloads;
