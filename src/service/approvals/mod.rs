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

mod commands;
mod events;
mod input;
mod requests;

pub use commands::*;
use events::build_events;
pub use events::{RECIPIENTS_PER_EVENT, TASKS_PER_STAGE_IN_EVENTS};
pub use input::*;
pub use requests::*;

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

    /// The view as JSON: the one the last [`save`] built for its events, without building it
    /// again or copying it.
    pub fn into_view_json(self) -> ApiResult<Value> {
        match self.saved_view {
            Some(v) => Ok(v),
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
