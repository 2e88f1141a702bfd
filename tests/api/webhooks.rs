//! Webhooks end to end: a real receiver on port 0 verifies every signature with the
//! `standardwebhooks` crate (an implementation we did not write).

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_string()
    }
}

#[derive(Default)]
struct State {
    got: Vec<Received>,
    /// Statuses to answer with, in order; 200 once empty.
    script: VecDeque<u16>,
}

/// A webhook receiver on a local port.
#[derive(Clone)]
pub struct Receiver {
    state: Arc<Mutex<State>>,
    pub url: String,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in req.headers() {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    let mut s = state.lock().unwrap();
    s.got.push(Received {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(String::new, |p| p.to_string()),
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    });
    let status = s.script.pop_front().unwrap_or(200);
    let mut res = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if (300..400).contains(&status) {
        res.insert_header(("location", "http://127.0.0.1:9/elsewhere"));
    }
    res.body(format!("answered {status}"))
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    pub fn start_on(listener: TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self {
            state,
            url: format!("http://127.0.0.1:{port}/hooks"),
        }
    }

    pub fn script(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script.extend(statuses);
    }

    pub fn got(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// Waits until `pred` holds for what was received, up to 15 s: for an app whose worker
    /// runs by itself (an app driven by hand has received everything when `run_worker_once`
    /// returns).
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        eventually(what, Duration::from_secs(15), || async {
            let got = self.got();
            pred(&got).then_some(got)
        })
        .await
    }
}

pub fn types(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect()
}

/// Verifies a request with the Standard Webhooks reference library.
#[track_caller]
pub fn verify(secret: &str, r: &Received) {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&r.body, &r.headers)
        .unwrap_or_else(|e| panic!("signature check failed: {e:?}"));
}

/// Settings that make retries quick.
pub const FAST: &[(&str, &str)] = &[
    (
        "SIGNOFF_WEBHOOK_RETRY_SCHEDULE",
        "PT0S,PT0.2S,PT0.2S,PT0.2S,PT0.2S,PT0.2S,PT0.2S,PT0.2S,PT0.2S,PT0.2S",
    ),
    ("SIGNOFF_WORKER_POLL_INTERVAL", "PT0.1S"),
    ("SIGNOFF_WEBHOOK_TIMEOUT", "PT2S"),
];

pub async fn endpoint(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let a = app
        .post(
            "/v1/webhook-endpoints",
            json!({"url": url, "events": events, "description": "test"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    (
        a.body["id"].as_str().unwrap().to_string(),
        a.body["secret"].as_str().unwrap().to_string(),
    )
}

/// Requests an ad-hoc approval from u-1 on `ticket` and returns its id.
pub async fn approval(app: &TestApp, ticket: &str) -> String {
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": ticket, "title": "Laptop"}, "approvers": ["u-1"],
                   "on_approved_status": "approved", "on_rejected_status": "rejected"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

pub async fn approve(app: &TestApp, id: &str) {
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-1", "decision": "approve"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn a_decision_reaches_the_receiver_signed_and_in_order() {
    let app = spawn_app_with(FAST).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    let (_, secret) = endpoint(&app, &rx.url, json!(["*"])).await;
    let id = approval(&app, "T-1").await;
    approve(&app, &id).await;
    let decided = Instant::now();
    let got = rx
        .wait_for("approval.approved", |g| {
            types(g).contains(&"approval.approved".to_string())
        })
        .await;
    let arrived = got
        .iter()
        .find(|r| r.json()["type"] == "approval.approved")
        .unwrap()
        .at;
    println!(
        "webhook arrived {} ms after the decision answered",
        arrived.saturating_duration_since(decided).as_millis()
    );
    assert_eq!(
        types(&got),
        [
            "approval.requested",
            "approval.decision_recorded",
            "approval.approved"
        ]
    );
    for r in &got {
        verify(&secret, r);
        let body = r.json();
        assert_eq!(r.id(), body["id"].as_str().unwrap());
        assert!(body["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(body["tenant"], TENANT);
        assert_eq!(body["data"]["approval"]["id"], id.as_str());
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let seq: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seq, [1, 2, 3]);
    let last = got[2].json();
    assert_eq!(
        last["data"]["ticket"],
        json!({"id": "T-1", "status_to_set": "approved"})
    );
    assert_eq!(last["data"]["approval"]["outcome"]["decision"], "approved");
    // The requested event names whom to notify.
    assert_eq!(
        got[0].json()["data"]["recipients"][0]["principal"]["id"],
        "u-1"
    );
    // A tampered body fails the reference verification.
    let mut forged = got[2].clone();
    forged.body = forged
        .body
        .iter()
        .map(|b| if *b == b'1' { b'2' } else { *b })
        .collect();
    assert!(
        standardwebhooks::Webhook::new(&secret)
            .unwrap()
            .verify(&forged.body, &forged.headers)
            .is_err()
    );
}

#[tokio::test]
async fn event_filters_select_what_is_sent() {
    let app = by_hand(&[]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!(["approval.approved"])).await;
    let id = approval(&app, "T-1").await;
    approve(&app, &id).await;
    assert_eq!(app.run_worker_once().await.deliveries, 1);
    assert_eq!(types(&rx.got()), ["approval.approved"]);
}

#[tokio::test]
async fn a_500_is_retried_until_it_succeeds_and_the_log_shows_each_attempt() {
    let app = by_hand(&[]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    rx.script(&[500, 503]);
    let (ep, secret) = endpoint(&app, &rx.url, json!(["approval.requested"])).await;
    approval(&app, "T-1").await;
    assert_eq!(app.run_worker_once().await.deliveries, 1);
    // The retry waits for its time on the schedule (5 s), however often the worker runs.
    assert_eq!(app.run_worker_once().await.deliveries, 0);
    for _ in 0..2 {
        app.clock.advance(chrono::Duration::seconds(6));
        assert_eq!(app.run_worker_once().await.deliveries, 1);
    }
    let got = rx.got();
    assert_eq!(got.len(), 3);
    // The same message each time: same id, each signature valid.
    assert!(got.iter().all(|r| r.id() == got[0].id()));
    for r in &got {
        verify(&secret, r);
    }
    let log = app
        .get(&format!("/v1/webhook-endpoints/{ep}/deliveries"))
        .await;
    assert_eq!(log.status, 200, "{}", log.text);
    let d = &log.body["items"][0];
    assert_eq!(d["state"], "succeeded");
    assert_eq!(d["attempt_count"], 3);
    let statuses: Vec<Value> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(statuses, [json!(500), json!(503), json!(200)]);
    assert_eq!(d["attempts"][0]["response_excerpt"], "answered 500");
    assert!(d["attempts"][0]["latency_ms"].as_i64().unwrap() >= 0);
    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(app.run_worker_once().await.deliveries, 0);
    assert_eq!(rx.got().len(), 3);
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_a_patch_keeps_the_reason() {
    let app = by_hand(&[]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    rx.script(&[410]);
    let (ep, _) = endpoint(&app, &rx.url, json!(["*"])).await;
    let id = approval(&app, "T-1").await;
    assert_eq!(app.run_worker_once().await.deliveries, 1);
    let e = app.get(&format!("/v1/webhook-endpoints/{ep}")).await;
    assert_eq!(e.body["enabled"], false);
    assert!(e.body["disabled_reason"].as_str().unwrap().contains("410"));
    approve(&app, &id).await;
    assert_eq!(app.run_worker_once().await.deliveries, 0);
    assert_eq!(
        rx.got().len(),
        1,
        "nothing more goes to a disabled endpoint"
    );

    // Editing a disabled endpoint keeps why it was disabled.
    let t = app.token.clone();
    let edited = app
        .call_as(
            &t,
            Method::PATCH,
            &format!("/v1/webhook-endpoints/{ep}"),
            Some(json!({"description": "the helpdesk"})),
            &[],
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert!(
        edited.body["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{}",
        edited.text
    );

    // Re-enabling, then retrying the failed delivery on demand, sends it again.
    let log = app
        .get(&format!("/v1/webhook-endpoints/{ep}/deliveries"))
        .await;
    let failed = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event_type"] == "approval.requested")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let retry = format!("/v1/webhook-endpoints/{ep}/deliveries/{failed}/retry");
    app.post(&retry, json!({}))
        .await
        .assert_problem(409, "endpoint_disabled");
    let patched = app
        .call_as(
            &t,
            Method::PATCH,
            &format!("/v1/webhook-endpoints/{ep}"),
            Some(json!({"enabled": true})),
            &[],
        )
        .await;
    assert_eq!(patched.body["enabled"], true);
    assert_eq!(patched.body["disabled_reason"], Value::Null);
    assert_eq!(app.post(&retry, json!({})).await.status, 202);
    assert_eq!(app.run_worker_once().await.deliveries, 1);
    assert_eq!(rx.got().len(), 2);
}

#[tokio::test]
async fn redirects_are_not_followed_and_count_as_failures() {
    let app = by_hand(&[("SIGNOFF_WEBHOOK_RETRY_SCHEDULE", "PT0S")]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    rx.script(&[302]);
    let (ep, _) = endpoint(&app, &rx.url, json!(["approval.requested"])).await;
    approval(&app, "T-1").await;
    assert_eq!(app.run_worker_once().await.deliveries, 1);
    let log = app
        .get(&format!("/v1/webhook-endpoints/{ep}/deliveries"))
        .await;
    let d = &log.body["items"][0];
    assert_eq!(
        d["state"], "failed",
        "one attempt in the schedule, then it gives up"
    );
    assert!(d["last_error"].as_str().unwrap().contains("redirect"));
    assert_eq!(rx.got().len(), 1);
}

#[tokio::test]
async fn a_receiver_down_for_a_while_loses_nothing() {
    let app = by_hand(&[]).await;
    app.principal("u-1", json!({})).await;
    // Reserve a port, then leave nothing listening on it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let (_, secret) = endpoint(&app, &url, json!(["*"])).await;
    let mut ids = vec![];
    for i in 0..3 {
        let id = approval(&app, &format!("T-{i}")).await;
        approve(&app, &id).await;
        ids.push(id);
    }
    // Only the first event of each approval is tried: the others wait behind it.
    assert_eq!(app.run_worker_once().await.deliveries, 3);
    let rx = Receiver::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap());
    app.clock.advance(chrono::Duration::seconds(6));
    assert_eq!(app.run_worker_once().await.deliveries, 9);
    let got = rx.got();
    assert_eq!(got.len(), 9, "each event exactly once");
    for r in &got {
        verify(&secret, r);
    }
    // Per approval, in sequence order.
    for id in ids {
        let seq: Vec<i64> = got
            .iter()
            .filter(|r| r.json()["data"]["approval"]["id"] == id.as_str())
            .map(|r| r.json()["data"]["sequence"].as_i64().unwrap())
            .collect();
        assert_eq!(seq, [1, 2, 3]);
    }
}

#[tokio::test]
async fn two_workers_deliver_each_message_once() {
    let first = by_hand(&[]).await;
    let second = spawn_with_clock(
        settings(&url_for(&first.db_name), BY_HAND),
        first.db_name.clone(),
        first.clock.clone(),
    )
    .await;
    first.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    endpoint(&first, &rx.url, json!(["*"])).await;
    for i in 0..10 {
        let app = if i % 2 == 0 { &first } else { &second };
        let id = approval(app, &format!("T-{i}")).await;
        approve(app, &id).await;
    }
    // Both workers at once, round after round, until neither finds anything left to send.
    let mut sent = 0;
    loop {
        let (a, b) = tokio::join!(first.run_worker_once(), second.run_worker_once());
        if a.deliveries + b.deliveries == 0 {
            break;
        }
        sent += a.deliveries + b.deliveries;
    }
    assert_eq!(sent, 30);
    let got = rx.got();
    let mut ids: Vec<String> = got.iter().map(|r| r.id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (30, 30));
}

/// Settings of an app whose worker runs only when the test says so.
pub const BY_HAND: &[(&str, &str)] = &[
    ("SIGNOFF_WORKER", "false"),
    (
        "SIGNOFF_WEBHOOK_RETRY_SCHEDULE",
        "PT0S,PT5S,PT5S,PT5S,PT5S,PT5S,PT5S,PT5S",
    ),
    ("SIGNOFF_WEBHOOK_TIMEOUT", "PT2S"),
];

/// An app driven by hand on a manual clock starting now.
pub async fn by_hand(extra: &[(&str, &str)]) -> TestApp {
    let mut env = BY_HAND.to_vec();
    env.extend_from_slice(extra);
    spawn_app_with_clock(&env, signoff::clock::Clock::manual(chrono::Utc::now())).await
}

/// Plays a worker that claimed everything due, as worker `key`.
fn claim_as(app: &TestApp, key: i32) -> usize {
    use signoff::db::webhooks::{ClaimRequest, claim};
    claim(
        &mut app.db(),
        &ClaimRequest {
            worker: key,
            lease_secs: 600.0,
            limit: 100,
            now: chrono::Utc::now(),
            endpoint_cap: 100,
            busy: vec![],
            full: vec![],
        },
    )
    .unwrap()
    .len()
}

/// Holds the liveness lock of worker `key` while the connection lives: a live worker.
fn live_worker(app: &TestApp, key: i32) -> diesel::PgConnection {
    use diesel::RunQueryDsl;
    let mut conn = app.db();
    diesel::sql_query(format!(
        "SELECT pg_advisory_lock({}, {key})",
        signoff::db::webhooks::LIVENESS_LOCK_NS
    ))
    .execute(&mut conn)
    .unwrap();
    conn
}

/// Waits until Postgres has ended the session of a dropped [`live_worker`] connection, and
/// with it worker `key`'s liveness lock: its backend exits on its own time, after the client
/// has gone.
async fn until_dead(app: &TestApp, key: i32) {
    use diesel::RunQueryDsl;
    let held = format!(
        "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid::int4 = {}
                   AND objid::int4 = {key} AND objsubid = 2)",
        signoff::db::webhooks::LIVENESS_LOCK_NS
    );
    eventually(
        "the dead worker's session to end",
        Duration::from_secs(10),
        || {
            let held = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&held))
                .get_result::<bool>(&mut app.db())
                .unwrap();
            std::future::ready((!held).then_some(()))
        },
    )
    .await
}

fn leased_by(app: &TestApp) -> Vec<Option<i32>> {
    use diesel::prelude::*;
    use signoff::db::schema::webhook_deliveries::dsl as d;
    d::webhook_deliveries
        .select(d::leased_by)
        .load(&mut app.db())
        .unwrap()
}

#[tokio::test]
async fn a_dead_workers_leases_are_taken_over_at_once() {
    let app = by_hand(&[]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!(["approval.requested"])).await;
    approval(&app, "T-1").await;
    // Worker 777 claimed it for ten minutes, then died: nobody holds its liveness lock.
    assert_eq!(claim_as(&app, 777), 1);
    let started = Instant::now();
    assert_eq!(app.run_worker_once().await.deliveries, 1);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(rx.got().len(), 1);
    assert_eq!(leased_by(&app), [None]);
}

#[tokio::test]
async fn a_live_workers_lease_is_never_taken_and_only_the_holder_records() {
    let app = by_hand(&[]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    let (ep, _) = endpoint(&app, &rx.url, json!(["approval.requested"])).await;
    approval(&app, "T-1").await;
    let holder = live_worker(&app, 4242);
    assert_eq!(claim_as(&app, 4242), 1);
    assert_eq!(
        app.run_worker_once().await.deliveries,
        0,
        "taken from a live worker"
    );

    // A manual retry while the attempt is in flight waits for it: the lease stays.
    let log = app
        .get(&format!("/v1/webhook-endpoints/{ep}/deliveries"))
        .await;
    let id = log.body["items"][0]["id"].as_str().unwrap().to_string();
    let retry = format!("/v1/webhook-endpoints/{ep}/deliveries/{id}/retry");
    assert_eq!(app.post(&retry, json!({})).await.status, 202);
    assert_eq!(leased_by(&app), [Some(4242)]);
    assert_eq!(app.run_worker_once().await.deliveries, 0);
    assert!(rx.got().is_empty());

    // The holder dies: the lease is taken over at once, and the old holder can no longer
    // record an attempt for it.
    drop(holder);
    until_dead(&app, 4242).await;
    assert_eq!(app.run_worker_once().await.deliveries, 1);
    assert_eq!(rx.got().len(), 1);
    use signoff::db::webhooks::{AttemptResult, Recording, record_attempts};
    let late = Recording {
        delivery: uuid::Uuid::parse_str(&id).unwrap(),
        result: AttemptResult {
            attempted_at: chrono::Utc::now(),
            status_code: Some(500),
            latency_ms: 1,
            error: Some("late".into()),
            response_excerpt: None,
        },
        state: "pending",
        next_attempt_at: chrono::Utc::now(),
    };
    assert!(
        record_attempts(&mut app.db(), 4242, &[late])
            .unwrap()
            .is_empty()
    );
    let log = app
        .get(&format!("/v1/webhook-endpoints/{ep}/deliveries"))
        .await;
    assert_eq!(log.body["items"][0]["state"], "succeeded");
    assert_eq!(log.body["items"][0]["attempt_count"], 1);
}

#[tokio::test]
async fn during_rotation_both_secrets_verify() {
    let app = by_hand(&[]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    let (ep, old) = endpoint(&app, &rx.url, json!(["approval.requested"])).await;
    let rotated = app
        .post(
            &format!("/v1/webhook-endpoints/{ep}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    approval(&app, "T-1").await;
    app.run_worker_once().await;
    let got = rx.got();
    verify(&old, &got[0]);
    verify(&new, &got[0]);
    assert_eq!(
        got[0].headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );

    // With no grace period only the new secret signs: PT0S ends every earlier secret too.
    let again = app
        .post(
            &format!("/v1/webhook-endpoints/{ep}/rotate-secret"),
            json!({"grace_period": "PT0S"}),
        )
        .await;
    let newest = again.body["secret"].as_str().unwrap().to_string();
    approval(&app, "T-2").await;
    app.run_worker_once().await;
    let got = rx.got();
    verify(&newest, &got[1]);
    for gone in [&new, &old] {
        assert!(
            standardwebhooks::Webhook::new(gone)
                .unwrap()
                .verify(&got[1].body, &got[1].headers)
                .is_err()
        );
    }
}

#[tokio::test]
async fn two_rotations_inside_the_grace_period_sign_with_all_three_secrets() {
    let app = by_hand(&[]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    let (ep, first) = endpoint(&app, &rx.url, json!(["approval.requested"])).await;
    let rotate = format!("/v1/webhook-endpoints/{ep}/rotate-secret");
    let second = app.post(&rotate, json!({"grace_period": "PT1H"})).await;
    assert_eq!(second.status, 200, "{}", second.text);
    let second = second.body["secret"].as_str().unwrap().to_string();
    app.clock.advance(chrono::Duration::minutes(10));
    let third = app.post(&rotate, json!({"grace_period": "PT1H"})).await;
    let third = third.body["secret"].as_str().unwrap().to_string();
    approval(&app, "T-1").await;
    app.run_worker_once().await;
    let got = rx.got();
    assert_eq!(got.len(), 1);
    for secret in [&first, &second, &third] {
        verify(secret, &got[0]);
    }
    assert_eq!(
        got[0].headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        3
    );
}

#[tokio::test]
async fn rotate_secret_refuses_a_bad_body_and_honours_idempotency_keys() {
    // With a key the replay is sealed at rest and answers the same secret.
    let app = by_hand(&[(
        "SIGNOFF_SECRET_KEY",
        "q3vXlQeC0Z4cFtn3V8r1m0yJg7Yx8kq3cQmHq0m4B2s=",
    )])
    .await;
    let (ep, _) = endpoint(&app, "https://hooks.example.com/x", json!(["*"])).await;
    let rotate = format!("/v1/webhook-endpoints/{ep}/rotate-secret");
    let typo = app.post(&rotate, json!({"grace": "PT1H"})).await;
    typo.assert_problem(422, "validation_failed");
    let bad = app.post(&rotate, json!({"grace_period": "soon"})).await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(bad.error_fields(), ["grace_period"]);
    app.post(&rotate, json!({"grace_period": "P30D"}))
        .await
        .assert_problem(422, "validation_failed");
    let t = app.token.clone();
    let not_json = app
        .client
        .post(format!("{}{rotate}", app.address))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{grace_period")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    // No body at all takes the defaults.
    let empty = app
        .client
        .post(format!("{}{rotate}", app.address))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 200);

    let key = [("Idempotency-Key", "rotate-1")];
    let once = app
        .call_as(&t, Method::POST, &rotate, Some(json!({})), &key)
        .await;
    let twice = app
        .call_as(&t, Method::POST, &rotate, Some(json!({})), &key)
        .await;
    assert_eq!(once.status, 200, "{}", once.text);
    assert_eq!(twice.status, 200, "{}", twice.text);
    assert_eq!(twice.header("idempotent-replayed"), Some("true"));
    assert_eq!(once.body["secret"], twice.body["secret"]);
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_when_a_key_is_set() {
    use diesel::prelude::*;
    use signoff::db::schema::webhook_endpoints::dsl as w;
    let key = "q3vXlQeC0Z4cFtn3V8r1m0yJg7Yx8kq3cQmHq0m4B2s=";
    let app = by_hand(&[("SIGNOFF_SECRET_KEY", key)]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    let (ep, first) = endpoint(&app, &rx.url, json!(["approval.requested"])).await;
    let second = app
        .post(
            &format!("/v1/webhook-endpoints/{ep}/rotate-secret"),
            json!({}),
        )
        .await
        .body["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let (secret, previous): (String, Value) = w::webhook_endpoints
        .select((w::secret, w::previous_secrets))
        .first(&mut app.db())
        .unwrap();
    assert!(secret.starts_with("sealed:v1:"), "{secret}");
    let stored = format!("{secret} {previous}");
    for plain in [&first, &second] {
        let key_part = plain.trim_start_matches("whsec_");
        assert!(
            !stored.contains(key_part),
            "a secret is stored in the clear"
        );
    }
    approval(&app, "T-1").await;
    app.run_worker_once().await;
    let got = rx.got();
    verify(&first, &got[0]);
    verify(&second, &got[0]);
}

#[tokio::test]
async fn endpoints_are_managed_and_secrets_shown_once() {
    let app = spawn_app().await;
    let (ep, secret) = endpoint(&app, "https://hooks.example.com/x", json!(["*"])).await;
    assert!(secret.starts_with("whsec_"));
    let got = app.get(&format!("/v1/webhook-endpoints/{ep}")).await;
    assert_eq!(got.status, 200);
    assert!(got.body.get("secret").is_none());
    assert_eq!(got.body["events"], json!(["*"]));
    let list = app.get("/v1/webhook-endpoints").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let t = app.token.clone();
    let patched = app
        .call_as(
            &t,
            Method::PATCH,
            &format!("/v1/webhook-endpoints/{ep}"),
            Some(json!({"events": ["approval.approved", "approval.rejected"]})),
            &[],
        )
        .await;
    assert_eq!(
        patched.body["events"],
        json!(["approval.approved", "approval.rejected"])
    );
    let bad = app
        .post(
            "/v1/webhook-endpoints",
            json!({"url": "not a url", "events": ["approval.maybe"]}),
        )
        .await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(bad.error_fields(), ["url", "events[0]"]);
    assert_eq!(
        app.delete(&format!("/v1/webhook-endpoints/{ep}"))
            .await
            .status,
        204
    );
    app.get(&format!("/v1/webhook-endpoints/{ep}"))
        .await
        .assert_problem(404, "not_found");
    let other = token("globex", ALL_SCOPES);
    let (ep2, _) = endpoint(&app, "https://hooks.example.com/y", json!(["*"])).await;
    app.call_as(
        &other,
        Method::GET,
        &format!("/v1/webhook-endpoints/{ep2}"),
        None,
        &[],
    )
    .await
    .assert_problem(404, "not_found");
    app.call_as(
        &token(TENANT, "approvals:read"),
        Method::GET,
        "/v1/webhook-endpoints",
        None,
        &[],
    )
    .await
    .assert_problem(403, "insufficient_scope");
}

#[tokio::test]
async fn private_and_plain_http_targets_are_refused_unless_allowed() {
    let app = spawn_app_with(&[("SIGNOFF_WEBHOOK_ALLOW_PRIVATE", "false")]).await;
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://10.0.0.8/x",
        "https://[::1]/x",
        "https://localhost/x",
        "https://169.254.169.254/latest",
    ] {
        let a = app.post("/v1/webhook-endpoints", json!({"url": url})).await;
        a.assert_problem(422, "validation_failed");
        assert_eq!(a.error_fields(), ["url"], "{url}");
    }
    assert_eq!(
        app.post(
            "/v1/webhook-endpoints",
            json!({"url": "https://hooks.example.com/x"})
        )
        .await
        .status,
        201
    );
}

#[tokio::test]
async fn metrics_count_attempts_and_show_the_queue() {
    let app = by_hand(&[]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!(["approval.requested"])).await;
    approval(&app, "T-1").await;
    // Sent and recorded when it returns.
    assert_eq!(app.run_worker_once().await.deliveries, 1);
    assert_eq!(rx.got().len(), 1);
    let m = app.get("/metrics").await.text;
    assert!(
        m.contains("signoff_webhook_attempts_total{result=\"delivered\"} 1"),
        "{m}"
    );
    assert!(m.contains("signoff_webhook_attempt_duration_seconds_count 1"));
    assert!(m.contains("signoff_webhook_queue_depth 0"));
    assert!(m.contains("signoff_webhook_oldest_due_seconds 0"));
}

#[tokio::test]
async fn an_endpoint_failing_for_too_long_is_disabled() {
    let app = by_hand(&[("SIGNOFF_WEBHOOK_DISABLE_AFTER", "PT20S")]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    rx.script(&[500; 50]);
    let (ep, _) = endpoint(&app, &rx.url, json!(["approval.requested"])).await;
    approval(&app, "T-1").await;
    let endpoint_now = || async { app.get(&format!("/v1/webhook-endpoints/{ep}")).await };
    // Failing at once and on each retry (5 s apart, give or take 10 %): still enabled after
    // 18 s of failing...
    assert_eq!(app.run_worker_once().await.deliveries, 1);
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::seconds(6));
        assert_eq!(app.run_worker_once().await.deliveries, 1);
    }
    assert_eq!(endpoint_now().await.body["enabled"], true);
    // ...and disabled by the attempt that finds it failing for 24 s.
    app.clock.advance(chrono::Duration::seconds(6));
    assert_eq!(app.run_worker_once().await.deliveries, 1);
    let e = endpoint_now().await;
    assert_eq!(e.body["enabled"], false, "{}", e.text);
    assert!(
        e.body["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failing"),
        "{}",
        e.text
    );
    let log = app
        .get(&format!("/v1/webhook-endpoints/{ep}/deliveries"))
        .await;
    assert_eq!(log.body["items"][0]["state"], "failed");
    assert!(
        log.body["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("endpoint disabled")
    );
}
