//! Benchmarks (`make bench`): the real application, built in release mode, over loopback HTTP
//! against its own fresh Postgres database, as the integration tests run it. Prints a table of
//! latencies and throughputs beside the targets and exits non-zero when a target is missed.
//!
//! Only loopback traffic; every phase is bounded in count, every wait in time. The database is
//! dropped afterwards unless `BENCH_KEEP_DATABASE` is set, for looking at plans and tables.

use std::future::Future;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, bail, ensure};
use diesel::{Connection, PgConnection, RunQueryDsl};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use signoff::config::Settings;
use signoff::startup::Application;
use tokio::sync::mpsc;

/// Concurrent clients in the load phases.
const CLIENTS: usize = 16;
/// Approval requests in phase (a).
const REQUESTS: usize = 2000;
/// Approvals decided in phase (b): each by all three of its approvers, so 2001 decisions.
const DECIDED: usize = 667;
/// Three-stage flows in phase (c).
const FLOWS: usize = 400;
/// Approvals whose `approval.approved` webhook is timed in phase (d), one after another.
const HOOKED: usize = 200;
/// Approvals requested and decided once before measuring, to open connections and give the
/// planner something to gather statistics on.
const WARM_UP: usize = 64;

const DECISION_P99_TARGET: Duration = Duration::from_millis(50);
const WEBHOOK_P95_TARGET: Duration = Duration::from_millis(250);

/// No single request or webhook may take longer than this.
const WAIT: Duration = Duration::from_secs(10);
/// The whole run is abandoned after this.
const DEADLINE: Duration = Duration::from_secs(300);

const SECRET: &str = "bench-secret-0123456789abcdef0123456789";
const ISSUER: &str = "https://issuer.bench";
const AUDIENCE: &str = "signoff-bench";
const TENANT: &str = "acme";
const SCOPES: &str = "processes:read processes:write approvals:read approvals:write \
approvals:decide approvals:admin directory:write webhooks:manage";

// ---------------------------------------------------------------------------------------------
// The application under test

fn admin_url() -> anyhow::Result<String> {
    std::env::var("DATABASE_URL")
        .context("DATABASE_URL must point at a Postgres server (make bench sets it)")
}

/// `postgres://…/name` with another database name.
fn url_for(admin: &str, db: &str) -> String {
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    format!("{base}/{db}")
}

/// A fresh, migrated database; answers its name.
fn fresh_database(admin: &str) -> anyhow::Result<String> {
    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::establish(admin).context("connect to DATABASE_URL")?;
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn)?;
    let mut conn = PgConnection::establish(&url_for(admin, &name))?;
    signoff::db::run_migrations(&mut conn)?;
    Ok(name)
}

/// Gathers planner statistics, as autovacuum has done in any database that has run a while.
/// A fresh database has none, and the plans Postgres caches for the pool's prepared statements
/// without them scan every pending approval or every task of the tenant: a first minute after
/// deployment, not the steady state the targets are about.
fn analyze(db_url: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::establish(db_url)?;
    diesel::sql_query("ANALYZE").execute(&mut conn)?;
    Ok(())
}

fn drop_database(admin: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::establish(admin)?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn)?;
    Ok(())
}

/// Production defaults except for what a bench must set: where to listen, the database, the
/// JWT verification, and permission to deliver webhooks to a loopback receiver.
fn settings(db_url: &str) -> anyhow::Result<Settings> {
    let env: std::collections::HashMap<String, String> = [
        ("DATABASE_URL", db_url),
        ("SIGNOFF_BIND", "127.0.0.1:0"),
        ("SIGNOFF_PUBLIC_URL", "http://signoff.bench"),
        ("SIGNOFF_JWT_HS256_SECRET", SECRET),
        ("SIGNOFF_JWT_ISSUER", ISSUER),
        ("SIGNOFF_JWT_AUDIENCE", AUDIENCE),
        ("SIGNOFF_MIGRATE_ON_START", "false"),
        ("SIGNOFF_WEBHOOK_ALLOW_PRIVATE", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Ok(Settings::from_env(&env)?)
}

fn token() -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "exp": now + 3600,
                        "iat": now, "tenant": TENANT, "scope": SCOPES});
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )?)
}

/// A client of the running application.
struct Api {
    address: String,
    client: reqwest::Client,
    token: String,
}

impl Api {
    /// Sends `body` with `method` and answers the JSON body of a 2xx; anything else is an error.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let res = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("{path}: no answer"))?;
        let status = res.status();
        let text = res.text().await?;
        ensure!(status.is_success(), "{path}: {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, body).await
    }

    async fn request_ad_hoc(&self, ticket: &str) -> anyhow::Result<String> {
        let view = self
            .post(
                "/v1/approvals",
                json!({"ticket": {"id": ticket, "title": "New laptop", "requester_id": "req"},
                       "approvers": ["u-1", "u-2", "u-3"], "require": {"type": "all"},
                       "on_approved_status": "approved", "on_rejected_status": "rejected"}),
            )
            .await?;
        id_of(&view)
    }

    /// Approves as `who`; answers the approval's state afterwards.
    async fn approve(&self, id: &str, who: &str) -> anyhow::Result<String> {
        let view = self
            .post(
                &format!("/v1/approvals/{id}/decisions"),
                json!({"approver_id": who, "decision": "approve"}),
            )
            .await?;
        Ok(view["state"].as_str().unwrap_or_default().to_string())
    }
}

fn id_of(view: &Value) -> anyhow::Result<String> {
    Ok(view["id"]
        .as_str()
        .with_context(|| format!("no id in {view}"))?
        .to_string())
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// Runs jobs `0..count` on `CLIENTS` concurrent clients. Answers each job's latency, by job
/// number, and the wall time of the whole run.
async fn load<F, Fut>(count: usize, job: F) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (next, job) = (next.clone(), job.clone());
            tokio::spawn(async move {
                let mut took = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return anyhow::Ok(took);
                    }
                    let t = Instant::now();
                    tokio::time::timeout(WAIT, job(i))
                        .await
                        .with_context(|| format!("job {i} took over {WAIT:?}"))??;
                    took.push((i, t.elapsed()));
                }
            })
        })
        .collect();
    let mut latencies = vec![Duration::ZERO; count];
    for client in clients {
        for (i, d) in client.await?? {
            latencies[i] = d;
        }
    }
    Ok((latencies, start.elapsed()))
}

/// Nearest-rank percentiles of a sample.
struct Stats {
    n: usize,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    fn of(sample: &[Duration]) -> Self {
        let mut s = sample.to_vec();
        s.sort();
        let at = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Self {
            n: s.len(),
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The result table.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 9]>,
    missed: Vec<String>,
}

impl Table {
    /// A row; `target` is (what is checked, its value, the limit).
    fn row(
        &mut self,
        what: &str,
        stats: &Stats,
        rate: Option<f64>,
        target: Option<(&str, Duration, Duration)>,
    ) {
        let (goal, verdict) = match target {
            None => (String::new(), String::new()),
            Some((name, value, limit)) => {
                let ok = value < limit;
                if !ok {
                    self.missed.push(format!(
                        "{what}: {name} {} ms ≥ {} ms",
                        ms(value),
                        ms(limit)
                    ));
                }
                (
                    format!("{name} < {} ms", limit.as_millis()),
                    if ok { "ok" } else { "MISSED" }.to_string(),
                )
            }
        };
        self.rows.push([
            what.to_string(),
            stats.n.to_string(),
            ms(stats.p50),
            ms(stats.p95),
            ms(stats.p99),
            ms(stats.max),
            rate.map(|r| format!("{r:.0}"))
                .unwrap_or_else(|| "-".into()),
            goal,
            verdict,
        ]);
    }

    fn print(&self) {
        let head = [
            "scenario", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "per s", "target", "",
        ];
        let mut width = head.map(str::len);
        for row in &self.rows {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
                let pad = w - cell.chars().count();
                if i == 0 || i >= 7 {
                    out.push_str(&format!("{cell}{}  ", " ".repeat(pad)));
                } else {
                    out.push_str(&format!("{}{cell}  ", " ".repeat(pad)));
                }
            }
            println!("{}", out.trim_end());
        };
        line(&head.map(String::from));
        for row in &self.rows {
            line(row);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver

type Arrivals = mpsc::UnboundedSender<(String, Instant)>;

/// Answers 200 to every delivery and reports when each `approval.approved` arrived.
async fn receive(body: web::Bytes, arrivals: web::Data<Arrivals>) -> HttpResponse {
    let at = Instant::now();
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    if event["type"] == "approval.approved" {
        let id = event["data"]["approval"]["id"].as_str().unwrap_or_default();
        let _ = arrivals.send((id.to_string(), at));
    }
    HttpResponse::Ok().finish()
}

/// A webhook receiver on a loopback port; answers its URL.
fn start_receiver(arrivals: Arrivals) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let arrivals = web::Data::new(arrivals);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(arrivals.clone())
            .default_service(web::to(receive))
    })
    .workers(1)
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok(format!("http://127.0.0.1:{port}/hooks"))
}

// ---------------------------------------------------------------------------------------------
// The phases

async fn run(api: Arc<Api>, db_url: &str, table: &mut Table) -> anyhow::Result<()> {
    for who in ["u-1", "u-2", "u-3", "s-1", "s-2", "s-3"] {
        api.send(
            reqwest::Method::PUT,
            &format!("/v1/principals/{who}"),
            json!({"kind": "user", "display_name": who, "email": format!("{who}@example.com")}),
        )
        .await?;
    }
    let a = api.clone();
    load(WARM_UP, move |i| {
        let a = a.clone();
        async move {
            let id = a.request_ad_hoc(&format!("W-{i}")).await?;
            a.approve(&id, "u-1").await?;
            Ok(())
        }
    })
    .await?;
    analyze(db_url)?;

    // (a) Requests: ad-hoc, three approvers, all of whom must approve.
    let ids: Arc<Vec<std::sync::Mutex<String>>> =
        Arc::new((0..REQUESTS).map(|_| std::sync::Mutex::default()).collect());
    let (a, slots) = (api.clone(), ids.clone());
    let (took, wall) = load(REQUESTS, move |i| {
        let (a, slots) = (a.clone(), slots.clone());
        async move {
            let id = a.request_ad_hoc(&format!("T-{i}")).await?;
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = id;
            Ok(())
        }
    })
    .await?;
    table.row(
        "POST /v1/approvals (ad-hoc, 3 approvers)",
        &Stats::of(&took),
        Some(REQUESTS as f64 / wall.as_secs_f64()),
        None,
    );

    // (b) Decisions: u-1 on every approval, then u-2, then u-3 (whose decision approves), so
    // concurrent decisions land on different approvals.
    let ids: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .take(DECIDED)
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect(),
    );
    let a = api.clone();
    let (took, wall) = load(3 * DECIDED, move |i| {
        let (a, ids) = (a.clone(), ids.clone());
        async move {
            let (who, id) = (i / DECIDED, &ids[i % DECIDED]);
            let status = a.approve(id, ["u-1", "u-2", "u-3"][who]).await?;
            let expected = if who == 2 { "approved" } else { "pending" };
            ensure!(status == expected, "decision {i}: status {status}");
            Ok(())
        }
    })
    .await?;
    let all = Stats::of(&took);
    table.row(
        "POST decisions (all)",
        &all,
        Some(took.len() as f64 / wall.as_secs_f64()),
        Some(("p99", all.p99, DECISION_P99_TARGET)),
    );
    table.row(
        "  of which recorded, approval pending",
        &Stats::of(&took[..2 * DECIDED]),
        None,
        None,
    );
    table.row(
        "  of which final, approval approved",
        &Stats::of(&took[2 * DECIDED..]),
        None,
        None,
    );

    // (c) A three-stage process, one approver per stage: request, then each stage's decision.
    let stages: Vec<Value> = (1..=3)
        .map(|n| {
            let source = json!({"type": "principals", "ids": [format!("s-{n}")]});
            json!({"name": format!("Stage {n}"), "groups": [
                {"name": format!("g{n}"), "source": source,
                 "require": {"type": "count", "count": 1}}]})
        })
        .collect();
    let process = api
        .post(
            "/v1/processes",
            json!({"name": "bench-3-stage", "on_approved_status": "approved",
                   "on_rejected_status": "rejected", "stages": stages}),
        )
        .await?;
    let process = Arc::new(id_of(&process)?);
    let a = api.clone();
    let (took, wall) = load(FLOWS, move |i| {
        let (a, process) = (a.clone(), process.clone());
        async move {
            let view = a
                .post(
                    "/v1/approvals",
                    json!({"ticket": {"id": format!("P-{i}"), "title": "Budget"},
                           "process_id": process.as_str()}),
                )
                .await?;
            let id = id_of(&view)?;
            for (n, who) in ["s-1", "s-2", "s-3"].iter().enumerate() {
                let status = a.approve(&id, who).await?;
                let expected = if n == 2 { "approved" } else { "pending" };
                ensure!(status == expected, "flow {i}, stage {n}: status {status}");
            }
            Ok(())
        }
    })
    .await?;
    table.row(
        "3-stage process: request + 3 decisions",
        &Stats::of(&took),
        Some(FLOWS as f64 / wall.as_secs_f64()),
        None,
    );

    // (d) Webhooks: from the answer to the final decision to the receiver getting
    // `approval.approved`, one approval at a time, with an endpoint subscribed to everything.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let url = start_receiver(tx)?;
    api.post(
        "/v1/webhook-endpoints",
        json!({"url": url, "events": ["*"], "description": "bench"}),
    )
    .await?;
    let mut took = Vec::with_capacity(HOOKED);
    for i in 0..HOOKED {
        let view = api
            .post(
                "/v1/approvals",
                json!({"ticket": {"id": format!("H-{i}"), "title": "Hooked"},
                       "approvers": ["u-1"], "on_approved_status": "approved",
                       "on_rejected_status": "rejected"}),
            )
            .await?;
        let id = id_of(&view)?;
        api.approve(&id, "u-1").await?;
        let answered = Instant::now();
        let arrived = tokio::time::timeout(WAIT, async {
            while let Some((got, at)) = rx.recv().await {
                if got == id {
                    return Ok(at);
                }
            }
            bail!("the receiver stopped")
        })
        .await
        .with_context(|| format!("no approval.approved for {id} within {WAIT:?}"))??;
        took.push(arrived.saturating_duration_since(answered));
    }
    let hooks = Stats::of(&took);
    table.row(
        "webhook: decision answer -> approval.approved",
        &hooks,
        None,
        Some(("p95", hooks.p95, WEBHOOK_P95_TARGET)),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    // A hung run must not hang `make bench`.
    std::thread::spawn(|| {
        std::thread::sleep(DEADLINE);
        eprintln!("bench: gave up after {DEADLINE:?}");
        std::process::exit(2);
    });
    let admin = admin_url()?;
    let db = fresh_database(&admin)?;
    let db_url = url_for(&admin, &db);
    let app = Application::build(settings(&db_url)?).await?;
    let api = Arc::new(Api {
        address: format!("http://127.0.0.1:{}", app.port()),
        client: reqwest::Client::builder().timeout(WAIT).build()?,
        token: token()?,
    });
    tokio::spawn(app.run_until_stopped());

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "signoff bench: release build, {cpus} CPUs, {CLIENTS} concurrent clients in the load \
         phases, loopback HTTP, database {db}"
    );
    let started = Instant::now();
    let mut table = Table::default();
    let outcome = run(api, &db_url, &mut table).await;
    table.print();
    println!("measured in {:.1} s", started.elapsed().as_secs_f64());
    if std::env::var_os("BENCH_KEEP_DATABASE").is_some() {
        println!("kept database {db} (BENCH_KEEP_DATABASE is set)");
    } else if let Err(e) = drop_database(&admin, &db) {
        eprintln!("bench: could not drop {db}: {e}");
    }
    outcome?;
    if table.missed.is_empty() {
        println!("all targets met");
        Ok(ExitCode::SUCCESS)
    } else {
        for m in &table.missed {
            println!("target missed: {m}");
        }
        Ok(ExitCode::FAILURE)
    }
}
