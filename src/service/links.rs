//! One-time approver links, answered without an account: what a link holder sees, and a
//! decision through a link. Links are issued when approvers are notified
//! (`service::store::issue`).

use diesel::PgConnection;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::links as q;
use crate::db::models::{LinkRow, PrincipalRow};
use crate::domain::engine::{ApprovalStatus, TaskState, Verdict};
use crate::error::{AppError, AppResult};
use crate::service::approvals::{self, DecisionInput};
use crate::service::store::{Asker, Ctx, Loaded, asked_by_principal, hash, load};
use crate::service::view::{ApprovalView, Principal};

/// What a link holder may see and do.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    pub approval: ApprovalView,
    /// The person the link was sent to.
    pub approver: Principal,
    /// The approver they answer for, when they are a substitute.
    pub on_behalf_of: Option<String>,
    /// What the link can still do: `["approve", "reject"]`, or empty once answered.
    pub actions: Vec<String>,
    pub reject_requires_comment: bool,
    /// The stage the link belongs to.
    pub stage: String,
    /// When the link stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Why a link no longer works, with who answered when it was answered.
#[derive(Debug)]
pub struct Closed {
    pub error: AppError,
    /// (who answered, when, what) when the task was answered.
    pub answered: Option<(String, chrono::DateTime<chrono::Utc>, Verdict)>,
    /// The link holder's locale, so the page answers in their language.
    pub locale: Option<String>,
    /// The display name of who answered.
    pub answered_by_name: Option<String>,
    /// The display name of whoever the seat was handed to, when it was reassigned.
    pub reassigned_to_name: Option<String>,
}

/// A link found and still usable, with its approval loaded (and locked when `lock`).
pub struct Open {
    pub link: LinkRow,
    pub loaded: Loaded,
    pub recipient: PrincipalRow,
    /// Who asked, by name, for the page.
    pub asker: Asker,
}

/// Resolves a token: 404 when unknown, 410 (with its own code) when used, superseded,
/// expired or closed.
pub fn open(
    conn: &mut PgConnection,
    token: &str,
    lock: bool,
    ctx: &Ctx,
) -> AppResult<Result<Open, Closed>> {
    let unknown = || {
        AppError::new(
            crate::error::Kind::NotFound,
            "link_not_found",
            "this link is not valid",
        )
    };
    if token.len() > 100 {
        return Err(unknown());
    }
    let link = q::find(conn, &hash(token)).map_err(|e| match e {
        diesel::result::Error::NotFound => unknown(),
        other => other.into(),
    })?;
    let loaded = load(conn, &link.tenant_id, link.approval_id, lock)?;
    let engine = &loaded.stored.approval;
    let task = engine
        .tasks
        .iter()
        .find(|t| t.stage == link.stage as usize && t.approver_id == link.approver_id);
    let answered = task.and_then(|t| match (t.state, t.verdict, t.decided_at) {
        (TaskState::Approved | TaskState::Rejected | TaskState::Reused, Some(v), Some(at)) => {
            Some((
                t.actor_id.clone().unwrap_or_else(|| t.approver_id.clone()),
                at,
                v,
            ))
        }
        _ => None,
    });
    // For the page: the holder's language, the name of whoever answered and of who asked.
    let mut who = vec![link.recipient_id.clone()];
    who.extend(answered.as_ref().map(|a| a.0.clone()));
    who.extend(
        asked_by_principal(&loaded)
            .filter(|by| !loaded.stored.names.contains_key(*by))
            .map(str::to_string),
    );
    let people = crate::db::principals::find_many(conn, &link.tenant_id, &who)?;
    let locale = people
        .iter()
        .find(|p| p.id == link.recipient_id)
        .map(|p| p.locale.clone());
    let answered_by_name = answered
        .as_ref()
        .and_then(|a| people.iter().find(|p| p.id == a.0))
        .map(|p| p.display_name.clone());
    let reassigned_to = task
        .filter(|t| t.state == TaskState::Reassigned)
        .and_then(|t| engine.reassigned_to(t.stage, &t.approver_id))
        .map(|to| loaded.stored.name_of(to));
    let gone = |code: &str, detail: &str| {
        Ok(Err(Closed {
            error: AppError::gone(code, detail),
            answered: answered.clone(),
            locale: locale.clone(),
            answered_by_name: answered_by_name.clone(),
            reassigned_to_name: reassigned_to.clone(),
        }))
    };
    if link.used_at.is_some() {
        return gone("link_used", "this link has already been used");
    }
    if engine.status == ApprovalStatus::InfoRequested {
        return Ok(Err(Closed {
            error: AppError::from(crate::domain::engine::EngineError::AwaitingInfo),
            answered: answered.clone(),
            locale: locale.clone(),
            answered_by_name: answered_by_name.clone(),
            reassigned_to_name: None,
        }));
    }
    if engine.status != ApprovalStatus::Pending {
        return gone("link_closed", "the approval has ended");
    }
    if let Some(name) = &reassigned_to {
        return gone(
            "link_reassigned",
            &format!("this request was passed on to {name}"),
        );
    }
    if task.is_none_or(|t| t.state != TaskState::Pending)
        || engine.current_stage != Some(link.stage as usize)
    {
        return gone(
            "link_superseded",
            "this request has been answered or replaced",
        );
    }
    if link.expires_at <= ctx.now {
        return gone("link_expired", "this link has expired");
    }
    let recipient = crate::db::principals::find(conn, &link.tenant_id, &link.recipient_id)?;
    let asker = Asker::from_names(&loaded, &|id| {
        loaded.stored.names.get(id).cloned().or_else(|| {
            people
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.display_name.clone())
        })
    });
    Ok(Ok(Open {
        link,
        loaded,
        recipient,
        asker,
    }))
}

/// The JSON view of an open link.
pub fn view(open: &Open, actions: bool) -> LinkView {
    LinkView {
        approval: open.loaded.view(),
        approver: Principal::from(open.recipient.clone()),
        on_behalf_of: (open.link.approver_id != open.link.recipient_id)
            .then(|| open.link.approver_id.clone()),
        actions: if actions {
            vec!["approve".into(), "reject".into()]
        } else {
            vec![]
        },
        reject_requires_comment: open.loaded.definition.settings.reject_requires_comment,
        stage: open
            .loaded
            .stored
            .approval
            .plan
            .get(open.link.stage as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        expires_at: open.link.expires_at,
    }
}

/// Decides through a link, in the caller's transaction: the link is spent in the same commit
/// as the decision, so it can never work twice.
pub fn decide(
    conn: &mut PgConnection,
    token: &str,
    verdict: Verdict,
    comment: Option<String>,
    ctx: &Ctx,
) -> AppResult<Result<Open, Closed>> {
    let open = match self::open(conn, token, true, ctx)? {
        Ok(o) => o,
        Err(closed) => return Ok(Err(closed)),
    };
    if q::mark_used(conn, &open.link.token_hash, ctx.now)? == 0 {
        return Ok(Err(Closed {
            error: AppError::gone("link_used", "this link has already been used"),
            answered: None,
            locale: Some(open.recipient.locale.clone()),
            answered_by_name: None,
            reassigned_to_name: None,
        }));
    }
    let input = DecisionInput {
        approver_id: open.link.recipient_id.clone(),
        decision: verdict,
        comment,
        on_behalf_of: (open.link.approver_id != open.link.recipient_id)
            .then(|| open.link.approver_id.clone()),
    };
    let loaded = approvals::decide(
        conn,
        &open.link.tenant_id,
        open.link.approval_id,
        &input,
        ctx,
    )?;
    Ok(Ok(Open { loaded, ..open }))
}
