//! Rows as stored, with their insert forms beside them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::{principals, process_versions, processes};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = principals, check_for_backend(diesel::pg::Pg))]
pub struct PrincipalRow {
    pub tenant_id: String,
    pub id: String,
    pub kind: String,
    pub display_name: String,
    pub email: Option<String>,
    pub locale: String,
    pub time_zone: String,
    pub manager_id: Option<String>,
    pub roles: Vec<Option<String>>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = principals, treat_none_as_null = true)]
pub struct PrincipalForm {
    pub tenant_id: String,
    pub id: String,
    pub kind: String,
    pub display_name: String,
    pub email: Option<String>,
    pub locale: String,
    pub time_zone: String,
    pub manager_id: Option<String>,
    pub roles: Vec<Option<String>>,
    pub active: bool,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = processes, check_for_backend(diesel::pg::Pg))]
pub struct ProcessRow {
    pub tenant_id: String,
    pub id: Uuid,
    pub name: String,
    pub current_version: i32,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProcessRow {
    /// Enabled and not past its expiry: an expired process refuses requests even before the
    /// worker has flipped its flag.
    pub fn is_enabled(&self, now: DateTime<Utc>) -> bool {
        self.enabled && self.deleted_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = processes)]
pub struct NewProcess {
    pub tenant_id: String,
    pub id: Uuid,
    pub name: String,
    pub current_version: i32,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = process_versions, check_for_backend(diesel::pg::Pg))]
pub struct ProcessVersionRow {
    pub tenant_id: String,
    pub process_id: Uuid,
    pub version: i32,
    pub definition: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// An approval row. A command holds its engine state and definition typed instead (the
/// `engine` and `definition` values are then null, and read as such from JSON without them).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Deserialize, serde::Serialize)]
#[diesel(table_name = super::schema::approvals, check_for_backend(diesel::pg::Pg))]
pub struct ApprovalRow {
    pub tenant_id: String,
    pub id: Uuid,
    pub ticket_id: String,
    pub ticket: serde_json::Value,
    pub process_id: Option<Uuid>,
    pub process_version: Option<i32>,
    pub process_name: Option<String>,
    #[serde(default)]
    pub definition: serde_json::Value,
    pub state: String,
    #[serde(default)]
    pub engine: serde_json::Value,
    pub current_stage: Option<i32>,
    pub exclusive: bool,
    pub description: Option<String>,
    pub requested_by: Option<String>,
    pub status_to_set: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub last_sequence: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, serde::Deserialize)]
#[diesel(table_name = super::schema::approval_tasks, check_for_backend(diesel::pg::Pg))]
pub struct TaskRow {
    pub tenant_id: String,
    pub approval_id: Uuid,
    pub stage: i32,
    pub approver_id: String,
    pub state: String,
    pub verdict: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub actor_id: Option<String>,
    pub on_behalf_of: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::events, check_for_backend(diesel::pg::Pg))]
pub struct EventRow {
    pub position: i64,
    pub tenant_id: String,
    pub id: Uuid,
    pub approval_id: Option<Uuid>,
    pub sequence: i64,
    #[diesel(column_name = type_)]
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// An event to append; its payload is the envelope as JSON text, serialized once.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub tenant_id: String,
    pub id: Uuid,
    pub approval_id: Option<Uuid>,
    pub sequence: i64,
    pub kind: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::webhook_endpoints, check_for_backend(diesel::pg::Pg))]
pub struct EndpointRow {
    pub tenant_id: String,
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<Option<String>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The current secret, sealed when SIGNOFF_SECRET_KEY is set.
    pub secret: String,
    /// Previous secrets still in their grace period, newest first (see `webhooks::secret_list`).
    pub previous_secrets: serde_json::Value,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::webhook_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct DeliveryRow {
    pub id: Uuid,
    pub tenant_id: String,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_position: i64,
    pub approval_id: Option<Uuid>,
    pub event_type: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub leased_until: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::webhook_attempts, check_for_backend(diesel::pg::Pg))]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::approval_links, check_for_backend(diesel::pg::Pg))]
pub struct LinkRow {
    pub token_hash: String,
    pub tenant_id: String,
    pub approval_id: Uuid,
    pub stage: i32,
    pub approver_id: String,
    pub recipient_id: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::calendars, check_for_backend(diesel::pg::Pg))]
pub struct CalendarRow {
    pub tenant_id: String,
    pub id: String,
    pub definition: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = super::schema::delegations, check_for_backend(diesel::pg::Pg))]
pub struct DelegationRow {
    pub tenant_id: String,
    pub principal_id: String,
    pub delegate_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::timers, check_for_backend(diesel::pg::Pg))]
pub struct TimerRow {
    pub id: Uuid,
    pub tenant_id: String,
    pub approval_id: Uuid,
    pub stage: i32,
    pub kind: String,
    pub seq: i32,
    pub due_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
