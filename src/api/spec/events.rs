//! The events as the document states them: one envelope schema per event type (`{id, type,
//! created_at, tenant, data}`, `data` typed by `super::super::payloads`), `Event` uniting them
//! with a discriminator on `type`, the events endpoint returning that union, and the OpenAPI
//! 3.1 `webhooks` section with one entry per event type.

use serde_json::{Map, Value, json};

use super::catalog::{EVENT_TYPES, UNKNOWN_VALUES};
use super::schemas::{pascal, schemas};

/// Each event type, the schema of its `data`, and when it is sent.
pub const EVENTS: &[(&str, &str, &str)] = &[
    (
        "approval.requested",
        "RequestedData",
        "A stage started (the first on request, the next after a stage is approved): notify its \
approvers, listed in `data.recipients` with their one-time links and message.",
    ),
    (
        "approval.decision_recorded",
        "DecisionRecordedData",
        "An answer was recorded, or an earlier one reused.",
    ),
    (
        "approval.stage_advanced",
        "StageAdvancedData",
        "A stage was approved and the next one starts.",
    ),
    (
        "approval.reminder",
        "ReminderData",
        "Approvers who have not answered should be reminded (on demand or on schedule): \
`data.recipients`.",
    ),
    (
        "approval.escalated",
        "EscalatedData",
        "Substitutes are asked to answer for approvers who have not: `data.recipients`.",
    ),
    (
        "approval.approved",
        "OutcomeData",
        "The approval is approved: set the ticket to `data.ticket.status_to_set`.",
    ),
    (
        "approval.rejected",
        "OutcomeData",
        "The approval is rejected: set the ticket to `data.ticket.status_to_set`.",
    ),
    (
        "approval.cancelled",
        "CancelledData",
        "Cancelled by an administrator, or superseded by a newer request on the ticket.",
    ),
    (
        "approval.withdrawn",
        "WithdrawnData",
        "The requester's side took the approval back: set the ticket to \
`data.ticket.status_to_set`.",
    ),
    (
        "approval.reassigned",
        "ReassignedData",
        "A pending seat moved to someone else: notify the new approver in `data.recipients`; \
the old approver's links no longer work.",
    ),
    (
        "approval.approver_added",
        "ApproverAddedData",
        "Someone joined a group of the running stage: notify them, in `data.recipients`.",
    ),
    (
        "approval.decision_revoked",
        "DecisionRevokedData",
        "An answer was taken back; the seat waits again, with fresh links in \
`data.recipients`.",
    ),
    (
        "approval.abstained",
        "AbstainedData",
        "An approver stepped out of the decision with a comment; their groups count the \
members who remain.",
    ),
    (
        "approval.info_requested",
        "InfoRequestedData",
        "An approver asked the requester a question: tell them, in `data.recipients` (each \
with a message); answers and the stage's clock wait for the reply.",
    ),
    (
        "approval.info_provided",
        "InfoProvidedData",
        "The requester answered: the approvers who still have to decide are in \
`data.recipients`, with fresh links.",
    ),
    (
        "process.expired",
        "ProcessExpiredData",
        "A process passed its `expires_at` and disabled itself; `data.process` says which.",
    ),
];

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The envelope schema's name for an event type: `approval.requested` → `ApprovalRequestedEvent`.
pub fn envelope_name(kind: &str) -> String {
    format!("{}Event", pascal(kind))
}

fn envelope(kind: &str, data: &str, when: &str) -> Value {
    json!({
        "type": "object",
        "description": format!("`{kind}`: {when}"),
        "required": ["id", "type", "created_at", "tenant", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^evt_[0-9a-f]{32}$",
                   "description": "`evt_…`, also the `webhook-id` header: deduplicate on it."},
            "type": {"type": "string", "enum": [kind], "description": "The event type."},
            "created_at": {"type": "string", "format": "date-time"},
            "tenant": {"type": "string", "description": "The tenant the event belongs to."},
            "sequence": {"type": "integer", "format": "int64", "minimum": 0,
                         "description": "In `GET /v1/approvals/{id}/events` only: the event's \
    place in the approval's trail (webhooks carry it as `data.sequence`)."},
            "data": schema_ref(data),
        },
    })
}

fn header(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "header", "required": true, "description": description,
           "schema": {"type": "string"}})
}

fn webhook(kind: &str, when: &str) -> Value {
    let name = envelope_name(kind);
    json!({"post": {
        "operationId": format!("webhook_{}", kind.replace('.', "_")),
        "tags": ["webhooks"],
        "summary": format!("`{kind}` delivered to your endpoint"),
        "description": format!("{when} Signed as Standard Webhooks: verify `webhook-signature` \
    over `<webhook-id>.<webhook-timestamp>.<body>` with the endpoint's secret before trusting the \
    body (docs/webhooks.md)."),
        "security": [],
        "parameters": [
            header("webhook-id", "The event id (`evt_…`), the same on every retry."),
            header("webhook-timestamp", "Unix seconds when this attempt was signed."),
            header("webhook-signature", "Space-separated `v1,<base64>` HMAC-SHA256 signatures, \
    one per secret in use."),
        ],
        "requestBody": {
            "required": true,
            "description": format!("The `{kind}` event."),
            "content": {"application/json": {"schema": schema_ref(&name)}},
        },
        "responses": {
            "200": {"description": "Any 2xx acknowledges the delivery. Anything else, or no \
    answer within the timeout, is retried on the schedule; 410 Gone disables the endpoint."},
        },
    }})
}

/// Envelopes, `Event`, the events endpoint's items, and `webhooks`.
pub(super) fn events(spec: &mut Value) {
    debug_assert_eq!(EVENTS.len(), EVENT_TYPES.len());
    let s = schemas(spec);
    let mut refs = vec![];
    let mut mapping = Map::new();
    for (kind, data, when) in EVENTS {
        let name = envelope_name(kind);
        s.insert(name.clone(), envelope(kind, data, when));
        refs.push(schema_ref(&name));
        mapping.insert(
            (*kind).to_string(),
            json!(format!("#/components/schemas/{name}")),
        );
    }
    s.insert(
        "Event".into(),
        json!({
            "description": format!("An event, as delivered by webhook and listed by \
`GET /v1/approvals/{{id}}/events`: the envelope and its `data`, typed by `type`. {UNKNOWN_VALUES} \
A receiver ignores (and answers 2xx to) a type it does not know."),
            "oneOf": refs,
            "discriminator": {"propertyName": "type", "mapping": mapping},
        }),
    );
    if let Some(items) = s
        .get_mut("EventList")
        .and_then(|l| l.pointer_mut("/properties/items"))
    {
        items["items"] = schema_ref("Event");
    }
    s.remove("EventView");
    let hooks: Map<String, Value> = EVENTS
        .iter()
        .map(|(kind, _, when)| ((*kind).to_string(), webhook(kind, when)))
        .collect();
    spec["webhooks"] = Value::Object(hooks);
}
