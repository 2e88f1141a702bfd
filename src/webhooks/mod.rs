//! Webhooks: Standard Webhooks signing, the outbound address policy, and delivery.

pub mod actions;
pub mod delivery;
pub mod reseal;
pub mod signing;
pub mod ssrf;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// An event's public id, `evt_…`: in its envelope, the `webhook-id` header and the API.
pub fn event_id(id: &Uuid) -> String {
    format!("evt_{}", id.simple())
}

/// The envelope every event is stored and delivered in: `{id, type, created_at, tenant,
/// data}`, as JSON text (serialized once, straight from `data`).
pub fn envelope<D: Serialize>(
    id: &Uuid,
    kind: &str,
    created_at: DateTime<Utc>,
    tenant: &str,
    data: &D,
) -> serde_json::Result<String> {
    #[derive(Serialize)]
    struct Envelope<'a, D> {
        id: String,
        #[serde(rename = "type")]
        kind: &'a str,
        created_at: DateTime<Utc>,
        tenant: &'a str,
        data: &'a D,
    }
    serde_json::to_string(&Envelope {
        id: event_id(id),
        kind,
        created_at,
        tenant,
        data,
    })
}

/// Every event type a webhook endpoint can subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "approval.requested",
    "approval.decision_recorded",
    "approval.stage_advanced",
    "approval.reminder",
    "approval.escalated",
    "approval.approved",
    "approval.rejected",
    "approval.cancelled",
    "approval.withdrawn",
    "approval.reassigned",
    "approval.approver_added",
    "approval.decision_revoked",
    "approval.abstained",
    "approval.info_requested",
    "approval.info_provided",
    "process.expired",
];
