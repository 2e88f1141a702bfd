//! An approval as a command holds it: the row, the engine's state, the definition it runs,
//! and what it read; how it is loaded (one or many), and the context every command runs in.

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::db::approvals as q;
use crate::db::models::{ApprovalRow, TaskRow};
use crate::domain::engine::{Approval, EngineError, Task};
use crate::domain::process::ProcessDefinition;
use crate::error::{AppError, AppResult};
use crate::service::directory::Directory;
use crate::service::view::{
    AdminAction, ApprovalView, StoredEngine, Ticket, approval_view, task_from_row,
};

/// An approval loaded for a command. The row's `engine` and `definition` values are not kept
/// (null): `stored` and `definition` hold them, typed.
pub struct Loaded {
    pub row: ApprovalRow,
    pub stored: StoredEngine,
    pub definition: ProcessDefinition,
    pub(super) original: Vec<Task>,
    /// The view as JSON text, when [`save`] built it for the events and nothing changed since.
    pub(super) saved_view: Option<Box<RawValue>>,
    /// The row's version as read, when it was read without its lock: [`save`] then writes
    /// only if no other command changed the approval since (see [`Saved`]).
    pub(super) version: Option<String>,
    /// Not stored yet: [`save`] inserts the row (with the state the command leaves it in).
    pub(super) new: bool,
}

/// What [`save`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    Written,
    /// Read without the lock, and another command changed the approval since: nothing was
    /// written; read it again.
    Stale,
    /// Read without the lock, and the command writes more than one statement can (a stage
    /// started, with its links and timers): nothing was written; run it again under the lock,
    /// in a transaction.
    NeedsLock,
}

impl Loaded {
    /// A new approval, not stored yet: `save` inserts its row and writes its tasks.
    pub fn new(row: ApprovalRow, stored: StoredEngine, definition: ProcessDefinition) -> Self {
        Self {
            row,
            stored,
            definition,
            original: vec![],
            saved_view: None,
            version: None,
            new: true,
        }
    }

    pub fn view(&self) -> ApprovalView {
        approval_view(&self.row, &self.stored)
    }

    /// The view as JSON text: the one the last [`save`] built for its events, without building
    /// it again.
    pub fn into_view_text(self) -> AppResult<String> {
        match self.saved_view {
            Some(v) => Ok(Box::<str>::from(v).into_string()),
            None => serde_json::to_string(&self.view()).map_err(|e| AppError::internal("view", e)),
        }
    }
}

/// Loads an approval with its tasks, locking it when it will change.
pub fn load(conn: &mut PgConnection, tenant: &str, id: Uuid, lock: bool) -> AppResult<Loaded> {
    let row = if lock {
        q::find_for_update(conn, tenant, id)
    } else {
        q::find(conn, tenant, id)
    }
    .map_err(AppError::missing("approval"))?;
    let tasks = q::tasks_of_one(conn, tenant, id)?;
    assemble(row, tasks.iter().map(task_from_row).collect())
}

pub fn assemble(mut row: ApprovalRow, tasks: Vec<Task>) -> AppResult<Loaded> {
    let stored: StoredEngine = serde_json::from_value(std::mem::take(&mut row.engine))
        .map_err(|e| AppError::internal("stored engine", e))?;
    let definition: ProcessDefinition = serde_json::from_value(std::mem::take(&mut row.definition))
        .map_err(|e| AppError::internal("stored definition", e))?;
    Ok(with_tasks(row, stored, definition, tasks))
}

fn with_tasks(
    row: ApprovalRow,
    mut stored: StoredEngine,
    definition: ProcessDefinition,
    tasks: Vec<Task>,
) -> Loaded {
    stored.approval.tasks = tasks.clone();
    Loaded {
        row,
        stored,
        definition,
        original: tasks,
        saved_view: None,
        version: None,
        new: false,
    }
}

/// What `signoff_command_read` answers, parsed in one pass.
#[derive(Deserialize)]
struct CommandRead {
    approval: ApprovalRow,
    engine: StoredEngine,
    definition: ProcessDefinition,
    version: String,
    tasks: Vec<TaskRow>,
    actor_active: Option<bool>,
}

/// Reads an approval for a command, and whether `actor` is an active principal of the
/// directory (None when it does not know them), in one round trip. With `lock`, the row is
/// locked for the caller's transaction; without, [`save`] writes only if no other command
/// changed the approval in between ([`Saved::Stale`] otherwise).
pub fn read(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    actor: &str,
    lock: bool,
) -> AppResult<(Loaded, Option<bool>)> {
    let text = q::read_for_command(conn, tenant, id, actor, lock)?
        .ok_or_else(|| AppError::not_found("approval"))?;
    let read: CommandRead =
        serde_json::from_str(&text).map_err(|e| AppError::internal("stored approval", e))?;
    let tasks = read.tasks.iter().map(task_from_row).collect();
    let mut loaded = with_tasks(read.approval, read.engine, read.definition, tasks);
    if !lock {
        loaded.version = Some(read.version);
    }
    Ok((loaded, read.actor_active))
}

/// What every command needs besides its input: the time, and where links point.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub now: DateTime<Utc>,
    /// Base of approver links, from SIGNOFF_PUBLIC_URL, without a trailing slash.
    pub public_url: String,
}

impl Ctx {
    pub fn new(now: DateTime<Utc>, public_url: &url::Url) -> Self {
        Self {
            now,
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
    /// With `remind`: only these approvers.
    pub remind_only: Option<Vec<String>>,
    /// The question or answer of `approval.info_requested` / `approval.info_provided`, and
    /// for a question, the people told of it.
    pub info: Option<(serde_json::Value, Vec<serde_json::Value>)>,
    /// Emit `approval.escalated` to the substitutes of pending approvers.
    pub escalate: bool,
}

/// Runs an engine operation that may start stages, with the directory it seats them from.
/// The outer error is the directory's (roll back); the inner one is the engine's refusal.
pub fn run_engine<T>(
    conn: &mut PgConnection,
    loaded: &mut Loaded,
    now: DateTime<Utc>,
    op: impl FnOnce(&mut Approval, &mut Directory<'_>) -> Result<T, EngineError>,
) -> AppResult<Result<T, EngineError>> {
    let ticket: Ticket = Ticket::deserialize(&loaded.row.ticket)
        .map_err(|e| AppError::internal("stored ticket", e))?;
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
