//! The ticket an approval is about: the host's, as it described it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The ticket an approval is about, as the host described it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Ticket {
    #[schema(example = "T-1001")]
    pub id: String,
    #[serde(default)]
    #[schema(example = "New laptop")]
    pub title: Option<String>,
    /// The principal who asked for the ticket (used by `requester_manager` and self-approval).
    #[serde(default)]
    #[schema(example = "u-7")]
    pub requester_id: Option<String>,
    /// The ticket's status when approval was requested.
    #[serde(default)]
    #[schema(example = "new")]
    pub status: Option<String>,
    /// Free attributes; `ticket_field` groups read principal ids from here.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"amount": 1800, "approver_id": "u-9"}))]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}
