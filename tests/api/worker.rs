//! The worker against receivers that misbehave (hang, answer after 10 s, answer 512 MB) and
//! replicas that die (`kill -9`) or are stopped (SIGTERM). Real HTTP on 127.0.0.1, real
//! Postgres, the real binary where a process must die.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// What the receiver got: path, when it finished answering, the approval id.
#[derive(Default)]
struct Seen {
    done: Vec<(String, Instant, String)>,
    started: Vec<String>,
}

#[derive(Clone)]
struct Misbehaving {
    seen: Arc<Mutex<Seen>>,
    /// While true, `/flaky` hangs.
    hang: Arc<AtomicBool>,
    base: String,
}

async fn misbehave(
    req: HttpRequest,
    body: web::Bytes,
    seen: web::Data<Mutex<Seen>>,
    hang: web::Data<AtomicBool>,
) -> HttpResponse {
    let path = req.path().to_string();
    let approval = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["data"]["approval"]["id"].as_str().map(str::to_string))
        .unwrap_or_default();
    seen.lock().unwrap().started.push(path.clone());
    let answer_after = match path.as_str() {
        "/hang" => Duration::from_secs(3600),
        "/slow" => Duration::from_secs(10),
        "/two-seconds" => Duration::from_secs(2),
        "/flaky" if hang.load(Ordering::SeqCst) => Duration::from_secs(3600),
        "/huge" => {
            // 512 MiB, produced as it is read.
            let chunk = web::Bytes::from(vec![b'x'; 1 << 20]);
            let stream = futures_util::stream::iter(
                (0..512).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            return HttpResponse::Ok()
                .content_type("text/plain")
                .streaming(stream);
        }
        _ => Duration::ZERO,
    };
    // Real time on purpose: these receivers hang or answer late, and what is tested is how the
    // worker's timeouts, slots and shutdown bear a peer that does.
    if !answer_after.is_zero() {
        tokio::time::sleep(answer_after).await;
    }
    seen.lock()
        .unwrap()
        .done
        .push((path, Instant::now(), approval));
    HttpResponse::Ok().body("ok")
}

impl Misbehaving {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let hang = Arc::new(AtomicBool::new(true));
        let (s, h) = (web::Data::from(seen.clone()), web::Data::from(hang.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(s.clone())
                .app_data(h.clone())
                .default_service(web::to(misbehave))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self {
            seen,
            hang,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn started(&self, path: &str) -> usize {
        let s = self.seen.lock().unwrap();
        s.started.iter().filter(|p| *p == path).count()
    }

    fn done(&self, path: &str) -> Vec<(Instant, String)> {
        let s = self.seen.lock().unwrap();
        s.done
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, at, a)| (*at, a.clone()))
            .collect()
    }

    async fn wait(&self, what: &str, limit: Duration, pred: impl Fn(&Self) -> bool) {
        eventually(what, limit, || async { pred(self).then_some(()) }).await
    }
}

async fn endpoint_as(app: &TestApp, token: &str, url: &str) {
    let a = app
        .call_as(
            token,
            Method::POST,
            "/v1/webhook-endpoints",
            Some(json!({"url": url, "events": ["*"]})),
            &[],
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
}

async fn approval_as(app: &TestApp, token: &str, ticket: &str) -> String {
    let a = app
        .call_as(
            token,
            Method::POST,
            "/v1/approvals",
            Some(json!({"ticket": {"id": ticket}, "approvers": ["u-1"]})),
            &[],
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

async fn principal_as(app: &TestApp, token: &str) {
    let a = app
        .call_as(
            token,
            Method::PUT,
            "/v1/principals/u-1",
            Some(json!({"kind": "user", "display_name": "U One", "email": "u1@example.com"})),
            &[],
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
}

#[tokio::test]
async fn a_hanging_and_a_slow_receiver_leave_another_tenant_fast() {
    let app = spawn_app_with(&[
        ("SIGNOFF_WORKER_POLL_INTERVAL", "PT0.1S"),
        ("SIGNOFF_WEBHOOK_TIMEOUT", "PT15S"),
    ])
    .await;
    let rx = Misbehaving::start();
    let acme = app.token.clone();
    let globex = token("globex", ALL_SCOPES);
    principal_as(&app, &acme).await;
    principal_as(&app, &globex).await;
    endpoint_as(&app, &acme, &format!("{}/hang", rx.base)).await;
    endpoint_as(&app, &acme, &format!("{}/slow", rx.base)).await;
    endpoint_as(&app, &globex, &format!("{}/fast", rx.base)).await;
    // More than their slots' worth of work for the two bad endpoints.
    for i in 0..20 {
        approval_as(&app, &acme, &format!("A-{i}")).await;
    }
    rx.wait(
        "the bad endpoints to fill their slots",
        Duration::from_secs(10),
        |r| r.started("/hang") >= 8 && r.started("/slow") >= 8,
    )
    .await;
    let mut answered = Vec::new();
    for i in 0..40 {
        let id = approval_as(&app, &globex, &format!("G-{i}")).await;
        answered.push((id, Instant::now()));
        // Real time on purpose: a steady stream of requests, one every 25 ms, whose delivery
        // latency is what this test measures.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    rx.wait("every globex delivery", Duration::from_secs(10), |r| {
        r.done("/fast").len() >= 40
    })
    .await;
    let done = rx.done("/fast");
    let mut latencies: Vec<u128> = answered
        .iter()
        .map(|(id, at)| {
            let (arrived, _) = done.iter().find(|(_, a)| a == id).expect("delivered");
            arrived.saturating_duration_since(*at).as_millis()
        })
        .collect();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p95 = latencies[latencies.len() * 95 / 100];
    println!(
        "other tenant's delivery latency beside a hanging and a 10 s receiver: p50 {p50} ms, p95 {p95} ms"
    );
    assert!(p95 < 250, "p95 {p95} ms: {latencies:?}");
    assert!(
        rx.started("/hang") <= 8 && rx.started("/slow") <= 8,
        "an endpoint got more than its cap at once"
    );
}

/// A `signoff serve` child process on its own port.
struct Replica {
    child: Child,
    app: TestApp,
}

impl Replica {
    async fn spawn(db: &str, extra: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_signoff"));
        cmd.arg("serve")
            .env_clear()
            .env("DATABASE_URL", url_for(db))
            .env("SIGNOFF_BIND", format!("127.0.0.1:{port}"))
            .env("SIGNOFF_PUBLIC_URL", "http://signoff.test")
            .env("SIGNOFF_JWT_HS256_SECRET", SECRET)
            .env("SIGNOFF_JWT_ISSUER", ISSUER)
            .env("SIGNOFF_JWT_AUDIENCE", AUDIENCE)
            .env("SIGNOFF_MIGRATE_ON_START", "false")
            .env("SIGNOFF_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("SIGNOFF_WORKER_POLL_INTERVAL", "PT0.1S")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("signoff starts");
        let app = TestApp {
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            db_name: db.to_string(),
            token: token(TENANT, ALL_SCOPES),
            worker: None,
            clock: signoff::clock::Clock::system(),
        };
        eventually(
            "signoff serve to be ready",
            Duration::from_secs(20),
            || async {
                let ready = app
                    .client
                    .get(format!("{}/readyz", app.address))
                    .send()
                    .await;
                ready.is_ok_and(|r| r.status() == 200).then_some(())
            },
        )
        .await;
        Self { child, app }
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn deliveries(app: &TestApp) -> Vec<(String, i32, Option<i32>)> {
    use diesel::prelude::*;
    use signoff::db::schema::webhook_deliveries::dsl as d;
    d::webhook_deliveries
        .select((d::state, d::attempts, d::leased_by))
        .load(&mut app.db())
        .unwrap()
}

#[tokio::test]
async fn a_receiver_answering_512_mb_leaves_memory_bounded() {
    let db = fresh_database();
    let replica = Replica::spawn(&db, &[]).await;
    let app = &replica.app;
    let rx = Misbehaving::start();
    app.principal("u-1", json!({})).await;
    let before = replica.status_kib("VmRSS:");
    endpoint_as(app, &app.token, &format!("{}/huge", rx.base)).await;
    approval_as(app, &app.token, "T-1").await;
    eventually(
        "the attempt to be recorded",
        Duration::from_secs(20),
        || async {
            let attempted = deliveries(app).iter().any(|(_, attempts, _)| *attempts > 0);
            attempted.then_some(())
        },
    )
    .await;
    let peak = replica.status_kib("VmHWM:");
    println!(
        "RSS with a 512 MB answer: {} MB before, peak {} MB",
        before / 1024,
        peak / 1024
    );
    assert!(peak < 200 * 1024, "peak RSS {} MB", peak / 1024);
    assert_eq!(deliveries(app)[0].0, "succeeded");
    let log = app.get("/v1/webhook-endpoints").await;
    let ep = log.body["items"][0]["id"].as_str().unwrap().to_string();
    let log = app
        .get(&format!("/v1/webhook-endpoints/{ep}/deliveries"))
        .await;
    let excerpt = log.body["items"][0]["attempts"][0]["response_excerpt"]
        .as_str()
        .unwrap()
        .len();
    assert!(excerpt <= 4096, "{excerpt}");
}

#[tokio::test]
async fn a_killed_replicas_deliveries_are_sent_by_another_within_seconds() {
    let db = fresh_database();
    let doomed = Replica::spawn(&db, &[("SIGNOFF_WEBHOOK_TIMEOUT", "PT60S")]).await;
    let rx = Misbehaving::start();
    doomed.app.principal("u-1", json!({})).await;
    endpoint_as(
        &doomed.app,
        &doomed.app.token,
        &format!("{}/flaky", rx.base),
    )
    .await;
    for i in 0..5 {
        approval_as(&doomed.app, &doomed.app.token, &format!("T-{i}")).await;
    }
    rx.wait("five attempts in flight", Duration::from_secs(10), |r| {
        r.started("/flaky") >= 5
    })
    .await;
    // Another replica comes up, its worker run by hand; it must leave a live replica's
    // leases alone.
    let env = [
        ("SIGNOFF_WORKER", "false"),
        ("SIGNOFF_WEBHOOK_TIMEOUT", "PT60S"),
    ];
    let other = spawn_with_settings(settings(&url_for(&db), &env), db.clone()).await;
    rx.hang.store(false, Ordering::SeqCst);
    assert_eq!(
        other.run_worker_once().await.deliveries,
        0,
        "a live replica's lease was taken"
    );
    assert_eq!(rx.done("/flaky").len(), 0);
    let mut doomed = doomed;
    doomed.child.kill().unwrap();
    let killed = Instant::now();
    doomed.child.wait().unwrap();
    // The dead replica's liveness lock goes when Postgres ends its session, which happens
    // outside the test's clock: the other's worker runs until it finds the leases free.
    eventually("the five deliveries", Duration::from_secs(10), || async {
        other.run_worker_once().await;
        (rx.done("/flaky").len() >= 5).then_some(())
    })
    .await;
    println!(
        "deliveries in flight on a killed replica were delivered by the other {} ms later",
        killed.elapsed().as_millis()
    );
    // Recorded, too, when the worker's run returns.
    let recorded = deliveries(&doomed.app);
    assert!(
        recorded.iter().all(|(s, _, _)| s == "succeeded"),
        "{recorded:?}"
    );
}

#[tokio::test]
async fn sigterm_finishes_the_attempt_in_flight_and_nothing_is_sent_twice() {
    let db = fresh_database();
    let replica = Replica::spawn(&db, &[("SIGNOFF_WEBHOOK_TIMEOUT", "PT15S")]).await;
    let rx = Misbehaving::start();
    replica.app.principal("u-1", json!({})).await;
    endpoint_as(
        &replica.app,
        &replica.app.token,
        &format!("{}/two-seconds", rx.base),
    )
    .await;
    approval_as(&replica.app, &replica.app.token, "T-1").await;
    rx.wait("the attempt in flight", Duration::from_secs(10), |r| {
        r.started("/two-seconds") >= 1
    })
    .await;
    let status = Command::new("kill")
        .args(["-TERM", &replica.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut replica = replica;
    let stopped = Instant::now();
    let code = eventually(
        "signoff to exit after SIGTERM",
        Duration::from_secs(20),
        || std::future::ready(replica.child.try_wait().unwrap()),
    )
    .await;
    assert!(code.success(), "exit {code:?}");
    println!(
        "SIGTERM to exit with an attempt in flight: {} ms",
        stopped.elapsed().as_millis()
    );
    assert_eq!(
        rx.done("/two-seconds").len(),
        1,
        "the attempt in flight finished"
    );
    assert_eq!(
        deliveries(&replica.app),
        [("succeeded".to_string(), 1, None)],
        "recorded once, lease given back"
    );
    // Another replica finds nothing left to send.
    let other = spawn_with_settings(
        settings(&url_for(&db), &[("SIGNOFF_WORKER", "false")]),
        db.clone(),
    )
    .await;
    assert_eq!(other.run_worker_once().await.deliveries, 0);
    assert_eq!(rx.started("/two-seconds"), 1, "sent twice");
}
