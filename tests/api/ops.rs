//! Health, readiness, metrics, request ids, error shapes, and the committed OpenAPI document.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn livez_and_readyz_answer_ok() {
    let app = spawn_app().await;
    assert_eq!(app.get("/livez").await.status, 200);
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn readyz_is_503_while_the_database_is_down() {
    // A port with nothing listening stands for a stopped database.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://postgres@127.0.0.1:{port}/nothing");
    let app = spawn_with_settings(settings(&url, &[]), "none".into()).await;
    assert_eq!(app.get("/livez").await.status, 200);
    app.get("/readyz")
        .await
        .assert_problem(503, "service_unavailable");
    // API calls needing the database are 503 too, never 500.
    let a = app.get("/v1/processes").await;
    a.assert_problem(503, "service_unavailable");
    assert!(a.header("retry-after").is_some());
}

#[tokio::test]
async fn metrics_expose_request_counts_and_pool_state() {
    // No worker: its loops take connections as they start, so the waiters gauge would read
    // whatever moment the scrape lands on.
    let app = spawn_app_with(&[("SIGNOFF_WORKER", "false")]).await;
    app.get("/v1/processes").await;
    let m = app.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.text.contains(
            "signoff_http_requests_total{method=\"GET\",route=\"/v1/processes\",status=\"200\"} 1"
        ),
        "{}",
        m.text
    );
    assert!(
        m.text
            .contains("signoff_http_request_duration_seconds_bucket")
    );
    assert!(m.text.contains("signoff_db_pool_max_connections 8"));
    assert!(m.text.contains("signoff_db_pool_waiters 0"));
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let a = app
        .call_as(
            "",
            Method::GET,
            "/livez",
            None,
            &[("x-request-id", "abc-123")],
        )
        .await;
    assert_eq!(a.header("x-request-id"), Some("abc-123"));
    let b = app.get("/livez").await;
    assert_eq!(b.header("x-request-id").unwrap().len(), 36);
}

#[tokio::test]
async fn unknown_routes_are_problem_json_404() {
    let app = spawn_app().await;
    app.get("/v1/nothing-here")
        .await
        .assert_problem(404, "route_not_found");
}

#[tokio::test]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let app = spawn_app().await;
    let a = app.call(Method::PATCH, "/v1/processes", None).await;
    a.assert_problem(405, "method_not_allowed");
    assert_eq!(a.header("allow"), Some("GET, POST"));
    let b = app.call(Method::POST, "/v1/processes/abc", None).await;
    b.assert_problem(405, "method_not_allowed");
    assert_eq!(b.header("allow"), Some("DELETE, GET, PUT"));
}

#[tokio::test]
async fn malformed_json_is_400_problem() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/v1/processes", app.address))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "invalid_json");
}

#[tokio::test]
async fn wrong_content_type_is_415_problem() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/v1/processes", app.address))
        .bearer_auth(&app.token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn oversized_body_is_413_problem() {
    let app = spawn_app().await;
    let big = "x".repeat(2 * 1024 * 1024);
    let a = app
        .post("/v1/processes", json!({"name": big, "stages": []}))
        .await;
    a.assert_problem(413, "body_too_large");
}

#[tokio::test]
async fn bad_query_parameters_are_problem_json() {
    let app = spawn_app().await;
    app.get("/v1/processes?enabled=perhaps")
        .await
        .assert_problem(400, "invalid_query");
    app.get("/v1/processes?limit=500")
        .await
        .assert_problem(422, "validation_failed");
    app.get("/v1/processes?cursor=%%%")
        .await
        .assert_problem(400, "invalid_cursor");
}

#[tokio::test]
async fn openapi_and_docs_are_served() {
    let app = spawn_app().await;
    let spec = app.get("/openapi.json").await;
    assert_eq!(spec.status, 200);
    assert!(spec.body["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(spec.body["paths"]["/v1/processes/{id}"].is_object());
    let docs = app
        .client
        .get(format!("{}/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

#[test]
fn committed_openapi_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    let generated = signoff::api::openapi_json();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    );
}

#[test]
fn every_operation_is_documented() {
    let spec: serde_json::Value = serde_json::from_str(&signoff::api::openapi_json()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let described = op["description"].as_str().is_some_and(|d| !d.is_empty())
                || op["summary"].as_str().is_some_and(|d| !d.is_empty());
            assert!(described, "{method} {path} has no description");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
            // Links are the one unauthenticated /v1 resource: the token is the credential.
            if path.starts_with("/v1/") && !path.starts_with("/v1/links/") {
                assert!(op["security"].is_array(), "{method} {path} has no security");
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path} lacks 401"
                );
            }
        }
    }
}

#[tokio::test]
async fn housekeeping_forgets_idempotency_keys_after_their_day() {
    use diesel::RunQueryDsl;
    let app = spawn_app().await;
    let mut conn = app.db();
    diesel::sql_query(
        "INSERT INTO idempotency_keys (tenant_id, client_id, key, request_hash, created_at)
         VALUES ('acme', 'c', 'old', 'h', now() - interval '2 days'),
                ('acme', 'c', 'new', 'h', now() - interval '1 hour')",
    )
    .execute(&mut conn)
    .unwrap();
    assert_eq!(signoff::db::housekeeping(&mut conn).unwrap(), 1);
    #[derive(diesel::QueryableByName)]
    struct Key {
        #[diesel(sql_type = diesel::sql_types::Text)]
        key: String,
    }
    let left: Vec<Key> = diesel::sql_query("SELECT key FROM idempotency_keys")
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        left.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(),
        ["new"]
    );
}
