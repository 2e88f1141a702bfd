//! Host actions as the API manages them: checked when saved (templates compile, the origin is
//! literal and allowed, the `when` condition compiles, every secret named exists), secrets
//! sealed at rest and never answered, and the delivery log.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::Order;
use crate::db::host_actions::{self as q, ActionAttemptRow, ActionDeliveryRow, ActionRow};
use crate::domain::condition;
use crate::domain::validate::{Faults, index, is_storable_text, join};
use crate::error::{AppError, AppResult};
use crate::secrets::{self, SecretKeys};
use crate::webhooks::EVENT_TYPES;
use crate::webhooks::actions::{self, ActionRequest, MAX_REQUESTS};

/// Secrets one action may hold.
const MAX_SECRETS: usize = 20;
/// Longest secret value, in bytes.
const MAX_SECRET: usize = 4096;

/// Body of `POST /v1/host-actions` and `PUT /v1/host-actions/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostActionInput {
    /// 1–200 characters.
    #[schema(example = "RT ticket status", min_length = 1, max_length = 200)]
    pub name: String,
    /// Event types that run the action, or `["*"]` for all.
    #[schema(example = json!(["approval.requested", "approval.approved", "approval.rejected"]), min_items = 1)]
    pub events: Vec<String>,
    /// A CEL condition over `event` (the webhook body): the action runs only for events where it
    /// holds; the others are logged as `skipped`. Compiled when saved (422 naming `when`).
    #[serde(default)]
    #[schema(example = "event.data.ticket.status_to_set != null")]
    pub when: Option<String>,
    /// The requests to send for each event, in order (1 to 10): a failed one is retried on the
    /// webhook schedule before the next one runs.
    #[schema(min_items = 1, max_items = 10)]
    pub requests: Vec<ActionRequest>,
    /// Write-only values that headers and bodies use as `{{ secrets.<name> }}`. Sealed with
    /// `SIGNOFF_SECRET_KEY` at rest and never answered. On `PUT`, names given are set, names
    /// given `null` are removed, names not given are kept.
    #[serde(default)]
    #[schema(example = json!({"rt_token": "1-14-3a4f…"}))]
    pub secrets: BTreeMap<String, Option<String>>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A host action as answered: its secrets by name only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostActionView {
    pub id: String,
    pub name: String,
    pub events: Vec<String>,
    pub when: Option<String>,
    pub requests: Vec<ActionRequest>,
    /// The names of the secrets it holds; their values are never answered.
    pub secret_names: Vec<String>,
    pub enabled: bool,
    /// Starts at 1; every `PUT` adds one. `ETag` carries it.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One attempt of one request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionAttemptView {
    /// Which request of the action (from 0).
    pub step: i32,
    pub method: String,
    /// The URL as rendered (URLs never hold secrets).
    pub url: String,
    pub attempted_at: DateTime<Utc>,
    /// The host's HTTP status; null when no answer came.
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    /// The start of the answer (at most 4 KiB), secrets replaced by `[secret]`.
    pub response_excerpt: Option<String>,
}

/// One event's run of an action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionDeliveryView {
    pub id: String,
    /// `evt_…`, as in the webhook body.
    pub event_id: String,
    pub event_type: String,
    pub approval_id: Option<String>,
    /// `pending`, `succeeded`, `failed` (gave up) or `skipped` (`when` was false).
    #[schema(example = "succeeded")]
    pub state: String,
    /// The request to send next (from 0), while pending.
    pub step: i32,
    /// Failed attempts of the current request.
    pub attempt_count: i32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub attempts: Vec<ActionAttemptView>,
}

fn names(secrets: &serde_json::Value) -> Vec<String> {
    secrets
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

impl From<ActionRow> for HostActionView {
    fn from(r: ActionRow) -> Self {
        Self {
            id: r.id.to_string(),
            secret_names: names(&r.secrets),
            name: r.name,
            events: r.event_types.into_iter().flatten().collect(),
            when: r.when_condition,
            requests: serde_json::from_value(r.requests).unwrap_or_default(),
            enabled: r.enabled,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// What the service needs of the operator's settings.
#[derive(Clone)]
pub struct Policy {
    pub keys: Option<std::sync::Arc<SecretKeys>>,
    pub allow_private: bool,
}

/// Checks everything a caller can get wrong, listing every fault; `secret_names` are the names
/// the action will hold once saved.
fn check(input: &HostActionInput, secret_names: &[String], policy: &Policy) -> AppResult<()> {
    let mut f = Faults::default();
    if input.name.trim().is_empty() || !is_storable_text(&input.name, 200) {
        f.push(
            "name",
            "must be 1 to 200 characters without control characters",
        );
    }
    if input.events.is_empty() {
        f.push("events", "must list at least one event type, or \"*\"");
    }
    for (i, e) in input.events.iter().enumerate() {
        if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
            f.push(
                index("events", i),
                format!("must be \"*\" or one of: {}", EVENT_TYPES.join(", ")),
            );
        }
    }
    if let Some(when) = &input.when
        && let Err(e) = condition::compile(when)
    {
        f.push("when", e.to_string());
    }
    if input.requests.is_empty() || input.requests.len() > MAX_REQUESTS {
        f.push(
            "requests",
            format!("must list 1 to {MAX_REQUESTS} requests"),
        );
    }
    for (i, r) in input.requests.iter().enumerate() {
        actions::check(&mut f, r, i, policy.allow_private);
        for used in actions::secrets_used(r) {
            if !secret_names.contains(&used) {
                f.push(
                    index("requests", i),
                    format!("uses secrets.{used}, which the action does not hold"),
                );
            }
        }
    }
    if secret_names.len() > MAX_SECRETS {
        f.push(
            "secrets",
            format!("must hold at most {MAX_SECRETS} secrets"),
        );
    }
    for (name, value) in &input.secrets {
        let path = join("secrets", name);
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            f.push(&path, "a secret's name is 1 to 64 letters, digits or _");
        }
        if let Some(v) = value
            && (v.is_empty() || v.len() > MAX_SECRET || v.contains('\0'))
        {
            f.push(
                &path,
                format!("must be 1 to {MAX_SECRET} bytes without NUL"),
            );
        }
    }
    if policy.keys.is_none() && input.secrets.values().any(Option::is_some) {
        f.push(
            "secrets",
            "cannot be stored: the operator has not set SIGNOFF_SECRET_KEY, and secrets are only kept sealed",
        );
    }
    f.finish(Some(())).map_err(AppError::invalid)
}

/// The secrets an action holds after `input` (sealed), from what it held.
fn merge_secrets(
    id: Uuid,
    held: &serde_json::Value,
    input: &BTreeMap<String, Option<String>>,
    keys: Option<&SecretKeys>,
) -> serde_json::Value {
    let mut out = held.as_object().cloned().unwrap_or_default();
    for (name, value) in input {
        match value {
            Some(v) => {
                out.insert(
                    name.clone(),
                    secrets::seal(keys, &q::secret_context(id, name), v).into(),
                );
            }
            None => {
                out.remove(name);
            }
        }
    }
    serde_json::Value::Object(out)
}

fn names_after(held: &serde_json::Value, input: &BTreeMap<String, Option<String>>) -> Vec<String> {
    let mut n = names(held);
    for (name, value) in input {
        match value {
            Some(_) if !n.contains(name) => n.push(name.clone()),
            None => n.retain(|x| x != name),
            _ => {}
        }
    }
    n
}

fn row(
    tenant: &str,
    id: Uuid,
    input: &HostActionInput,
    secrets: serde_json::Value,
    now: DateTime<Utc>,
) -> AppResult<ActionRow> {
    Ok(ActionRow {
        tenant_id: tenant.to_string(),
        id,
        name: input.name.trim().to_string(),
        event_types: input.events.iter().cloned().map(Some).collect(),
        when_condition: input.when.clone(),
        requests: serde_json::to_value(&input.requests)
            .map_err(|e| AppError::internal("host action requests", e))?,
        secrets,
        enabled: input.enabled.unwrap_or(true),
        version: 1,
        created_at: now,
        updated_at: now,
    })
}

/// A new action, checked, its secrets sealed; not written yet (the caller's transaction does).
pub fn new_action(
    tenant: &str,
    input: &HostActionInput,
    policy: &Policy,
    now: DateTime<Utc>,
) -> AppResult<ActionRow> {
    let empty = serde_json::json!({});
    check(input, &names_after(&empty, &input.secrets), policy)?;
    let id = Uuid::now_v7();
    let sealed = merge_secrets(id, &empty, &input.secrets, policy.keys.as_deref());
    row(tenant, id, input, sealed, now)
}

pub fn create(conn: &mut PgConnection, row: &ActionRow) -> AppResult<HostActionView> {
    Ok(q::insert(conn, row)?.into())
}

/// Replaces an action's definition; `expect` checks the version read (If-Match).
pub fn replace(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    input: &HostActionInput,
    policy: &Policy,
    now: DateTime<Utc>,
    expect: impl FnOnce(i32) -> AppResult<()>,
) -> AppResult<HostActionView> {
    let old = q::find_for_update(conn, tenant, id).map_err(AppError::missing("host action"))?;
    expect(old.version)?;
    check(input, &names_after(&old.secrets, &input.secrets), policy)?;
    let sealed = merge_secrets(id, &old.secrets, &input.secrets, policy.keys.as_deref());
    let mut new = row(tenant, id, input, sealed, now)?;
    new.created_at = old.created_at;
    Ok(q::update(conn, &new)?.into())
}

pub fn find(conn: &mut PgConnection, tenant: &str, id: Uuid) -> AppResult<HostActionView> {
    Ok(q::find(conn, tenant, id)
        .map_err(AppError::missing("host action"))?
        .into())
}

pub fn list(
    conn: &mut PgConnection,
    tenant: &str,
    order: Order,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<HostActionView>> {
    Ok(q::list(conn, tenant, order, after, limit)?
        .into_iter()
        .map(HostActionView::from)
        .collect())
}

pub fn delete(conn: &mut PgConnection, tenant: &str, id: Uuid) -> AppResult<()> {
    match q::delete(conn, tenant, id)? {
        0 => Err(AppError::not_found("host action")),
        _ => Ok(()),
    }
}

fn delivery_view(d: ActionDeliveryRow, attempts: &[ActionAttemptRow]) -> ActionDeliveryView {
    ActionDeliveryView {
        id: d.id.to_string(),
        event_id: crate::webhooks::event_id(&d.event_id),
        event_type: d.event_type,
        approval_id: d.approval_id.map(|a| a.to_string()),
        next_attempt_at: (d.state == "pending").then_some(d.next_attempt_at),
        state: d.state,
        step: d.step,
        attempt_count: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        created_at: d.created_at,
        attempts: attempts
            .iter()
            .filter(|a| a.delivery_id == d.id)
            .map(|a| ActionAttemptView {
                step: a.step,
                method: a.method.clone(),
                url: a.url.clone(),
                attempted_at: a.attempted_at,
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error: a.error.clone(),
                response_excerpt: a.response_excerpt.clone(),
            })
            .collect(),
    }
}

/// An action's deliveries (newest first by default) with their attempts, and each one's
/// position for the cursor.
pub fn deliveries(
    conn: &mut PgConnection,
    tenant: &str,
    id: Uuid,
    order: Order,
    after: Option<i64>,
    limit: i64,
) -> AppResult<Vec<(i64, ActionDeliveryView)>> {
    q::find(conn, tenant, id).map_err(AppError::missing("host action"))?;
    let (rows, attempts) = q::list_deliveries(conn, tenant, id, order, after, limit)?;
    Ok(rows
        .into_iter()
        .map(|d| (d.event_position, delivery_view(d, &attempts)))
        .collect())
}

/// Schedules a delivery again now, from the request that failed.
pub fn retry(conn: &mut PgConnection, tenant: &str, id: Uuid, delivery: Uuid) -> AppResult<()> {
    q::find(conn, tenant, id).map_err(AppError::missing("host action"))?;
    match q::retry(conn, tenant, id, delivery)? {
        0 => Err(AppError::not_found("delivery")),
        _ => Ok(()),
    }
}

/// Opens an action's secrets for rendering (the worker's side).
pub fn open_secrets(
    action: Uuid,
    stored: &serde_json::Value,
    keys: Option<&SecretKeys>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (name, v) in stored.as_object().into_iter().flatten() {
        let sealed = v.as_str().unwrap_or_default();
        let open = secrets::open(keys, &q::secret_context(action, name), sealed)
            .map_err(|e| format!("secret {name}: {e}"))?;
        out.insert(name.clone(), open);
    }
    Ok(out)
}

/// Seals every secret not sealed with the current key (housekeeping after a key rotation).
pub fn reseal_all(conn: &mut PgConnection, keys: &SecretKeys) -> AppResult<usize> {
    let mut n = 0;
    for a in q::all_with_secrets(conn)? {
        let mut changed = false;
        let mut out = serde_json::Map::new();
        for (name, v) in a.secrets.as_object().into_iter().flatten() {
            let stored = v.as_str().unwrap_or_default();
            let ctx = q::secret_context(a.id, name);
            if keys.is_current(stored) {
                out.insert(name.clone(), v.clone());
                continue;
            }
            match crate::webhooks::reseal::reseal_one(keys, &ctx, stored) {
                Ok(sealed) => {
                    changed = true;
                    out.insert(name.clone(), sealed.into());
                }
                Err(e) => {
                    tracing::warn!(action = %a.id, secret = %name, error = %e, "cannot re-seal a host action secret");
                    out.insert(name.clone(), v.clone());
                }
            }
        }
        if changed {
            q::set_secrets(conn, &a.tenant_id, a.id, &serde_json::Value::Object(out))?;
            n += 1;
        }
    }
    Ok(n)
}
