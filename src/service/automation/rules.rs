//! Rules: what starts an approval when a ticket enters a status, read from bodies, shown,
//! and tried against a ticket without writing anything.

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::automation::{self as q, RuleRow};
use crate::db::processes;
use crate::domain::condition;
use crate::domain::process::read_enum;
use crate::domain::validate::{Faults, FieldError};
use crate::error::{AppError, AppResult};
use crate::service::approvals::{self as svc};
use crate::service::directory::facts;
use crate::service::view::Ticket;

use super::tickets::requester_of;

/// `on_leave` of a rule.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnLeave {
    /// A pending approval the rule started goes on when the ticket leaves the status.
    #[default]
    Keep,
    /// It is cancelled.
    Cancel,
}

impl OnLeave {
    fn as_str(self) -> &'static str {
        match self {
            OnLeave::Keep => "keep",
            OnLeave::Cancel => "cancel",
        }
    }
}

/// The body of `POST /v1/rules` and `PUT /v1/rules/{id}`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct RuleInput {
    #[schema(example = "Laptops over 100")]
    pub name: String,
    /// The process the rule starts.
    pub process_id: String,
    /// The ticket status that runs the rule when a ticket enters it.
    #[schema(example = "new")]
    pub on_status: String,
    /// A CEL expression over `ticket` and `requester`; absent is always true.
    #[schema(
        example = "ticket.attributes.service_subcategory == 'laptops' && ticket.attributes.amount > 100"
    )]
    pub condition: Option<String>,
    /// Rules of a status are tried lowest first, then by name. Default 0.
    #[serde(default)]
    pub priority: i32,
    /// Default true.
    pub enabled: Option<bool>,
    #[serde(default)]
    pub on_leave: OnLeave,
}

impl RuleInput {
    pub fn parse(body: &Value) -> Result<Self, Vec<FieldError>> {
        let mut f = Faults::default();
        let read = (|| {
            let m = f.object(body, "")?;
            f.no_unknown(
                m,
                "",
                &[
                    "name",
                    "process_id",
                    "on_status",
                    "condition",
                    "priority",
                    "enabled",
                    "on_leave",
                ],
            );
            let name = f.text(m, "", "name", 200);
            let process_id: Option<String> = f.req(m, "", "process_id");
            if let Some(p) = &process_id
                && Uuid::parse_str(p).is_err()
            {
                f.push("process_id", "must be a process id (a UUID)");
            }
            let on_status = f.text(m, "", "on_status", 100);
            let condition = condition::read(&mut f, m, "", "condition");
            let priority: i32 = f.opt(m, "", "priority").unwrap_or(0);
            let enabled: Option<bool> = f.opt(m, "", "enabled");
            let on_leave: OnLeave =
                read_enum(&mut f, m, "", "on_leave", &["keep", "cancel"]).unwrap_or_default();
            Some(RuleInput {
                name: name?,
                process_id: process_id?,
                on_status: on_status?,
                condition,
                priority,
                enabled,
                on_leave,
            })
        })();
        f.finish(read)
    }
}

/// A rule as integrators read it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RuleView {
    pub id: String,
    pub name: String,
    pub process_id: String,
    pub on_status: String,
    pub condition: Option<String>,
    pub priority: i32,
    pub enabled: bool,
    pub on_leave: OnLeave,
    /// Increases with every update; the `ETag`.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<RuleRow> for RuleView {
    fn from(r: RuleRow) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name,
            process_id: r.process_id.to_string(),
            on_status: r.on_status,
            condition: r.condition,
            priority: r.priority,
            enabled: r.enabled,
            on_leave: if r.on_leave == "cancel" {
                OnLeave::Cancel
            } else {
                OnLeave::Keep
            },
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The rule row an input describes; its process must be a live process of the tenant.
pub fn rule_row(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    input: &RuleInput,
    now: DateTime<Utc>,
) -> AppResult<RuleRow> {
    let process_id = Uuid::parse_str(&input.process_id)
        .map_err(|_| AppError::invalid_field("process_id", "must be a process id (a UUID)"))?;
    processes::find(conn, tenant, process_id).map_err(|e| match e {
        diesel::result::Error::NotFound => AppError::invalid_field("process_id", "no such process"),
        other => other.into(),
    })?;
    Ok(RuleRow {
        tenant_id: tenant.to_string(),
        id,
        name: input.name.clone(),
        process_id,
        on_status: input.on_status.clone(),
        condition: input.condition.clone(),
        priority: input.priority,
        enabled: input.enabled.unwrap_or(true),
        on_leave: input.on_leave.as_str().to_string(),
        version: 1,
        created_at: now,
        updated_at: now,
    })
}

/// One rule's verdict in a test.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RuleTrial {
    pub id: String,
    pub name: String,
    pub matched: bool,
    /// Why the condition could not be evaluated (the rule then does not match).
    pub error: Option<String>,
}

/// `POST /v1/rules/test`: which rule a ticket entering its status would run.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RulesTest {
    /// The rule that would start an approval; null when none matches.
    pub chosen: Option<String>,
    /// The enabled rules of the ticket's status, in the order they are tried.
    pub rules: Vec<RuleTrial>,
}

/// The body of `POST /v1/rules/test`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct RulesTestInput {
    /// The ticket as a request carries it; its `status` picks the rules.
    pub ticket: Ticket,
}

impl RulesTestInput {
    pub fn parse(body: &Value) -> Result<Self, Vec<FieldError>> {
        let mut f = Faults::default();
        let read = (|| {
            let m = f.object(body, "")?;
            f.no_unknown(m, "", &["ticket"]);
            let ticket = match m.get("ticket") {
                None | Some(Value::Null) => {
                    f.push("ticket", "is required");
                    None
                }
                Some(t) => svc::read_ticket(&mut f, t),
            };
            if let Some(t) = &ticket
                && t.status.as_deref().is_none_or(str::is_empty)
            {
                // An empty status is no status: no rule is ever on it.
                f.push("ticket.status", "is required: it picks the rules to try");
            }
            Some(RulesTestInput { ticket: ticket? })
        })();
        f.finish(read)
    }
}

/// Tries every enabled rule of the ticket's status, in order, writing nothing.
pub fn test(conn: &mut PgConnection, tenant: &str, ticket: &Ticket) -> AppResult<RulesTest> {
    let status = ticket.status.as_deref().unwrap_or_default();
    let requester = requester_of(conn, tenant, ticket)?;
    let facts = facts(ticket, requester.as_ref());
    let mut chosen = None;
    let rules = q::rules_for_status(conn, tenant, status)?
        .into_iter()
        .map(|r| {
            let result = r
                .condition
                .as_deref()
                .map_or(Ok(true), |c| condition::evaluate(c, &facts));
            let matched = result == Ok(true);
            if matched && chosen.is_none() {
                chosen = Some(r.id.to_string());
            }
            RuleTrial {
                id: r.id.to_string(),
                name: r.name,
                matched,
                error: result.err(),
            }
        })
        .collect();
    Ok(RulesTest { chosen, rules })
}
