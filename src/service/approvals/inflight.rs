//! Changes to a running approval that are not answers: the requester's side withdrawing it,
//! and a seat handed to someone else. Each runs under the approval's lock and stores its
//! event in the same transaction.

use diesel::PgConnection;
use uuid::Uuid;

use crate::db::principals;
use crate::domain::engine::{ApprovalStatus, EngineError, ReassignRefusal};
use crate::error::{AppError, AppResult};
use crate::service::store::{Ctx, EventContext, Loaded, load, save};
use crate::service::view::AdminAction;

/// `POST /v1/approvals/{id}/withdraw`: the ticket's requester or the approval's
/// `requested_by` takes it back. Anyone else gets 403 `not_the_requester`.
pub fn withdraw(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    actor: &str,
    reason: Option<&str>,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    let now = ctx.now;
    let mut loaded = load(conn, tenant, id, true)?;
    if loaded.stored.approval.status != ApprovalStatus::Pending {
        return Err(AppError::from(EngineError::Closed));
    }
    if !loaded.stored.approval.parties.is_party(actor) {
        return Err(AppError::forbidden(
            "not_the_requester",
            format!(
                "{actor} is neither the ticket's requester nor requested this approval, and may \
                 not withdraw it"
            ),
        ));
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let effects = loaded
        .stored
        .approval
        .withdraw(actor, reason.map(str::to_string), now)
        .map_err(AppError::from)?;
    loaded.stored.closed_by = Some(AdminAction {
        action: "withdraw".into(),
        reason: reason.unwrap_or("withdrawn by the requester").to_string(),
        actor_id: Some(actor.to_string()),
        at: now,
    });
    save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok(loaded)
}

/// A seat to hand on: whose it is, who gets it, and who asks.
pub struct Reassign<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// Who moves the seat (`from` themselves, or an administrator's actor id).
    pub actor_id: Option<&'a str>,
    pub comment: Option<&'a str>,
    /// The caller holds `approvals:admin`: it may move anyone's seat.
    pub admin: bool,
}

/// `POST /v1/approvals/{id}/reassign`. An approver may hand on their own seat when the
/// process allows it (`settings.allow_reassign`, the default); an administrator may move any
/// pending seat. The new approver must be an active principal, not a party, and not already
/// seated or answering in the stage (422 `invalid_reassignment`, with `reason`).
pub fn reassign(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    r: &Reassign<'_>,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    let now = ctx.now;
    let mut loaded = load(conn, tenant, id, true)?;
    if loaded.stored.approval.status != ApprovalStatus::Pending {
        return Err(AppError::from(EngineError::Closed));
    }
    if !r.admin {
        if r.actor_id != Some(r.from) {
            return Err(AppError::forbidden(
                "not_the_approver",
                "only the approver holding the seat, or a caller with the `approvals:admin` \
                 scope, may reassign it",
            ));
        }
        if !loaded.definition.settings.allow_reassign {
            return Err(AppError::forbidden(
                "reassign_not_allowed",
                "this process does not let approvers hand on their seat \
                 (`settings.allow_reassign`); an administrator may",
            ));
        }
    }
    // The seat first, then four eyes (a party is refused as one, whether or not the directory
    // knows them), then the directory.
    let engine = &loaded.stored.approval;
    engine.pending_seat(r.from).map_err(AppError::from)?;
    if engine.parties.excludes(r.to, engine.policy).is_some() {
        return Err(refusal(r.to, ReassignRefusal::Party));
    }
    let target = match principals::find(conn, tenant, r.to) {
        Ok(p) => p,
        Err(diesel::result::Error::NotFound) => {
            return Err(refusal(r.to, ReassignRefusal::UnknownPrincipal));
        }
        Err(e) => return Err(e.into()),
    };
    if !target.active {
        return Err(refusal(r.to, ReassignRefusal::Inactive));
    }
    let effects = loaded
        .stored
        .approval
        .reassign(r.from, r.to, r.actor_id, r.comment.map(str::to_string), now)
        .map_err(|e| match e {
            EngineError::InvalidReassignment(why) => refusal(r.to, why),
            other => AppError::from(other),
        })?;
    loaded
        .stored
        .names
        .insert(target.id.clone(), target.display_name.clone());
    save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok(loaded)
}

fn refusal(to: &str, why: ReassignRefusal) -> AppError {
    AppError::unprocessable(
        "invalid_reassignment",
        format!("the seat cannot go to {to}: {to} {}", why.text()),
    )
    .with("reason", serde_json::json!(why))
}
