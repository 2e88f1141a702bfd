//! Guards on decisions: who may decide, once, before the outcome, with the body and scopes required.

use reqwest::Method;
use serde_json::json;

use super::helpers::*;
use crate::helpers::*;

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
