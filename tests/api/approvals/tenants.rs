//! Tenants: one cannot see or decide another's approvals; ticket ids are per tenant.

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::*;
use crate::helpers::*;

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
