//! Requesting approval: the definition to run, the checks only the directory can make, the
//! stages seated as they start, supersede, and the preview of all of it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::input::*;
use crate::db::models::{ApprovalRow, PrincipalRow};
use crate::db::{approvals as q, principals, processes};
use crate::domain::engine::{
    Approval, ApprovalStatus, EngineError, GroupPlan, Parties, Policy, StagePlan, TaskState,
};
use crate::domain::process::{
    Combine, GroupDef, ProcessDefinition, Requirement, Rule, Source, StageDef,
};
use crate::domain::validate::{Faults, index};
use crate::error::{AppError, AppResult};
use crate::service::directory::Directory;
use crate::service::store::{Ctx, EventContext, Loaded, assemble, save};
use crate::service::view::{AdminAction, ApprovalView, StoredEngine, approval_view, task_from_row};

/// The definition an ad-hoc request runs: one stage, one group.
pub(super) fn ad_hoc_definition(
    input: &RequestApproval,
    approvers: &[String],
) -> ProcessDefinition {
    ProcessDefinition {
        name: "Ad-hoc approval".into(),
        description: None,
        expires_at: None,
        on_approved_status: input.on_approved_status.clone(),
        on_rejected_status: input.on_rejected_status.clone(),
        on_started_status: input.on_started_status.clone(),
        on_cancelled_status: input.on_cancelled_status.clone(),
        on_withdrawn_status: input.on_withdrawn_status.clone(),
        settings: input.settings.clone().unwrap_or_default(),
        stages: vec![StageDef {
            name: "Approval".into(),
            combine: Combine::All,
            decide: None,
            groups: vec![GroupDef {
                name: "approvers".into(),
                source: Source::Principals {
                    ids: approvers.to_vec(),
                },
                require: input.require.clone().unwrap_or(Requirement {
                    rule: Rule::Count { count: 1 },
                    reject_at: None,
                }),
            }],
            timeout: input.timeout.clone(),
            reminders: input.reminders.clone(),
            substitutes: None,
            when: None,
        }],
        templates: input.templates.clone(),
    }
}

/// Refuses a request whose own words are wrong: principals it names that do not exist or are
/// inactive, a selection the process does not ask for (or a missing one), a `request_from`
/// that names no group of an `any` stage.
pub(super) fn check_request(
    conn: &mut PgConnection,
    tenant: &str,
    def: &ProcessDefinition,
    input: &RequestApproval,
    ad_hoc: bool,
) -> AppResult<()> {
    // An ad-hoc timeout's calendar must exist, as a process's must when it is saved.
    if let Some(cal) = input.timeout.as_ref().and_then(|t| t.calendar_id.clone())
        && crate::db::time::existing_calendars(conn, tenant, std::slice::from_ref(&cal))?.is_empty()
    {
        return Err(AppError::invalid_field(
            "timeout.calendar_id",
            format!("no calendar {cal:?}; create it with PUT /v1/calendars/{cal}"),
        ));
    }
    let uses_selection = def
        .stages
        .iter()
        .flat_map(|s| &s.groups)
        .any(|g| matches!(g.source, Source::RequesterSelected));
    let (path, ids) = if ad_hoc {
        (
            "approvers",
            input
                .approvers
                .as_ref()
                .unwrap_or(&input.selected_approvers),
        )
    } else {
        ("selected_approvers", &input.selected_approvers)
    };
    let known: HashMap<String, PrincipalRow> = principals::find_many(conn, tenant, ids)?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut faults = Faults::default();
    for (i, id) in ids.iter().enumerate() {
        match known.get(id) {
            None => faults.push(
                index(path, i),
                format!("no principal {id:?} in the directory"),
            ),
            Some(p) if !p.active => {
                faults.push(index(path, i), format!("principal {id:?} is inactive"))
            }
            _ => {}
        }
    }
    if uses_selection && input.selected_approvers.is_empty() {
        faults.push(
            "selected_approvers",
            "the process asks the requester to select approvers",
        );
    }
    if !uses_selection && !input.selected_approvers.is_empty() && !ad_hoc {
        faults.push(
            "selected_approvers",
            "the process has no group chosen at request time",
        );
    }
    if let Some(from) = &input.request_from {
        let ok = def
            .stages
            .iter()
            .any(|s| s.combine == Combine::Any && s.groups.iter().any(|g| &g.name == from));
        if !ok {
            faults.push(
                "request_from",
                "must name a group of a stage approved by `any` group",
            );
        }
    }
    if faults.is_empty() {
        Ok(())
    } else {
        Err(AppError::invalid(faults.errors))
    }
}

/// The stages of a new approval, not seated yet: the engine seats each when it starts.
/// `request_from` narrows the `any` stages that hold the named group to that group.
pub fn unseated_plan(def: &ProcessDefinition, request_from: Option<&str>) -> Vec<StagePlan> {
    def.stages
        .iter()
        .map(|stage| {
            let narrowed = request_from.filter(|from| {
                stage.combine == Combine::Any && stage.groups.iter().any(|g| g.name == *from)
            });
            let mut plan = StagePlan::unseated(
                stage.name.clone(),
                stage.combine,
                stage
                    .groups
                    .iter()
                    .map(|g| {
                        GroupPlan::unseated(
                            g.name.clone(),
                            g.require.clone(),
                            narrowed.is_none_or(|from| from == g.name),
                        )
                    })
                    .collect(),
            );
            plan.first_group =
                stage.decide == Some(crate::domain::process::StageDecide::FirstGroup);
            plan
        })
        .collect()
}

/// Maps what the engine refused at request time to the caller's fault.
pub(super) fn refused_request(e: EngineError, def: &ProcessDefinition) -> AppError {
    match e {
        EngineError::NoApprovers => AppError::unprocessable(
            "no_approvers",
            "nobody can be asked: every stage resolved to no approver (the requester and \
             requested_by are removed unless the process allows self-approval)",
        ),
        EngineError::NotEnoughApprovers { stage, group } => {
            let s = def.stages.get(stage);
            let g = s.and_then(|s| s.groups.get(group));
            let message = format!(
                "stage {:?}, group {:?} has fewer members than its count requires \
                 (settings.when_short is refuse)",
                s.map_or("", |s| s.name.as_str()),
                g.map_or("", |g| g.name.as_str()),
            );
            AppError::unprocessable("not_enough_approvers", message.clone()).with(
                "errors",
                json!([{"field": format!("stages[{stage}].groups[{group}]"), "message": message}]),
            )
        }
        other => AppError::from(other),
    }
}

/// The process a request runs: id, name and the version it is pinned to.
pub(super) type Pinned = (Uuid, String, i32);

/// The definition a request runs (its process's current version, or the ad-hoc one) and the
/// process it came from.
pub(super) fn definition_for(
    conn: &mut PgConnection,
    tenant: &str,
    input: &RequestApproval,
    now: DateTime<Utc>,
) -> AppResult<(ProcessDefinition, Option<Pinned>)> {
    Ok(match &input.process_id {
        Some(pid) => {
            let unknown = || AppError::invalid_field("process_id", "no such process");
            let id = Uuid::parse_str(pid).map_err(|_| unknown())?;
            let (row, version) = processes::find(conn, tenant, id).map_err(|e| match e {
                diesel::result::Error::NotFound => unknown(),
                other => other.into(),
            })?;
            if !row.is_enabled(now) {
                return Err(AppError::conflict(
                    "process_disabled",
                    "the process is disabled (expired or switched off); restore it first",
                ));
            }
            let def: ProcessDefinition = ProcessDefinition::deserialize(&version.definition)
                .map_err(|e| AppError::internal("stored definition", e))?;
            (def, Some((row.id, row.name, version.version)))
        }
        None => {
            let approvers = input.approvers.clone().unwrap_or_default();
            (ad_hoc_definition(input, &approvers), None)
        }
    })
}

/// `POST /v1/approvals`: resolves approvers, enforces one pending approval per ticket, starts
/// the engine and stores everything in the caller's transaction.
pub fn request(
    conn: &mut PgConnection,
    tenant: &str,
    input: &RequestApproval,
    ctx: &Ctx,
) -> AppResult<Loaded> {
    let now = ctx.now;
    let (definition, process) = definition_for(conn, tenant, input, now)?;

    q::lock_ticket(conn, tenant, &input.ticket.id)?;
    // Keep the ticket store current: the fields the request carries replace the stored ones
    // (attributes when it has some). Rules do not run: only reports run them.
    crate::db::automation::merge(conn, tenant, &input.ticket, now)?;
    check_request(conn, tenant, &definition, input, process.is_none())?;
    let exclusive = definition.settings.one_active_per_ticket;

    let pending = q::pending_on_ticket(conn, tenant, &input.ticket.id)?;
    let blocking: Vec<ApprovalRow> = pending
        .into_iter()
        .filter(|p| exclusive || p.exclusive)
        .collect();
    let id = Uuid::now_v7();
    if let Some(first) = blocking.first() {
        if !input.supersede {
            return Err(AppError::conflict(
                "approval_pending",
                format!(
                    "ticket {} already has a pending approval ({}); decide or cancel it, or request with \"supersede\": true",
                    input.ticket.id, first.id
                ),
            )
            .with("pending_approval_id", first.id.to_string()));
        }
        for row in blocking {
            let tasks = q::tasks_of_one(conn, tenant, row.id)?;
            let mut old = assemble(row, tasks.iter().map(task_from_row).collect())?;
            let reason = format!("superseded by approval {id}");
            let effects = old
                .stored
                .approval
                .cancel(&reason, input.requested_by.as_deref(), now)
                .map_err(AppError::from)?;
            old.stored.closed_by = Some(AdminAction {
                action: "supersede".into(),
                reason,
                actor_id: input.requested_by.clone(),
                at: now,
            });
            save(conn, &mut old, &effects, &EventContext::default(), ctx)?;
        }
    }

    let (started, names) = with_directory(
        conn,
        tenant,
        &definition,
        input,
        now,
        |plan, policy, parties, directory| Approval::start(plan, policy, parties, now, directory),
    )?;
    let (approval, effects) = started.map_err(|e| refused_request(e, &definition))?;
    let stored = new_stored(approval, names, input);
    let mut row = new_row(
        tenant,
        id,
        input,
        process.as_ref(),
        exclusive,
        "pending",
        now,
    )?;
    row.definition =
        serde_json::to_value(&definition).map_err(|e| AppError::internal("definition", e))?;
    let mut loaded = Loaded::new(row, stored, definition);
    save(conn, &mut loaded, &effects, &EventContext::default(), ctx)?;
    Ok(loaded)
}

/// `POST /v1/approvals/preview`: the view a request would start with, every stage resolved as
/// if it started now, and notes on what would be skipped, removed or refused. Reads only.
pub fn preview(
    conn: &mut PgConnection,
    tenant: &str,
    input: &RequestApproval,
    ctx: &Ctx,
) -> AppResult<(ApprovalView, Vec<String>)> {
    let now = ctx.now;
    let (definition, process) = definition_for(conn, tenant, input, now)?;
    check_request(conn, tenant, &definition, input, process.is_none())?;
    let exclusive = definition.settings.one_active_per_ticket;
    let ((approval, mut notes), names) = with_directory(
        conn,
        tenant,
        &definition,
        input,
        now,
        |plan, policy, parties, d| Approval::preview(plan, policy, parties, d),
    )?;
    if !approval.tasks.iter().any(|t| t.state == TaskState::Pending) {
        notes.push(
            "nobody would be asked: the request would be refused (no_approvers) unless the \
             process approves when there are no approvers"
                .into(),
        );
    }
    let blocking = crate::db::automation::pending_on_ticket(conn, tenant, &input.ticket.id)?
        .into_iter()
        .find(|p| exclusive || p.exclusive);
    if let Some(p) = blocking {
        notes.push(if input.supersede {
            format!(
                "pending approval {} on the ticket would be superseded",
                p.id
            )
        } else {
            format!(
                "ticket {} has a pending approval ({}): the request would be refused \
                 (approval_pending) without \"supersede\": true",
                input.ticket.id, p.id
            )
        });
    }
    let stored = new_stored(approval, names, input);
    let row = new_row(
        tenant,
        Uuid::nil(),
        input,
        process.as_ref(),
        exclusive,
        "preview",
        now,
    )?;
    let mut view = approval_view(&row, &stored);
    view.state = ApprovalStatus::Preview;
    view.current_stage = stored.approval.current_stage;
    Ok((view, notes))
}

/// Seats the stages of a new approval with `op` (start or preview), reading the directory in
/// the caller's transaction; answers what `op` did and the names read.
fn with_directory<T>(
    conn: &mut PgConnection,
    tenant: &str,
    definition: &ProcessDefinition,
    input: &RequestApproval,
    now: DateTime<Utc>,
    op: impl FnOnce(Vec<StagePlan>, Policy, Parties, &mut Directory<'_>) -> T,
) -> AppResult<(T, std::collections::BTreeMap<String, String>)> {
    let parties = Parties {
        requester: input.ticket.requester_id.clone(),
        requested_by: input.requested_by.clone(),
    };
    let plan = unseated_plan(definition, input.request_from.as_deref());
    let mut directory = Directory::new(
        conn,
        tenant,
        definition,
        &input.ticket,
        &input.selected_approvers,
        now,
    );
    let out = op(
        plan,
        Policy::from(&definition.settings),
        parties,
        &mut directory,
    );
    Ok((out, directory.finish()?))
}

fn new_stored(
    approval: Approval,
    names: std::collections::BTreeMap<String, String>,
    input: &RequestApproval,
) -> StoredEngine {
    StoredEngine {
        approval,
        closed_by: None,
        deadlines: vec![],
        escalations: vec![],
        conversation: vec![],
        paused: None,
        delegated: vec![],
        names,
        selected: input.selected_approvers.clone(),
        rule: input.rule.clone(),
    }
}

/// The row of a new approval (its definition and engine state are filled in by the caller).
fn new_row(
    tenant: &str,
    id: Uuid,
    input: &RequestApproval,
    process: Option<&Pinned>,
    exclusive: bool,
    state: &str,
    now: DateTime<Utc>,
) -> AppResult<ApprovalRow> {
    Ok(ApprovalRow {
        tenant_id: tenant.to_string(),
        id,
        ticket_id: input.ticket.id.clone(),
        ticket: serde_json::to_value(&input.ticket).map_err(|e| AppError::internal("ticket", e))?,
        process_id: process.map(|p| p.0),
        process_version: process.map(|p| p.2),
        process_name: process.map(|p| p.1.clone()),
        definition: json!({}),
        state: state.into(),
        engine: json!({}),
        current_stage: None,
        exclusive,
        description: input.description.clone(),
        requested_by: input.requested_by.clone(),
        status_to_set: None,
        decided_at: None,
        last_sequence: 0,
        created_at: now,
        updated_at: now,
    })
}
