//! Storing what a command did, in the command's transaction: the changed tasks, the approval
//! row, the timers of the stages it started, and one event per effect with its webhook
//! fan-out. A fixed number of statements, whatever the size of the process.

use std::collections::HashMap;

use diesel::PgConnection;
use serde_json::value::RawValue;

use super::events::build_events;
use super::loaded::{Ctx, EventContext, Loaded, Saved};
use super::timers::schedule_started;
use crate::db::approvals as q;
use crate::domain::engine::{ApprovalStatus, Effect, Task};
use crate::error::{AppError, AppResult};
use crate::service::view::{StoredEngine, status_str, task_row};

/// Stores what a command did: changed tasks, the approval row, and one event per effect.
///
/// An approval [`read`](super::read) without its lock is written in one statement, only if
/// nobody changed it since ([`Saved::Stale`] otherwise), and only when that one statement is
/// all the command writes ([`Saved::NeedsLock`] otherwise: a stage started, whose links and
/// timers are written first). Either way nothing is written then.
pub fn save(
    conn: &mut PgConnection,
    loaded: &mut Loaded,
    effects: &[Effect],
    extra: &EventContext,
    ctx: &Ctx,
) -> AppResult<Saved> {
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
    let now_keys: HashMap<(usize, &str), &Task> = loaded
        .stored
        .approval
        .tasks
        .iter()
        .map(|t| ((t.stage, t.approver_id.as_str()), t))
        .collect();
    let before: HashMap<(usize, &str), &Task> = loaded
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
    let more_than_one_statement = !gone.is_empty()
        || changed.len() > crate::db::ROWS_PER_INSERT
        || extra.remind
        || extra.escalate
        || effects
            .iter()
            .any(|e| matches!(e, Effect::StageStarted { .. }));
    if loaded.version.is_some() && more_than_one_statement {
        return Ok(Saved::NeedsLock);
    }
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
    match engine.status {
        ApprovalStatus::Cancelled => {
            loaded.row.status_to_set = loaded.definition.on_cancelled_status.clone();
        }
        ApprovalStatus::Withdrawn => {
            loaded.row.status_to_set = loaded.definition.on_withdrawn_status.clone();
        }
        _ => {}
    }
    loaded.row.updated_at = now;

    let timers = schedule_started(conn, loaded, effects, ctx)?;
    let mut links = Vec::new();
    let events = build_events(conn, loaded, effects, extra, ctx, &mut links)?;
    let engine = engine_text(&mut loaded.stored)?;
    let new_row = if loaded.new {
        Some(serde_json::to_string(&loaded.row).map_err(|e| AppError::internal("row", e))?)
    } else {
        None
    };
    let written = q::write(
        conn,
        &q::Write {
            row: &loaded.row,
            new_row: new_row.as_deref(),
            version: loaded.version.as_deref(),
            engine: &engine,
            view: loaded.saved_view.as_deref().map(RawValue::get),
            tasks: &changed,
            events: &events,
        },
    )?;
    if !written {
        return Ok(Saved::Stale);
    }
    // After the row they refer to.
    crate::db::links::insert(conn, &links)?;
    crate::db::time::insert_timers(conn, &timers)?;
    loaded.new = false;
    loaded.original = loaded.stored.approval.tasks.clone();
    Ok(Saved::Written)
}

/// The engine's state as the row stores it: without its tasks, which live in approval_tasks
/// (a copy here would only drift).
pub fn engine_text(stored: &mut StoredEngine) -> AppResult<String> {
    let tasks = std::mem::take(&mut stored.approval.tasks);
    let text = serde_json::to_string(stored);
    stored.approval.tasks = tasks;
    text.map_err(|e| AppError::internal("engine", e))
}
