//! The events a command emits: one per effect, with the approval's view, the recipients to
//! notify (and their links and messages), paged so no event grows with a group.

use std::collections::HashMap;

use diesel::PgConnection;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use uuid::Uuid;

use super::links::{Recipient, issue};
use super::loaded::{Ctx, EventContext, Loaded};
use super::timers::escalation_recipients;
use crate::db::models::{LinkRow, NewEvent, PrincipalRow};
use crate::db::principals;
use crate::domain::engine::{ApprovalStatus, Effect};
use crate::error::{AppError, AppResult};
use crate::webhooks::envelope;

/// The principals to notify for a stage, with their details, in one query.
/// Issues links to the approvers of `stage` and builds the event's `recipients`, in two
/// queries whatever their number.
pub fn notify(
    conn: &mut PgConnection,
    loaded: &Loaded,
    stage: usize,
    ids: &[String],
    ctx: &Ctx,
    links: &mut Vec<LinkRow>,
) -> AppResult<Vec<Value>> {
    let rows = principals::find_many(conn, &loaded.row.tenant_id, ids)?;
    let by_id: HashMap<&str, &PrincipalRow> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let recipients: Vec<Recipient<'_>> = ids
        .iter()
        .filter_map(|id| by_id.get(id.as_str()))
        .map(|p| Recipient {
            principal: p,
            on_behalf_of: Vec::new(),
        })
        .collect();
    issue(conn, loaded, stage, &recipients, ctx, links)
}

/// [`notify`] for one person: whoever a change newly asks (a new holder, a newcomer, a seat
/// whose answer was taken back), with fresh links.
fn notify_one(
    conn: &mut PgConnection,
    loaded: &Loaded,
    stage: usize,
    who: &str,
    ctx: &Ctx,
    links: &mut Vec<LinkRow>,
) -> AppResult<Vec<Value>> {
    notify(conn, loaded, stage, &[who.to_string()], ctx, links)
}

pub(super) fn event_type(effect: &Effect) -> Option<&'static str> {
    Some(match effect {
        Effect::StageStarted { .. } => "approval.requested",
        Effect::DecisionRecorded { .. } | Effect::AnswerReused { .. } => {
            "approval.decision_recorded"
        }
        Effect::StageAdvanced { .. } => "approval.stage_advanced",
        Effect::Finished { outcome } => match outcome.decision {
            ApprovalStatus::Approved => "approval.approved",
            _ => "approval.rejected",
        },
        Effect::Cancelled { .. } => "approval.cancelled",
        Effect::Withdrawn { .. } => "approval.withdrawn",
        Effect::Reassigned { .. } => "approval.reassigned",
        Effect::ApproverAdded { .. } => "approval.approver_added",
        Effect::Abstained { .. } => "approval.abstained",
        Effect::InfoRequested => "approval.info_requested",
        Effect::InfoProvided => "approval.info_provided",
        Effect::DecisionRevoked { .. } => "approval.decision_revoked",
        Effect::StageEnded { .. }
        | Effect::StageSkipped { .. }
        | Effect::TasksSuperseded { .. } => return None,
    })
}

/// Recipients one event carries; more are paged over several events (`data.recipients_page`).
pub const RECIPIENTS_PER_EVENT: usize = 100;
/// Tasks one stage lists in an event's view; the rest are counted in `tasks_omitted` (the
/// approval itself, `GET /v1/approvals/{id}`, lists them all).
pub const TASKS_PER_STAGE_IN_EVENTS: usize = 100;

/// The view as events carry it, when it differs from the full one: a stage of thousands lists
/// its first tasks and counts the rest. None when every stage is small (the events carry the
/// full view), so the common case copies nothing.
pub(super) fn compact_for_events(full: &Value) -> Option<Value> {
    let big = |stage: &Value| {
        stage["tasks"]
            .as_array()
            .is_some_and(|t| t.len() > TASKS_PER_STAGE_IN_EVENTS)
    };
    let stages = full["stages"].as_array()?;
    if !stages.iter().any(big) {
        return None;
    }
    let mut v: serde_json::Map<String, Value> = full
        .as_object()?
        .iter()
        .filter(|(k, _)| *k != "stages")
        .map(|(k, x)| (k.clone(), x.clone()))
        .collect();
    let stages = stages
        .iter()
        .map(|stage| {
            if !big(stage) {
                return stage.clone();
            }
            let mut st: serde_json::Map<String, Value> = stage
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k != "tasks")
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect();
            let tasks = stage["tasks"].as_array().map_or(&[][..], Vec::as_slice);
            st.insert(
                "tasks".into(),
                Value::Array(tasks[..TASKS_PER_STAGE_IN_EVENTS].to_vec()),
            );
            st.insert(
                "tasks_omitted".into(),
                json!(tasks.len() - TASKS_PER_STAGE_IN_EVENTS),
            );
            Value::Object(st)
        })
        .collect();
    v.insert("stages".into(), Value::Array(stages));
    Some(Value::Object(v))
}

/// An event's `data`, serialized once: the approval's view is already JSON text.
#[derive(Serialize)]
struct EventData<'a> {
    approval: &'a RawValue,
    ticket: TicketNow<'a>,
    /// The badge line as of this command ("Approved by Grace Hopper").
    summary: &'a str,
    sequence: i64,
    detail: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipients: Option<&'a [Value]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipients_page: Option<RecipientsPage>,
}

/// The ticket and the status the host should set on it, as every event carries them.
#[derive(Serialize)]
struct TicketNow<'a> {
    id: &'a str,
    status_to_set: Option<&'a str>,
}

/// Which page of an event's recipients this event carries, when there are several.
#[derive(Serialize)]
struct RecipientsPage {
    page: usize,
    of: usize,
    total: usize,
}

/// The badge line events carry, in the language of the process's default locale (English when
/// it has none): the requester's own language would cost a read on every decision.
fn summary(loaded: &Loaded) -> String {
    let locale = loaded
        .definition
        .templates
        .as_ref()
        .and_then(|t| t.default_locale.as_deref())
        .unwrap_or("en");
    crate::domain::messages::summary(locale, &super::badge::badge(loaded))
}

/// `value` serialized as JSON text (serde_json's own output, so not parsed again to check it).
fn raw(value: &impl Serialize) -> AppResult<Box<RawValue>> {
    serde_json::value::to_raw_value(value).map_err(|e| AppError::internal("view", e))
}

/// The events of a command, and the links their recipients were given (to store once the
/// approval row is written).
pub(super) fn build_events(
    conn: &mut PgConnection,
    loaded: &mut Loaded,
    effects: &[Effect],
    extra: &EventContext,
    ctx: &Ctx,
    links: &mut Vec<LinkRow>,
) -> AppResult<Vec<NewEvent>> {
    let now = ctx.now;
    let view = loaded.view();
    let full = raw(&view)?;
    let big = view
        .stages
        .iter()
        .any(|s| s.tasks.len() > TASKS_PER_STAGE_IN_EVENTS);
    // Events carry the full view unless a stage is too big to list whole.
    let compact = if big {
        let value = serde_json::to_value(&view).map_err(|e| AppError::internal("view", e))?;
        Some(raw(&compact_for_events(&value).unwrap_or(value))?)
    } else {
        None
    };
    let in_events: &RawValue = compact.as_deref().unwrap_or(&full);
    drop(view);
    let summary = summary(loaded);
    let plan_names: Vec<String> = loaded
        .stored
        .approval
        .plan
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let mut out = Vec::new();
    let mut push = |loaded: &mut Loaded,
                    kind: &str,
                    detail: Value,
                    recipients: Option<Vec<Value>>|
     -> AppResult<()> {
        // Thousands of recipients go out as several events of the same type, each with a
        // page of them, so no event or webhook body grows with the size of a role.
        let total = recipients.as_ref().map_or(0, Vec::len);
        let pages: Vec<Option<&[Value]>> = match &recipients {
            Some(r) if r.len() > RECIPIENTS_PER_EVENT => {
                r.chunks(RECIPIENTS_PER_EVENT).map(Some).collect()
            }
            other => vec![other.as_deref()],
        };
        let of = pages.len();
        for (page, recipients) in pages.into_iter().enumerate() {
            loaded.row.last_sequence += 1;
            let id = Uuid::now_v7();
            // The start of an approval carries the status "waiting for approval"; every other
            // event the status its outcome (or cancellation) set, if any.
            let status_to_set = match kind {
                "approval.requested" => loaded.definition.on_started_status.as_deref(),
                _ => loaded.row.status_to_set.as_deref(),
            };
            let data = EventData {
                approval: in_events,
                ticket: TicketNow {
                    id: &loaded.row.ticket_id,
                    status_to_set,
                },
                summary: &summary,
                sequence: loaded.row.last_sequence,
                detail: &detail,
                recipients,
                recipients_page: (of > 1).then_some(RecipientsPage {
                    page: page + 1,
                    of,
                    total,
                }),
            };
            let payload = envelope(&id, kind, now, &loaded.row.tenant_id, &data)
                .map_err(|e| AppError::internal("event", e))?;
            out.push(NewEvent {
                tenant_id: loaded.row.tenant_id.clone(),
                id,
                approval_id: Some(loaded.row.id),
                sequence: loaded.row.last_sequence,
                kind: kind.to_string(),
                payload,
                created_at: now,
            });
        }
        Ok(())
    };
    for effect in effects {
        let Some(kind) = event_type(effect) else {
            continue;
        };
        let (detail, recips) = match effect {
            Effect::StageStarted { stage } => {
                let ids: Vec<String> = loaded
                    .stored
                    .approval
                    .tasks
                    .iter()
                    .filter(|t| {
                        t.stage == *stage && t.state == crate::domain::engine::TaskState::Pending
                    })
                    .map(|t| t.approver_id.clone())
                    .collect();
                if ids.is_empty() {
                    // Earlier answers decided this stage as it started: nobody to ask.
                    continue;
                }
                let r = notify(conn, loaded, *stage, &ids, ctx, links)?;
                let notes = loaded
                    .stored
                    .approval
                    .plan
                    .get(*stage)
                    .map(|p| p.notes.clone());
                (
                    json!({"stage": stage, "stage_name": plan_names.get(*stage), "notes": notes}),
                    Some(r),
                )
            }
            Effect::DecisionRecorded {
                stage,
                approver_id,
                actor_id,
                verdict,
                comment,
            } => (
                json!({"stage": stage, "approver_id": approver_id, "decided_by": actor_id,
                       "decision": verdict, "comment": comment,
                       "on_behalf_of": (actor_id != approver_id).then_some(approver_id)}),
                None,
            ),
            Effect::AnswerReused {
                stage,
                approver_id,
                verdict,
            } => (
                json!({"stage": stage, "approver_id": approver_id, "decision": verdict, "reused": true}),
                None,
            ),
            Effect::StageAdvanced { from, to } => (
                json!({"from": from, "to": to, "from_name": plan_names.get(*from), "to_name": plan_names.get(*to)}),
                None,
            ),
            Effect::Finished { outcome } => (
                json!({"decision": outcome.decision, "reason": outcome.reason,
                       "status_to_set": loaded.row.status_to_set, "admin": extra.admin}),
                None,
            ),
            Effect::Cancelled { reason, actor_id } => {
                (json!({"reason": reason, "actor_id": actor_id}), None)
            }
            Effect::Withdrawn { reason, actor_id } => (
                json!({"reason": reason, "actor_id": actor_id,
                       "status_to_set": loaded.row.status_to_set}),
                None,
            ),
            Effect::ApproverAdded {
                stage,
                group,
                approver_id,
                actor_id,
            } => {
                let r = notify_one(conn, loaded, *stage, approver_id, ctx, links)?;
                (
                    json!({"stage": stage, "group": group, "approver_id": approver_id,
                           "actor_id": actor_id}),
                    Some(r),
                )
            }
            Effect::InfoRequested => {
                let (detail, told) = extra.info.clone().unwrap_or_default();
                (detail, Some(told))
            }
            Effect::InfoProvided => {
                // The approvers who still have to answer are told, with fresh links.
                let detail = extra.info.clone().map(|(d, _)| d).unwrap_or_default();
                let ids = loaded.stored.approval.pending_approvers();
                let r = match loaded.stored.approval.current_stage {
                    Some(stage) => notify(conn, loaded, stage, &ids, ctx, links)?,
                    None => vec![],
                };
                (detail, Some(r))
            }
            Effect::Abstained {
                stage,
                approver_id,
                comment,
            } => (
                json!({"stage": stage, "approver_id": approver_id, "comment": comment}),
                None,
            ),
            Effect::DecisionRevoked {
                stage,
                approver_id,
                actor_id,
                verdict,
            } => {
                // The answer's links were used: the seat gets fresh ones.
                let r = notify_one(conn, loaded, *stage, approver_id, ctx, links)?;
                (
                    json!({"stage": stage, "approver_id": approver_id, "decided_by": actor_id,
                           "decision": verdict}),
                    Some(r),
                )
            }
            Effect::Reassigned {
                stage,
                from,
                to,
                reason,
                actor_id,
                comment,
            } => {
                // Only the new approver is asked: fresh links for them, none for anyone else.
                let r = notify_one(conn, loaded, *stage, to, ctx, links)?;
                (
                    json!({"stage": stage, "from": from, "to": to, "reason": reason,
                           "actor_id": actor_id, "comment": comment}),
                    Some(r),
                )
            }
            _ => continue,
        };
        push(loaded, kind, detail, recips)?;
    }
    if extra.remind {
        let mut ids = loaded.stored.approval.pending_approvers();
        if let Some(only) = &extra.remind_only {
            ids.retain(|id| only.contains(id));
        }
        let stage = loaded.stored.approval.current_stage;
        let r = match stage {
            Some(stage) => notify(conn, loaded, stage, &ids, ctx, links)?,
            None => vec![],
        };
        push(
            loaded,
            "approval.reminder",
            json!({"stage": stage}),
            Some(r),
        )?;
    }
    if extra.escalate
        && let Some(stage) = loaded.stored.approval.current_stage
    {
        let r = escalation_recipients(conn, loaded, stage, ctx, links)?;
        if !r.is_empty() {
            push(
                loaded,
                "approval.escalated",
                json!({"stage": stage}),
                Some(r),
            )?;
        }
    }
    loaded.saved_view = Some(full);
    Ok(out)
}
