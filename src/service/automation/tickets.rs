//! Reported tickets: storing what the host reports and, when a ticket enters a status,
//! trying the tenant's rules for it in order (the first whose condition holds starts an
//! approval), in the report's transaction under the ticket's lock.

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::automation::{self as q, TicketRow};
use crate::db::principals;
use crate::domain::condition;
use crate::domain::engine::ApprovalStatus;
use crate::domain::messages;
use crate::domain::validate::{Faults, FieldError};
use crate::error::{AppError, AppResult};
use crate::service::approvals::{self as svc, RequestApproval, read_ticket_facts};
use crate::service::directory::facts;
use crate::service::store::{self, Ctx};
use crate::service::view::{RuleRef, Ticket};

/// The body of `PUT /v1/tickets/{id}`: the ticket as the host has it now.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct TicketReport {
    #[schema(example = "New laptop")]
    pub title: Option<String>,
    /// The principal who asked for the ticket.
    #[schema(example = "u-7")]
    pub requester_id: Option<String>,
    /// The ticket's status now; entering a status runs its rules.
    #[schema(example = "new")]
    pub status: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"service_subcategory": "laptops", "amount": 1800}))]
    pub attributes: Map<String, Value>,
}

impl TicketReport {
    pub fn parse(body: &Value) -> Result<Self, Vec<FieldError>> {
        let mut f = Faults::default();
        let read = (|| {
            let m = f.object(body, "")?;
            f.no_unknown(m, "", &["title", "requester_id", "status", "attributes"]);
            let facts = read_ticket_facts(&mut f, m, "");
            Some(TicketReport {
                title: facts.title,
                requester_id: facts.requester_id,
                status: facts.status,
                attributes: facts.attributes,
            })
        })();
        f.finish(read)
    }
}

/// A ticket as signoff holds it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TicketState {
    #[schema(example = "T-1001")]
    pub id: String,
    pub title: Option<String>,
    pub requester_id: Option<String>,
    pub status: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: Value,
    pub updated_at: DateTime<Utc>,
}

impl From<&TicketRow> for TicketState {
    fn from(r: &TicketRow) -> Self {
        Self {
            id: r.id.clone(),
            title: r.title.clone(),
            requester_id: r.requester_id.clone(),
            status: r.status.clone(),
            attributes: r.attributes.clone(),
            updated_at: r.updated_at,
        }
    }
}

/// The ticket's latest approval, as a badge shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TicketApproval {
    pub id: String,
    pub state: ApprovalStatus,
    /// One line for a badge, in the requester's language: "Awaiting approval from Grace
    /// Hopper", "Approved by Grace Hopper", "Rejected by …", "Cancelled".
    #[schema(example = "Awaiting approval from Grace Hopper")]
    pub summary: String,
    /// The rule that started it, if one did.
    pub rule: Option<RuleRef>,
}

/// `GET /v1/tickets/{id}`: the ticket and its latest approval.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TicketView {
    pub ticket: TicketState,
    /// The latest approval on the ticket; null when it has none.
    pub approval: Option<TicketApproval>,
}

/// What a rule did to the ticket's approvals.
#[derive(Clone, Copy, Debug, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EffectAction {
    /// The rule started this approval.
    Started,
    /// This rule-started approval was cancelled because the ticket re-entered a rule's status.
    Superseded,
    /// This rule-started approval was cancelled because the ticket left its status
    /// (`on_leave: cancel`).
    Cancelled,
    /// The rule matched but no approval could start; `problem` says why.
    NotStarted,
}

/// Why a matching rule could not start an approval.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EffectProblem {
    /// The code a `POST /v1/approvals` would have answered (`approval_pending`,
    /// `process_disabled`, `no_approvers`, `not_enough_approvers`…).
    pub code: String,
    pub detail: String,
}

/// One thing a report did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TicketEffect {
    pub rule_id: String,
    pub approval_id: Option<String>,
    pub action: EffectAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<EffectProblem>,
}

/// `PUT /v1/tickets/{id}`: the ticket, its latest approval, and what the report did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TicketAnswer {
    pub ticket: TicketState,
    pub approval: Option<TicketApproval>,
    pub effects: Vec<TicketEffect>,
}

fn as_ticket(row: &TicketRow) -> Ticket {
    Ticket {
        id: row.id.clone(),
        title: row.title.clone(),
        requester_id: row.requester_id.clone(),
        status: row.status.clone(),
        attributes: row.attributes.as_object().cloned().unwrap_or_default(),
    }
}

/// The rule id in a rule-started approval's `requested_by`.
fn rule_of(requested_by: Option<&str>) -> Option<Uuid> {
    requested_by
        .and_then(|r| r.strip_prefix("rule:"))
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// `PUT /v1/tickets/{id}`: stores the ticket and runs what entering or leaving a status does.
pub fn report(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
    input: &TicketReport,
    ctx: &Ctx,
) -> AppResult<TicketAnswer> {
    let now = ctx.now;
    let old = q::lock(conn, tenant, id)?;
    let row = q::upsert(
        conn,
        &TicketRow {
            tenant_id: tenant.to_string(),
            id: id.to_string(),
            title: input.title.clone(),
            requester_id: input.requester_id.clone(),
            status: input.status.clone(),
            attributes: Value::Object(input.attributes.clone()),
            created_at: old.as_ref().map_or(now, |o| o.created_at),
            updated_at: now,
        },
    )?;
    let before = old.as_ref().and_then(|o| o.status.clone());
    let mut effects = Vec::new();
    if before != row.status {
        if let Some(left) = &before {
            leave(conn, tenant, &row, left, ctx, &mut effects)?;
        }
        if let Some(entered) = &row.status {
            enter(conn, tenant, &row, entered, ctx, &mut effects)?;
        }
    }
    let view = ticket_view(conn, tenant, row)?;
    Ok(TicketAnswer {
        ticket: view.ticket,
        approval: view.approval,
        effects,
    })
}

/// Cancels the pending approvals started by `on_leave: cancel` rules of the status left.
fn leave(
    conn: &mut PgConnection,
    tenant: &str,
    ticket: &TicketRow,
    left: &str,
    ctx: &Ctx,
    effects: &mut Vec<TicketEffect>,
) -> AppResult<()> {
    let pending = q::pending_rule_approvals(conn, tenant, &ticket.id)?;
    let ids: Vec<Uuid> = pending
        .iter()
        .filter_map(|a| rule_of(a.requested_by.as_deref()))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let rules = q::rules_by_id(conn, tenant, &ids)?;
    for approval in pending {
        let Some(rule) = rule_of(approval.requested_by.as_deref())
            .and_then(|r| rules.iter().find(|x| x.id == r))
        else {
            continue;
        };
        if rule.on_leave != "cancel" || rule.on_status != left {
            continue;
        }
        let reason = format!(
            "ticket {} left status {left:?} (rule {:?}, on_leave: cancel)",
            ticket.id, rule.name
        );
        let by = format!("rule:{}", rule.id);
        svc::cancel(conn, tenant, approval.id, &reason, Some(&by), ctx)?;
        effects.push(TicketEffect {
            rule_id: rule.id.to_string(),
            approval_id: Some(approval.id.to_string()),
            action: EffectAction::Cancelled,
            problem: None,
        });
    }
    Ok(())
}

/// Tries the status's rules in order; the first that holds supersedes the ticket's pending
/// rule-started approvals and starts its own.
fn enter(
    conn: &mut PgConnection,
    tenant: &str,
    row: &TicketRow,
    entered: &str,
    ctx: &Ctx,
    effects: &mut Vec<TicketEffect>,
) -> AppResult<()> {
    let rules = q::rules_for_status(conn, tenant, entered)?;
    if rules.is_empty() {
        return Ok(());
    }
    let ticket = as_ticket(row);
    let requester = requester_of(conn, tenant, &ticket)?;
    let facts = facts(&ticket, requester.as_ref());
    let Some(rule) = rules.into_iter().find(|r| {
        r.condition
            .as_deref()
            .is_none_or(|c| condition::evaluate(c, &facts) == Ok(true))
    }) else {
        return Ok(());
    };
    let request = RequestApproval {
        ticket,
        process_id: Some(rule.process_id.to_string()),
        approvers: None,
        require: None,
        request_from: None,
        selected_approvers: Vec::new(),
        description: None,
        requested_by: Some(format!("rule:{}", rule.id)),
        supersede: false,
        on_approved_status: None,
        on_rejected_status: None,
        on_started_status: None,
        on_cancelled_status: None,
        on_withdrawn_status: None,
        settings: None,
        timeout: None,
        reminders: None,
        templates: None,
        rule: Some(RuleRef {
            id: rule.id.to_string(),
            name: rule.name.clone(),
        }),
    };
    // A savepoint: when the new approval cannot start, the old ones stay as they were.
    let started = conn.transaction::<_, SavepointError, _>(|c| {
        let mut superseded = Vec::new();
        for old in q::pending_rule_approvals(c, tenant, &row.id)? {
            let reason = format!(
                "superseded: ticket {} entered status {entered:?} again (rule {:?})",
                row.id, rule.name
            );
            svc::cancel(
                c,
                tenant,
                old.id,
                &reason,
                request.requested_by.as_deref(),
                ctx,
            )?;
            superseded.push(old);
        }
        match svc::request(c, tenant, &request, ctx) {
            Ok(loaded) => Ok((superseded, loaded)),
            Err(e) if is_refusal(&e) => Err(SavepointError::Refused(e)),
            Err(e) => Err(SavepointError::Failed(e)),
        }
    });
    match started {
        Ok((superseded, loaded)) => {
            for old in superseded {
                effects.push(TicketEffect {
                    rule_id: rule_of(old.requested_by.as_deref())
                        .map_or_else(String::new, |r| r.to_string()),
                    approval_id: Some(old.id.to_string()),
                    action: EffectAction::Superseded,
                    problem: None,
                });
            }
            effects.push(TicketEffect {
                rule_id: rule.id.to_string(),
                approval_id: Some(loaded.row.id.to_string()),
                action: EffectAction::Started,
                problem: None,
            });
        }
        Err(SavepointError::Refused(e)) => {
            let (code, detail) = e
                .fault()
                .map(|f| (f.code.clone(), f.detail.clone()))
                .unwrap_or_default();
            tracing::warn!(rule = %rule.id, ticket = %row.id, code = %code, "rule matched but no approval started");
            effects.push(TicketEffect {
                rule_id: rule.id.to_string(),
                approval_id: None,
                action: EffectAction::NotStarted,
                problem: Some(EffectProblem { code, detail }),
            });
        }
        Err(SavepointError::Failed(e)) => return Err(e),
    }
    Ok(())
}

/// A refusal of the request (the host's configuration), not a failure of ours.
fn is_refusal(e: &AppError) -> bool {
    e.fault().is_some()
}

/// What rolls the savepoint back: a refusal to report, or a failure to pass on.
enum SavepointError {
    Refused(AppError),
    Failed(AppError),
}

impl From<diesel::result::Error> for SavepointError {
    fn from(e: diesel::result::Error) -> Self {
        SavepointError::Failed(e.into())
    }
}

impl From<AppError> for SavepointError {
    fn from(e: AppError) -> Self {
        SavepointError::Failed(e)
    }
}

pub(super) fn requester_of(
    conn: &mut PgConnection,
    tenant: &str,
    ticket: &Ticket,
) -> AppResult<Option<crate::db::models::PrincipalRow>> {
    Ok(match &ticket.requester_id {
        Some(r) => principals::find_many(conn, tenant, std::slice::from_ref(r))?
            .into_iter()
            .next(),
        None => None,
    })
}

/// `GET /v1/tickets/{id}`.
pub fn find(conn: &mut PgConnection, tenant: &str, id: &str) -> AppResult<TicketView> {
    let row = q::find(conn, tenant, id)?.ok_or_else(|| AppError::not_found("ticket"))?;
    ticket_view(conn, tenant, row)
}

fn ticket_view(conn: &mut PgConnection, tenant: &str, row: TicketRow) -> AppResult<TicketView> {
    let approval = match q::latest_approval(conn, tenant, &row.id)? {
        Some(a) => {
            let loaded = store::load(conn, tenant, a.id, false)?;
            let locale = requester_of(conn, tenant, &as_ticket(&row))?
                .map_or_else(|| "en".to_string(), |p| p.locale);
            Some(TicketApproval {
                id: loaded.row.id.to_string(),
                state: loaded.stored.approval.status,
                summary: messages::summary(&locale, &store::badge(&loaded)),
                rule: loaded.stored.rule.clone(),
            })
        }
        None => None,
    };
    Ok(TicketView {
        ticket: TicketState::from(&row),
        approval,
    })
}
