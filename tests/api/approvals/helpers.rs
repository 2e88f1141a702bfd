//! What the approvals tests share: people, tickets, processes, requests, decisions, views.

use serde_json::{Value, json};

use crate::helpers::*;

/// Upserts principals with default attributes.
pub async fn people(app: &TestApp, ids: &[&str]) {
    for id in ids {
        app.principal(id, json!({})).await;
    }
}

/// A ticket whose requester is `req` (not an approver unless a test makes them one).
pub fn ticket(id: &str) -> Value {
    json!({"id": id, "title": "New laptop", "requester_id": "req", "status": "new"})
}

pub fn group(name: &str, source: Value, require: Value) -> Value {
    json!({"name": name, "source": source, "require": require})
}

pub fn listed(ids: &[&str]) -> Value {
    json!({"type": "principals", "ids": ids})
}

pub fn count(n: u32) -> Value {
    json!({"type": "count", "count": n})
}

pub fn stage(name: &str, combine: &str, groups: Vec<Value>) -> Value {
    json!({"name": name, "combine": combine, "groups": groups})
}

pub fn process(name: &str, settings: Value, stages: Vec<Value>) -> Value {
    json!({
        "name": name,
        "on_approved_status": "proc-approved",
        "on_rejected_status": "proc-rejected",
        "settings": settings,
        "stages": stages,
    })
}

/// A one-stage, one-group process.
pub fn one_group_process(name: &str, source: Value, require: Value) -> Value {
    process(
        name,
        json!({}),
        vec![stage(
            "Approvers",
            "all",
            vec![group("approvers", source, require)],
        )],
    )
}

pub async fn new_process(app: &TestApp, body: Value) -> String {
    let a = app.post("/v1/processes", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

/// Requests approval and asserts 201; answers the view.
pub async fn request(app: &TestApp, body: Value) -> Value {
    let a = app.post("/v1/approvals", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body
}

pub async fn ad_hoc(app: &TestApp, ticket_id: &str, approvers: &[&str], require: Value) -> Value {
    request(
        app,
        json!({"ticket": ticket(ticket_id), "approvers": approvers, "require": require}),
    )
    .await
}

pub async fn from_process(app: &TestApp, ticket_id: &str, process_id: &str) -> Value {
    request(
        app,
        json!({"ticket": ticket(ticket_id), "process_id": process_id}),
    )
    .await
}

pub fn id_of(view: &Value) -> String {
    view["id"].as_str().unwrap().to_string()
}

pub async fn decide(app: &TestApp, id: &str, who: &str, decision: &str) -> Answer {
    app.post(
        &format!("/v1/approvals/{id}/decisions"),
        json!({"approver_id": who, "decision": decision, "comment": "because"}),
    )
    .await
}

/// Decides and asserts 200; answers the view.
pub async fn decided(app: &TestApp, id: &str, who: &str, decision: &str) -> Value {
    let a = decide(app, id, who, decision).await;
    assert_eq!(a.status, 200, "{who} {decision}: {}", a.text);
    a.body
}

pub async fn view(app: &TestApp, id: &str) -> Value {
    let a = app.get(&format!("/v1/approvals/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

pub async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let a = app
        .get(&format!("/v1/approvals/{id}/events?limit=200"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["items"].as_array().unwrap().clone()
}

pub async fn event_types(app: &TestApp, id: &str) -> Vec<String> {
    events(app, id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// The approver ids of a stage's tasks, sorted.
pub fn asked(view: &Value, stage: usize) -> Vec<String> {
    let mut ids: Vec<String> = view["stages"][stage]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["approver_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

pub fn task<'a>(view: &'a Value, stage: usize, who: &str) -> &'a Value {
    view["stages"][stage]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["approver_id"] == who)
        .unwrap_or_else(|| panic!("no task for {who} in stage {stage}: {view}"))
}

pub fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

pub fn recipient_ids(event: &Value) -> Vec<String> {
    let mut ids: Vec<String> = event["data"]["recipients"]
        .as_array()
        .unwrap_or_else(|| panic!("no recipients: {event}"))
        .iter()
        .map(|r| r["principal"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn two_stage_process(settings: Value) -> Value {
    process(
        "Two stages",
        settings,
        vec![
            stage(
                "Manager",
                "all",
                vec![group("managers", listed(&["u-1", "u-2"]), count(1))],
            ),
            stage(
                "Finance",
                "all",
                vec![group("finance", listed(&["u-1", "u-3"]), count(1))],
            ),
        ],
    )
}
