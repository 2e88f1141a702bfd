//! An approver's question to the requester, and the requester's answer. While the question is
//! open the approval waits (`info_requested`): answers are refused and the stage's clock stops;
//! the answer starts it again with every deadline moved by the time waited, in the stage's
//! calendar where it has one.

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::db::models::{PrincipalRow, TimerRow};
use crate::db::{principals, time as q};
use crate::domain::calendar::Calendar;
use crate::domain::engine::{ApprovalStatus, EngineError};
use crate::domain::messages::question_message;
use crate::error::{AppError, AppResult};
use crate::service::store::{Ctx, EventContext, Loaded, load, load_calendar, save};
use crate::service::view::{ConversationEntry, Paused, PausedTimer};

/// `POST /v1/approvals/{id}/info-requests`: `actor` (an approver waiting to answer in the
/// running stage, or anyone with `admin`) asks the requester `question`.
pub fn ask(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    actor: &str,
    question: &str,
    admin: bool,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    let now = ctx.now;
    let mut loaded = load(conn, tenant, id, true)?;
    match loaded.stored.approval.status {
        ApprovalStatus::Pending => {}
        ApprovalStatus::InfoRequested => return Err(EngineError::InfoRequestOpen.into()),
        _ => return Err(EngineError::Closed.into()),
    }
    if !admin && loaded.stored.approval.pending_seat(actor).is_err() {
        return Err(AppError::forbidden(
            "not_an_approver",
            "only an approver waiting to answer in the running stage, or a caller with the \
             `approvals:admin` scope, may ask the requester",
        ));
    }
    let effects = loaded.stored.approval.info_requested()?;
    let n = next_number(&loaded);
    let by_name = name_of(conn, tenant, actor)?;
    loaded.stored.conversation.push(ConversationEntry {
        n,
        kind: "question".into(),
        by: actor.to_string(),
        by_name: by_name.clone(),
        text: question.to_string(),
        at: now,
    });
    // The stage's clock stops: its timers are spent now and written again on the answer.
    let stopped = q::stop_unfired(conn, tenant, id, now)?;
    loaded.stored.paused = Some(Paused {
        at: now,
        timers: stopped
            .iter()
            .map(|t| PausedTimer {
                kind: t.kind.clone(),
                stage: t.stage,
                seq: t.seq,
                due_at: t.due_at,
            })
            .collect(),
    });
    let told = told_of_question(conn, &loaded, by_name.as_deref().unwrap_or(actor), question)?;
    let extra = EventContext {
        info: Some((json!({"n": n, "by": actor, "question": question}), told)),
        ..Default::default()
    };
    save(conn, &mut loaded, &effects, &extra, ctx)?;
    Ok(loaded)
}

/// `POST /v1/approvals/{id}/info-requests/{n}/answer`: the ticket's requester or the
/// approval's `requested_by` answers question `n`; the approval waits for answers again, its
/// deadlines moved by the time it waited.
pub fn answer(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    n: u32,
    actor: &str,
    text: &str,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    let now = ctx.now;
    let mut loaded = load(conn, tenant, id, true)?;
    // While the approval waits, the last entry of the conversation is its open question.
    let open = match loaded.stored.approval.status {
        ApprovalStatus::InfoRequested => loaded.stored.conversation.last().map(|e| e.n),
        ApprovalStatus::Pending => None,
        _ => return Err(EngineError::Closed.into()),
    };
    if open != Some(n) {
        return Err(AppError::from(EngineError::NoOpenQuestion).with("open_question", json!(open)));
    }
    if !loaded.stored.approval.parties.is_party(actor) {
        return Err(AppError::forbidden(
            "not_the_requester",
            format!("{actor} is neither the ticket's requester nor requested this approval"),
        ));
    }
    let effects = loaded.stored.approval.info_provided()?;
    let by_name = name_of(conn, tenant, actor)?;
    loaded.stored.conversation.push(ConversationEntry {
        n,
        kind: "answer".into(),
        by: actor.to_string(),
        by_name,
        text: text.to_string(),
        at: now,
    });
    let timers = resume(conn, &mut loaded, now)?;
    let extra = EventContext {
        info: Some((json!({"n": n, "by": actor, "answer": text}), vec![])),
        ..Default::default()
    };
    save(conn, &mut loaded, &effects, &extra, ctx)?;
    // After the row, as a command's timers are; the links of the stage live as long as it.
    q::insert_timers(conn, &timers)?;
    if let Some(stage) = loaded.stored.approval.current_stage
        && let Some(deadline) = loaded.stored.deadlines.get(stage).copied().flatten()
    {
        crate::db::links::extend_stage(conn, tenant, id, stage as i32, deadline)?;
    }
    Ok(loaded)
}

fn next_number(loaded: &Loaded) -> u32 {
    loaded
        .stored
        .conversation
        .iter()
        .map(|e| e.n)
        .max()
        .unwrap_or(0)
        + 1
}

fn name_of(conn: &mut PgConnection, tenant: &str, id: &str) -> AppResult<Option<String>> {
    match principals::find(conn, tenant, id) {
        Ok(p) => Ok(Some(p.display_name)),
        Err(diesel::result::Error::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The requester, and `requested_by` when it is another principal, each with the question in
/// their language.
fn told_of_question(
    conn: &mut PgConnection,
    loaded: &Loaded,
    asker: &str,
    question: &str,
) -> AppResult<Vec<Value>> {
    let parties = &loaded.stored.approval.parties;
    let mut who: Vec<(String, &str)> = Vec::new();
    if let Some(r) = &parties.requester {
        who.push((r.clone(), "requester"));
    }
    if let Some(r) = parties
        .requested_by
        .as_ref()
        .filter(|r| Some(*r) != parties.requester.as_ref())
    {
        who.push((r.clone(), "requested_by"));
    }
    let ids: Vec<String> = who.iter().map(|(id, _)| id.clone()).collect();
    let rows: Vec<PrincipalRow> = principals::find_many(conn, &loaded.row.tenant_id, &ids)?;
    let ticket = loaded
        .row
        .ticket
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or(&loaded.row.ticket_id)
        .to_string();
    Ok(who
        .iter()
        .filter_map(|(id, role)| {
            let p = rows.iter().find(|p| &p.id == id)?;
            let principal = crate::service::view::Principal::from(p.clone());
            Some(json!({
                "principal": principal,
                "role": role,
                "message": question_message(&p.locale, asker, &ticket, question),
            }))
        })
        .collect())
}

/// The timers a question stopped, due again by the time waited (in business time where the
/// stage's timeout counts a calendar), and the stage's deadline moved the same way.
fn resume(
    conn: &mut PgConnection,
    loaded: &mut Loaded,
    now: DateTime<Utc>,
) -> AppResult<Vec<TimerRow>> {
    let Some(paused) = loaded.stored.paused.take() else {
        return Ok(vec![]);
    };
    let stage = loaded.stored.approval.current_stage.unwrap_or(0);
    let cal = stage_calendar(conn, loaded, stage)?;
    let shift = |due: DateTime<Utc>| match &cal {
        Some(c) => c
            .add_business_time(now, c.business_time_between(paused.at, due))
            .unwrap_or(due + (now - paused.at)),
        None => due + (now - paused.at),
    };
    if let Some(Some(d)) = loaded.stored.deadlines.get(stage).copied() {
        loaded.stored.deadlines[stage] = Some(shift(d));
    }
    Ok(paused
        .timers
        .iter()
        .map(|t| {
            crate::service::store::timer(
                loaded,
                t.stage as usize,
                &t.kind,
                t.seq,
                shift(t.due_at),
                now,
            )
        })
        .collect())
}

fn stage_calendar(
    conn: &mut PgConnection,
    loaded: &Loaded,
    stage: usize,
) -> AppResult<Option<Calendar>> {
    match loaded
        .definition
        .stages
        .get(stage)
        .and_then(|s| s.timeout.as_ref())
        .and_then(|t| t.calendar_id.clone())
    {
        Some(id) => load_calendar(conn, &loaded.row.tenant_id, &id),
        None => Ok(None),
    }
}
