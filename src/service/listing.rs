//! Views of a list's page, built straight from the columns the page read: the engine's state
//! parsed once from its `jsonb` text into typed values (no `serde_json::Value` in between, and
//! no process definition, which a view does not show), the tasks from their records.

use crate::db::listing::{ListedApproval, ListedTask};
use crate::domain::engine::{Task, TaskState};
use crate::error::{AppError, AppResult};
use crate::service::view::{ApprovalView, Head, StoredEngine, Ticket, parse_enum, view_of};

/// The engine's state of a stored `engine` document, with these tasks.
pub fn stored_engine(engine: &[u8], tasks: Vec<Task>) -> AppResult<StoredEngine> {
    let mut stored: StoredEngine =
        serde_json::from_slice(engine).map_err(|e| AppError::internal("stored engine", e))?;
    stored.approval.tasks = tasks;
    Ok(stored)
}

/// A task as the engine sees it, from a list's record (as `view::task_from_row` does).
fn task(
    (stage, approver_id, state, verdict, decided_at, comment, actor_id, on_behalf_of): ListedTask,
) -> Task {
    Task {
        stage: stage as usize,
        approver_id,
        state: parse_enum(&state).unwrap_or(TaskState::Pending),
        verdict: verdict.as_deref().and_then(parse_enum),
        decided_at,
        comment,
        actor_id,
        on_behalf_of,
    }
}

/// A list's item: the view the last command stored (JSON text, as our serializer wrote it and
/// Postgres checked it), or, for an approval no command has written since views were stored,
/// the view built from its row.
#[derive(Debug)]
pub enum Listed {
    Stored(String),
    Built(Box<ApprovalView>),
}

/// A page of a list as JSON text, `{"items": [...], "next_cursor": ...}`: stored views are
/// copied in as they are, not parsed again.
pub fn page_json(items: &[Listed], next_cursor: Option<&str>) -> AppResult<Vec<u8>> {
    let fail = |e| AppError::internal("list page", e);
    let stored: usize = items
        .iter()
        .map(|i| match i {
            Listed::Stored(s) => s.len() + 1,
            Listed::Built(_) => 2048,
        })
        .sum();
    let mut out = Vec::with_capacity(stored + 64);
    out.extend_from_slice(b"{\"items\":[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        match item {
            Listed::Stored(text) => out.extend_from_slice(text.as_bytes()),
            Listed::Built(view) => serde_json::to_writer(&mut out, view).map_err(fail)?,
        }
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    serde_json::to_writer(&mut out, &next_cursor).map_err(fail)?;
    out.push(b'}');
    Ok(out)
}

/// The view of one approval of a page, built from its row.
pub fn view(row: ListedApproval) -> AppResult<ApprovalView> {
    let tasks = row
        .tasks
        .unwrap_or_default()
        .into_iter()
        .map(task)
        .collect();
    let engine = row
        .engine
        .ok_or_else(|| AppError::internal("listed approval", "neither a view nor an engine"))?;
    let stored = stored_engine(&engine.0, tasks)?;
    let head = Head {
        id: row.id,
        ticket: Head::ticket(
            row.ticket
                .and_then(|t| serde_json::from_slice::<Ticket>(&t.0).ok()),
            &row.ticket_id,
        ),
        process: Head::process(row.process_id, row.process_name, row.process_version),
        description: row.description,
        requested_by: row.requested_by,
        status_to_set: row.status_to_set,
        created_at: row.created_at,
        updated_at: row.updated_at,
    };
    Ok(view_of(head, &stored))
}

/// The items of a page, in its order.
pub fn views(rows: Vec<ListedApproval>) -> AppResult<Vec<Listed>> {
    rows.into_iter()
        .map(|mut row| match row.view.take() {
            Some(text) => Ok(Listed::Stored(text)),
            None => view(row).map(|v| Listed::Built(Box::new(v))),
        })
        .collect()
}
