//! Every way a token can be wrong gives 401 (with WWW-Authenticate) or 403.

use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

async fn status_with(app: &TestApp, token: &str) -> crate::helpers::Answer {
    app.call_as(token, Method::GET, "/v1/processes", None, &[])
        .await
}

#[track_caller]
fn assert_unauthorized(a: &crate::helpers::Answer) {
    a.assert_problem(401, "unauthorized");
    assert!(a.header("www-authenticate").unwrap().starts_with("Bearer"));
}

#[tokio::test]
async fn missing_token_is_401_with_www_authenticate() {
    let app = spawn_app().await;
    assert_unauthorized(&status_with(&app, "").await);
}

#[tokio::test]
async fn garbage_token_is_401() {
    let app = spawn_app().await;
    assert_unauthorized(&status_with(&app, "not.a.jwt").await);
}

#[tokio::test]
async fn expired_token_is_401() {
    let app = spawn_app().await;
    let mut c = claims(TENANT, ALL_SCOPES);
    c["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    assert_unauthorized(&status_with(&app, &sign_hs256(&c, SECRET)).await);
}

#[tokio::test]
async fn wrong_secret_is_401() {
    let app = spawn_app().await;
    let t = sign_hs256(
        &claims(TENANT, ALL_SCOPES),
        "another-secret-0123456789abcdef0123",
    );
    assert_unauthorized(&status_with(&app, &t).await);
}

#[tokio::test]
async fn wrong_audience_or_issuer_is_401() {
    let app = spawn_app().await;
    for (k, v) in [("aud", "someone-else"), ("iss", "https://evil.test")] {
        let mut c = claims(TENANT, ALL_SCOPES);
        c[k] = json!(v);
        assert_unauthorized(&status_with(&app, &sign_hs256(&c, SECRET)).await);
    }
}

#[tokio::test]
async fn missing_required_claims_are_401() {
    let app = spawn_app().await;
    for k in ["tenant", "sub", "exp", "iss", "aud"] {
        let mut c = claims(TENANT, ALL_SCOPES);
        c.as_object_mut().unwrap().remove(k);
        let a = status_with(&app, &sign_hs256(&c, SECRET)).await;
        assert_eq!(a.status, 401, "without {k}: {}", a.text);
    }
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn alg_none_is_401() {
    let app = spawn_app().await;
    let header = json!({"alg": "none", "typ": "JWT"});
    let t = format!("{}.{}.", b64(&header), b64(&claims(TENANT, ALL_SCOPES)));
    assert_unauthorized(&status_with(&app, &t).await);
}

#[tokio::test]
async fn asymmetric_keys_from_the_jwks_are_accepted() {
    let app = spawn_app().await;
    let c = claims(TENANT, ALL_SCOPES);
    for (alg, pem, kid) in [
        (Algorithm::RS256, "rsa_private.pem", "rsa-1"),
        (Algorithm::ES256, "ec_private.pem", "ec-1"),
        (Algorithm::EdDSA, "ed_private.pem", "ed-1"),
    ] {
        let a = status_with(&app, &sign_with_key(&c, alg, pem, kid)).await;
        assert_eq!(a.status, 200, "{alg:?}: {}", a.text);
    }
}

#[tokio::test]
async fn a_key_not_in_the_jwks_is_401() {
    let app = spawn_app().await;
    let c = claims(TENANT, ALL_SCOPES);
    // Signed by another RSA key but claiming the known kid.
    let forged = sign_with_key(&c, Algorithm::RS256, "rsa_other_private.pem", "rsa-1");
    assert_unauthorized(&status_with(&app, &forged).await);
    let unknown_kid = sign_with_key(&c, Algorithm::RS256, "rsa_private.pem", "nope");
    assert_unauthorized(&status_with(&app, &unknown_kid).await);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    // The classic confusion: HS256 keyed with the RSA public key's bytes.
    let app = spawn_app().await;
    let jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("jwks.json")).unwrap()).unwrap();
    let public_n = jwks["keys"][0]["n"].as_str().unwrap().to_string();
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let t = jsonwebtoken::encode(
        &header,
        &claims(TENANT, ALL_SCOPES),
        &jsonwebtoken::EncodingKey::from_secret(public_n.as_bytes()),
    )
    .unwrap();
    assert_unauthorized(&status_with(&app, &t).await);
}

#[tokio::test]
async fn algorithm_must_match_the_key() {
    let app = spawn_app().await;
    // An ES256 signature presented under the RSA key's kid.
    let t = sign_with_key(
        &claims(TENANT, ALL_SCOPES),
        Algorithm::ES256,
        "ec_private.pem",
        "rsa-1",
    );
    assert_unauthorized(&status_with(&app, &t).await);
}

#[tokio::test]
async fn missing_scope_is_403() {
    let app = spawn_app().await;
    let t = token(TENANT, "approvals:read");
    let a = status_with(&app, &t).await;
    a.assert_problem(403, "insufficient_scope");
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap()
            .contains("processes:read")
    );
    let a = app
        .call_as(
            &t,
            Method::POST,
            "/v1/processes",
            Some(simple_process("x")),
            &[],
        )
        .await;
    a.assert_problem(403, "insufficient_scope");
}

#[tokio::test]
async fn another_tenants_process_reads_as_404() {
    let app = spawn_app().await;
    let created = app.post("/v1/processes", simple_process("Mine")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap();
    let other = token("globex", ALL_SCOPES);
    let a = app
        .call_as(
            &other,
            Method::GET,
            &format!("/v1/processes/{id}"),
            None,
            &[],
        )
        .await;
    a.assert_problem(404, "not_found");
    let list = app
        .call_as(&other, Method::GET, "/v1/processes", None, &[])
        .await;
    assert_eq!(list.body["items"], json!([]));
    // Same name is free in another tenant.
    let a = app
        .call_as(
            &other,
            Method::POST,
            "/v1/processes",
            Some(simple_process("Mine")),
            &[],
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
}

#[tokio::test]
async fn another_tenants_principal_reads_as_404() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let other = token("globex", ALL_SCOPES);
    let a = app
        .call_as(&other, Method::GET, "/v1/principals/u-1", None, &[])
        .await;
    a.assert_problem(404, "not_found");
}

/// Serves a JWKS document that the test can change, counting fetches.
struct KeyServer {
    url: String,
    doc: std::sync::Arc<std::sync::Mutex<Value>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn key_server(doc: Value) -> KeyServer {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let doc = std::sync::Arc::new(std::sync::Mutex::new(doc));
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (d, f) = (doc.clone(), fetches.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let (d, f) = (d.clone(), f.clone());
        App::new().route(
            "/jwks.json",
            web::get().to(move || {
                let (d, f) = (d.clone(), f.clone());
                async move {
                    f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    HttpResponse::Ok().json(d.lock().unwrap().clone())
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    KeyServer {
        url: format!("http://127.0.0.1:{port}/jwks.json"),
        doc,
        fetches,
    }
}

#[tokio::test]
async fn a_jwks_url_is_cached_and_refetched_for_a_new_kid_at_most_every_few_seconds() {
    use std::sync::atomic::Ordering;
    let full: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("jwks.json")).unwrap()).unwrap();
    let rsa_only = json!({"keys": [full["keys"][0].clone()]});
    let keys = key_server(rsa_only);
    let db = fresh_database();
    let app = spawn_with_clock(
        settings(&url_for(&db), &[("SIGNOFF_JWT_JWKS", keys.url.as_str())]),
        db,
        signoff::clock::Clock::manual(chrono::Utc::now()),
    )
    .await;
    assert_eq!(
        keys.fetches.load(Ordering::SeqCst),
        1,
        "read once at start-up"
    );
    let c = claims(TENANT, ALL_SCOPES);
    let rsa = sign_with_key(&c, Algorithm::RS256, "rsa_private.pem", "rsa-1");
    let ec = sign_with_key(&c, Algorithm::ES256, "ec_private.pem", "ec-1");
    for _ in 0..3 {
        assert_eq!(status_with(&app, &rsa).await.status, 200);
    }
    assert_eq!(
        keys.fetches.load(Ordering::SeqCst),
        1,
        "known keys come from the cache"
    );
    // The key server rotates in a new key; a flood of unknown kids right away is not a flood
    // of fetches.
    *keys.doc.lock().unwrap() = full;
    for _ in 0..5 {
        assert_unauthorized(&status_with(&app, &ec).await);
    }
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 1);
    // Past the refetch throttle (`MIN_REFETCH`, 5 s), on the app's clock.
    app.clock.advance(chrono::Duration::seconds(6));
    assert_eq!(
        status_with(&app, &ec).await.status,
        200,
        "refetched for the new kid"
    );
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 2);
}
