//! The directory: upsert, read, validation.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn put_creates_then_replaces_a_principal() {
    let app = spawn_app().await;
    let body = json!({"kind": "technician", "display_name": "Ada Lovelace",
                      "email": "ada@example.com", "locale": "en", "time_zone": "Europe/London",
                      "manager_id": "u-42", "roles": ["cab"], "active": true});
    let a = app.put("/v1/principals/u-7", body.clone()).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let mut expected = body.clone();
    expected["id"] = json!("u-7");
    assert_eq!(a.body, expected);

    let mut changed = body.clone();
    changed["roles"] = json!(["cab", "finance"]);
    let a = app.put("/v1/principals/u-7", changed).await;
    assert_eq!(a.status, 200, "{}", a.text);

    let got = app.get("/v1/principals/u-7").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["roles"], json!(["cab", "finance"]));
    assert_eq!(got.body["id"], "u-7");
}

#[tokio::test]
async fn defaults_fill_locale_time_zone_and_active() {
    let app = spawn_app().await;
    let a = app
        .put(
            "/v1/principals/c-1",
            json!({"kind": "contact", "display_name": "C"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["locale"], "en");
    assert_eq!(a.body["time_zone"], "UTC");
    assert_eq!(a.body["active"], true);
    assert_eq!(a.body["roles"], json!([]));
}

#[tokio::test]
async fn invalid_principal_lists_every_field() {
    let app = spawn_app().await;
    let a = app
        .put(
            "/v1/principals/u-1",
            json!({"kind": "robot", "display_name": "", "email": "nope",
                   "locale": "klingon-language-x", "time_zone": "Mars/Base"}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(
        a.error_fields(),
        ["kind", "display_name", "email", "locale", "time_zone"]
    );
}

#[tokio::test]
async fn unknown_principal_is_404() {
    let app = spawn_app().await;
    app.get("/v1/principals/nobody")
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn writing_principals_needs_directory_write() {
    let app = spawn_app().await;
    let t = token(TENANT, "processes:read");
    let a = app
        .call_as(
            &t,
            reqwest::Method::PUT,
            "/v1/principals/u-1",
            Some(json!({"kind": "user", "display_name": "U"})),
            &[],
        )
        .await;
    a.assert_problem(403, "insufficient_scope");
}
