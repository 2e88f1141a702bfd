//! Idempotency-Key on requests and decisions.

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::*;
use crate::helpers::*;

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
