//! Time: firing timers (stage timeouts, reminders, substitutes) and expiring processes. The
//! timers a stage schedules when it starts are `service::store::schedule_started`'s. Timers are rows in Postgres; the worker fires each in the transaction that acts
//! on it, so a timer takes effect once whichever replica is up, and survives restarts.

use diesel::{Connection, PgConnection};
use serde_json::json;
use uuid::Uuid;

use crate::db::models::TimerRow;
use crate::db::principals;
use crate::db::time as q;
use crate::domain::engine::ApprovalStatus;
use crate::domain::process::TimeoutDef;
use crate::error::{AppError, AppResult};
use crate::service::store::{
    Ctx, EventContext, Loaded, MAX_REMINDERS, load, restart_deadline, run_engine, save, timer,
};

/// Fires one due timer, if there is one; `Ok(false)` when none is due.
pub fn fire_next(conn: &mut PgConnection, ctx: &Ctx) -> AppResult<bool> {
    let Some(t) = q::take_due_timer(conn, ctx.now)? else {
        return Ok(false);
    };
    q::mark_fired(conn, &t, ctx.now)?;
    // The action runs in a savepoint: a timer that cannot act is logged and spent rather than
    // retried forever ahead of every other timer.
    let acted = conn.transaction::<(), AppError, _>(|c| act(c, &t, ctx));
    if let Err(e) = acted {
        tracing::error!(timer = %t.id, kind = t.kind, error = %e, "timer could not act");
        if matches!(e, AppError::Unavailable(_)) {
            return Err(e);
        }
    }
    Ok(true)
}

fn act(conn: &mut PgConnection, t: &TimerRow, ctx: &Ctx) -> AppResult<()> {
    let mut loaded = load(conn, &t.tenant_id, t.approval_id, true)?;
    let stage = t.stage as usize;
    let running = loaded.stored.approval.status == ApprovalStatus::Pending
        && loaded.stored.approval.current_stage == Some(stage);
    if !running {
        // The stage ended before its timer: nothing to do.
        return Ok(());
    }
    match t.kind.as_str() {
        "stage_timeout" => {
            let timeout = loaded.definition.stages[stage]
                .timeout
                .clone()
                .ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!("timeout timer without a timeout"))
                })?;
            if escalate(conn, &mut loaded, stage, &timeout, t.seq, ctx)? {
                return Ok(());
            }
            let outcome = timeout.outcome;
            let now = ctx.now;
            let effects = run_engine(conn, &mut loaded, now, |approval, directory| {
                approval.time_out(stage, outcome, now, directory)
            })?
            .map_err(|e| AppError::Internal(anyhow::anyhow!("timeout: {e}")))?;
            save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
        }
        "reminder" => {
            let extra = EventContext {
                remind: true,
                ..Default::default()
            };
            save(conn, &mut loaded, &[], &extra, ctx)?;
            // The `every` series schedules its next reminder.
            let rem = loaded.definition.stages[stage].reminders.clone();
            if t.seq < 1000
                && let Some(every) = rem.as_ref().and_then(|r| r.every.clone())
            {
                let max = rem
                    .as_ref()
                    .and_then(|r| r.max)
                    .map(|m| m as i32)
                    .unwrap_or(MAX_REMINDERS);
                let next = ctx.now + every.as_chrono();
                let before_deadline = loaded
                    .stored
                    .deadlines
                    .get(stage)
                    .copied()
                    .flatten()
                    .is_none_or(|d| next < d);
                if t.seq < max && before_deadline {
                    q::insert_timers(
                        conn,
                        &[timer(&loaded, stage, "reminder", t.seq + 1, next, ctx.now)],
                    )?;
                }
            }
        }
        "substitutes" => {
            let extra = EventContext {
                escalate: true,
                ..Default::default()
            };
            save(conn, &mut loaded, &[], &extra, ctx)?;
        }
        other => tracing::warn!(kind = other, "unknown timer kind"),
    }
    Ok(())
}

/// At a deadline with `escalate` levels left: each pending seat whose approver has a manager
/// who may sit moves up to them (`approval.reassigned`, reason `escalation`), and the deadline
/// starts again. False (the timeout's outcome then applies) when the levels are spent or no
/// seat could move.
fn escalate(
    conn: &mut PgConnection,
    loaded: &mut Loaded,
    stage: usize,
    timeout: &TimeoutDef,
    seq: i32,
    ctx: &Ctx,
) -> AppResult<bool> {
    let Some(esc) = &timeout.escalate else {
        return Ok(false);
    };
    let done = loaded.stored.escalations.get(stage).copied().unwrap_or(0);
    if done >= esc.levels {
        return Ok(false);
    }
    let pending = loaded.stored.approval.pending_approvers();
    let tenant = loaded.row.tenant_id.clone();
    let people = principals::find_many(conn, &tenant, &pending)?;
    let managers: Vec<String> = people.iter().filter_map(|p| p.manager_id.clone()).collect();
    let manager_rows = principals::find_many(conn, &tenant, &managers)?;
    let mut effects = Vec::new();
    for p in &people {
        let Some(m) = manager_rows
            .iter()
            .find(|m| Some(&m.id) == p.manager_id.as_ref() && m.active)
        else {
            continue;
        };
        // A manager who may not sit (a party, already seated or answering) is passed over:
        // the seat stays where it is.
        if let Ok(moved) = loaded.stored.approval.escalate_seat(&p.id, &m.id, ctx.now) {
            loaded
                .stored
                .names
                .insert(m.id.clone(), m.display_name.clone());
            effects.extend(moved);
        }
    }
    if effects.is_empty() {
        return Ok(false);
    }
    if loaded.stored.escalations.len() <= stage {
        loaded.stored.escalations.resize(stage + 1, 0);
    }
    loaded.stored.escalations[stage] = done + 1;
    let next = restart_deadline(conn, loaded, stage, seq + 1, ctx.now)?;
    save(conn, loaded, &effects, &EventContext::default(), ctx)?;
    // After the row it belongs to, as a command's timers are. The seats that stayed keep
    // their links, which now live until the new deadline.
    q::insert_timers(conn, next.as_slice())?;
    if let Some(until) = next.as_ref().map(|t| t.due_at) {
        crate::db::links::extend_stage(conn, &tenant, loaded.row.id, stage as i32, until)?;
    }
    Ok(true)
}

/// Disables processes past their expiry and emits `process.expired`, one process per call.
pub fn expire_next_process(conn: &mut PgConnection, ctx: &Ctx) -> AppResult<bool> {
    let Some(row) = crate::db::processes::take_expired(conn, ctx.now)? else {
        return Ok(false);
    };
    crate::db::processes::mark_expired(conn, &row)?;
    let id = Uuid::now_v7();
    let data = json!({"process": {"id": row.id.to_string(), "name": row.name,
                                  "version": row.current_version, "expires_at": row.expires_at}});
    let payload = crate::webhooks::envelope(&id, "process.expired", ctx.now, &row.tenant_id, &data)
        .map_err(|e| AppError::internal("event", e))?;
    let event = crate::db::models::NewEvent {
        tenant_id: row.tenant_id.clone(),
        id,
        approval_id: None,
        sequence: 0,
        kind: "process.expired".into(),
        payload,
        created_at: ctx.now,
    };
    crate::db::approvals::insert_events(conn, &[event])?;
    crate::db::webhooks::fan_out(conn, &row.tenant_id, &[id])?;
    Ok(true)
}
