//! Conditional requests (RFC 9110 §13) on every resource that can be updated: `ETag` on reads
//! and writes, `If-None-Match` answering 304, `If-Match` compared strongly.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Answer, TestApp, simple_process, spawn_app_with};

async fn app() -> TestApp {
    spawn_app_with(&[("SIGNOFF_WEBHOOK_ALLOW_PRIVATE", "true")]).await
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    h: &[(&str, &str)],
) -> Answer {
    app.call_as(&app.token.clone(), method, path, body, h).await
}

fn etag(a: &Answer) -> String {
    a.header("etag")
        .unwrap_or_else(|| panic!("no ETag on {}: {}", a.status, a.text))
        .to_string()
}

/// The whole conditional contract of one resource: `first` is its current state (as the last
/// write answered it), `change` an update that alters it.
async fn check_resource(app: &TestApp, path: &str, method: Method, change: Value, first: &Answer) {
    let tag = etag(first);
    assert!(tag.starts_with('"'), "a strong tag: {tag}");

    // A read carries the same tag as the write that made the state.
    let read = app.get(path).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(etag(&read), tag, "{path}");

    // If-None-Match: the current tag (strong or weak) and `*` are 304 with the tag, no body.
    let weak = format!("W/{tag}");
    for held in [tag.as_str(), weak.as_str(), "*", "\"other\", TAG"] {
        let held = held.replace("TAG", &tag);
        let a = send(app, Method::GET, path, None, &[("if-none-match", &held)]).await;
        assert_eq!(a.status, 304, "{path} If-None-Match {held}: {}", a.text);
        assert_eq!(etag(&a), tag);
        assert!(a.text.is_empty(), "a 304 has no body: {}", a.text);
    }
    let a = send(
        app,
        Method::GET,
        path,
        None,
        &[("if-none-match", "\"stale\"")],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(etag(&a), tag);

    // If-Match is compared strongly: the weak form of the current tag does not match.
    for held in [weak.as_str(), "\"stale\"", "not-a-tag"] {
        let a = send(
            app,
            method.clone(),
            path,
            Some(change.clone()),
            &[("if-match", held)],
        )
        .await;
        a.assert_problem(412, "version_mismatch");
    }
    assert_eq!(
        etag(&app.get(path).await),
        tag,
        "a refused update changed nothing"
    );

    // The current tag lets the update through, and the answer carries the new tag.
    let a = send(
        app,
        method.clone(),
        path,
        Some(change.clone()),
        &[("if-match", &tag)],
    )
    .await;
    assert_eq!(a.status, 200, "{path}: {}", a.text);
    let next = etag(&a);
    assert_ne!(next, tag, "{path}: the change made a new tag");
    assert_eq!(etag(&app.get(path).await), next);

    // The old tag is stale now: 412 on update, 200 in full on a conditional read.
    let a = send(
        app,
        method.clone(),
        path,
        Some(change),
        &[("if-match", &tag)],
    )
    .await;
    a.assert_problem(412, "version_mismatch");
    let a = send(app, Method::GET, path, None, &[("if-none-match", &tag)]).await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn principals_have_etags_and_honour_preconditions() {
    let app = app().await;
    let first = app.principal("ann", json!({})).await;
    let change = json!({"kind": "user", "display_name": "Ann B.", "email": "ann@example.com"});
    check_resource(&app, "/v1/principals/ann", Method::PUT, change, &first).await;

    // If-Match names a principal that does not exist yet: 412, and nothing is created.
    let body = json!({"kind": "user", "display_name": "New", "email": "new@example.com"});
    for held in ["*", "\"abc\""] {
        let a = send(
            &app,
            Method::PUT,
            "/v1/principals/new",
            Some(body.clone()),
            &[("if-match", held)],
        )
        .await;
        a.assert_problem(412, "version_mismatch");
    }
    assert_eq!(app.get("/v1/principals/new").await.status, 404);
    // Without If-Match the upsert stays unconditional.
    assert_eq!(app.put("/v1/principals/new", body).await.status, 201);
}

#[tokio::test]
async fn calendars_have_etags_and_honour_preconditions() {
    let app = app().await;
    let day = json!([["09:00", "17:00"]]);
    let first = app
        .put(
            "/v1/calendars/office",
            json!({"time_zone": "UTC", "weekly": {"mon": day}}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let change = json!({"time_zone": "Europe/Paris", "weekly": {"mon": day}});
    check_resource(&app, "/v1/calendars/office", Method::PUT, change, &first).await;
}

#[tokio::test]
async fn delegations_have_etags_and_honour_preconditions() {
    let app = app().await;
    for id in ["ann", "bob", "cat"] {
        app.principal(id, json!({})).await;
    }
    let range = |to: &str| json!({"delegate_id": to, "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2999-01-01T00:00:00Z"});
    let first = app.put("/v1/principals/ann/delegation", range("bob")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    check_resource(
        &app,
        "/v1/principals/ann/delegation",
        Method::PUT,
        range("cat"),
        &first,
    )
    .await;
}

#[tokio::test]
async fn webhook_endpoints_have_etags_and_honour_preconditions() {
    let app = app().await;
    let created = app
        .post(
            "/v1/webhook-endpoints",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!(
        "/v1/webhook-endpoints/{}",
        created.body["id"].as_str().unwrap()
    );
    // The create answer shows the secret once; its tag is the one of the view without it.
    let first = app.get(&path).await;
    assert_eq!(etag(&created), etag(&first));
    check_resource(
        &app,
        &path,
        Method::PATCH,
        json!({"description": "changed"}),
        &first,
    )
    .await;
}

#[tokio::test]
async fn processes_and_rules_compare_if_match_strongly() {
    let app = app().await;
    let created = app.post("/v1/processes", simple_process("Strong")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("/v1/processes/{}", created.body["id"].as_str().unwrap());
    let mut next = simple_process("Strong");
    next["description"] = json!("second");
    check_resource(&app, &path, Method::PUT, next, &created).await;

    let rule = json!({"name": "R", "on_status": "review", "process_id": created.body["id"]});
    let made = app.post("/v1/rules", rule.clone()).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let path = format!("/v1/rules/{}", made.body["id"].as_str().unwrap());
    let mut changed = rule;
    changed["name"] = json!("R2");
    check_resource(&app, &path, Method::PUT, changed, &made).await;
}
