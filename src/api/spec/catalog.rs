//! The closed sets and fixed texts the document states: problem codes, event types, and
//! which objects and fields get which treatment.

/// Every `Problem.code` signoff sends. New codes may be added; clients must treat an unknown
/// code like the status it came with.
pub const PROBLEM_CODES: &[&str] = &[
    "abstain_not_allowed",
    "add_approver_not_allowed",
    "already_decided",
    "approval_closed",
    "approval_pending",
    "awaiting_info",
    "body_too_large",
    "comment_required",
    "double_answer",
    "endpoint_disabled",
    "group_decided",
    "idempotency_key_in_use",
    "idempotency_key_reused",
    "if_match_required",
    "inactive_principal",
    "info_request_open",
    "insufficient_scope",
    "internal_error",
    "invalid_approver",
    "invalid_body",
    "invalid_cursor",
    "invalid_idempotency_key",
    "invalid_json",
    "invalid_query",
    "invalid_reassignment",
    "link_closed",
    "link_expired",
    "link_not_found",
    "link_reassigned",
    "link_superseded",
    "link_used",
    "method_not_allowed",
    "no_approvers",
    "no_open_question",
    "not_a_substitute",
    "not_an_approver",
    "not_enough_approvers",
    "not_found",
    "not_the_approver",
    "not_the_requester",
    "process_disabled",
    "process_name_taken",
    "process_not_disabled",
    "rate_limited",
    "reassign_not_allowed",
    "reminders_disabled",
    "revoke_not_allowed",
    "route_not_found",
    "self_approval_not_allowed",
    "service_unavailable",
    "stage_not_current",
    "unauthorized",
    "unsupported_media_type",
    "validation_failed",
    "version_mismatch",
    "worker_not_running",
];

/// Every event type, in webhooks and in `GET /v1/approvals/{id}/events` (the list endpoints
/// subscribe by). New types may be added; a receiver must ignore (and answer 2xx to) types it
/// does not know.
pub use crate::webhooks::EVENT_TYPES;

/// Response fields that are left out, not sent as null, when they have no value.
pub const SOMETIMES_ABSENT: &[(&str, &str)] = &[
    ("ProcessView", "disabled_reason"),
    ("EndpointView", "secret"),
    ("TaskView", "decision"),
    ("TaskView", "delegated_from"),
    ("TicketEffect", "problem"),
    ("Recipient", "answers_for"),
    ("RequestedData", "recipients_page"),
    ("ReminderData", "recipients_page"),
    ("EscalatedData", "recipients_page"),
    ("ReassignedData", "recipients_page"),
    ("ApproverAddedData", "recipients_page"),
    ("InfoProvidedData", "recipients_page"),
    ("DecisionRevokedData", "recipients_page"),
    ("TaskView", "reassigned_to"),
    ("DecisionDetail", "decided_by"),
    ("DecisionDetail", "comment"),
    ("DecisionDetail", "on_behalf_of"),
    ("DecisionDetail", "reused"),
];

/// Request objects whose reader refuses fields it does not know (the roots of process,
/// principal and calendar bodies accept the read-only fields of their answers, so stay open).
pub const CLOSED_REQUEST_OBJECTS: &[&str] = &[
    "ProcessSettings",
    "StageDef",
    "GroupDef",
    "TimeoutDef",
    "RemindersDef",
    "SubstitutesDef",
    "Templates",
    "MessageTemplate",
    "RequestApproval",
    "DecisionInput",
    "TicketReport",
    "RuleInput",
    "RulesTestInput",
    "DisableProcess",
    "RemindInput",
];

/// Request objects read field by field (`crate::domain::validate::Faults`), where an optional
/// field sent as `null` means the same as the field left out: their optional properties accept
/// `null` too.
pub const NULL_IS_ABSENT: &[&str] = &[
    "CalendarDef",
    "PrincipalInput",
    "ProcessDefinition",
    "ProcessSettings",
    "StageDef",
    "Templates",
    "RequestApproval",
    "Ticket",
    "TicketReport",
    "RuleInput",
];

/// What `Idempotency-Key` may be (with `maxLength` 255): tabs, spaces and visible ASCII, at
/// least one visible (`super::idempotency`).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[\\t -~]*[!-~][\\t -~]*$";

pub const UNKNOWN_VALUES: &str = "New values may be added: treat one you do not know as you would \
an unexpected value, not as an error.";
