//! Idempotency-Key on every POST that creates or decides: a replay answers the first answer,
//! headers included, and does nothing twice.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

async fn post_with_key(app: &TestApp, path: &str, key: &str, body: Value) -> Answer {
    let t = app.token.clone();
    app.call_as(
        &t,
        Method::POST,
        path,
        Some(body),
        &[("idempotency-key", key)],
    )
    .await
}

#[tokio::test]
async fn creating_a_process_twice_with_one_key_creates_it_once_with_the_same_etag() {
    let app = spawn_app().await;
    let first = post_with_key(&app, "/v1/processes", "p-1", simple_process("Once")).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = post_with_key(&app, "/v1/processes", "p-1", simple_process("Once")).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.header("etag"), Some("\"1\""));
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(
        app.get("/v1/processes").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Without the key the same body is a new request: the name is taken.
    app.post("/v1/processes", simple_process("Once"))
        .await
        .assert_problem(409, "process_name_taken");
    // Another client's key space is its own.
    let other = sign_hs256(
        &{
            let mut c = claims(TENANT, ALL_SCOPES);
            c["sub"] = json!("other-client");
            c
        },
        SECRET,
    );
    let theirs = app
        .call_as(
            &other,
            Method::POST,
            "/v1/processes",
            Some(simple_process("Twice")),
            &[("idempotency-key", "p-1")],
        )
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.text);
}

#[tokio::test]
async fn creating_a_webhook_endpoint_twice_answers_the_same_endpoint_and_secret() {
    let app = spawn_app_with(&[(
        "SIGNOFF_SECRET_KEY",
        "q3vXlQeC0Z4cFtn3V8r1m0yJg7Yx8kq3cQmHq0m4B2s=",
    )])
    .await;
    let body = json!({"url": "https://hooks.example.com/a"});
    let first = post_with_key(&app, "/v1/webhook-endpoints", "w-1", body.clone()).await;
    let again = post_with_key(&app, "/v1/webhook-endpoints", "w-1", body).await;
    assert_eq!((first.status.as_u16(), again.status.as_u16()), (201, 201));
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["secret"], first.body["secret"]);
    // The stored replay is sealed: the secret is nowhere in the clear.
    let secret = first.body["secret"].as_str().unwrap().to_string();
    let stored = stored_replays(&app);
    assert!(!stored.iter().any(|r| r.contains(&secret)), "{stored:?}");
    assert_eq!(
        app.get("/v1/webhook-endpoints").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The stored answers of the app's Idempotency-Keys, as text.
fn stored_replays(app: &TestApp) -> Vec<String> {
    use diesel::prelude::*;
    use signoff::db::schema::idempotency_keys::dsl as k;
    let mut c = diesel::PgConnection::establish(&url_for(&app.db_name)).unwrap();
    k::idempotency_keys
        .select(k::response)
        .load::<Option<String>>(&mut c)
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

#[tokio::test]
async fn without_a_secret_key_a_replayed_endpoint_create_does_not_keep_the_secret() {
    let app = spawn_app().await;
    let body = json!({"url": "https://hooks.example.com/a"});
    let first = post_with_key(&app, "/v1/webhook-endpoints", "w-1", body.clone()).await;
    let again = post_with_key(&app, "/v1/webhook-endpoints", "w-1", body).await;
    assert_eq!(again.body["id"], first.body["id"]);
    assert!(first.body["secret"].is_string());
    assert_eq!(again.body["secret"], Value::Null);
    let secret = first.body["secret"].as_str().unwrap().to_string();
    assert!(!stored_replays(&app).iter().any(|r| r.contains(&secret)));
}

#[tokio::test]
async fn cancel_bypass_and_bulk_honour_the_key() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let mk = |t: &'static str| json!({"ticket": {"id": t}, "approvers": ["u-1"]});
    let a = app.post("/v1/approvals", mk("T-1")).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = app.post("/v1/approvals", mk("T-2")).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = app.post("/v1/approvals", mk("T-3")).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();

    let cancel = json!({"reason": "duplicate", "actor_id": "admin"});
    let first = post_with_key(
        &app,
        &format!("/v1/approvals/{a}/cancel"),
        "c-1",
        cancel.clone(),
    )
    .await;
    let again = post_with_key(&app, &format!("/v1/approvals/{a}/cancel"), "c-1", cancel).await;
    assert_eq!(
        (first.status.as_u16(), again.status.as_u16()),
        (200, 200),
        "{}",
        again.text
    );
    assert_eq!(again.body["state"], "cancelled");

    let bypass = json!({"decision": "approve", "reason": "urgent"});
    let first = post_with_key(
        &app,
        &format!("/v1/approvals/{b}/bypass"),
        "b-1",
        bypass.clone(),
    )
    .await;
    let again = post_with_key(&app, &format!("/v1/approvals/{b}/bypass"), "b-1", bypass).await;
    assert_eq!(
        (first.status.as_u16(), again.status.as_u16()),
        (200, 200),
        "{}",
        again.text
    );

    let bulk = json!({"items": [{"approval_id": c, "approver_id": "u-1", "decision": "approve"}]});
    let first = post_with_key(&app, "/v1/decisions/bulk", "k-1", bulk.clone()).await;
    let again = post_with_key(&app, "/v1/decisions/bulk", "k-1", bulk).await;
    assert_eq!(first.body["results"][0]["status"], 200);
    assert_eq!(
        again.body, first.body,
        "the replay is the first answer, not a 409"
    );
    let events = app.get(&format!("/v1/approvals/{c}/events")).await;
    let decisions = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "approval.decision_recorded")
        .count();
    assert_eq!(decisions, 1);
}

#[tokio::test]
async fn a_typed_body_that_does_not_fit_is_422() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1"}, "approvers": ["u-1"]}),
        )
        .await;
    let id = a.body["id"].as_str().unwrap();
    let bad = app
        .post(
            &format!("/v1/approvals/{id}/bypass"),
            json!({"decision": "maybe", "reason": "x"}),
        )
        .await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(bad.error_fields(), ["decision"]);
}
