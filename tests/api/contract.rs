//! The contract every endpoint keeps: one body reader (size, content type, control
//! characters, duplicate keys, depth, unknown fields) with the same problems everywhere.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// Sends `body` as raw JSON text, so it can hold what `serde_json::Value` cannot (duplicates).
async fn raw(app: &TestApp, method: Method, path: &str, body: String) -> Answer {
    let res = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        text,
    }
}

/// One endpoint of each way bodies used to be read: by hand, typed from a `Value`, plain typed.
async fn endpoints(app: &TestApp) -> Vec<(Method, String)> {
    app.principal("u-1", json!({})).await;
    app.principal("u-2", json!({})).await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1"}, "approvers": ["u-1"]}),
        )
        .await;
    let approval = a.body["id"].as_str().unwrap().to_string();
    let e = app
        .post(
            "/v1/webhook-endpoints",
            json!({"url": "https://hooks.example.com/x"}),
        )
        .await;
    assert_eq!(e.status, 201, "{}", e.text);
    let endpoint = e.body["id"].as_str().unwrap().to_string();
    vec![
        (Method::PUT, "/v1/principals/u-3".into()),
        (Method::POST, "/v1/processes".into()),
        (Method::POST, "/v1/approvals".into()),
        (Method::POST, format!("/v1/approvals/{approval}/cancel")),
        (Method::POST, format!("/v1/approvals/{approval}/decisions")),
        (Method::POST, format!("/v1/approvals/{approval}/remind")),
        (Method::PATCH, format!("/v1/webhook-endpoints/{endpoint}")),
        (Method::PUT, "/v1/principals/u-1/delegation".into()),
        (Method::PUT, "/v1/calendars/office".into()),
    ]
}

#[tokio::test]
async fn duplicate_keys_are_422_naming_the_key_on_every_endpoint() {
    let app = spawn_app().await;
    for (method, path) in endpoints(&app).await {
        let a = raw(
            &app,
            method.clone(),
            &path,
            r#"{"reason": "a", "reason": "b", "note": "x"}"#.into(),
        )
        .await;
        a.assert_problem(422, "validation_failed");
        assert_eq!(a.error_fields(), ["reason"], "{method} {path}: {}", a.text);
    }
}

#[tokio::test]
async fn nul_and_control_characters_are_422_not_500_on_every_endpoint() {
    let app = spawn_app().await;
    for (method, path) in endpoints(&app).await {
        for text in ["x\u{0}", "bell\u{7}"] {
            let body = json!({"reason": text, "actor_id": text, "description": text,
                              "note": text, "url": text});
            let a = app.call(method.clone(), &path, Some(body)).await;
            a.assert_problem(422, "validation_failed");
        }
    }
}

#[tokio::test]
async fn deeply_nested_bodies_are_422() {
    let app = spawn_app().await;
    let deep = format!(
        "{{\"description\": {}1{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    for (method, path) in endpoints(&app).await {
        let a = raw(&app, method.clone(), &path, deep.clone()).await;
        a.assert_problem(422, "validation_failed");
        assert!(
            a.text.contains("nests deeper than"),
            "{method} {path}: {}",
            a.text
        );
    }
}

#[tokio::test]
async fn wrong_content_type_and_bad_json_are_the_same_problem_everywhere() {
    let app = spawn_app().await;
    for (method, path) in endpoints(&app).await {
        let res = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .bearer_auth(&app.token)
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 415, "{method} {path}");
        let a = raw(&app, method.clone(), &path, "{not json".into()).await;
        a.assert_problem(400, "invalid_json");
    }
}

#[tokio::test]
async fn typed_bodies_refuse_unknown_fields_naming_them() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1"}, "approvers": ["u-1"]}),
        )
        .await;
    let id = a.body["id"].as_str().unwrap();
    let c = app
        .post(
            &format!("/v1/approvals/{id}/cancel"),
            json!({"reason": "gone", "reasn": "typo"}),
        )
        .await;
    c.assert_problem(422, "validation_failed");
    assert_eq!(c.error_fields(), ["reasn"]);
    let d = app
        .put(
            "/v1/principals/u-1/delegation",
            json!({"delegate_id": "u-1", "starts_at": "2026-01-01T00:00:00Z",
                   "ends_at": "2026-02-01T00:00:00Z", "notes": "typo"}),
        )
        .await;
    d.assert_problem(422, "validation_failed");
    assert_eq!(d.error_fields(), ["notes"]);
}

#[tokio::test]
async fn cors_answers_preflights_for_the_allowed_origins_only() {
    let origin = "https://portal.example";
    let app = spawn_app_with(&[("SIGNOFF_CORS_ORIGINS", origin)]).await;
    let preflight = |from: &'static str| {
        app.client
            .request(Method::OPTIONS, format!("{}/v1/processes", app.address))
            .header("origin", from)
            .header("access-control-request-method", "PUT")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key,if-match",
            )
            .send()
    };
    let ok = preflight(origin).await.unwrap();
    assert!(ok.status().is_success(), "{}", ok.status());
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], origin);
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for name in [
        "authorization",
        "content-type",
        "idempotency-key",
        "if-match",
    ] {
        assert!(allowed.contains(name), "{name} not in {allowed}");
    }
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let res = app
        .client
        .get(format!("{}/v1/processes", app.address))
        .bearer_auth(&app.token)
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], origin);
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for name in ["etag", "location", "retry-after"] {
        assert!(exposed.contains(name), "{name} not in {exposed}");
    }
}

#[tokio::test]
async fn without_cors_origins_no_origin_is_allowed_and_same_origin_calls_still_work() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/v1/processes", app.address))
        .bearer_auth(&app.token)
        .header("origin", "https://portal.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

/// serde reads a struct from an array (`[null, null]` as its fields in order): a PATCH of a
/// webhook endpoint with such a body answered 200 and changed nothing. Every body is an object.
#[tokio::test]
async fn a_body_that_is_not_an_object_is_422_on_every_endpoint() {
    let app = spawn_app().await;
    for (method, path) in endpoints(&app).await {
        for body in [json!([null, null]), json!("x"), json!(1)] {
            let a = app.call(method.clone(), &path, Some(body)).await;
            a.assert_problem(422, "validation_failed");
            assert_eq!(a.error_fields(), ["body"], "{method} {path}: {}", a.text);
        }
    }
}

/// What the document says the field-by-field readers take: an optional field sent as null is
/// the field left out.
#[tokio::test]
async fn optional_fields_sent_as_null_are_left_out() {
    let app = spawn_app().await;
    let p = app
        .put(
            "/v1/principals/u-1",
            json!({"kind": "user", "display_name": "Ada", "roles": null, "active": null}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    assert_eq!(p.body["roles"], json!([]));
    let t = app
        .put(
            "/v1/tickets/T-1",
            json!({"status": "new", "attributes": null}),
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.body["ticket"]["attributes"], json!({}));
    let spec = signoff::api::openapi();
    let roles = &spec["components"]["schemas"]["PrincipalInput"]["properties"]["roles"];
    assert_eq!(roles["type"], json!(["array", "null"]), "{roles}");
}

/// An empty `cursor=` is the first page; a cursor signoff did not make is still 400.
#[tokio::test]
async fn an_empty_cursor_is_the_first_page() {
    let app = spawn_app().await;
    for path in [
        "/v1/processes",
        "/v1/approvals",
        "/v1/rules",
        "/v1/webhook-endpoints",
    ] {
        let a = app.get(&format!("{path}?cursor=")).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        app.get(&format!("{path}?cursor=%00x"))
            .await
            .assert_problem(400, "invalid_cursor");
    }
}

/// The document declares what the server refuses: ids with control characters (422 on every
/// operation with a path id) and Idempotency-Key values (a pattern).
#[tokio::test]
async fn path_ids_and_idempotency_keys_are_refused_as_the_document_says() {
    let app = spawn_app().await;
    let a = app.get("/v1/processes/%01x").await;
    a.assert_problem(422, "validation_failed");
    let spec = signoff::api::openapi();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "path") {
                assert!(
                    op["responses"].get("422").is_some(),
                    "{method} {path} does not declare 422"
                );
            }
            for p in params.iter().filter(|p| p["in"] == "header") {
                assert_eq!(
                    p["schema"]["type"], "string",
                    "{method} {path} {}",
                    p["name"]
                );
            }
        }
    }
    let pattern = spec["paths"]["/v1/processes"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap()["schema"]["pattern"]
        .clone();
    assert_eq!(pattern, r"^[\t -~]*[!-~][\t -~]*$");
    let with_key = |key: String| {
        app.client
            .post(format!("{}/v1/webhook-endpoints", app.address))
            .bearer_auth(&app.token)
            .header("idempotency-key", key)
            .json(&json!({"url": "https://hooks.example.com/k"}))
            .send()
    };
    for bad in [" ".to_string(), "k".repeat(256)] {
        let res = with_key(bad.clone()).await.unwrap();
        assert_eq!(res.status(), 400, "{bad:?}");
    }
    for good in ["a\tb".to_string(), "k".repeat(255)] {
        let res = with_key(good.clone()).await.unwrap();
        assert_eq!(res.status(), 201, "{good:?}");
    }
}

/// A bulk item that is not an object is a malformed request, not an item answered 404.
#[tokio::test]
async fn bulk_items_must_be_objects() {
    let app = spawn_app().await;
    let a = app
        .post("/v1/decisions/bulk", json!({"items": [[null, null]]}))
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), ["items[0]"]);
    let b = app
        .post("/v1/decisions/bulk", json!({"items": [], "": {"": [null]}}))
        .await;
    b.assert_problem(422, "validation_failed");
}

/// `rules/test` needs a status to pick rules: an empty one is none.
#[tokio::test]
async fn rules_test_refuses_an_empty_status() {
    let app = spawn_app().await;
    let a = app
        .post(
            "/v1/rules/test",
            json!({"ticket": {"id": "T-1", "status": ""}}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), ["ticket.status"]);
}

/// A rules filter with a NUL was a 500 (Postgres refuses NUL in text).
#[tokio::test]
async fn a_rules_filter_with_a_control_character_is_422_not_500() {
    let app = spawn_app().await;
    app.get("/v1/rules?on_status=a%00b")
        .await
        .assert_problem(422, "validation_failed");
    let ok = app.get("/v1/rules?on_status=new").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}
