//! Changes to a running approval besides answers: the requester's side withdrawing it, a seat
//! handed to someone else, an approver added, an answer taken back. Each runs under the approval's lock and stores its
//! event in the same transaction.

use diesel::PgConnection;
use uuid::Uuid;

use crate::db::principals;
use crate::domain::engine::{ApprovalStatus, EngineError, SeatRefusal};
use crate::error::{AppError, AppResult};
use crate::service::store::{Ctx, EventContext, Loaded, load, run_engine, save};
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
    let mut loaded = load_open(conn, tenant, id)?;
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

/// The approval, locked, when it is still open: waiting for answers, or for the requester's
/// answer to a question (409 `approval_closed` otherwise).
fn load_open(conn: &mut PgConnection, tenant: &str, id: Uuid) -> AppResult<Loaded> {
    let loaded = load(conn, tenant, id, true)?;
    match loaded.stored.approval.status {
        ApprovalStatus::Pending | ApprovalStatus::InfoRequested => Ok(loaded),
        _ => Err(AppError::from(EngineError::Closed)),
    }
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
    let mut loaded = load_open(conn, tenant, id)?;
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
    // The seat first, then who may take it.
    loaded
        .stored
        .approval
        .pending_seat(r.from)
        .map_err(AppError::from)?;
    let target = seatable(conn, &loaded, r.to, "invalid_reassignment")?;
    let effects = loaded
        .stored
        .approval
        .reassign(r.from, r.to, r.actor_id, r.comment.map(str::to_string), now)
        .map_err(|e| match e {
            EngineError::InvalidReassignment(why) => {
                not_seatable("invalid_reassignment", r.to, why)
            }
            other => AppError::from(other),
        })?;
    loaded
        .stored
        .names
        .insert(target.id.clone(), target.display_name.clone());
    save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok(loaded)
}

/// Someone to add to a group of the running stage, and who asks.
pub struct AddApprover<'a> {
    pub group: &'a str,
    pub approver_id: &'a str,
    pub actor_id: Option<&'a str>,
    /// The caller holds `approvals:admin`.
    pub admin: bool,
}

/// `POST /v1/approvals/{id}/approvers`. An administrator may add anyone who may sit; an
/// approver with a pending seat in the running stage may too, when the process allows it
/// (`settings.allow_add_approver`). 422 `invalid_approver` (with `reason`) when the person
/// cannot sit, 422 `unknown_group`, 409 `group_decided`.
pub fn add_approver(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    r: &AddApprover<'_>,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    let mut loaded = load_open(conn, tenant, id)?;
    let engine = &loaded.stored.approval;
    if !r.admin {
        let actor = r.actor_id.unwrap_or_default();
        if engine.pending_seat(actor).is_err() {
            return Err(AppError::forbidden(
                "not_an_approver",
                "only an approver waiting to answer in the running stage, or a caller with the \
                 `approvals:admin` scope, may add an approver",
            ));
        }
        if !loaded.definition.settings.allow_add_approver {
            return Err(AppError::forbidden(
                "add_approver_not_allowed",
                "this process does not let approvers add others (`settings.allow_add_approver`); \
                 an administrator may",
            ));
        }
    }
    let target = seatable(conn, &loaded, r.approver_id, "invalid_approver")?;
    let effects = loaded
        .stored
        .approval
        .add_approver(r.group, r.approver_id, r.actor_id)
        .map_err(|e| match e {
            EngineError::InvalidApprover(why) => {
                not_seatable("invalid_approver", r.approver_id, why)
            }
            EngineError::UnknownGroup => AppError::invalid_field(
                "group",
                format!("the running stage has no group named {:?}", r.group),
            )
            .with("code_detail", "unknown_group"),
            other => AppError::from(other),
        })?;
    loaded.stored.names.insert(target.id, target.display_name);
    save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok(loaded)
}

/// `POST /v1/approvals/{id}/decisions/revoke`: `actor` takes back the answer they gave on
/// `approver`'s seat, within the process's `settings.revoke_window`, while it has not yet
/// decided its group (409 `revoke_not_allowed` with `reason` otherwise).
pub fn revoke(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    approver: &str,
    actor: &str,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    let mut loaded = load(conn, tenant, id, true)?;
    let window = loaded
        .definition
        .settings
        .revoke_window
        .as_ref()
        .map(|w| w.as_chrono());
    let effects = loaded
        .stored
        .approval
        .revoke(approver, actor, window, ctx.now)
        .map_err(|e| match e {
            EngineError::RevokeRefused(why) => {
                AppError::from(e).with("reason", serde_json::json!(why))
            }
            other => AppError::from(other),
        })?;
    save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok(loaded)
}

/// The principal `id`, when they may sit: not a party, and an active principal of the
/// directory; the refusal (under `code`) otherwise.
fn seatable(
    conn: &mut PgConnection,
    loaded: &Loaded,
    id: &str,
    code: &str,
) -> AppResult<crate::db::models::PrincipalRow> {
    // Four eyes first: a party is refused as one, whether or not the directory knows them.
    let engine = &loaded.stored.approval;
    if engine.parties.excludes(id, engine.policy).is_some() {
        return Err(not_seatable(code, id, SeatRefusal::Party));
    }
    match principals::find(conn, &loaded.row.tenant_id, id) {
        Ok(p) if p.active => Ok(p),
        Ok(_) => Err(not_seatable(code, id, SeatRefusal::Inactive)),
        Err(diesel::result::Error::NotFound) => {
            Err(not_seatable(code, id, SeatRefusal::UnknownPrincipal))
        }
        Err(e) => Err(e.into()),
    }
}

fn not_seatable(code: &str, who: &str, why: SeatRefusal) -> AppError {
    AppError::unprocessable(
        code,
        format!("{who} cannot take a seat: {who} {}", why.text()),
    )
    .with("reason", serde_json::json!(why))
}

/// `"decision": "abstain"` on `POST /v1/approvals/{id}/decisions`: `approver` steps out of
/// the running stage with a comment, where the process allows it (`settings.allow_abstain`;
/// 422 `abstain_not_allowed` otherwise). The approver must be active, as for an answer.
pub fn abstain(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    approver: &str,
    comment: Option<&str>,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    let mut loaded = load_open(conn, tenant, id)?;
    if !loaded.definition.settings.allow_abstain {
        return Err(AppError::unprocessable(
            "abstain_not_allowed",
            "this process does not let approvers abstain (`settings.allow_abstain`)",
        ));
    }
    let seated = loaded.stored.approval.pending_seat(approver).is_ok();
    let active = matches!(principals::find(conn, tenant, approver), Ok(p) if p.active);
    if seated && !active {
        return Err(AppError::forbidden(
            "inactive_principal",
            format!("{approver} is not an active principal of the directory and may not abstain"),
        ));
    }
    let comment = comment.map(str::to_string);
    let effects = run_engine(conn, &mut loaded, ctx.now, |approval, directory| {
        approval.abstain(approver, comment, ctx.now, directory)
    })?
    .map_err(|e| match e {
        EngineError::CommentRequired => {
            AppError::invalid_field("comment", "an abstention needs a comment")
                .with("code_detail", "comment_required")
        }
        other => AppError::from(other),
    })?;
    save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok(loaded)
}
