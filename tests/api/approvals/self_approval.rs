//! Self-approval and nobody to ask.

use serde_json::{Value, json};

use super::helpers::*;
use crate::helpers::*;

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
