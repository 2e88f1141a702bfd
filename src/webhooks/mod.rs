//! Webhooks: Standard Webhooks signing, the outbound address policy, and delivery.

pub mod delivery;
pub mod reseal;
pub mod signing;
pub mod ssrf;

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
    "process.expired",
];
