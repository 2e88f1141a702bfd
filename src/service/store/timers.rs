//! The timers a started stage schedules (its timeout, reminders and substitutes) and its
//! deadline, in wall time or business hours; and the substitutes an escalation notifies.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde_json::Value;
use uuid::Uuid;

use super::links::{Recipient, issue};
use super::loaded::{Ctx, Loaded};
use crate::db::models::{LinkRow, PrincipalRow, TimerRow};
use crate::db::{principals, time as q};
use crate::domain::calendar::{self, Calendar, CalendarDef};
use crate::domain::engine::{ApprovalStatus, Effect, Task, TaskState};
use crate::domain::process::SubstituteSource;
use crate::error::{AppError, AppResult};

/// A series of `every` reminders without a `max` stops after this many.
pub const MAX_REMINDERS: i32 = 100;

/// A calendar of the tenant's, or None (wall time) when it has gone since it was named.
pub fn load_calendar(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
) -> AppResult<Option<Calendar>> {
    match q::find_calendar(conn, tenant, id) {
        Ok(row) => {
            let def: CalendarDef = serde_json::from_value(row.definition)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("stored calendar: {e}")))?;
            Ok(Calendar::from_definition(&def).ok())
        }
        Err(diesel::result::Error::NotFound) => {
            // Validated when the process was saved; if it has gone since, count wall time.
            tracing::warn!(calendar = id, "calendar not found; counting wall time");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn timer(
    loaded: &Loaded,
    stage: usize,
    kind: &str,
    seq: i32,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> TimerRow {
    TimerRow {
        id: Uuid::now_v7(),
        tenant_id: loaded.row.tenant_id.clone(),
        approval_id: loaded.row.id,
        stage: stage as i32,
        kind: kind.to_string(),
        seq,
        due_at,
        fired_at: None,
        created_at: now,
    }
}

/// Records `stage`'s deadline in the engine's state (the view's `deadline`).
fn set_deadline(loaded: &mut Loaded, stage: usize, deadline: DateTime<Utc>) {
    if loaded.stored.deadlines.len() <= stage {
        loaded.stored.deadlines.resize(stage + 1, None);
    }
    loaded.stored.deadlines[stage] = Some(deadline);
}

/// For every stage a command started that is still running: its deadline (set in the engine's
/// state), and the timers of its timeout, reminders and substitutes, answered for the command
/// to store once its approval row is written.
pub fn schedule_started(
    conn: &mut PgConnection,
    loaded: &mut Loaded,
    effects: &[Effect],
    ctx: &Ctx,
) -> AppResult<Vec<TimerRow>> {
    let now = ctx.now;
    let mut timers = Vec::new();
    for effect in effects {
        let Effect::StageStarted { stage } = effect else {
            continue;
        };
        let stage = *stage;
        if loaded.stored.approval.current_stage != Some(stage)
            || loaded.stored.approval.status != ApprovalStatus::Pending
        {
            continue;
        }
        let Some(def) = loaded.definition.stages.get(stage).cloned() else {
            continue;
        };
        let Some(timeout) = &def.timeout else {
            // No timeout: reminders can still repeat on their own clock.
            if let Some(every) = def.reminders.as_ref().and_then(|r| r.every.clone()) {
                timers.push(timer(
                    loaded,
                    stage,
                    "reminder",
                    1,
                    now + every.as_chrono(),
                    now,
                ));
            }
            continue;
        };
        let cal = match &timeout.calendar_id {
            Some(id) => load_calendar(conn, &loaded.row.tenant_id, id)?,
            None => None,
        };
        let after = timeout.after.as_chrono();
        let Some(deadline) = calendar::deadline(now, after, cal.as_ref()) else {
            tracing::warn!(approval = %loaded.row.id, stage, "no deadline within ten years; the stage waits");
            continue;
        };
        set_deadline(loaded, stage, deadline);
        timers.push(timer(loaded, stage, "stage_timeout", 1, deadline, now));
        if let Some(subs) = &def.substitutes
            && let Some(at) = calendar::at_percent(now, after, subs.notify_at_percent, cal.as_ref())
        {
            timers.push(timer(loaded, stage, "substitutes", 1, at, now));
        }
        if let Some(rem) = &def.reminders {
            for (i, pct) in rem.at_percent.iter().flatten().enumerate() {
                if let Some(at) = calendar::at_percent(now, after, *pct, cal.as_ref()) {
                    // Percent reminders are numbered from 1000 so they never look like the
                    // `every` series, which counts towards `max`.
                    timers.push(timer(loaded, stage, "reminder", 1000 + i as i32, at, now));
                }
            }
            if let Some(every) = &rem.every {
                let at = now + every.as_chrono();
                if at < deadline {
                    timers.push(timer(loaded, stage, "reminder", 1, at, now));
                }
            }
        }
    }
    Ok(timers)
}

/// Starts `stage`'s deadline again from `now`, as an escalation does: the new deadline in the
/// engine's state, and its timeout timer numbered `seq`. None when the stage has no timeout or
/// its calendar gives no deadline within ten years.
pub fn restart_deadline(
    conn: &mut PgConnection,
    loaded: &mut Loaded,
    stage: usize,
    seq: i32,
    now: DateTime<Utc>,
) -> AppResult<Option<TimerRow>> {
    let Some(timeout) = loaded
        .definition
        .stages
        .get(stage)
        .and_then(|s| s.timeout.clone())
    else {
        return Ok(None);
    };
    let cal = match &timeout.calendar_id {
        Some(id) => load_calendar(conn, &loaded.row.tenant_id, id)?,
        None => None,
    };
    let Some(deadline) = calendar::deadline(now, timeout.after.as_chrono(), cal.as_ref()) else {
        return Ok(None);
    };
    set_deadline(loaded, stage, deadline);
    Ok(Some(timer(
        loaded,
        stage,
        "stage_timeout",
        seq,
        deadline,
        now,
    )))
}

/// Substitutes of the running stage's pending approvers, with links to answer for them: one
/// recipient per substitute, listing every approver they may answer for. Nobody is listed
/// who may not answer for anyone in this stage: whoever sits in it or has already answered
/// in it (one person, one answer), and the ticket's requester and the approval's
/// `requested_by` unless the process allows self-approval.
pub fn escalation_recipients(
    conn: &mut PgConnection,
    loaded: &Loaded,
    stage: usize,
    ctx: &Ctx,
    links: &mut Vec<LinkRow>,
) -> AppResult<Vec<Value>> {
    let Some(subs) = loaded
        .definition
        .stages
        .get(stage)
        .and_then(|s| s.substitutes.clone())
    else {
        return Ok(vec![]);
    };
    let engine = &loaded.stored.approval;
    let in_stage: Vec<&Task> = engine.tasks.iter().filter(|t| t.stage == stage).collect();
    let pending: Vec<String> = in_stage
        .iter()
        .filter(|t| t.state == TaskState::Pending)
        .map(|t| t.approver_id.clone())
        .collect();
    let may_not_stand_in = |s: &str| {
        in_stage
            .iter()
            .any(|t| t.approver_id == s || t.actor_id.as_deref() == Some(s))
            || engine.parties.excludes(s, engine.policy).is_some()
    };
    let tenant = &loaded.row.tenant_id;
    let approvers = principals::find_many(conn, tenant, &pending)?;
    let by_approver: HashMap<&str, &PrincipalRow> =
        approvers.iter().map(|p| (p.id.as_str(), p)).collect();
    // Substitutes in the order they are first met, each with the approvers they cover, in
    // task order.
    let mut covers: Vec<(String, Vec<&str>)> = Vec::new();
    for a in pending.iter().filter_map(|id| by_approver.get(id.as_str())) {
        let subs_of_a: Vec<String> = match &subs.source {
            SubstituteSource::ApproverManager => a.manager_id.iter().cloned().collect(),
            SubstituteSource::Principals { ids } => ids.clone(),
        };
        for s in subs_of_a {
            if s == a.id || may_not_stand_in(&s) {
                continue;
            }
            match covers.iter_mut().find(|(id, _)| *id == s) {
                Some((_, list)) if !list.contains(&a.id.as_str()) => list.push(&a.id),
                Some(_) => {}
                None => covers.push((s, vec![a.id.as_str()])),
            }
        }
    }
    let sub_ids: Vec<String> = covers.iter().map(|(s, _)| s.clone()).collect();
    let subs_rows = principals::find_many(conn, tenant, &sub_ids)?;
    let recipients: Vec<Recipient<'_>> = covers
        .iter()
        .filter_map(|(s, list)| {
            let sub = subs_rows.iter().find(|p| p.id == *s && p.active)?;
            Some(Recipient {
                principal: sub,
                on_behalf_of: list
                    .iter()
                    .filter_map(|a| by_approver.get(a).copied())
                    .collect(),
            })
        })
        .collect();
    issue(conn, loaded, stage, &recipients, ctx, links)
}
