//! Ad-hoc requests: the answer, its timestamps, the status to set, unknown approvers.

use serde_json::{Value, json};

use super::helpers::*;
use crate::helpers::*;

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

#[tokio::test]
async fn a_ticket_is_read_alike_in_a_request_and_a_report_a_malformed_requester_is_422_in_both() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let bad = json!({"title": "t", "requester_id": "no spaces please", "status": "new"});
    let mut in_request = bad.clone();
    in_request["id"] = json!("T-1");
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": in_request, "approvers": ["u-1"]}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), ["ticket.requester_id"]);
    let r = app.put("/v1/tickets/T-1", bad).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["requester_id"]);
}
