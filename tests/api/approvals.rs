//! Approvals over HTTP: requesting (ad-hoc and from processes), every group source,
//! requirements, stages, reuse, guards, one active approval per ticket, admin actions,
//! events, bulk decisions, inbox, lists, ticket deletion, tenants, versions and idempotency.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// Upserts principals with default attributes.
async fn people(app: &TestApp, ids: &[&str]) {
    for id in ids {
        app.principal(id, json!({})).await;
    }
}

/// A ticket whose requester is `req` (not an approver unless a test makes them one).
fn ticket(id: &str) -> Value {
    json!({"id": id, "title": "New laptop", "requester_id": "req", "status": "new"})
}

fn group(name: &str, source: Value, require: Value) -> Value {
    json!({"name": name, "source": source, "require": require})
}

fn listed(ids: &[&str]) -> Value {
    json!({"type": "principals", "ids": ids})
}

fn count(n: u32) -> Value {
    json!({"type": "count", "count": n})
}

fn stage(name: &str, combine: &str, groups: Vec<Value>) -> Value {
    json!({"name": name, "combine": combine, "groups": groups})
}

fn process(name: &str, settings: Value, stages: Vec<Value>) -> Value {
    json!({
        "name": name,
        "on_approved_status": "proc-approved",
        "on_rejected_status": "proc-rejected",
        "settings": settings,
        "stages": stages,
    })
}

/// A one-stage, one-group process.
fn one_group_process(name: &str, source: Value, require: Value) -> Value {
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

async fn new_process(app: &TestApp, body: Value) -> String {
    let a = app.post("/v1/processes", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

/// Requests approval and asserts 201; answers the view.
async fn request(app: &TestApp, body: Value) -> Value {
    let a = app.post("/v1/approvals", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body
}

async fn ad_hoc(app: &TestApp, ticket_id: &str, approvers: &[&str], require: Value) -> Value {
    request(
        app,
        json!({"ticket": ticket(ticket_id), "approvers": approvers, "require": require}),
    )
    .await
}

async fn from_process(app: &TestApp, ticket_id: &str, process_id: &str) -> Value {
    request(
        app,
        json!({"ticket": ticket(ticket_id), "process_id": process_id}),
    )
    .await
}

fn id_of(view: &Value) -> String {
    view["id"].as_str().unwrap().to_string()
}

async fn decide(app: &TestApp, id: &str, who: &str, decision: &str) -> Answer {
    app.post(
        &format!("/v1/approvals/{id}/decisions"),
        json!({"approver_id": who, "decision": decision, "comment": "because"}),
    )
    .await
}

/// Decides and asserts 200; answers the view.
async fn decided(app: &TestApp, id: &str, who: &str, decision: &str) -> Value {
    let a = decide(app, id, who, decision).await;
    assert_eq!(a.status, 200, "{who} {decision}: {}", a.text);
    a.body
}

async fn view(app: &TestApp, id: &str) -> Value {
    let a = app.get(&format!("/v1/approvals/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let a = app
        .get(&format!("/v1/approvals/{id}/events?limit=200"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["items"].as_array().unwrap().clone()
}

async fn event_types(app: &TestApp, id: &str) -> Vec<String> {
    events(app, id)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// The approver ids of a stage's tasks, sorted.
fn asked(view: &Value, stage: usize) -> Vec<String> {
    let mut ids: Vec<String> = view["stages"][stage]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["approver_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn task<'a>(view: &'a Value, stage: usize, who: &str) -> &'a Value {
    view["stages"][stage]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["approver_id"] == who)
        .unwrap_or_else(|| panic!("no task for {who} in stage {stage}: {view}"))
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

fn recipient_ids(event: &Value) -> Vec<String> {
    let mut ids: Vec<String> = event["data"]["recipients"]
        .as_array()
        .unwrap_or_else(|| panic!("no recipients: {event}"))
        .iter()
        .map(|r| r["principal"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Ad-hoc requests

#[tokio::test]
async fn ad_hoc_request_answers_201_with_location_and_the_approval_view() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1", "title": "New laptop", "requester_id": "req",
                              "status": "new", "attributes": {"amount": 1800}},
                   "approvers": ["u-1", "u-2"], "require": {"type": "count", "count": 1},
                   "description": "Needed for the new hire", "requested_by": "u-3",
                   "on_approved_status": "go", "on_rejected_status": "stop"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let v = &a.body;
    let id = id_of(v);
    assert_eq!(
        a.header("location"),
        Some(format!("/v1/approvals/{id}").as_str())
    );
    assert_eq!(v["state"], "pending");
    assert_eq!(v["ticket"]["id"], "T-1");
    assert_eq!(v["ticket"]["title"], "New laptop");
    assert_eq!(v["ticket"]["attributes"]["amount"], 1800);
    assert_eq!(v["process"], Value::Null);
    assert_eq!(v["description"], "Needed for the new hire");
    assert_eq!(v["requested_by"], "u-3");
    assert!(v["created_at"].is_string());
    assert_eq!(v["current_stage"], 0);
    assert_eq!(v["outcome"], Value::Null);
    assert_eq!(v["stages"].as_array().unwrap().len(), 1);
    assert_eq!(v["stages"][0]["state"], "pending");
    assert_eq!(v["stages"][0]["deadline"], Value::Null);
    assert_eq!(
        v["stages"][0]["groups"][0],
        json!({"name": "approvers", "state": "pending", "required": 1,
               "approved": 0, "rejected": 0, "pending": 2,
               "capped_from": null, "skip_reason": null, "removed": []})
    );
    assert_eq!(asked(v, 0), strings(&["u-1", "u-2"]));
    let t = task(v, 0, "u-1");
    assert_eq!(t["state"], "pending");
    assert_eq!(t["decided_at"], Value::Null);
    assert_eq!(t["comment"], Value::Null);
    assert_eq!(t["on_behalf_of"], Value::Null);
    let waiting = v["waiting_for"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let line = waiting[0].as_str().unwrap();
    assert!(line.contains("1 more approval") && line.contains("u-1") && line.contains("u-2"));

    // GET answers the same view, timestamps included.
    let got = view(&app, &id).await;
    assert_eq!(&got, v);
}

#[tokio::test]
async fn the_answer_to_create_and_decide_has_the_same_timestamps_as_get() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let created = ad_hoc(&app, "T-1", &["u-1", "u-2"], count(2)).await;
    let id = id_of(&created);
    let got = view(&app, &id).await;
    assert_eq!(got["created_at"], created["created_at"]);
    assert_eq!(got["updated_at"], created["updated_at"]);
    let decided_view = decided(&app, &id, "u-1", "approve").await;
    let got = view(&app, &id).await;
    assert_eq!(got["updated_at"], decided_view["updated_at"]);
    assert_eq!(
        task(&got, 0, "u-1")["decided_at"],
        task(&decided_view, 0, "u-1")["decided_at"]
    );
    // The event a webhook carries and the event the list answers are the same event.
    let evs = events(&app, &id).await;
    let recorded = &evs[1];
    assert_eq!(
        recorded["data"]["approval"]["updated_at"], got["updated_at"],
        "{recorded}"
    );
}

#[tokio::test]
async fn ad_hoc_approval_is_approved_by_one_approval_with_its_status_to_set() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let v = request(
        &app,
        json!({"ticket": ticket("T-1"), "approvers": ["u-1", "u-2"],
               "on_approved_status": "go", "on_rejected_status": "stop"}),
    )
    .await;
    let id = id_of(&v);
    let v = decided(&app, &id, "u-1", "approve").await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["current_stage"], Value::Null);
    assert_eq!(v["outcome"]["decision"], "approved");
    assert_eq!(v["outcome"]["reason"], "decisions");
    assert_eq!(v["outcome"]["status_to_set"], "go");
    assert!(v["outcome"]["decided_at"].is_string());
    assert_eq!(v["waiting_for"], json!([]));
    let t = task(&v, 0, "u-1");
    assert_eq!(t["state"], "approved");
    assert_eq!(t["comment"], "because");
    assert!(t["decided_at"].is_string());
    assert_eq!(task(&v, 0, "u-2")["state"], "superseded");
    assert_eq!(v["stages"][0]["state"], "approved");
    assert_eq!(v["stages"][0]["groups"][0]["state"], "approved");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 1);
    assert_eq!(view(&app, &id).await["state"], "approved");
}

#[tokio::test]
async fn unknown_ad_hoc_approver_is_422_naming_its_index() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    app.principal("u-off", json!({"active": false})).await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "approvers": ["u-1", "ghost", "u-off"]}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    let fields = a.error_fields();
    assert!(fields.contains(&"approvers[1]".to_string()), "{fields:?}");
    assert!(fields.contains(&"approvers[2]".to_string()), "{fields:?}");
    assert!(!fields.contains(&"approvers[0]".to_string()), "{fields:?}");
    let list = app.get("/v1/approvals").await;
    assert_eq!(list.body["items"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// 2. Group sources

#[tokio::test]
async fn principals_group_asks_the_listed_active_principals() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    app.principal("u-off", json!({"active": false})).await;
    let pid = new_process(
        &app,
        one_group_process("Listed", listed(&["u-1", "u-2", "u-off"]), count(1)),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["u-1", "u-2"]));
    assert_eq!(v["process"]["id"], pid.as_str());
    assert_eq!(v["process"]["name"], "Listed");
    assert_eq!(v["process"]["version"], 1);
    assert_eq!(v["stages"][0]["name"], "Approvers");
    assert_eq!(v["stages"][0]["groups"][0]["pending"], 2);
}

#[tokio::test]
async fn role_group_asks_only_active_principals_with_the_role() {
    let app = spawn_app().await;
    app.principal("fin-1", json!({"roles": ["finance"]})).await;
    app.principal("fin-2", json!({"roles": ["cab", "finance"]}))
        .await;
    app.principal("fin-off", json!({"roles": ["finance"], "active": false}))
        .await;
    app.principal("cab-1", json!({"roles": ["cab"]})).await;
    let pid = new_process(
        &app,
        one_group_process(
            "Finance",
            json!({"type": "role", "role": "finance"}),
            json!({"type": "all"}),
        ),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["fin-1", "fin-2"]));
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);
}

#[tokio::test]
async fn requester_selected_group_asks_the_selected_approvers() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-9"]).await;
    let pid = new_process(
        &app,
        one_group_process("Chosen", json!({"type": "requester_selected"}), count(1)),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": ticket("T-1"), "process_id": pid, "selected_approvers": ["u-9", "u-2"]}),
    )
    .await;
    assert_eq!(asked(&v, 0), strings(&["u-2", "u-9"]));
}

#[tokio::test]
async fn requester_selected_group_without_a_selection_is_422() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let pid = new_process(
        &app,
        one_group_process("Chosen", json!({"type": "requester_selected"}), count(1)),
    )
    .await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "process_id": pid}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["selected_approvers"]));
}

#[tokio::test]
async fn requester_manager_group_asks_the_manager_of_the_ticket_requester() {
    let app = spawn_app().await;
    people(&app, &["boss", "other-boss"]).await;
    app.principal("req", json!({"manager_id": "boss"})).await;
    app.principal("someone", json!({"manager_id": "other-boss"}))
        .await;
    let pid = new_process(
        &app,
        one_group_process("Manager", json!({"type": "requester_manager"}), count(1)),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["boss"]));
    let v = decided(&app, &id_of(&v), "boss", "approve").await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["status_to_set"], "proc-approved");
}

#[tokio::test]
async fn ticket_field_group_asks_the_principal_named_in_the_ticket_attributes() {
    let app = spawn_app().await;
    people(&app, &["u-9", "u-1"]).await;
    let pid = new_process(
        &app,
        one_group_process(
            "Owner",
            json!({"type": "ticket_field", "field": "approver_id"}),
            count(1),
        ),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": {"id": "T-1", "requester_id": "req",
                          "attributes": {"approver_id": "u-9", "amount": 5}},
               "process_id": pid}),
    )
    .await;
    assert_eq!(asked(&v, 0), strings(&["u-9"]));
    decide(&app, &id_of(&v), "u-1", "approve")
        .await
        .assert_problem(403, "not_an_approver");
}

// ---------------------------------------------------------------------------------------------
// 3. Self-approval and nobody to ask

#[tokio::test]
async fn the_requester_is_not_asked_to_approve_their_own_request() {
    let app = spawn_app().await;
    people(&app, &["req", "u-1"]).await;
    let pid = new_process(
        &app,
        one_group_process("Listed", listed(&["req", "u-1"]), count(1)),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["u-1"]));
    // Refused for what they are, not as someone who was merely not asked.
    decide(&app, &id_of(&v), "req", "approve")
        .await
        .assert_problem(403, "self_approval_not_allowed");
}

#[tokio::test]
async fn the_requester_is_asked_when_the_process_allows_self_approval() {
    let app = spawn_app().await;
    people(&app, &["req", "u-1"]).await;
    let pid = new_process(
        &app,
        process(
            "Self",
            json!({"allow_self_approval": true}),
            vec![stage(
                "Approvers",
                "all",
                vec![group("approvers", listed(&["req", "u-1"]), count(1))],
            )],
        ),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["req", "u-1"]));
    let v = decided(&app, &id_of(&v), "req", "approve").await;
    assert_eq!(v["state"], "approved");
}

#[tokio::test]
async fn a_process_where_nobody_remains_is_422_no_approvers() {
    let app = spawn_app().await;
    people(&app, &["req"]).await;
    let pid = new_process(
        &app,
        one_group_process("Only me", listed(&["req"]), count(1)),
    )
    .await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "process_id": pid}),
        )
        .await;
    a.assert_problem(422, "no_approvers");
    assert_eq!(app.get("/v1/approvals").await.body["items"], json!([]));
}

#[tokio::test]
async fn when_no_approvers_is_approve_the_request_is_approved_at_once() {
    let app = spawn_app().await;
    people(&app, &["req"]).await;
    let pid = new_process(
        &app,
        process(
            "Auto",
            json!({"when_no_approvers": "approve"}),
            vec![stage(
                "Approvers",
                "all",
                vec![group(
                    "approvers",
                    json!({"type": "role", "role": "astronaut"}),
                    count(1),
                )],
            )],
        ),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["decision"], "approved");
    assert_eq!(v["outcome"]["status_to_set"], "proc-approved");
    assert_eq!(v["current_stage"], Value::Null);
    assert_eq!(v["stages"][0]["state"], "skipped");
    let types = event_types(&app, &id_of(&v)).await;
    assert_eq!(types.last().map(String::as_str), Some("approval.approved"));
    assert!(
        !types.contains(&"approval.requested".to_string()),
        "{types:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Requirements and stages

#[tokio::test]
async fn count_1_of_2_stays_pending_after_one_reject_and_rejects_after_two() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        one_group_process("One of two", listed(&["u-1", "u-2"]), count(1)),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-1", "reject").await;
    assert_eq!(v["state"], "pending");
    assert_eq!(
        v["stages"][0]["groups"][0],
        json!({"name": "approvers", "state": "pending", "required": 1,
               "approved": 0, "rejected": 1, "pending": 1,
               "capped_from": null, "skip_reason": null, "removed": []})
    );
    let v = decided(&app, &id, "u-2", "reject").await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["outcome"]["decision"], "rejected");
    assert_eq!(v["outcome"]["status_to_set"], "proc-rejected");
}

#[tokio::test]
async fn count_2_of_2_is_rejected_by_one_reject() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        one_group_process("Two of two", listed(&["u-1", "u-2"]), count(2)),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-1", "approve").await;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 1);
    let v = decided(&app, &id, "u-2", "reject").await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["stages"][0]["groups"][0]["state"], "rejected");
}

#[tokio::test]
async fn first_reply_decides_the_group_with_the_first_answer_even_a_reject() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let v = ad_hoc(
        &app,
        "T-1",
        &["u-1", "u-2", "u-3"],
        json!({"type": "first_reply"}),
    )
    .await;
    let line = v["waiting_for"][0].as_str().unwrap();
    assert!(line.contains("an answer"), "{line}");
    let v = decided(&app, &id_of(&v), "u-2", "reject").await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(task(&v, 0, "u-1")["state"], "superseded");
}

#[tokio::test]
async fn majority_of_three_needs_two_approvals() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let v = ad_hoc(
        &app,
        "T-1",
        &["u-1", "u-2", "u-3"],
        json!({"type": "majority"}),
    )
    .await;
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);
    let id = id_of(&v);
    assert_eq!(
        decided(&app, &id, "u-1", "approve").await["state"],
        "pending"
    );
    assert_eq!(
        decided(&app, &id, "u-3", "reject").await["state"],
        "pending"
    );
    assert_eq!(
        decided(&app, &id, "u-2", "approve").await["state"],
        "approved"
    );
}

#[tokio::test]
async fn percent_is_rounded_up_and_rejects_when_out_of_reach() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    // 50% of 3 is 1.5, rounded up to 2.
    let v = ad_hoc(
        &app,
        "T-1",
        &["u-1", "u-2", "u-3"],
        json!({"type": "percent", "percent": 50}),
    )
    .await;
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);
    let id = id_of(&v);
    assert_eq!(
        decided(&app, &id, "u-1", "approve").await["state"],
        "pending"
    );
    assert_eq!(
        decided(&app, &id, "u-2", "reject").await["state"],
        "pending"
    );
    let v = decided(&app, &id, "u-3", "reject").await;
    assert_eq!(v["state"], "rejected");
}

#[tokio::test]
async fn reject_at_rejects_before_the_requirement_is_out_of_reach() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        one_group_process(
            "Veto",
            listed(&["u-1", "u-2", "u-3"]),
            json!({"type": "count", "count": 1, "reject_at": 1}),
        ),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-3", "reject").await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["stages"][0]["groups"][0]["pending"], 0);
}

fn two_stage_process(settings: Value) -> Value {
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

#[tokio::test]
async fn approving_the_first_stage_advances_to_the_second() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(&app, two_stage_process(json!({}))).await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(v["stages"][1]["state"], "waiting");
    assert_eq!(v["stages"][1]["groups"][0]["state"], "waiting");
    let id = id_of(&v);
    // A stage-2 approver cannot answer while stage 1 runs.
    decide(&app, &id, "u-3", "approve")
        .await
        .assert_problem(403, "not_an_approver");
    let v = decided(&app, &id, "u-2", "approve").await;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["current_stage"], 1);
    assert_eq!(v["stages"][0]["state"], "approved");
    assert_eq!(v["stages"][1]["state"], "pending");
    assert_eq!(task(&v, 0, "u-1")["state"], "superseded");
    // Without reuse, u-1 is asked again in stage 2.
    assert_eq!(task(&v, 1, "u-1")["state"], "pending");
    let types = event_types(&app, &id).await;
    assert_eq!(
        types,
        strings(&[
            "approval.requested",
            "approval.decision_recorded",
            "approval.stage_advanced",
            "approval.requested",
        ])
    );
    let evs = events(&app, &id).await;
    assert_eq!(recipient_ids(&evs[3]), strings(&["u-1", "u-3"]));

    let v = decided(&app, &id, "u-3", "approve").await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["status_to_set"], "proc-approved");
    assert_eq!(v["stages"][1]["state"], "approved");
}

#[tokio::test]
async fn a_rejected_first_stage_rejects_the_approval_and_skips_the_rest() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(&app, two_stage_process(json!({}))).await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    decided(&app, &id, "u-1", "reject").await;
    let v = decided(&app, &id, "u-2", "reject").await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["outcome"]["status_to_set"], "proc-rejected");
    assert_eq!(v["stages"][1]["state"], "skipped");
    // The second stage never started: nobody in it was asked.
    assert_eq!(v["stages"][1]["tasks"], json!([]));
    assert_eq!(v["stages"][1]["skip_reason"], "closed");
}

#[tokio::test]
async fn request_from_asks_only_the_named_group_of_an_any_stage() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Either",
            json!({}),
            vec![stage(
                "Finance",
                "any",
                vec![
                    group("finance", listed(&["u-1", "u-2"]), count(1)),
                    group("cfo", listed(&["u-3"]), json!({"type": "all"})),
                ],
            )],
        ),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": ticket("T-1"), "process_id": pid, "request_from": "cfo"}),
    )
    .await;
    assert_eq!(asked(&v, 0), strings(&["u-3"]));
    assert_eq!(v["stages"][0]["groups"][0]["state"], "skipped");
    assert_eq!(v["stages"][0]["groups"][1]["state"], "pending");
    let id = id_of(&v);
    decide(&app, &id, "u-1", "approve")
        .await
        .assert_problem(403, "not_an_approver");
    let v = decided(&app, &id, "u-3", "approve").await;
    assert_eq!(v["state"], "approved");

    // Naming a group that is not in an `any` stage is refused.
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-2"), "process_id": pid, "request_from": "nobody"}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["request_from"]));
}

#[tokio::test]
async fn one_person_in_two_groups_of_a_stage_decides_once_for_both() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Overlap",
            json!({}),
            vec![stage(
                "Both",
                "all",
                vec![
                    group("left", listed(&["u-1", "u-2"]), count(1)),
                    group("right", listed(&["u-1", "u-3"]), count(1)),
                ],
            )],
        ),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["u-1", "u-2", "u-3"]));
    assert_eq!(v["waiting_for"].as_array().unwrap().len(), 2);
    let id = id_of(&v);
    let v = decided(&app, &id, "u-1", "approve").await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 1);
    assert_eq!(v["stages"][0]["groups"][1]["approved"], 1);
    assert_eq!(v["stages"][0]["groups"][0]["state"], "approved");
    assert_eq!(v["stages"][0]["groups"][1]["state"], "approved");
    let recorded = event_types(&app, &id)
        .await
        .iter()
        .filter(|t| *t == "approval.decision_recorded")
        .count();
    assert_eq!(recorded, 1);
}

// ---------------------------------------------------------------------------------------------
// 5. Reuse of previous answers

#[tokio::test]
async fn a_reused_answer_decides_a_later_stage_by_itself() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        two_stage_process(json!({"reuse_previous_answers": true})),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-1", "approve").await;
    let t = task(&v, 1, "u-1");
    assert_eq!(t["state"], "reused");
    assert_eq!(t["decision"], "approve");
    assert_eq!(
        t["decided_by"], "u-1",
        "a reused answer records who gave it"
    );
    assert_eq!(task(&v, 1, "u-3")["state"], "superseded");
    assert_eq!(v["stages"][1]["state"], "approved");
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["status_to_set"], "proc-approved");
    let types = event_types(&app, &id).await;
    assert!(
        types.contains(&"approval.stage_advanced".to_string()),
        "{types:?}"
    );
    assert_eq!(types.last().map(String::as_str), Some("approval.approved"));
}

#[tokio::test]
async fn a_reused_answer_counts_but_the_stage_may_still_wait() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Reuse",
            json!({"reuse_previous_answers": true}),
            vec![
                stage(
                    "First",
                    "all",
                    vec![group("first", listed(&["u-1", "u-2"]), count(1))],
                ),
                stage(
                    "Second",
                    "all",
                    vec![group("second", listed(&["u-1", "u-3"]), count(2))],
                ),
            ],
        ),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-1", "approve").await;
    assert_eq!(v["current_stage"], 1);
    assert_eq!(task(&v, 1, "u-1")["state"], "reused");
    assert_eq!(v["stages"][1]["groups"][0]["approved"], 1);
    assert_eq!(v["stages"][1]["groups"][0]["pending"], 1);
    // u-1's reused answer is final in this stage.
    decide(&app, &id, "u-1", "approve")
        .await
        .assert_problem(409, "already_decided");
    let v = decided(&app, &id, "u-3", "approve").await;
    assert_eq!(v["state"], "approved");
}

// ---------------------------------------------------------------------------------------------
// 6. Guards

#[tokio::test]
async fn a_non_approver_is_403_not_an_approver() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    decide(&app, &id, "u-2", "approve")
        .await
        .assert_problem(403, "not_an_approver");
    assert_eq!(view(&app, &id).await["state"], "pending");
}

#[tokio::test]
async fn second_decision_by_the_same_approver_is_409() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1", "u-2"], count(2)).await);
    decided(&app, &id, "u-1", "approve").await;
    decide(&app, &id, "u-1", "reject")
        .await
        .assert_problem(409, "already_decided");
    let v = view(&app, &id).await;
    assert_eq!(task(&v, 0, "u-1")["state"], "approved");
}

#[tokio::test]
async fn a_decision_after_the_outcome_is_409_approval_closed() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1", "u-2"], count(1)).await);
    decided(&app, &id, "u-1", "approve").await;
    decide(&app, &id, "u-2", "reject")
        .await
        .assert_problem(409, "approval_closed");
    assert_eq!(view(&app, &id).await["state"], "approved");
}

#[tokio::test]
async fn reject_without_a_comment_is_422_when_the_process_requires_one() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        process(
            "Say why",
            json!({"reject_requires_comment": true}),
            vec![stage(
                "Approvers",
                "all",
                vec![group("approvers", listed(&["u-1", "u-2"]), count(2))],
            )],
        ),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let path = format!("/v1/approvals/{id}/decisions");
    for body in [
        json!({"approver_id": "u-1", "decision": "reject"}),
        json!({"approver_id": "u-1", "decision": "reject", "comment": "   "}),
    ] {
        let a = app.post(&path, body).await;
        a.assert_problem(422, "validation_failed");
        assert_eq!(a.error_fields(), strings(&["comment"]));
    }
    assert_eq!(view(&app, &id).await["state"], "pending");
    // Approving needs no comment; rejecting with one works.
    let a = app
        .post(&path, json!({"approver_id": "u-2", "decision": "approve"}))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = app
        .post(
            &path,
            json!({"approver_id": "u-1", "decision": "reject", "comment": "too expensive"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["state"], "rejected");
    assert_eq!(task(&a.body, 0, "u-1")["comment"], "too expensive");
}

#[tokio::test]
async fn a_malformed_decision_body_is_422_listing_the_fields() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"decision": "maybe", "color": "blue"}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    let fields = a.error_fields();
    for f in ["approver_id", "decision", "color"] {
        assert!(fields.contains(&f.to_string()), "{f} not in {fields:?}");
    }
    assert_eq!(view(&app, &id).await["state"], "pending");
}

// ---------------------------------------------------------------------------------------------
// 7. One active approval per ticket

#[tokio::test]
async fn a_second_request_on_a_ticket_is_409_naming_the_pending_approval() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let first = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "approvers": ["u-1"]}),
        )
        .await;
    a.assert_problem(409, "approval_pending");
    assert_eq!(a.body["pending_approval_id"], first.as_str());
    // Another ticket is not affected, and once decided the ticket can be asked again.
    ad_hoc(&app, "T-2", &["u-1"], count(1)).await;
    decided(&app, &first, "u-1", "approve").await;
    ad_hoc(&app, "T-1", &["u-1"], count(1)).await;
}

#[tokio::test]
async fn supersede_cancels_the_pending_approval_and_starts_anew() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let old = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let new = request(
        &app,
        json!({"ticket": ticket("T-1"), "approvers": ["u-2"], "supersede": true,
               "requested_by": "u-5"}),
    )
    .await;
    assert_eq!(new["state"], "pending");
    assert_ne!(id_of(&new), old);
    let o = view(&app, &old).await;
    assert_eq!(o["state"], "cancelled");
    assert_eq!(o["outcome"], Value::Null);
    assert_eq!(task(&o, 0, "u-1")["state"], "superseded");
    let types = event_types(&app, &old).await;
    assert_eq!(types.last().map(String::as_str), Some("approval.cancelled"));
    decide(&app, &old, "u-1", "approve")
        .await
        .assert_problem(409, "approval_closed");
    let pending = app.get("/v1/approvals?ticket_id=T-1&state=pending").await;
    assert_eq!(ids(&pending.body), vec![id_of(&new)]);
}

#[tokio::test]
async fn a_process_allowing_several_lets_two_approvals_be_pending_on_a_ticket() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let pid = new_process(
        &app,
        process(
            "Many",
            json!({"one_active_per_ticket": false}),
            vec![stage(
                "Approvers",
                "all",
                vec![group("approvers", listed(&["u-1"]), count(1))],
            )],
        ),
    )
    .await;
    let a = id_of(&from_process(&app, "T-1", &pid).await);
    let b = id_of(&from_process(&app, "T-1", &pid).await);
    assert_ne!(a, b);
    let list = app.get("/v1/approvals?ticket_id=T-1&state=pending").await;
    assert_eq!(ids(&list.body), vec![a, b]);
}

// ---------------------------------------------------------------------------------------------
// 8. Cancel and bypass

#[tokio::test]
async fn cancel_and_bypass_need_the_admin_scope() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let tok = token(
        TENANT,
        "approvals:read approvals:write approvals:decide processes:write",
    );
    let a = app
        .call_as(
            &tok,
            Method::POST,
            &format!("/v1/approvals/{id}/cancel"),
            Some(json!({"reason": "no longer needed"})),
            &[],
        )
        .await;
    a.assert_problem(403, "insufficient_scope");
    let a = app
        .call_as(
            &tok,
            Method::POST,
            &format!("/v1/approvals/{id}/bypass"),
            Some(json!({"decision": "approve", "reason": "urgent"})),
            &[],
        )
        .await;
    a.assert_problem(403, "insufficient_scope");
    assert_eq!(view(&app, &id).await["state"], "pending");
}

#[tokio::test]
async fn cancel_closes_the_approval_and_supersedes_its_pending_tasks() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1", "u-2"], count(2)).await);
    decided(&app, &id, "u-1", "approve").await;
    let a = app
        .post(
            &format!("/v1/approvals/{id}/cancel"),
            json!({"reason": "no longer needed", "actor_id": "admin-1"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = &a.body;
    assert_eq!(v["state"], "cancelled");
    assert_eq!(v["outcome"], Value::Null);
    assert_eq!(v["current_stage"], Value::Null);
    assert_eq!(task(v, 0, "u-1")["state"], "approved");
    assert_eq!(task(v, 0, "u-2")["state"], "superseded");
    assert_eq!(v["closed_by"]["action"], "cancel");
    assert_eq!(v["closed_by"]["reason"], "no longer needed");
    assert_eq!(v["closed_by"]["actor_id"], "admin-1");
    assert_eq!(view(&app, &id).await["state"], "cancelled");
    let evs = events(&app, &id).await;
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "approval.cancelled");
    assert_eq!(last["data"]["approval"]["state"], "cancelled");
}

#[tokio::test]
async fn bypass_approve_approves_with_reason_bypass() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(&app, two_stage_process(json!({}))).await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let a = app
        .post(
            &format!("/v1/approvals/{id}/bypass"),
            json!({"decision": "approve", "reason": "CEO said so", "actor_id": "admin-1"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = &a.body;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["decision"], "approved");
    assert_eq!(v["outcome"]["reason"], "bypass");
    assert_eq!(v["outcome"]["status_to_set"], "proc-approved");
    assert_eq!(v["closed_by"]["action"], "bypass");
    assert_eq!(v["closed_by"]["reason"], "CEO said so");
    assert_eq!(v["stages"][1]["state"], "skipped");
    let evs = events(&app, &id).await;
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "approval.approved");
    assert_eq!(last["data"]["ticket"]["status_to_set"], "proc-approved");
}

#[tokio::test]
async fn cancel_or_bypass_of_a_closed_approval_is_409() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    decided(&app, &id, "u-1", "reject").await;
    app.post(
        &format!("/v1/approvals/{id}/cancel"),
        json!({"reason": "late"}),
    )
    .await
    .assert_problem(409, "approval_closed");
    app.post(
        &format!("/v1/approvals/{id}/bypass"),
        json!({"decision": "approve", "reason": "late"}),
    )
    .await
    .assert_problem(409, "approval_closed");
    let v = view(&app, &id).await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["outcome"]["reason"], "decisions");
}

// ---------------------------------------------------------------------------------------------
// 9. Remind

#[tokio::test]
async fn remind_answers_202_and_emits_a_reminder_for_the_pending_approvers() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1", "u-2", "u-3"], count(3)).await);
    decided(&app, &id, "u-2", "approve").await;
    let a = app
        .post(&format!("/v1/approvals/{id}/remind"), json!({}))
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let evs = events(&app, &id).await;
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "approval.reminder");
    assert_eq!(recipient_ids(last), strings(&["u-1", "u-3"]));
    assert_eq!(
        last["data"]["recipients"][0]["principal"]["email"],
        "u-1@example.com"
    );
    // A closed approval is not reminded.
    app.post(
        &format!("/v1/approvals/{id}/cancel"),
        json!({"reason": "stop"}),
    )
    .await;
    app.post(&format!("/v1/approvals/{id}/remind"), json!({}))
        .await
        .assert_problem(409, "approval_closed");
}

// ---------------------------------------------------------------------------------------------
// 10. Events

#[tokio::test]
async fn events_trace_the_life_of_an_approval_in_sequence() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        one_group_process("Trace", listed(&["u-1", "u-2"]), count(1)),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    decided(&app, &id, "u-2", "approve").await;
    let evs = events(&app, &id).await;
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec![
            "approval.requested",
            "approval.decision_recorded",
            "approval.approved"
        ]
    );
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["sequence"], i as i64 + 1, "{e}");
        assert_eq!(e["data"]["sequence"], i as i64 + 1, "{e}");
        assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{e}");
        assert!(e["created_at"].is_string());
        assert_eq!(e["data"]["approval"]["id"], id.as_str());
        assert_eq!(e["data"]["ticket"]["id"], "T-1");
    }
    let mut seen: Vec<&str> = evs.iter().map(|e| e["id"].as_str().unwrap()).collect();
    seen.dedup();
    assert_eq!(seen.len(), 3);

    let requested = &evs[0];
    assert_eq!(recipient_ids(requested), strings(&["u-1", "u-2"]));
    for r in requested["data"]["recipients"].as_array().unwrap() {
        let p = &r["principal"];
        let pid = p["id"].as_str().unwrap();
        assert_eq!(p["email"], format!("{pid}@example.com"));
    }
    assert_eq!(requested["data"]["approval"]["state"], "pending");
    assert_eq!(requested["data"]["ticket"]["status_to_set"], Value::Null);

    let outcome = &evs[2];
    assert_eq!(outcome["data"]["approval"]["state"], "approved");
    assert_eq!(outcome["data"]["ticket"]["status_to_set"], "proc-approved");
    assert_eq!(
        outcome["data"]["approval"]["outcome"]["status_to_set"],
        "proc-approved"
    );
}

#[tokio::test]
async fn events_page_one_at_a_time_with_limit_1() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1", "u-2"], count(1)).await);
    decided(&app, &id, "u-1", "approve").await;
    let all = events(&app, &id).await;
    assert_eq!(all.len(), 3);
    let mut got = vec![];
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            None => format!("/v1/approvals/{id}/events?limit=1"),
            Some(c) => format!("/v1/approvals/{id}/events?limit=1&cursor={c}"),
        };
        let a = app.get(&path).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let items = a.body["items"].as_array().unwrap();
        assert!(items.len() <= 1);
        got.extend(items.iter().cloned());
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let seqs: Vec<i64> = got
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(got, all);
}

#[tokio::test]
async fn events_of_an_unknown_approval_are_404() {
    let app = spawn_app().await;
    app.get("/v1/approvals/018f0000-0000-7000-8000-000000000000/events")
        .await
        .assert_problem(404, "not_found");
    app.get("/v1/approvals/not-a-uuid")
        .await
        .assert_problem(404, "not_found");
}

// ---------------------------------------------------------------------------------------------
// 11. Bulk decisions

#[tokio::test]
async fn bulk_decisions_answer_per_item_and_apply_the_valid_ones() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let a = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let b = id_of(&ad_hoc(&app, "T-2", &["u-1", "u-2"], count(2)).await);
    let closed = id_of(&ad_hoc(&app, "T-3", &["u-1"], count(1)).await);
    decided(&app, &closed, "u-1", "approve").await;
    let unknown = "018f0000-0000-7000-8000-000000000000";
    let res = app
        .post(
            "/v1/decisions/bulk",
            json!({"items": [
                {"approval_id": a, "approver_id": "u-1", "decision": "approve"},
                {"approval_id": b, "approver_id": "u-9", "decision": "approve"},
                {"approval_id": unknown, "approver_id": "u-1", "decision": "approve"},
                {"approval_id": closed, "approver_id": "u-1", "decision": "approve"},
                {"approval_id": b, "approver_id": "u-2", "decision": "approve"},
                {"approval_id": b, "approver_id": "u-2", "decision": "reject"},
            ]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let results = res.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 403, 404, 409, 200, 409]);
    let codes: Vec<Value> = results.iter().map(|r| r["error"]["code"].clone()).collect();
    assert_eq!(
        codes,
        vec![
            Value::Null,
            json!("not_an_approver"),
            json!("not_found"),
            json!("approval_closed"),
            Value::Null,
            json!("already_decided"),
        ]
    );
    assert_eq!(results[0]["error"], Value::Null);
    assert_eq!(results[1]["approval_id"], b.as_str());
    assert_eq!(results[1]["error"]["status"], 403);
    assert_eq!(results[2]["approval_id"], unknown);
    assert_eq!(view(&app, &a).await["state"], "approved");
    let vb = view(&app, &b).await;
    assert_eq!(vb["state"], "pending");
    assert_eq!(task(&vb, 0, "u-2")["state"], "approved");
}

// ---------------------------------------------------------------------------------------------
// 12. Inbox

#[tokio::test]
async fn the_inbox_lists_approvals_waiting_on_a_principal_in_the_running_stage() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(&app, two_stage_process(json!({}))).await;
    let staged = id_of(&from_process(&app, "T-1", &pid).await);
    let adhoc = id_of(&ad_hoc(&app, "T-2", &["u-3", "u-2"], count(2)).await);

    let inbox = |who: &'static str| {
        let app = &app;
        async move {
            let a = app
                .get(&format!("/v1/principals/{who}/pending-approvals"))
                .await;
            assert_eq!(a.status, 200, "{}", a.text);
            ids(&a.body)
        }
    };
    // u-3 is asked only in stage 2 of `staged`.
    assert_eq!(inbox("u-3").await, vec![adhoc.clone()]);
    assert_eq!(inbox("u-2").await, vec![staged.clone(), adhoc.clone()]);
    assert_eq!(inbox("u-1").await, vec![staged.clone()]);

    decided(&app, &staged, "u-2", "approve").await;
    assert_eq!(inbox("u-2").await, vec![adhoc.clone()]);
    assert_eq!(inbox("u-3").await, vec![staged.clone(), adhoc.clone()]);
    assert_eq!(inbox("u-1").await, vec![staged.clone()]);

    decided(&app, &adhoc, "u-3", "approve").await;
    assert_eq!(inbox("u-3").await, vec![staged.clone()]);
    decided(&app, &staged, "u-3", "approve").await;
    assert_eq!(inbox("u-3").await, Vec::<String>::new());
    assert_eq!(inbox("u-1").await, Vec::<String>::new());
    assert_eq!(inbox("u-2").await, vec![adhoc]);
}

// ---------------------------------------------------------------------------------------------
// 13. Lists

#[tokio::test]
async fn the_list_filters_by_ticket_state_process_and_approver() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        one_group_process("Listed", listed(&["u-1", "u-2"]), count(1)),
    )
    .await;
    let p1 = id_of(&from_process(&app, "T-1", &pid).await);
    let p2 = id_of(&from_process(&app, "T-2", &pid).await);
    let h3 = id_of(&ad_hoc(&app, "T-3", &["u-3"], count(1)).await);
    decided(&app, &p2, "u-1", "approve").await;

    let list = |q: &'static str| {
        let app = &app;
        async move {
            let a = app.get(&format!("/v1/approvals{q}")).await;
            assert_eq!(a.status, 200, "{}", a.text);
            ids(&a.body)
        }
    };
    assert_eq!(list("").await, vec![p1.clone(), p2.clone(), h3.clone()]);
    assert_eq!(list("?ticket_id=T-2").await, vec![p2.clone()]);
    assert_eq!(list("?state=approved").await, vec![p2.clone()]);
    assert_eq!(list("?state=pending").await, vec![p1.clone(), h3.clone()]);
    assert_eq!(list("?state=rejected").await, Vec::<String>::new());
    let by_process = app.get(&format!("/v1/approvals?process_id={pid}")).await;
    assert_eq!(ids(&by_process.body), vec![p1.clone(), p2.clone()]);
    assert_eq!(list("?approver_id=u-3").await, vec![h3.clone()]);
    assert_eq!(list("?approver_id=u-2").await, vec![p1.clone(), p2.clone()]);
    assert_eq!(
        list("?approver_id=u-2&state=pending").await,
        vec![p1.clone()]
    );
    assert_eq!(list("?ticket_id=T-9").await, Vec::<String>::new());
}

#[tokio::test]
async fn the_list_pages_with_a_cursor() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let mut made = vec![];
    for t in ["T-1", "T-2", "T-3"] {
        made.push(id_of(&ad_hoc(&app, t, &["u-1"], count(1)).await));
    }
    let a = app.get("/v1/approvals?limit=2").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(ids(&a.body), made[..2].to_vec());
    let cursor = a.body["next_cursor"]
        .as_str()
        .expect("a next cursor")
        .to_string();
    let b = app
        .get(&format!("/v1/approvals?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(ids(&b.body), made[2..].to_vec());
    assert_eq!(b.body["next_cursor"], Value::Null);
    // Full page views, not just ids.
    assert_eq!(
        a.body["items"][0]["stages"][0]["tasks"][0]["approver_id"],
        "u-1"
    );
}

#[tokio::test]
async fn the_list_with_an_invalid_state_or_process_id_is_422() {
    let app = spawn_app().await;
    let a = app.get("/v1/approvals?state=maybe").await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["state"]));
    let a = app.get("/v1/approvals?process_id=nope").await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["process_id"]));
}

// ---------------------------------------------------------------------------------------------
// 14. Deleting a ticket

#[tokio::test]
async fn deleting_a_ticket_removes_its_approvals_and_keeps_the_others() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let gone = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    decided(&app, &gone, "u-1", "approve").await;
    let gone2 = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let kept = id_of(&ad_hoc(&app, "T-2", &["u-1"], count(1)).await);
    let a = app.delete("/v1/tickets/T-1").await;
    assert_eq!(a.status, 204, "{}", a.text);
    for id in [&gone, &gone2] {
        app.get(&format!("/v1/approvals/{id}"))
            .await
            .assert_problem(404, "not_found");
        app.get(&format!("/v1/approvals/{id}/events"))
            .await
            .assert_problem(404, "not_found");
    }
    assert_eq!(view(&app, &kept).await["state"], "pending");
    assert_eq!(events(&app, &kept).await.len(), 1);
    assert_eq!(ids(&app.get("/v1/approvals").await.body), vec![kept]);
    // Deleting again, or an unknown ticket, is still 204.
    assert_eq!(app.delete("/v1/tickets/T-1").await.status, 204);
    // The ticket can be asked about again.
    ad_hoc(&app, "T-1", &["u-1"], count(1)).await;
}

// ---------------------------------------------------------------------------------------------
// 15. Tenants

#[tokio::test]
async fn another_tenant_cannot_see_or_decide_an_approval() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let other = token("globex", ALL_SCOPES);
    let call = |method: Method, path: String, body: Option<Value>| {
        let app = &app;
        let other = other.clone();
        async move { app.call_as(&other, method, &path, body, &[]).await }
    };
    call(Method::GET, format!("/v1/approvals/{id}"), None)
        .await
        .assert_problem(404, "not_found");
    call(Method::GET, format!("/v1/approvals/{id}/events"), None)
        .await
        .assert_problem(404, "not_found");
    call(
        Method::POST,
        format!("/v1/approvals/{id}/decisions"),
        Some(json!({"approver_id": "u-1", "decision": "approve"})),
    )
    .await
    .assert_problem(404, "not_found");
    call(
        Method::POST,
        format!("/v1/approvals/{id}/cancel"),
        Some(json!({"reason": "mine now"})),
    )
    .await
    .assert_problem(404, "not_found");
    let bulk = call(
        Method::POST,
        "/v1/decisions/bulk".into(),
        Some(json!({"items": [{"approval_id": id, "approver_id": "u-1", "decision": "approve"}]})),
    )
    .await;
    assert_eq!(bulk.body["results"][0]["status"], 404, "{}", bulk.text);
    let list = call(Method::GET, "/v1/approvals".into(), None).await;
    assert_eq!(list.body["items"], json!([]));
    let inbox = call(
        Method::GET,
        "/v1/principals/u-1/pending-approvals".into(),
        None,
    )
    .await;
    assert_eq!(inbox.body["items"], json!([]));
    // Deleting the same ticket id in the other tenant leaves ours alone.
    assert_eq!(
        call(Method::DELETE, "/v1/tickets/T-1".into(), None)
            .await
            .status,
        204
    );
    let v = view(&app, &id).await;
    assert_eq!(v["state"], "pending");
    assert_eq!(task(&v, 0, "u-1")["state"], "pending");
}

// ---------------------------------------------------------------------------------------------
// 16. Process versions and deleted processes

#[tokio::test]
async fn a_running_approval_keeps_its_process_version() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let v1 = one_group_process("Versioned", listed(&["u-1"]), count(1));
    let pid = new_process(&app, v1).await;
    let old = from_process(&app, "T-1", &pid).await;
    assert_eq!(old["process"]["version"], 1);

    let v2 = one_group_process("Versioned", listed(&["u-2"]), count(1));
    let a = app
        .call_as(
            &app.token.clone(),
            Method::PUT,
            &format!("/v1/processes/{pid}"),
            Some(v2),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["version"], 2);

    let old_id = id_of(&old);
    let again = view(&app, &old_id).await;
    assert_eq!(again["process"]["version"], 1);
    assert_eq!(asked(&again, 0), strings(&["u-1"]));
    decide(&app, &old_id, "u-2", "approve")
        .await
        .assert_problem(403, "not_an_approver");

    let new = from_process(&app, "T-2", &pid).await;
    assert_eq!(new["process"]["version"], 2);
    assert_eq!(asked(&new, 0), strings(&["u-2"]));

    let done = decided(&app, &old_id, "u-1", "approve").await;
    assert_eq!(done["state"], "approved");
    assert_eq!(done["process"]["version"], 1);
    let by_process = app.get(&format!("/v1/approvals?process_id={pid}")).await;
    assert_eq!(ids(&by_process.body), vec![old_id, id_of(&new)]);
}

#[tokio::test]
async fn a_deleted_process_refuses_new_requests_but_running_ones_finish() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let pid = new_process(
        &app,
        one_group_process("Doomed", listed(&["u-1"]), count(1)),
    )
    .await;
    let running = id_of(&from_process(&app, "T-1", &pid).await);
    assert_eq!(
        app.delete(&format!("/v1/processes/{pid}")).await.status,
        204
    );
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-2"), "process_id": pid}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["process_id"]));
    let v = decided(&app, &running, "u-1", "approve").await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["status_to_set"], "proc-approved");
}

// ---------------------------------------------------------------------------------------------
// 17. Idempotency-Key

#[tokio::test]
async fn the_same_idempotency_key_and_body_replays_the_first_approval() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let body = json!({"ticket": ticket("T-1"), "approvers": ["u-1"]});
    let send = |body: Value| {
        let app = &app;
        async move {
            app.call_as(
                &app.token.clone(),
                Method::POST,
                "/v1/approvals",
                Some(body),
                &[("Idempotency-Key", "req-1")],
            )
            .await
        }
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let second = send(body.clone()).await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(second.header("location"), first.header("location"));
    let list = app.get("/v1/approvals").await;
    assert_eq!(ids(&list.body), vec![id_of(&first.body)]);

    let mut other = body.clone();
    other["ticket"]["id"] = json!("T-2");
    send(other)
        .await
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(ids(&app.get("/v1/approvals").await.body).len(), 1);
}

#[tokio::test]
async fn a_decision_retried_with_the_same_key_answers_200_both_times() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1", "u-2"], count(2)).await);
    let send = || {
        let app = &app;
        let id = id.clone();
        async move {
            app.call_as(
                &app.token.clone(),
                Method::POST,
                &format!("/v1/approvals/{id}/decisions"),
                Some(json!({"approver_id": "u-1", "decision": "approve"})),
                &[("Idempotency-Key", "dec-1")],
            )
            .await
        }
    };
    let first = send().await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = send().await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.body, first.body);
    let recorded = event_types(&app, &id)
        .await
        .iter()
        .filter(|t| *t == "approval.decision_recorded")
        .count();
    assert_eq!(recorded, 1);
    // Without the key the same decision is a conflict.
    decide(&app, &id, "u-1", "approve")
        .await
        .assert_problem(409, "already_decided");
}

// ---------------------------------------------------------------------------------------------
// More edges

#[tokio::test]
async fn an_inactive_or_unknown_selected_approver_is_422_naming_its_index() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    app.principal("u-off", json!({"active": false})).await;
    let pid = new_process(
        &app,
        one_group_process("Chosen", json!({"type": "requester_selected"}), count(1)),
    )
    .await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "process_id": pid,
                   "selected_approvers": ["u-1", "u-off", "ghost"]}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(
        a.error_fields(),
        strings(&["selected_approvers[1]", "selected_approvers[2]"])
    );
}

#[tokio::test]
async fn selected_approvers_on_a_process_without_such_a_group_is_422() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let pid = new_process(
        &app,
        one_group_process("Listed", listed(&["u-1"]), count(1)),
    )
    .await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "process_id": pid, "selected_approvers": ["u-1"]}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["selected_approvers"]));
}

#[tokio::test]
async fn the_requester_is_removed_from_role_and_ad_hoc_groups_too() {
    let app = spawn_app().await;
    app.principal("req", json!({"roles": ["cab"]})).await;
    app.principal("cab-1", json!({"roles": ["cab"]})).await;
    app.principal("cab-2", json!({"roles": ["cab"]})).await;
    let pid = new_process(
        &app,
        one_group_process(
            "Cab",
            json!({"type": "role", "role": "cab"}),
            json!({"type": "all"}),
        ),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["cab-1", "cab-2"]));
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);

    let v = ad_hoc(&app, "T-2", &["req", "cab-1"], count(1)).await;
    assert_eq!(asked(&v, 0), strings(&["cab-1"]));
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-3"), "approvers": ["req"]}),
        )
        .await;
    a.assert_problem(422, "no_approvers");
}

#[tokio::test]
async fn a_ticket_field_may_list_several_principals() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        one_group_process(
            "Owners",
            json!({"type": "ticket_field", "field": "owners"}),
            json!({"type": "all"}),
        ),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": {"id": "T-1", "requester_id": "req",
                          "attributes": {"owners": ["u-1", "u-2", "ghost"]}},
               "process_id": pid}),
    )
    .await;
    assert_eq!(asked(&v, 0), strings(&["u-1", "u-2"]));
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);
}

#[tokio::test]
async fn an_empty_stage_is_skipped_on_the_way_to_the_next() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Gap",
            json!({}),
            vec![
                stage(
                    "First",
                    "all",
                    vec![group("first", listed(&["u-1"]), count(1))],
                ),
                stage(
                    "Nobody",
                    "all",
                    vec![group(
                        "nobody",
                        json!({"type": "role", "role": "astronaut"}),
                        count(1),
                    )],
                ),
                stage(
                    "Third",
                    "all",
                    vec![group("third", listed(&["u-3"]), count(1))],
                ),
            ],
        ),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    // Approvers are read when a stage starts: until then the stage waits.
    assert_eq!(v["stages"][1]["state"], "waiting");
    let id = id_of(&v);
    let v = decided(&app, &id, "u-1", "approve").await;
    assert_eq!(v["current_stage"], 2);
    assert_eq!(v["stages"][1]["state"], "skipped");
    assert_eq!(v["stages"][1]["skip_reason"], "no_approvers");
    assert_eq!(v["stages"][2]["state"], "pending");
    let evs = events(&app, &id).await;
    let advanced = evs
        .iter()
        .find(|e| e["type"] == "approval.stage_advanced")
        .expect("a stage_advanced event");
    assert_eq!(advanced["data"]["detail"]["from"], 0);
    assert_eq!(advanced["data"]["detail"]["to"], 2);
    assert_eq!(recipient_ids(evs.last().unwrap()), strings(&["u-3"]));
    assert_eq!(
        decided(&app, &id, "u-3", "approve").await["state"],
        "approved"
    );
}

#[tokio::test]
async fn a_member_of_the_unasked_group_is_asked_when_the_named_group_holds_them() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Either",
            json!({}),
            vec![stage(
                "Finance",
                "any",
                vec![
                    group("finance", listed(&["u-1", "u-2"]), count(1)),
                    group("cfo", listed(&["u-2", "u-3"]), count(2)),
                ],
            )],
        ),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": ticket("T-1"), "process_id": pid, "request_from": "cfo"}),
    )
    .await;
    assert_eq!(asked(&v, 0), strings(&["u-2", "u-3"]));
    let id = id_of(&v);
    // u-2's approval would approve `finance` (count 1) but that group was not asked.
    let v = decided(&app, &id, "u-2", "approve").await;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["stages"][0]["groups"][0]["state"], "skipped");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 0);
    assert_eq!(v["stages"][0]["groups"][1]["approved"], 1);
    assert_eq!(
        decided(&app, &id, "u-3", "approve").await["state"],
        "approved"
    );
}

#[tokio::test]
async fn a_reused_rejection_counts_against_a_later_group() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        two_stage_process(json!({"reuse_previous_answers": true})),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    // Stage 1 needs one of u-1, u-2: u-1 rejects, u-2 approves.
    decided(&app, &id, "u-1", "reject").await;
    let v = decided(&app, &id, "u-2", "approve").await;
    assert_eq!(v["current_stage"], 1);
    let t = task(&v, 1, "u-1");
    assert_eq!(t["state"], "reused");
    assert_eq!(t["decision"], "reject");
    assert_eq!(v["stages"][1]["groups"][0]["rejected"], 1);
    assert_eq!(v["stages"][1]["groups"][0]["pending"], 1);
    let v = decided(&app, &id, "u-3", "reject").await;
    assert_eq!(v["state"], "rejected");
}

#[tokio::test]
async fn bulk_items_with_a_bad_decision_are_422_with_the_item_path() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let a = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let res = app
        .post(
            "/v1/decisions/bulk",
            json!({"items": [
                {"approval_id": a, "approver_id": "u-1", "decision": "perhaps"},
                {"approval_id": a, "approver_id": "u-1", "decision": "approve"},
            ]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let r = &res.body["results"];
    assert_eq!(r[0]["status"], 422);
    assert_eq!(r[0]["error"]["code"], "validation_failed");
    assert_eq!(r[0]["error"]["errors"][0]["field"], "items[0].decision");
    assert_eq!(r[1]["status"], 200);
    assert_eq!(view(&app, &a).await["state"], "approved");

    let too_many: Vec<Value> = (0..101)
        .map(|_| json!({"approval_id": a, "approver_id": "u-1", "decision": "approve"}))
        .collect();
    let res = app
        .post("/v1/decisions/bulk", json!({"items": too_many}))
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), strings(&["items"]));
}

#[tokio::test]
async fn answering_on_behalf_of_someone_without_being_their_substitute_is_403() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-2", "decision": "approve", "on_behalf_of": "u-1"}),
        )
        .await;
    a.assert_problem(403, "not_a_substitute");
    assert_eq!(view(&app, &id).await["state"], "pending");
}

#[tokio::test]
async fn deciding_needs_the_decide_scope_and_reading_the_read_scope() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let tok = token(TENANT, "approvals:read approvals:write");
    app.call_as(
        &tok,
        Method::POST,
        &format!("/v1/approvals/{id}/decisions"),
        Some(json!({"approver_id": "u-1", "decision": "approve"})),
        &[],
    )
    .await
    .assert_problem(403, "insufficient_scope");
    let tok = token(TENANT, "approvals:decide");
    app.call_as(&tok, Method::GET, &format!("/v1/approvals/{id}"), None, &[])
        .await
        .assert_problem(403, "insufficient_scope");
    app.call_as(
        &tok,
        Method::POST,
        "/v1/approvals",
        Some(json!({"ticket": ticket("T-2"), "approvers": ["u-1"]})),
        &[],
    )
    .await
    .assert_problem(403, "insufficient_scope");
    assert_eq!(view(&app, &id).await["state"], "pending");
}

#[tokio::test]
async fn cancel_without_a_reason_is_422() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let a = app
        .post(
            &format!("/v1/approvals/{id}/cancel"),
            json!({"reason": "  "}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["reason"]));
    assert_eq!(view(&app, &id).await["state"], "pending");
}

#[tokio::test]
async fn another_tenant_may_ask_for_approval_on_the_same_ticket_id() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let ours = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let other = token("globex", ALL_SCOPES);
    let a = app
        .call_as(
            &other,
            Method::PUT,
            "/v1/principals/g-1",
            Some(json!({"kind": "user", "display_name": "G", "email": "g@example.com"})),
            &[],
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
    // Our u-1 does not exist over there.
    let a = app
        .call_as(
            &other,
            Method::POST,
            "/v1/approvals",
            Some(json!({"ticket": ticket("T-1"), "approvers": ["u-1"]})),
            &[],
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["approvers[0]"]));
    let a = app
        .call_as(
            &other,
            Method::POST,
            "/v1/approvals",
            Some(json!({"ticket": ticket("T-1"), "approvers": ["g-1"]})),
            &[],
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_ne!(id_of(&a.body), ours);
    assert_eq!(ids(&app.get("/v1/approvals").await.body), vec![ours]);
}

#[tokio::test]
async fn a_refused_request_is_not_kept_for_its_key_and_runs_again_later() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let pending = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let send = || {
        let app = &app;
        async move {
            app.call_as(
                &app.token.clone(),
                Method::POST,
                "/v1/approvals",
                Some(json!({"ticket": ticket("T-1"), "approvers": ["u-1"]})),
                &[("Idempotency-Key", "again")],
            )
            .await
        }
    };
    let first = send().await;
    first.assert_problem(409, "approval_pending");
    assert_eq!(first.body["pending_approval_id"], pending.as_str());
    let second = send().await;
    second.assert_problem(409, "approval_pending");
    assert_eq!(second.header("idempotent-replayed"), None);
    // The conflict is resolved; the same request with the same key now runs.
    let cancel = app
        .post(
            &format!("/v1/approvals/{pending}/cancel"),
            json!({"reason": "replaced"}),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    let third = send().await;
    assert_eq!(third.status, 201, "{}", third.text);
    assert_eq!(third.header("idempotent-replayed"), None);
    let fourth = send().await;
    assert_eq!(fourth.header("idempotent-replayed"), Some("true"));
    assert_eq!(fourth.body["id"], third.body["id"]);
}
