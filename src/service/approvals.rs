//! Approval flows: resolve approvers, run the engine, and store the new state, its tasks and
//! its events in the caller's transaction. A fixed number of queries per command, whatever the
//! size of the process.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::directory::Directory;
use super::links::{self, Recipient};
use super::view::{
    AdminAction, ApprovalView, RuleRef, StoredEngine, Ticket, approval_view, status_str,
    task_from_row, task_row,
};
use crate::db::models::{ApprovalRow, NewEvent, PrincipalRow};
use crate::db::{approvals as q, principals, processes};
use crate::domain::engine::{
    Approval, ApprovalStatus, Effect, EngineError, GroupPlan, Parties, Policy, StagePlan,
    TaskState, Verdict,
};
use crate::domain::process::{
    Combine, GroupDef, ProcessDefinition, ProcessSettings, Requirement, Rule, Source, StageDef,
    SubstituteSource, read_requirement,
};
use crate::domain::validate::{Faults, FieldError, index, is_external_id, join};
use crate::error::{ApiError, ApiResult};

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
            if process_id.is_some()
                && (on_approved_status.is_some() || on_rejected_status.is_some())
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
                rule: None,
            })
        })();
        f.finish(read)
    }
}

fn ids_ok(f: &mut Faults, ids: &[String], path: &str) {
    for (i, id) in ids.iter().enumerate() {
        if !is_external_id(id) {
            f.push(index(path, i), "is not a valid principal id");
        }
    }
}

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
    let title = f.opt_text(m, "ticket", "title", 500);
    let requester_id: Option<String> = f.opt(m, "ticket", "requester_id");
    let status = f.opt_text(m, "ticket", "status", 100);
    let attributes: Option<serde_json::Map<String, Value>> = f.opt(m, "ticket", "attributes");
    Some(Ticket {
        id: id?,
        title,
        requester_id,
        status,
        attributes: attributes.unwrap_or_default(),
    })
}

/// The body of `POST /v1/approvals/{id}/decisions`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct DecisionInput {
    /// Who is deciding.
    #[schema(example = "u-42")]
    pub approver_id: String,
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

/// An approval loaded for a command.
pub struct Loaded {
    pub row: ApprovalRow,
    pub stored: StoredEngine,
    pub definition: ProcessDefinition,
    original: Vec<crate::domain::engine::Task>,
    /// The view as JSON, when [`save`] built it for the events and nothing changed since.
    saved_view: Option<Value>,
}

impl Loaded {
    pub fn view(&self) -> ApprovalView {
        approval_view(&self.row, &self.stored)
    }

    /// The view as JSON: the one the events of the last [`save`] carry, without building it
    /// again.
    pub fn view_json(&self) -> ApiResult<Value> {
        match &self.saved_view {
            Some(v) => Ok(v.clone()),
            None => serde_json::to_value(self.view()).map_err(|e| internal("view", e)),
        }
    }
}

fn engine_error(e: EngineError) -> ApiError {
    use actix_web::http::StatusCode as S;
    let status = match e {
        EngineError::NoApprovers
        | EngineError::NotEnoughApprovers { .. }
        | EngineError::CommentRequired => S::UNPROCESSABLE_ENTITY,
        EngineError::NotAnApprover | EngineError::DoubleAnswer | EngineError::SelfApproval => {
            S::FORBIDDEN
        }
        EngineError::Closed | EngineError::AlreadyDecided | EngineError::StageNotCurrent => {
            S::CONFLICT
        }
    };
    ApiError::new(status, e.code(), e.to_string())
}

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("{what}: {e}"))
}

/// Loads an approval with its tasks, locking it when it will change.
pub fn load(conn: &mut PgConnection, tenant: &str, id: Uuid, lock: bool) -> ApiResult<Loaded> {
    let row = if lock {
        q::find_for_update(conn, tenant, id)
    } else {
        q::find(conn, tenant, id)
    }
    .map_err(ApiError::missing("approval"))?;
    let tasks = q::tasks_of_one(conn, tenant, id)?;
    assemble(row, tasks.iter().map(task_from_row).collect())
}

fn assemble(row: ApprovalRow, tasks: Vec<crate::domain::engine::Task>) -> ApiResult<Loaded> {
    let mut stored: StoredEngine =
        StoredEngine::deserialize(&row.engine).map_err(|e| internal("stored engine", e))?;
    let definition: ProcessDefinition = ProcessDefinition::deserialize(&row.definition)
        .map_err(|e| internal("stored definition", e))?;
    stored.approval.tasks = tasks.clone();
    Ok(Loaded {
        row,
        stored,
        definition,
        original: tasks,
        saved_view: None,
    })
}

/// Loads several approvals for a list, in two queries.
pub fn load_many(
    conn: &mut PgConnection,
    tenant: &str,
    rows: Vec<ApprovalRow>,
) -> ApiResult<Vec<ApprovalView>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut by_approval: HashMap<Uuid, Vec<crate::domain::engine::Task>> = HashMap::new();
    for t in q::tasks_of(conn, tenant, &ids)? {
        by_approval
            .entry(t.approval_id)
            .or_default()
            .push(task_from_row(&t));
    }
    rows.into_iter()
        .map(|r| {
            let tasks = by_approval.remove(&r.id).unwrap_or_default();
            assemble(r, tasks).map(|l| l.view())
        })
        .collect()
}

/// What every command needs besides its input: the time, and where links point.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub now: DateTime<Utc>,
    /// Base of approver links, from SIGNOFF_PUBLIC_URL, without a trailing slash.
    pub public_url: String,
}

impl Ctx {
    pub fn new(public_url: &url::Url) -> Self {
        Self {
            now: super::now(),
            public_url: public_url.as_str().trim_end_matches('/').to_string(),
        }
    }
}

/// Extra facts a command adds to its events.
#[derive(Default)]
pub struct EventContext {
    /// The caller-supplied detail for admin events (reason, actor).
    pub admin: Option<AdminAction>,
    /// Emit `approval.reminder` for these stages' pending approvers.
    pub remind: bool,
    /// Emit `approval.escalated` to the substitutes of pending approvers.
    pub escalate: bool,
}

/// Stores what a command did: changed tasks, the approval row, and one event per effect.
pub fn save(
    conn: &mut PgConnection,
    loaded: &mut Loaded,
    effects: &[Effect],
    extra: &EventContext,
    ctx: &Ctx,
) -> ApiResult<()> {
    let now = ctx.now;
    let tenant = loaded.row.tenant_id.clone();
    let id = loaded.row.id;
    // Tasks in the order they are read back (stage, approver), so an answer built now equals a
    // later read.
    loaded
        .stored
        .approval
        .tasks
        .sort_by(|a, b| (a.stage, &a.approver_id).cmp(&(b.stage, &b.approver_id)));
    // Tasks handed to a delegate leave their old key behind. Keyed lookups: a stage of
    // thousands must not compare every task with every other.
    let now_keys: HashMap<(usize, &str), &crate::domain::engine::Task> = loaded
        .stored
        .approval
        .tasks
        .iter()
        .map(|t| ((t.stage, t.approver_id.as_str()), t))
        .collect();
    let before: HashMap<(usize, &str), &crate::domain::engine::Task> = loaded
        .original
        .iter()
        .map(|t| ((t.stage, t.approver_id.as_str()), t))
        .collect();
    let gone: Vec<(i32, String)> = loaded
        .original
        .iter()
        .filter(|o| !now_keys.contains_key(&(o.stage, o.approver_id.as_str())))
        .map(|o| (o.stage as i32, o.approver_id.clone()))
        .collect();
    let changed: Vec<_> = loaded
        .stored
        .approval
        .tasks
        .iter()
        .filter(|t| before.get(&(t.stage, t.approver_id.as_str())) != Some(t))
        .map(|t| task_row(&tenant, id, t))
        .collect();
    q::delete_tasks(conn, &tenant, id, &gone)?;

    let engine = &loaded.stored.approval;
    loaded.row.state = status_str(engine.status);
    loaded.row.current_stage = engine.current_stage.map(|s| s as i32);
    if let Some(o) = &engine.outcome {
        loaded.row.decided_at = Some(o.decided_at);
        loaded.row.status_to_set = match o.decision {
            ApprovalStatus::Approved => loaded.definition.on_approved_status.clone(),
            ApprovalStatus::Rejected => loaded.definition.on_rejected_status.clone(),
            _ => None,
        };
    }
    loaded.row.updated_at = now;

    super::time::schedule_started(conn, loaded, effects, ctx)?;
    let events = build_events(conn, loaded, effects, extra, ctx)?;
    loaded.row.engine = engine_json(&loaded.stored)?;
    q::save(conn, &loaded.row, &changed, &events)?;
    loaded.original = loaded.stored.approval.tasks.clone();
    Ok(())
}

fn engine_json(stored: &StoredEngine) -> ApiResult<Value> {
    let mut v = serde_json::to_value(stored).map_err(|e| internal("engine", e))?;
    // Tasks live in approval_tasks; keeping a copy here would only drift.
    if let Some(o) = v.as_object_mut() {
        o.insert("tasks".into(), json!([]));
    }
    Ok(v)
}

/// The principals to notify for a stage, with their details, in one query.
/// Issues links to the approvers of `stage` and builds the event's `recipients`, in two
/// queries whatever their number.
fn notify(
    conn: &mut PgConnection,
    loaded: &Loaded,
    stage: usize,
    ids: &[String],
    ctx: &Ctx,
) -> ApiResult<Vec<Value>> {
    let rows = principals::find_many(conn, &loaded.row.tenant_id, ids)?;
    let by_id: HashMap<&str, &PrincipalRow> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let recipients: Vec<Recipient<'_>> = ids
        .iter()
        .filter_map(|id| by_id.get(id.as_str()))
        .map(|p| Recipient {
            principal: p,
            on_behalf_of: Vec::new(),
        })
        .collect();
    links::issue(conn, loaded, stage, &recipients, ctx)
}

fn event_type(effect: &Effect) -> Option<&'static str> {
    Some(match effect {
        Effect::StageStarted { .. } => "approval.requested",
        Effect::DecisionRecorded { .. } | Effect::AnswerReused { .. } => {
            "approval.decision_recorded"
        }
        Effect::StageAdvanced { .. } => "approval.stage_advanced",
        Effect::Finished { outcome } => match outcome.decision {
            ApprovalStatus::Approved => "approval.approved",
            _ => "approval.rejected",
        },
        Effect::Cancelled { .. } => "approval.cancelled",
        Effect::StageEnded { .. }
        | Effect::StageSkipped { .. }
        | Effect::TasksSuperseded { .. } => return None,
    })
}

/// Recipients one event carries; more are paged over several events (`data.recipients_page`).
pub const RECIPIENTS_PER_EVENT: usize = 100;
/// Tasks one stage lists in an event's view; the rest are counted in `tasks_omitted` (the
/// approval itself, `GET /v1/approvals/{id}`, lists them all).
pub const TASKS_PER_STAGE_IN_EVENTS: usize = 100;

/// The view as events carry it: a stage of thousands lists its first tasks and counts the rest.
fn event_view(full: &Value) -> Value {
    let big = full["stages"].as_array().is_some_and(|s| {
        s.iter().any(|st| {
            st["tasks"]
                .as_array()
                .is_some_and(|t| t.len() > TASKS_PER_STAGE_IN_EVENTS)
        })
    });
    if !big {
        return full.clone();
    }
    let mut v = full.clone();
    if let Some(stages) = v["stages"].as_array_mut() {
        for stage in stages {
            if let Some(tasks) = stage["tasks"].as_array_mut()
                && tasks.len() > TASKS_PER_STAGE_IN_EVENTS
            {
                let omitted = tasks.len() - TASKS_PER_STAGE_IN_EVENTS;
                tasks.truncate(TASKS_PER_STAGE_IN_EVENTS);
                stage["tasks_omitted"] = json!(omitted);
            }
        }
    }
    v
}

fn build_events(
    conn: &mut PgConnection,
    loaded: &mut Loaded,
    effects: &[Effect],
    extra: &EventContext,
    ctx: &Ctx,
) -> ApiResult<Vec<NewEvent>> {
    let now = ctx.now;
    let full = serde_json::to_value(loaded.view()).map_err(|e| internal("view", e))?;
    let view = event_view(&full);
    loaded.saved_view = Some(full);
    let plan_names: Vec<String> = loaded
        .stored
        .approval
        .plan
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let mut out = Vec::new();
    let mut push = |loaded: &mut Loaded,
                    kind: &str,
                    detail: Value,
                    recipients: Option<Vec<Value>>| {
        // Thousands of recipients go out as several events of the same type, each with a
        // page of them, so no event or webhook body grows with the size of a role.
        let total = recipients.as_ref().map_or(0, Vec::len);
        let pages: Vec<Option<Vec<Value>>> = match recipients {
            Some(r) if r.len() > RECIPIENTS_PER_EVENT => r
                .chunks(RECIPIENTS_PER_EVENT)
                .map(|c| Some(c.to_vec()))
                .collect(),
            other => vec![other],
        };
        let of = pages.len();
        for (page, recipients) in pages.into_iter().enumerate() {
            loaded.row.last_sequence += 1;
            let id = Uuid::now_v7();
            let mut data = json!({
                "approval": view,
                "ticket": {"id": loaded.row.ticket_id, "status_to_set": loaded.row.status_to_set},
                "sequence": loaded.row.last_sequence,
                "detail": detail,
            });
            if let Some(r) = recipients {
                data["recipients"] = Value::Array(r);
            }
            if of > 1 {
                data["recipients_page"] = json!({"page": page + 1, "of": of, "total": total});
            }
            out.push(NewEvent {
                tenant_id: loaded.row.tenant_id.clone(),
                id,
                approval_id: Some(loaded.row.id),
                sequence: loaded.row.last_sequence,
                kind: kind.to_string(),
                payload: json!({
                    "id": format!("evt_{}", id.simple()),
                    "type": kind,
                    "created_at": now,
                    "tenant": loaded.row.tenant_id,
                    "data": data,
                }),
                created_at: now,
            });
        }
    };
    for effect in effects {
        let Some(kind) = event_type(effect) else {
            continue;
        };
        let (detail, recips) = match effect {
            Effect::StageStarted { stage } => {
                let ids: Vec<String> = loaded
                    .stored
                    .approval
                    .tasks
                    .iter()
                    .filter(|t| {
                        t.stage == *stage && t.state == crate::domain::engine::TaskState::Pending
                    })
                    .map(|t| t.approver_id.clone())
                    .collect();
                if ids.is_empty() {
                    // Earlier answers decided this stage as it started: nobody to ask.
                    continue;
                }
                let r = notify(conn, loaded, *stage, &ids, ctx)?;
                let notes = loaded
                    .stored
                    .approval
                    .plan
                    .get(*stage)
                    .map(|p| p.notes.clone());
                (
                    json!({"stage": stage, "stage_name": plan_names.get(*stage), "notes": notes}),
                    Some(r),
                )
            }
            Effect::DecisionRecorded {
                stage,
                approver_id,
                actor_id,
                verdict,
                comment,
            } => (
                json!({"stage": stage, "approver_id": approver_id, "decided_by": actor_id,
                       "decision": verdict, "comment": comment,
                       "on_behalf_of": (actor_id != approver_id).then_some(approver_id)}),
                None,
            ),
            Effect::AnswerReused {
                stage,
                approver_id,
                verdict,
            } => (
                json!({"stage": stage, "approver_id": approver_id, "decision": verdict, "reused": true}),
                None,
            ),
            Effect::StageAdvanced { from, to } => (
                json!({"from": from, "to": to, "from_name": plan_names.get(*from), "to_name": plan_names.get(*to)}),
                None,
            ),
            Effect::Finished { outcome } => (
                json!({"decision": outcome.decision, "reason": outcome.reason,
                       "status_to_set": loaded.row.status_to_set, "admin": extra.admin}),
                None,
            ),
            Effect::Cancelled { reason, actor_id } => {
                (json!({"reason": reason, "actor_id": actor_id}), None)
            }
            _ => continue,
        };
        push(loaded, kind, detail, recips);
    }
    if extra.remind {
        let ids = loaded.stored.approval.pending_approvers();
        let stage = loaded.stored.approval.current_stage;
        let r = match stage {
            Some(stage) => notify(conn, loaded, stage, &ids, ctx)?,
            None => vec![],
        };
        push(
            loaded,
            "approval.reminder",
            json!({"stage": stage}),
            Some(r),
        );
    }
    if extra.escalate
        && let Some(stage) = loaded.stored.approval.current_stage
    {
        let r = super::time::escalation_recipients(conn, loaded, stage, ctx)?;
        if !r.is_empty() {
            push(
                loaded,
                "approval.escalated",
                json!({"stage": stage}),
                Some(r),
            );
        }
    }
    Ok(out)
}

/// The definition an ad-hoc request runs: one stage, one group.
fn ad_hoc_definition(input: &RequestApproval, approvers: &[String]) -> ProcessDefinition {
    ProcessDefinition {
        name: "Ad-hoc approval".into(),
        description: None,
        expires_at: None,
        on_approved_status: input.on_approved_status.clone(),
        on_rejected_status: input.on_rejected_status.clone(),
        settings: ProcessSettings::default(),
        stages: vec![StageDef {
            name: "Approval".into(),
            combine: Combine::All,
            groups: vec![GroupDef {
                name: "approvers".into(),
                source: Source::Principals {
                    ids: approvers.to_vec(),
                },
                require: input.require.clone().unwrap_or(Requirement {
                    rule: Rule::Count { count: 1 },
                    reject_at: None,
                }),
            }],
            timeout: None,
            reminders: None,
            substitutes: None,
            when: None,
        }],
        templates: None,
    }
}

/// Refuses a request whose own words are wrong: principals it names that do not exist or are
/// inactive, a selection the process does not ask for (or a missing one), a `request_from`
/// that names no group of an `any` stage.
fn check_request(
    conn: &mut PgConnection,
    tenant: &str,
    def: &ProcessDefinition,
    input: &RequestApproval,
    ad_hoc: bool,
) -> ApiResult<()> {
    let uses_selection = def
        .stages
        .iter()
        .flat_map(|s| &s.groups)
        .any(|g| matches!(g.source, Source::RequesterSelected));
    let (path, ids) = if ad_hoc {
        (
            "approvers",
            input
                .approvers
                .as_ref()
                .unwrap_or(&input.selected_approvers),
        )
    } else {
        ("selected_approvers", &input.selected_approvers)
    };
    let known: HashMap<String, PrincipalRow> = principals::find_many(conn, tenant, ids)?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut faults = Faults::default();
    for (i, id) in ids.iter().enumerate() {
        match known.get(id) {
            None => faults.push(
                index(path, i),
                format!("no principal {id:?} in the directory"),
            ),
            Some(p) if !p.active => {
                faults.push(index(path, i), format!("principal {id:?} is inactive"))
            }
            _ => {}
        }
    }
    if uses_selection && input.selected_approvers.is_empty() {
        faults.push(
            "selected_approvers",
            "the process asks the requester to select approvers",
        );
    }
    if !uses_selection && !input.selected_approvers.is_empty() && !ad_hoc {
        faults.push(
            "selected_approvers",
            "the process has no group chosen at request time",
        );
    }
    if let Some(from) = &input.request_from {
        let ok = def
            .stages
            .iter()
            .any(|s| s.combine == Combine::Any && s.groups.iter().any(|g| &g.name == from));
        if !ok {
            faults.push(
                "request_from",
                "must name a group of a stage approved by `any` group",
            );
        }
    }
    if faults.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(faults.errors))
    }
}

/// The stages of a new approval, not seated yet: the engine seats each when it starts.
/// `request_from` narrows the `any` stages that hold the named group to that group.
pub fn unseated_plan(def: &ProcessDefinition, request_from: Option<&str>) -> Vec<StagePlan> {
    def.stages
        .iter()
        .map(|stage| {
            let narrowed = request_from.filter(|from| {
                stage.combine == Combine::Any && stage.groups.iter().any(|g| g.name == *from)
            });
            StagePlan::unseated(
                stage.name.clone(),
                stage.combine,
                stage
                    .groups
                    .iter()
                    .map(|g| {
                        GroupPlan::unseated(
                            g.name.clone(),
                            g.require.clone(),
                            narrowed.is_none_or(|from| from == g.name),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Maps what the engine refused at request time to the caller's fault.
fn refused_request(e: EngineError, def: &ProcessDefinition) -> ApiError {
    match e {
        EngineError::NoApprovers => ApiError::unprocessable(
            "no_approvers",
            "nobody can be asked: every stage resolved to no approver (the requester and \
             requested_by are removed unless the process allows self-approval)",
        ),
        EngineError::NotEnoughApprovers { stage, group } => {
            let s = def.stages.get(stage);
            let g = s.and_then(|s| s.groups.get(group));
            let message = format!(
                "stage {:?}, group {:?} has fewer members than its count requires \
                 (settings.when_short is refuse)",
                s.map_or("", |s| s.name.as_str()),
                g.map_or("", |g| g.name.as_str()),
            );
            ApiError::unprocessable("not_enough_approvers", message.clone()).with(
                "errors",
                json!([{"field": format!("stages[{stage}].groups[{group}]"), "message": message}]),
            )
        }
        other => engine_error(other),
    }
}

/// The process a request runs: id, name and the version it is pinned to.
type Pinned = (Uuid, String, i32);

/// The definition a request runs (its process's current version, or the ad-hoc one) and the
/// process it came from.
fn definition_for(
    conn: &mut PgConnection,
    tenant: &str,
    input: &RequestApproval,
    now: DateTime<Utc>,
) -> ApiResult<(ProcessDefinition, Option<Pinned>)> {
    Ok(match &input.process_id {
        Some(pid) => {
            let unknown = || ApiError::invalid_field("process_id", "no such process");
            let id = Uuid::parse_str(pid).map_err(|_| unknown())?;
            let (row, version) = processes::find(conn, tenant, id).map_err(|e| match e {
                diesel::result::Error::NotFound => unknown(),
                other => other.into(),
            })?;
            if !row.is_enabled(now) {
                return Err(ApiError::conflict(
                    "process_disabled",
                    "the process is disabled (expired or switched off); restore it first",
                ));
            }
            let def: ProcessDefinition = ProcessDefinition::deserialize(&version.definition)
                .map_err(|e| internal("stored definition", e))?;
            (def, Some((row.id, row.name, version.version)))
        }
        None => {
            let approvers = input.approvers.clone().unwrap_or_default();
            (ad_hoc_definition(input, &approvers), None)
        }
    })
}

/// `POST /v1/approvals`: resolves approvers, enforces one pending approval per ticket, starts
/// the engine and stores everything in the caller's transaction.
pub fn request(
    conn: &mut PgConnection,
    tenant: &str,
    input: &RequestApproval,
    ctx: &Ctx,
) -> ApiResult<Loaded> {
    let now = ctx.now;
    let (definition, process) = definition_for(conn, tenant, input, now)?;

    q::lock_ticket(conn, tenant, &input.ticket.id)?;
    super::automation::remember(conn, tenant, &input.ticket, now)?;
    check_request(conn, tenant, &definition, input, process.is_none())?;
    let exclusive = definition.settings.one_active_per_ticket;

    let pending = q::pending_on_ticket(conn, tenant, &input.ticket.id)?;
    let blocking: Vec<ApprovalRow> = pending
        .into_iter()
        .filter(|p| exclusive || p.exclusive)
        .collect();
    let id = Uuid::now_v7();
    if let Some(first) = blocking.first() {
        if !input.supersede {
            return Err(ApiError::conflict(
                "approval_pending",
                format!(
                    "ticket {} already has a pending approval ({}); decide or cancel it, or request with \"supersede\": true",
                    input.ticket.id, first.id
                ),
            )
            .with("pending_approval_id", first.id.to_string()));
        }
        for row in blocking {
            let tasks = q::tasks_of_one(conn, tenant, row.id)?;
            let mut old = assemble(row, tasks.iter().map(task_from_row).collect())?;
            let reason = format!("superseded by approval {id}");
            let effects = old
                .stored
                .approval
                .cancel(&reason, input.requested_by.as_deref(), now)
                .map_err(engine_error)?;
            old.stored.closed_by = Some(AdminAction {
                action: "supersede".into(),
                reason,
                actor_id: input.requested_by.clone(),
                at: now,
            });
            save(conn, &mut old, &effects, &EventContext::default(), ctx)?;
        }
    }

    let parties = Parties {
        requester: input.ticket.requester_id.clone(),
        requested_by: input.requested_by.clone(),
    };
    let plan = unseated_plan(&definition, input.request_from.as_deref());
    let mut directory = Directory::new(
        conn,
        tenant,
        &definition,
        &input.ticket,
        &input.selected_approvers,
        now,
    );
    let started = Approval::start(
        plan,
        Policy::from(&definition.settings),
        parties,
        now,
        &mut directory,
    );
    let names = directory.finish()?;
    let (approval, effects) = started.map_err(|e| refused_request(e, &definition))?;
    let stored = StoredEngine {
        approval,
        closed_by: None,
        deadlines: vec![],
        delegated: vec![],
        names,
        selected: input.selected_approvers.clone(),
        rule: input.rule.clone(),
    };
    let row = ApprovalRow {
        tenant_id: tenant.to_string(),
        id,
        ticket_id: input.ticket.id.clone(),
        ticket: serde_json::to_value(&input.ticket).map_err(|e| internal("ticket", e))?,
        process_id: process.as_ref().map(|p| p.0),
        process_version: process.as_ref().map(|p| p.2),
        process_name: process.as_ref().map(|p| p.1.clone()),
        definition: serde_json::to_value(&definition).map_err(|e| internal("definition", e))?,
        state: "pending".into(),
        engine: json!({}),
        current_stage: None,
        exclusive,
        description: input.description.clone(),
        requested_by: input.requested_by.clone(),
        status_to_set: None,
        decided_at: None,
        last_sequence: 0,
        created_at: now,
        updated_at: now,
    };
    let mut loaded = Loaded {
        row,
        stored,
        definition,
        original: vec![],
        saved_view: None,
    };
    loaded.row.engine = engine_json(&loaded.stored)?;
    q::insert(conn, &loaded.row)?;
    save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok(loaded)
}

/// `POST /v1/approvals/preview`: the view a request would start with, every stage resolved as
/// if it started now, and notes on what would be skipped, removed or refused. Reads only.
pub fn preview(
    conn: &mut PgConnection,
    tenant: &str,
    input: &RequestApproval,
    ctx: &Ctx,
) -> ApiResult<(ApprovalView, Vec<String>)> {
    let now = ctx.now;
    let (definition, process) = definition_for(conn, tenant, input, now)?;
    check_request(conn, tenant, &definition, input, process.is_none())?;
    let exclusive = definition.settings.one_active_per_ticket;
    let parties = Parties {
        requester: input.ticket.requester_id.clone(),
        requested_by: input.requested_by.clone(),
    };
    let plan = unseated_plan(&definition, input.request_from.as_deref());
    let mut directory = Directory::new(
        conn,
        tenant,
        &definition,
        &input.ticket,
        &input.selected_approvers,
        now,
    );
    let (approval, mut notes) = Approval::preview(
        plan,
        Policy::from(&definition.settings),
        parties,
        &mut directory,
    );
    let names = directory.finish()?;
    if !approval.tasks.iter().any(|t| t.state == TaskState::Pending) {
        notes.push(
            "nobody would be asked: the request would be refused (no_approvers) unless the \
             process approves when there are no approvers"
                .into(),
        );
    }
    let blocking = crate::db::automation::pending_on_ticket(conn, tenant, &input.ticket.id)?
        .into_iter()
        .find(|p| exclusive || p.exclusive);
    if let Some(p) = blocking {
        notes.push(if input.supersede {
            format!(
                "pending approval {} on the ticket would be superseded",
                p.id
            )
        } else {
            format!(
                "ticket {} has a pending approval ({}): the request would be refused \
                 (approval_pending) without \"supersede\": true",
                input.ticket.id, p.id
            )
        });
    }
    let stored = StoredEngine {
        approval,
        closed_by: None,
        deadlines: vec![],
        delegated: vec![],
        names,
        selected: input.selected_approvers.clone(),
        rule: input.rule.clone(),
    };
    let row = ApprovalRow {
        tenant_id: tenant.to_string(),
        id: Uuid::nil(),
        ticket_id: input.ticket.id.clone(),
        ticket: serde_json::to_value(&input.ticket).map_err(|e| internal("ticket", e))?,
        process_id: process.as_ref().map(|p| p.0),
        process_version: process.as_ref().map(|p| p.2),
        process_name: process.as_ref().map(|p| p.1.clone()),
        definition: json!({}),
        state: "preview".into(),
        engine: json!({}),
        current_stage: None,
        exclusive,
        description: input.description.clone(),
        requested_by: input.requested_by.clone(),
        status_to_set: None,
        decided_at: None,
        last_sequence: 0,
        created_at: now,
        updated_at: now,
    };
    let mut view = approval_view(&row, &stored);
    view.state = ApprovalStatus::Preview;
    view.current_stage = stored.approval.current_stage;
    Ok((view, notes))
}

/// Is `actor` allowed to answer for `approver` in the running stage? Substitutes of the stage
/// (listed, or the approver's manager) may, at any time.
fn may_act_for(
    conn: &mut PgConnection,
    loaded: &Loaded,
    actor: &str,
    approver: &str,
    now: DateTime<Utc>,
) -> ApiResult<bool> {
    let Some(stage) = loaded.stored.approval.current_stage else {
        return Ok(false);
    };
    // A delegate in force may act on the delegator's open tasks.
    let delegations = crate::db::time::active_delegations(
        conn,
        &loaded.row.tenant_id,
        &[approver.to_string()],
        now,
    )?;
    if delegations.iter().any(|d| d.delegate_id == actor) {
        return Ok(true);
    }
    let Some(subs) = loaded
        .definition
        .stages
        .get(stage)
        .and_then(|s| s.substitutes.as_ref())
    else {
        return Ok(false);
    };
    Ok(match &subs.source {
        SubstituteSource::Principals { ids } => ids.iter().any(|i| i == actor),
        SubstituteSource::ApproverManager => {
            principals::find(conn, &loaded.row.tenant_id, approver)
                .map(|p| p.manager_id.as_deref() == Some(actor))
                .or_else(|e| match e {
                    diesel::result::Error::NotFound => Ok(false),
                    other => Err(other),
                })?
        }
    })
}

/// `POST /v1/approvals/{id}/decisions`. The engine owns who may give which answer (four
/// eyes, self-approval); this checks what only the directory knows: that the actor is active,
/// and that someone answering for another is that approver's substitute or delegate.
pub fn decide(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    input: &DecisionInput,
    ctx: &Ctx,
) -> ApiResult<Loaded> {
    let now = ctx.now;
    let actor = input.approver_id.as_str();
    let (row, tasks, actor_active) = q::load_for_decision(conn, tenant, id, actor)?
        .ok_or_else(|| ApiError::not_found("approval"))?;
    let mut loaded = assemble(row, tasks.iter().map(task_from_row).collect())?;
    if loaded.stored.approval.status != ApprovalStatus::Pending {
        return Err(engine_error(EngineError::Closed));
    }
    let owner_asked = {
        let engine = &loaded.stored.approval;
        let owner = input.on_behalf_of.as_deref().unwrap_or(actor);
        engine
            .tasks
            .iter()
            .any(|t| Some(t.stage) == engine.current_stage && t.approver_id == owner)
    };
    // Someone not asked gets the engine's `not_an_approver`; whoever would decide must be
    // active now, not only when the stage started.
    let active = !owner_asked || actor_active == Some(true);
    if !active {
        return Err(ApiError::forbidden(
            "inactive_principal",
            format!("{actor} is not an active principal of the directory and may not decide"),
        ));
    }
    let owner = match &input.on_behalf_of {
        Some(other) if other != actor => {
            if (loaded.stored.approval.parties)
                .excludes(actor, loaded.stored.approval.policy)
                .is_some()
            {
                return Err(engine_error(EngineError::SelfApproval));
            }
            if !may_act_for(conn, &loaded, actor, other, now)? {
                return Err(ApiError::forbidden(
                    "not_a_substitute",
                    format!("{actor} may not answer on behalf of {other}"),
                ));
            }
            other.clone()
        }
        _ => input.approver_id.clone(),
    };
    let effects = run_engine(conn, &mut loaded, now, |approval, directory| {
        approval.decide(
            &owner,
            actor,
            input.decision,
            input.comment.clone(),
            now,
            directory,
        )
    })?
    .map_err(|e| match e {
        EngineError::CommentRequired => {
            ApiError::invalid_field("comment", "this process requires a comment to reject")
                .with("code_detail", "comment_required")
        }
        other => engine_error(other),
    })?;
    save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok(loaded)
}

/// Runs an engine operation that may start stages, with the directory it seats them from.
/// The outer error is the directory's (roll back); the inner one is the engine's refusal.
pub fn run_engine<T>(
    conn: &mut PgConnection,
    loaded: &mut Loaded,
    now: DateTime<Utc>,
    op: impl FnOnce(&mut Approval, &mut Directory<'_>) -> Result<T, EngineError>,
) -> ApiResult<Result<T, EngineError>> {
    let ticket: Ticket =
        Ticket::deserialize(&loaded.row.ticket).map_err(|e| internal("stored ticket", e))?;
    let mut directory = Directory::new(
        conn,
        &loaded.row.tenant_id,
        &loaded.definition,
        &ticket,
        &loaded.stored.selected,
        now,
    );
    let result = op(&mut loaded.stored.approval, &mut directory);
    let names = directory.finish()?;
    loaded.stored.names.extend(names);
    Ok(result)
}

/// `POST /v1/approvals/{id}/cancel`.
pub fn cancel(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    reason: &str,
    actor: Option<&str>,
    ctx: &Ctx,
) -> ApiResult<Loaded> {
    let now = ctx.now;
    let mut loaded = load(conn, tenant, id, true)?;
    let effects = loaded
        .stored
        .approval
        .cancel(reason, actor, now)
        .map_err(engine_error)?;
    loaded.stored.closed_by = Some(AdminAction {
        action: "cancel".into(),
        reason: reason.to_string(),
        actor_id: actor.map(str::to_string),
        at: now,
    });
    save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok(loaded)
}

/// `POST /v1/approvals/{id}/bypass`.
pub fn bypass(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    verdict: Verdict,
    reason: &str,
    actor: Option<&str>,
    ctx: &Ctx,
) -> ApiResult<Loaded> {
    let now = ctx.now;
    let mut loaded = load(conn, tenant, id, true)?;
    let effects = loaded
        .stored
        .approval
        .bypass(verdict, now)
        .map_err(engine_error)?;
    let action = AdminAction {
        action: "bypass".into(),
        reason: reason.to_string(),
        actor_id: actor.map(str::to_string),
        at: now,
    };
    loaded.stored.closed_by = Some(action.clone());
    let extra = EventContext {
        admin: Some(action),
        ..Default::default()
    };
    save(conn, &mut loaded, &effects, &extra, ctx)?;
    Ok(loaded)
}

/// `POST /v1/approvals/{id}/remind`: one `approval.reminder` for the pending approvers.
pub fn remind(conn: &mut PgConnection, tenant: &str, id: Uuid, ctx: &Ctx) -> ApiResult<Loaded> {
    let mut loaded = load(conn, tenant, id, true)?;
    if loaded.stored.approval.status != ApprovalStatus::Pending {
        return Err(engine_error(EngineError::Closed));
    }
    let extra = EventContext {
        remind: true,
        ..Default::default()
    };
    save(conn, &mut loaded, &[], &extra, ctx)?;
    Ok(loaded)
}

/// Path of a field inside a bulk item, for error messages.
pub fn bulk_path(i: usize, field: &str) -> String {
    join(&index("items", i), field)
}
