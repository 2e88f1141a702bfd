//! What the approval endpoints read from a body: a request and a decision, every fault listed.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::domain::engine::Verdict;
use crate::domain::process::{
    ProcessSettings, RemindersDef, Requirement, Rule, Templates, TimeoutDef, read_requirement,
};
use crate::domain::validate::{Faults, FieldError, index, is_external_id, join};
use crate::service::view::{RuleRef, Ticket};

/// The body of `POST /v1/approvals`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct RequestApproval {
    pub ticket: Ticket,
    /// The process to run. Either this or `approvers`.
    #[serde(default)]
    pub process_id: Option<String>,
    /// Ad-hoc: ask these principals (one stage, one group). Either this or `process_id`.
    #[serde(default)]
    pub approvers: Option<Vec<String>>,
    /// Ad-hoc: the group's requirement; default count 1.
    #[serde(default)]
    pub require: Option<Requirement>,
    /// For a process with an `any` stage: the one group to ask.
    #[serde(default)]
    pub request_from: Option<String>,
    /// Approvers chosen now, for `requester_selected` groups.
    #[serde(default)]
    pub selected_approvers: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Who asked for approval (a principal id or any label the host uses).
    #[serde(default)]
    pub requested_by: Option<String>,
    /// Cancel the ticket's pending approval and start anew.
    #[serde(default)]
    pub supersede: bool,
    /// Ad-hoc: ticket status to set when approved.
    #[serde(default)]
    pub on_approved_status: Option<String>,
    /// Ad-hoc: ticket status to set when rejected.
    #[serde(default)]
    pub on_rejected_status: Option<String>,
    /// Ad-hoc: ticket status to set when the approval starts.
    #[serde(default)]
    pub on_started_status: Option<String>,
    /// Ad-hoc: ticket status to set when the approval is cancelled.
    #[serde(default)]
    pub on_cancelled_status: Option<String>,
    /// Ad-hoc: ticket status to set when the approval is withdrawn.
    #[serde(default)]
    pub on_withdrawn_status: Option<String>,
    /// Ad-hoc: the behaviour switches a process has (`reject_requires_comment`,
    /// `allow_self_approval`, `allow_reassign`, …), with the same defaults.
    #[serde(default)]
    pub settings: Option<ProcessSettings>,
    /// Ad-hoc: the stage's timeout, as a process stage takes it.
    #[serde(default)]
    pub timeout: Option<TimeoutDef>,
    /// Ad-hoc: the stage's reminders, as a process stage takes them.
    #[serde(default)]
    pub reminders: Option<RemindersDef>,
    /// Ad-hoc: message templates, as a process takes them.
    #[serde(default)]
    pub templates: Option<Templates>,
    /// The rule starting this approval; never read from a request body.
    #[serde(skip)]
    #[schema(ignore)]
    pub rule: Option<RuleRef>,
}

impl RequestApproval {
    /// Reads and validates a request, listing every fault.
    pub fn parse(body: &Value) -> Result<Self, Vec<FieldError>> {
        let mut f = Faults::default();
        let read = (|| {
            let m = f.object(body, "")?;
            f.no_unknown(
                m,
                "",
                &[
                    "ticket",
                    "process_id",
                    "approvers",
                    "require",
                    "request_from",
                    "selected_approvers",
                    "description",
                    "requested_by",
                    "supersede",
                    "on_approved_status",
                    "on_rejected_status",
                    "on_started_status",
                    "on_cancelled_status",
                    "on_withdrawn_status",
                    "settings",
                    "timeout",
                    "reminders",
                    "templates",
                ],
            );
            let ticket = match m.get("ticket") {
                None | Some(Value::Null) => {
                    f.push("ticket", "is required");
                    None
                }
                Some(t) => read_ticket(&mut f, t),
            };
            let process_id: Option<String> = f.opt(m, "", "process_id");
            let approvers: Option<Vec<String>> = f.opt(m, "", "approvers");
            match (&process_id, &approvers) {
                (Some(_), Some(_)) => {
                    f.push("approvers", "give either process_id or approvers, not both")
                }
                (None, None) => f.push(
                    "process_id",
                    "is required (or `approvers` for an ad-hoc approval)",
                ),
                _ => {}
            }
            if let Some(list) = &approvers {
                if list.is_empty() {
                    f.push("approvers", "must list at least one principal id");
                }
                ids_ok(&mut f, list, "approvers");
            }
            let require = match m.get("require") {
                None | Some(Value::Null) => None,
                Some(_) if process_id.is_some() => {
                    f.push(
                        "require",
                        "only applies to ad-hoc approvals; the process sets requirements",
                    );
                    None
                }
                Some(r) => read_requirement(&mut f, r, "require"),
            };
            if let (Some(r), Some(list)) = (&require, &approvers) {
                let n = list.iter().collect::<BTreeSet<_>>().len();
                if let Rule::Count { count } = r.rule
                    && count as usize > n
                {
                    f.push(
                        "require.count",
                        format!("is {count} but only {n} approver(s) are listed"),
                    );
                }
            }
            let request_from = f.opt_text(m, "", "request_from", 100);
            let selected_approvers: Vec<String> =
                f.opt(m, "", "selected_approvers").unwrap_or_default();
            ids_ok(&mut f, &selected_approvers, "selected_approvers");
            let description = f.opt_text(m, "", "description", 10_000);
            let requested_by = f.opt_text(m, "", "requested_by", 200);
            if requested_by
                .as_deref()
                .is_some_and(|r| r.starts_with("rule:"))
            {
                f.push(
                    "requested_by",
                    "`rule:` is reserved for approvals that rules start",
                );
            }
            let supersede: bool = f.opt(m, "", "supersede").unwrap_or(false);
            let on_approved_status = f.opt_text(m, "", "on_approved_status", 100);
            let on_rejected_status = f.opt_text(m, "", "on_rejected_status", 100);
            let on_started_status = f.opt_text(m, "", "on_started_status", 100);
            let on_cancelled_status = f.opt_text(m, "", "on_cancelled_status", 100);
            let on_withdrawn_status = f.opt_text(m, "", "on_withdrawn_status", 100);
            let present = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
            let settings = match m.get("settings") {
                None | Some(Value::Null) => Some(None),
                Some(v) => crate::domain::process::read_settings(&mut f, v).map(Some),
            };
            let timeout = match m.get("timeout") {
                None | Some(Value::Null) => Some(None),
                Some(v) => crate::domain::process::read_timeout(&mut f, v, "timeout").map(Some),
            };
            let reminders = match m.get("reminders") {
                None | Some(Value::Null) => Some(None),
                Some(v) => crate::domain::process::read_reminders(&mut f, v, "reminders").map(Some),
            };
            let templates = match m.get("templates") {
                None | Some(Value::Null) => Some(None),
                Some(v) => crate::domain::process::read_templates(&mut f, v).map(Some),
            };
            if process_id.is_some() {
                for k in ["settings", "timeout", "reminders", "templates"] {
                    if present(k) {
                        f.push(
                            k,
                            "only applies to ad-hoc approvals; the process has its own",
                        );
                    }
                }
            }
            if process_id.is_some()
                && (on_approved_status.is_some()
                    || on_rejected_status.is_some()
                    || on_started_status.is_some()
                    || on_cancelled_status.is_some()
                    || on_withdrawn_status.is_some())
            {
                f.push(
                    "on_approved_status",
                    "only applies to ad-hoc approvals; the process sets statuses",
                );
            }
            Some(RequestApproval {
                ticket: ticket?,
                process_id,
                approvers,
                require,
                request_from,
                selected_approvers,
                description,
                requested_by,
                supersede,
                on_approved_status,
                on_rejected_status,
                on_started_status,
                on_cancelled_status,
                on_withdrawn_status,
                settings: settings?,
                timeout: timeout?,
                reminders: reminders?,
                templates: templates?,
                rule: None,
            })
        })();
        f.finish(read)
    }
}

pub(super) fn ids_ok(f: &mut Faults, ids: &[String], path: &str) {
    for (i, id) in ids.iter().enumerate() {
        if !is_external_id(id) {
            f.push(index(path, i), "is not a valid principal id");
        }
    }
}

/// A request's `ticket`: its id and what the host says of it.
pub fn read_ticket(f: &mut Faults, v: &Value) -> Option<Ticket> {
    let m = f.object(v, "ticket")?;
    f.no_unknown(
        m,
        "ticket",
        &["id", "title", "requester_id", "status", "attributes"],
    );
    let id: Option<String> = f.req(m, "ticket", "id");
    if let Some(id) = &id
        && !is_external_id(id)
    {
        f.push(
            "ticket.id",
            "must be 1 to 200 printable characters without spaces or slashes",
        );
    }
    let facts = read_ticket_facts(f, m, "ticket");
    Some(Ticket {
        id: id?,
        title: facts.title,
        requester_id: facts.requester_id,
        status: facts.status,
        attributes: facts.attributes,
    })
}

/// What a host says of a ticket besides its id, read from the object at `path` (a request's
/// `ticket`, or a report's body): the same fields and limits wherever a ticket is described.
pub struct TicketFacts {
    pub title: Option<String>,
    pub requester_id: Option<String>,
    pub status: Option<String>,
    pub attributes: Map<String, Value>,
}

pub fn read_ticket_facts(f: &mut Faults, m: &Map<String, Value>, path: &str) -> TicketFacts {
    let requester_id: Option<String> = f.opt(m, path, "requester_id");
    if requester_id.as_deref().is_some_and(|r| !is_external_id(r)) {
        f.push(join(path, "requester_id"), "is not a valid principal id");
    }
    TicketFacts {
        title: f.opt_text(m, path, "title", 500),
        requester_id,
        status: f.opt_text(m, path, "status", 100),
        attributes: f.opt(m, path, "attributes").unwrap_or_default(),
    }
}

/// What `POST /v1/approvals/{id}/decisions` may say: an answer, or stepping out.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionChoice {
    Approve,
    Reject,
    /// Step out of the decision, with a comment, where the process allows it
    /// (`settings.allow_abstain`); not on someone's behalf.
    Abstain,
}

/// A decisions body: an answer, or an abstention.
#[derive(Clone, Debug)]
pub enum DecisionBody {
    Answer(DecisionInput),
    Abstain {
        approver_id: String,
        comment: Option<String>,
    },
}

impl DecisionBody {
    /// Reads the body of `POST /v1/approvals/{id}/decisions`.
    pub fn parse(body: &Value) -> Result<Self, Vec<FieldError>> {
        if body.get("decision").and_then(Value::as_str) != Some("abstain") {
            return DecisionInput::parse(body).map(DecisionBody::Answer);
        }
        let mut answer = body.clone();
        answer["decision"] = Value::from("approve");
        let read = DecisionInput::parse(&answer)?;
        if read.on_behalf_of.is_some() {
            return Err(vec![FieldError {
                field: "on_behalf_of".into(),
                message: "an approver abstains only for themselves".into(),
            }]);
        }
        Ok(DecisionBody::Abstain {
            approver_id: read.approver_id,
            comment: read.comment,
        })
    }
}

/// The body of `POST /v1/approvals/{id}/decisions`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct DecisionInput {
    /// Who is deciding.
    #[schema(example = "u-42")]
    pub approver_id: String,
    #[schema(value_type = DecisionChoice)]
    pub decision: Verdict,
    #[serde(default)]
    pub comment: Option<String>,
    /// The approver this decision is made for, when a substitute or delegate decides.
    #[serde(default)]
    pub on_behalf_of: Option<String>,
}

impl DecisionInput {
    pub fn parse(body: &Value) -> Result<Self, Vec<FieldError>> {
        let mut f = Faults::default();
        let read = (|| {
            let m = f.object(body, "")?;
            f.no_unknown(
                m,
                "",
                &[
                    "approver_id",
                    "decision",
                    "comment",
                    "on_behalf_of",
                    "approval_id",
                ],
            );
            let approver_id: Option<String> = f.req(m, "", "approver_id");
            if approver_id.as_deref().is_some_and(|a| !is_external_id(a)) {
                f.push("approver_id", "is not a valid principal id");
            }
            let decision = match m.get("decision").and_then(Value::as_str) {
                Some("approve") => Some(Verdict::Approve),
                Some("reject") => Some(Verdict::Reject),
                _ => {
                    f.push("decision", "must be approve or reject");
                    None
                }
            };
            let comment = f.opt_text(m, "", "comment", 10_000);
            let on_behalf_of: Option<String> = f.opt(m, "", "on_behalf_of");
            if on_behalf_of.as_deref().is_some_and(|a| !is_external_id(a)) {
                f.push("on_behalf_of", "is not a valid principal id");
            }
            Some(DecisionInput {
                approver_id: approver_id?,
                decision: decision?,
                comment,
                on_behalf_of,
            })
        })();
        f.finish(read)
    }
}
