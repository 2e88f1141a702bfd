//! Admin actions: cancel, bypass and remind.

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::*;
use crate::helpers::*;

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
async fn remind_can_aim_at_one_approver_and_a_process_can_turn_it_off() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1", "u-2", "u-3"], count(3)).await);
    decided(&app, &id, "u-3", "approve").await;
    let a = app
        .post(
            &format!("/v1/approvals/{id}/remind"),
            json!({"approver_ids": ["u-2"]}),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    let evs = events(&app, &id).await;
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "approval.reminder");
    assert_eq!(recipient_ids(last), strings(&["u-2"]));
    // Someone who answered, or was never asked, cannot be reminded.
    let a = app
        .post(
            &format!("/v1/approvals/{id}/remind"),
            json!({"approver_ids": ["u-2", "u-3", "nobody"]}),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.error_fields(), vec!["approver_ids[1]", "approver_ids[2]"]);
    let a = app
        .post(
            &format!("/v1/approvals/{id}/remind"),
            json!({"approver_ids": []}),
        )
        .await;
    assert_eq!(a.error_fields(), vec!["approver_ids"], "{}", a.text);

    let quiet = new_process(
        &app,
        process(
            "No manual reminders",
            json!({"manual_reminders": false}),
            vec![stage(
                "S",
                "all",
                vec![group("g", listed(&["u-1"]), count(1))],
            )],
        ),
    )
    .await;
    let other = id_of(&from_process(&app, "T-2", &quiet).await);
    app.post(&format!("/v1/approvals/{other}/remind"), json!({}))
        .await
        .assert_problem(409, "reminders_disabled");
    assert_eq!(event_types(&app, &other).await, vec!["approval.requested"]);
}
