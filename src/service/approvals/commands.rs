//! Commands on a running approval: decisions (with substitutes and delegates), cancel, bypass,
//! remind.

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection};
use uuid::Uuid;

use super::input::*;
use crate::db::principals;
use crate::domain::engine::{ApprovalStatus, EngineError, Verdict};
use crate::domain::process::SubstituteSource;
use crate::domain::validate::{index, join};
use crate::error::{AppError, AppResult};
use crate::service::store::{Ctx, EventContext, Loaded, Saved, load, read, run_engine, save};
use crate::service::view::AdminAction;

/// Is `actor` allowed to answer for `approver` in the running stage? Substitutes of the stage
/// (listed, or the approver's manager) may, at any time.
pub(super) fn may_act_for(
    conn: &mut PgConnection,
    loaded: &Loaded,
    actor: &str,
    approver: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
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

/// Optimistic attempts of [`decide_at_once`] before it takes the approval's lock.
const OPTIMISTIC_TRIES: usize = 3;

/// `POST /v1/approvals/{id}/decisions` on a connection outside any transaction: the decision
/// is read without a lock and written in one statement that checks nobody changed the
/// approval in between (two round trips, no transaction of its own). When somebody did, it
/// reads again, a few times; when that keeps happening, or the decision starts a stage (whose
/// links and timers need more statements), it decides in a transaction under the lock, as
/// [`decide`] does. Either way racing decisions are applied one at a time.
pub fn decide_at_once(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    input: &DecisionInput,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    for _ in 0..OPTIMISTIC_TRIES {
        let (loaded, written) = decide_read(conn, tenant, id, input, ctx, false)?;
        match written {
            Saved::Written => return Ok(loaded),
            Saved::Stale => continue,
            Saved::NeedsLock => break,
        }
    }
    conn.transaction(|c| decide(c, tenant, id, input, ctx))
}

/// `POST /v1/approvals/{id}/decisions` in the caller's transaction, under the approval's
/// lock. The engine owns who may give which answer (four eyes, self-approval); this checks
/// what only the directory knows: that the actor is active, and that someone answering for
/// another is that approver's substitute or delegate.
pub fn decide(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    input: &DecisionInput,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    match decide_read(conn, tenant, id, input, ctx, true)? {
        (loaded, Saved::Written) => Ok(loaded),
        // Under the lock nobody can change the row, and everything may be written.
        (_, other) => Err(AppError::internal(
            "decision under the lock",
            format!("{other:?}"),
        )),
    }
}

fn decide_read(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    input: &DecisionInput,
    ctx: &Ctx,
    lock: bool,
) -> AppResult<(Loaded, Saved)> {
    let now = ctx.now;
    let actor = input.approver_id.as_str();
    let (mut loaded, actor_active) = read(conn, tenant, id, actor, lock)?;
    match loaded.stored.approval.status {
        ApprovalStatus::Pending => {}
        ApprovalStatus::InfoRequested => return Err(AppError::from(EngineError::AwaitingInfo)),
        _ => return Err(AppError::from(EngineError::Closed)),
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
        return Err(AppError::forbidden(
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
                return Err(AppError::from(EngineError::SelfApproval));
            }
            if !may_act_for(conn, &loaded, actor, other, now)? {
                return Err(AppError::forbidden(
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
            AppError::invalid_field("comment", "this process requires a comment to reject")
                .with("code_detail", "comment_required")
        }
        other => AppError::from(other),
    })?;
    let written = save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok((loaded, written))
}

/// `POST /v1/approvals/{id}/cancel`.
pub fn cancel(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    reason: &str,
    actor: Option<&str>,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    let now = ctx.now;
    let mut loaded = load(conn, tenant, id, true)?;
    let effects = loaded
        .stored
        .approval
        .cancel(reason, actor, now)
        .map_err(AppError::from)?;
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
) -> AppResult<Loaded> {
    let now = ctx.now;
    let mut loaded = load(conn, tenant, id, true)?;
    let effects = loaded
        .stored
        .approval
        .bypass(verdict, now)
        .map_err(AppError::from)?;
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

/// `POST /v1/approvals/{id}/remind`: one `approval.reminder` for the pending approvers, or
/// for `only` of them (each must be one).
pub fn remind(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    only: Option<&[String]>,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    let mut loaded = load(conn, tenant, id, true)?;
    if loaded.stored.approval.status != ApprovalStatus::Pending {
        return Err(AppError::from(EngineError::Closed));
    }
    if !loaded.definition.settings.manual_reminders {
        return Err(AppError::conflict(
            "reminders_disabled",
            "this process turns manual reminders off (`settings.manual_reminders`)",
        ));
    }
    if let Some(ids) = only {
        let pending = loaded.stored.approval.pending_approvers();
        let faults: Vec<crate::domain::validate::FieldError> = ids
            .iter()
            .enumerate()
            .filter(|(_, a)| !pending.contains(a))
            .map(|(i, a)| crate::domain::validate::FieldError {
                field: format!("approver_ids[{i}]"),
                message: format!("{a} is not waiting to answer in the running stage"),
            })
            .collect();
        if !faults.is_empty() {
            return Err(AppError::invalid(faults));
        }
    }
    let extra = EventContext {
        remind: true,
        remind_only: only.map(<[String]>::to_vec),
        ..Default::default()
    };
    save(conn, &mut loaded, &[], &extra, ctx)?;
    Ok(loaded)
}

/// Path of a field inside a bulk item, for error messages.
pub fn bulk_path(i: usize, field: &str) -> String {
    join(&index("items", i), field)
}
