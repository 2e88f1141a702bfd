//! Benchmarks (`make bench`): the release binary, run as its own process, over loopback HTTP
//! against a fresh Postgres database. Prints a table of latencies and throughputs, then our
//! figures side by side with their yardstick (pgbench running `bench/decision.sql`, the SQL one
//! decision executed when the yardstick was frozen, on the same database in the same run), with
//! the CPU each decision and request costs signoff and Postgres. Exits non-zero when a target
//! is missed.
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
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod lists;

/// Concurrent clients in the load phases.
const CLIENTS: usize = 16;
/// Concurrent clients deciding, for signoff and for pgbench alike.
const DECIDERS: usize = 32;
/// Approval requests in phase (a).
const REQUESTS: usize = 4000;
/// Approvals decided in phase (b): each by all three of its approvers, so 6000 decisions. The
/// yardstick decides the tasks of the other 2000.
const DECIDED: usize = 2000;
/// Three-stage flows in phase (c).
const FLOWS: usize = 400;
/// Approvals whose `approval.approved` webhook is timed in phase (d), one after another.
const HOOKED: usize = 200;
/// Approvals requested and decided once before measuring, to open connections and give the
/// planner something to gather statistics on.
const WARM_UP: usize = 64;

const DECISION_P99_TARGET: Duration = Duration::from_millis(50);
/// Members of the role asked in the fan-out phase.
const CROWD: usize = 20_000;
/// A request asking the whole role, at most.
const CROWD_REQUEST_TARGET: Duration = Duration::from_secs(2);
/// The largest event (and so webhook body) it may write.
const EVENT_BYTES_TARGET: usize = 1 << 20;
/// Deliveries queued at once in the delivery phase.
const DELIVERIES: i64 = 10_000;
/// Deliveries per second one replica sends to a receiver that answers at once, at least.
const DELIVERY_RATE_TARGET: f64 = 2000.0;
/// Our decisions/s over pgbench's, at least.
const DECISION_RATE_TARGET: f64 = 0.9;
/// Our decision p99 over pgbench's, at most.
const DECISION_P99_RATIO_TARGET: f64 = 1.5;
/// signoff's own CPU per decision, at most.
const DECISION_CPU_TARGET: Duration = Duration::from_micros(300);
/// CPU per approval request, signoff and Postgres together, at most.
const REQUEST_CPU_TARGET: Duration = Duration::from_micros(2500);
const WEBHOOK_P95_TARGET: Duration = Duration::from_millis(250);

/// No single request or webhook may take longer than this.
const WAIT: Duration = Duration::from_secs(10);
/// The whole run is abandoned after this (the lists phase grows a million approvals).
const DEADLINE: Duration = Duration::from_secs(900);

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
fn environment(db_url: &str, bind: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db_url.to_string()),
        ("SIGNOFF_BIND", bind.to_string()),
        ("SIGNOFF_PUBLIC_URL", "http://signoff.bench".into()),
        ("SIGNOFF_JWT_HS256_SECRET", SECRET.into()),
        ("SIGNOFF_JWT_ISSUER", ISSUER.into()),
        ("SIGNOFF_JWT_AUDIENCE", AUDIENCE.into()),
        ("SIGNOFF_WEBHOOK_ALLOW_PRIVATE", "true".into()),
        ("RUST_LOG", "warn".into()),
    ]
}

/// Starts the release binary (built by cargo beside this bench) and waits until it is live.
async fn spawn_signoff(db_url: &str) -> anyhow::Result<(std::process::Child, String)> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let address = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_signoff"))
        .args(["serve", "--no-migrate"])
        .envs(environment(db_url, &address))
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("start target/release/signoff")?;
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/livez")).send().await
            && r.status().is_success()
        {
            return Ok((child, base));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("signoff did not become live within 30 s")
}

// ---------------------------------------------------------------------------------------------
// CPU, read from /proc

/// Fields 3.. of /proc/<pid>/stat (after the command name), and the command name.
fn proc_stat(pid: &str) -> Option<(String, Vec<u64>)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let fields = text[close + 2..]
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    Some((comm, fields))
}

fn ticks(t: u64) -> Duration {
    // USER_HZ is 100 on Linux.
    Duration::from_millis(t * 10)
}

/// User and system CPU of one process so far.
fn cpu_of(pid: u32) -> Duration {
    proc_stat(&pid.to_string())
        .map(|(_, f)| ticks(f[11] + f[12]))
        .unwrap_or_default()
}

/// CPU of the whole Postgres server so far: every live `postgres` process, plus what the
/// postmaster reaped from backends that have exited (pgbench's, once it is done).
fn postgres_cpu() -> Duration {
    let mut total = Duration::ZERO;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return total;
    };
    let stats: Vec<(String, String, Vec<u64>)> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        .filter_map(|pid| proc_stat(&pid).map(|(c, f)| (pid, c, f)))
        .collect();
    let postgres: std::collections::HashSet<&str> = stats
        .iter()
        .filter(|(_, c, _)| c == "postgres")
        .map(|(p, _, _)| p.as_str())
        .collect();
    for (_, comm, f) in &stats {
        if comm != "postgres" {
            continue;
        }
        total += ticks(f[11] + f[12]);
        let parent = f[1].to_string();
        if !postgres.contains(parent.as_str()) {
            total += ticks(f[13] + f[14]);
        }
    }
    total
}

/// CPU that signoff and Postgres spend while `f` runs.
struct Cpu {
    signoff: Duration,
    postgres: Duration,
}

async fn measure_cpu<T>(pid: u32, f: impl Future<Output = T>) -> (T, Cpu) {
    let (s0, p0) = (cpu_of(pid), postgres_cpu());
    let out = f.await;
    let cpu = Cpu {
        signoff: cpu_of(pid).saturating_sub(s0),
        postgres: postgres_cpu().saturating_sub(p0),
    };
    (out, cpu)
}

/// `perf record -a` of the whole machine while a phase runs, when `BENCH_PERF_DIR` is set
/// (`perf report -i DIR/<phase>.data --sort comm,dso,sym`): what signoff, Postgres and the
/// bench spend their CPU on, phase by phase.
struct Perf(Option<std::process::Child>);

impl Perf {
    fn start(phase: &str) -> Self {
        let Some(dir) = std::env::var_os("BENCH_PERF_DIR") else {
            return Self(None);
        };
        let out = std::path::Path::new(&dir).join(format!("{phase}.data"));
        let child = std::process::Command::new("perf")
            .args(["record", "-a", "-g", "-F", "499", "-o"])
            .arg(out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok();
        // perf needs a moment before it samples.
        std::thread::sleep(Duration::from_millis(300));
        Self(child)
    }

    fn stop(self) {
        if let Some(mut child) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

fn per(d: Duration, n: usize) -> Duration {
    d.checked_div(n.max(1) as u32).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The yardstick: pgbench with bench/decision.sql

struct Yardstick {
    rate: f64,
    /// Each transaction's latency.
    took: Vec<Duration>,
    /// Postgres CPU over the run (pgbench's own is not counted).
    postgres: Duration,
    transactions: usize,
}

impl Yardstick {
    /// Two runs as one: their transactions over their time, latencies pooled.
    fn and(mut self, other: Yardstick) -> Yardstick {
        let time = self.transactions as f64 / self.rate + other.transactions as f64 / other.rate;
        self.transactions += other.transactions;
        self.rate = self.transactions as f64 / time;
        self.took.extend(other.took);
        self.postgres += other.postgres;
        self
    }
}

/// (Re)fills `bench_targets` (n, approval_id, approver_id), which the yardstick's scripts
/// decide from, with the pending tasks of these approvals; answers how many.
fn targets_of(conn: &mut PgConnection, approvals: &[String]) -> anyhow::Result<usize> {
    diesel::sql_query("DROP TABLE IF EXISTS bench_targets").execute(conn)?;
    let list = approvals
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    diesel::sql_query(format!(
        "CREATE TABLE bench_targets AS
           SELECT row_number() OVER (ORDER BY approval_id, approver_id) AS n, approval_id,
                  approver_id
           FROM approval_tasks WHERE state = 'pending' AND approval_id IN ({list})"
    ))
    .execute(conn)?;
    diesel::sql_query("CREATE UNIQUE INDEX ON bench_targets (n)").execute(conn)?;
    diesel::sql_query("ANALYZE bench_targets").execute(conn)?;
    Ok(
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM bench_targets)",
        ))
        .get_result::<i64>(conn)? as usize,
    )
}

/// Runs pgbench with a frozen yardstick script of `bench/` (`decision.sql` on `targets` pending
/// tasks, `request.sql`): `clients` clients, `per_client` transactions each, prepared
/// statements as diesel uses them.
fn pgbench(
    db_url: &str,
    script: &str,
    clients: usize,
    targets: usize,
    per_client: usize,
) -> anyhow::Result<Yardstick> {
    pgbench_with(
        db_url,
        script,
        clients,
        targets,
        &["-t", &per_client.to_string()],
    )
}

/// pgbench as [`pgbench`], for as long as `how` says (`-t N` or `-T seconds`).
fn pgbench_with(
    db_url: &str,
    script: &str,
    clients: usize,
    targets: usize,
    how: &[&str],
) -> anyhow::Result<Yardstick> {
    let pgbench = std::env::var("PGBENCH").unwrap_or_else(|_| "pgbench".into());
    let script = format!("{}/bench/{script}", env!("CARGO_MANIFEST_DIR"));
    let logs =
        std::env::temp_dir().join(format!("signoff-pgbench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&logs)?;
    let prefix = logs.join("tx");
    let (p0, started) = (postgres_cpu(), Instant::now());
    let out = std::process::Command::new(&pgbench)
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string()])
        .args(how)
        .args(["-D", &format!("targets={targets}")])
        .args(["-f", &script, "-l", "--log-prefix"])
        .arg(&prefix)
        .arg(db_url)
        .output()
        .with_context(|| format!("run {pgbench} (set PGBENCH)"))?;
    let wall = started.elapsed();
    let postgres = postgres_cpu().saturating_sub(p0);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(
        out.status.success(),
        "pgbench failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut took = Vec::new();
    for entry in std::fs::read_dir(&logs)? {
        for line in std::fs::read_to_string(entry?.path())?.lines() {
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|f| f.parse::<u64>().ok())
            {
                took.push(Duration::from_micros(us));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&logs);
    let rate = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or(took.len() as f64 / wall.as_secs_f64());
    ensure!(!took.is_empty(), "pgbench logged no transactions: {stdout}");
    Ok(Yardstick {
        rate,
        transactions: took.len(),
        took,
        postgres,
    })
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
    load_on(CLIENTS, count, job).await
}

/// The same on `clients` concurrent clients.
async fn load_on<F, Fut>(
    clients: usize,
    count: usize,
    job: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..clients)
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

fn ms_of(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ms3(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// The result table.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 9]>,
    /// Our figure beside its yardstick: what, ours, theirs, ratio, target, verdict.
    compared: Vec<[String; 6]>,
    missed: Vec<String>,
}

impl Table {
    /// A figure beside its yardstick; `limit` bounds the ratio ours / theirs from below
    /// (`at_least`) or above.
    fn compare(&mut self, what: &str, ours: f64, theirs: f64, limit: Option<(bool, f64)>) {
        let ratio = if theirs > 0.0 { ours / theirs } else { 0.0 };
        let (goal, verdict) = match limit {
            None => (String::new(), String::new()),
            Some((at_least, bound)) => {
                let ok = if at_least {
                    ratio >= bound
                } else {
                    ratio <= bound
                };
                if !ok {
                    self.missed
                        .push(format!("{what}: ratio {ratio:.2}, target {bound}"));
                }
                (
                    format!("{} {bound}", if at_least { "≥" } else { "≤" }),
                    if ok { "ok" } else { "MISSED" }.to_string(),
                )
            }
        };
        self.compared.push([
            what.to_string(),
            format!("{ours:.2}"),
            if theirs > 0.0 {
                format!("{theirs:.2}")
            } else {
                "-".into()
            },
            if theirs > 0.0 {
                format!("{ratio:.2}")
            } else {
                "-".into()
            },
            goal,
            verdict,
        ]);
    }

    /// An absolute bound on our figure (CPU budgets), with no yardstick.
    fn bound(&mut self, what: &str, ours: Duration, limit: Duration) {
        let ok = ours <= limit;
        if !ok {
            self.missed
                .push(format!("{what}: {} ms > {} ms", ms3(ours), ms3(limit)));
        }
        self.compared.push([
            what.to_string(),
            ms3(ours),
            "-".into(),
            "-".into(),
            format!("≤ {} ms", ms3(limit)),
            if ok { "ok" } else { "MISSED" }.to_string(),
        ]);
    }

    fn print_compared(&self) {
        let head = ["figure", "signoff", "yardstick", "ratio", "target", ""];
        let mut width = head.map(|h| h.chars().count());
        for row in &self.compared {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
                let pad = " ".repeat(w - cell.chars().count());
                if i == 0 || i >= 4 {
                    out.push_str(&format!("{cell}{pad}  "));
                } else {
                    out.push_str(&format!("{pad}{cell}  "));
                }
            }
            println!("{}", out.trim_end());
        };
        line(&head.map(String::from));
        for row in &self.compared {
            line(row);
        }
    }

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
/// Webhooks the receiver has been sent, of any type.
static RECEIVED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn receive(body: web::Bytes, arrivals: web::Data<Arrivals>) -> HttpResponse {
    let at = Instant::now();
    RECEIVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

async fn run(api: Arc<Api>, pid: u32, db_url: &str, table: &mut Table) -> anyhow::Result<()> {
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
    if std::env::var("BENCH_ONLY").as_deref() == Ok("lists") {
        return lists::lists(&api, pid, db_url, table).await;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("fan-out") {
        let mut conn = PgConnection::establish(db_url)?;
        return fan_out(&api, pid, &mut conn, table).await;
    }

    // (a) Requests: ad-hoc, three approvers, all of whom must approve; beside the yardstick,
    // pgbench running bench/request.sql, half before and half after.
    let mut conn = PgConnection::establish(db_url)?;
    conn.batch_execute(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/bench/request-setup.sql"
    ))?)?;
    let request_yardstick = || -> anyhow::Result<Yardstick> {
        let perf = Perf::start("pgbench-requests");
        let run = pgbench(db_url, "request.sql", CLIENTS, 0, REQUESTS / 2 / CLIENTS);
        perf.stop();
        run
    };
    let requests_before = request_yardstick()?;
    let ids: Arc<Vec<std::sync::Mutex<String>>> =
        Arc::new((0..REQUESTS).map(|_| std::sync::Mutex::default()).collect());
    let (a, slots) = (api.clone(), ids.clone());
    let (requested, request_cpu) = measure_cpu(
        pid,
        load(REQUESTS, move |i| {
            let (a, slots) = (a.clone(), slots.clone());
            async move {
                let id = a.request_ad_hoc(&format!("T-{i}")).await?;
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = id;
                Ok(())
            }
        }),
    )
    .await;
    let (took, wall) = requested?;
    let requests_yard = requests_before.and(request_yardstick()?);
    let (ours, theirs) = (Stats::of(&took), Stats::of(&requests_yard.took));
    let request_rate = REQUESTS as f64 / wall.as_secs_f64();
    table.row(
        "POST /v1/approvals (ad-hoc, 3 approvers)",
        &ours,
        Some(request_rate),
        None,
    );
    table.row(
        "pgbench bench/request.sql (yardstick)",
        &theirs,
        Some(requests_yard.rate),
        None,
    );
    table.compare("requests/s", request_rate, requests_yard.rate, None);
    table.compare("request p50 (ms)", ms_of(ours.p50), ms_of(theirs.p50), None);
    table.compare("request p99 (ms)", ms_of(ours.p99), ms_of(theirs.p99), None);
    table.compare(
        "Postgres CPU per request (ms)",
        ms_of(per(request_cpu.postgres, REQUESTS)),
        ms_of(per(requests_yard.postgres, requests_yard.transactions)),
        None,
    );
    table.compare(
        "signoff CPU per request (ms)",
        ms_of(per(request_cpu.signoff, REQUESTS)),
        0.0,
        None,
    );
    table.bound(
        "CPU per request, signoff + Postgres (ms)",
        per(request_cpu.signoff + request_cpu.postgres, REQUESTS),
        REQUEST_CPU_TARGET,
    );

    if std::env::var("BENCH_ONLY").as_deref() == Ok("deliveries") {
        // Only the delivery throughput, on the events the requests wrote (for iterating on it).
        let mut conn = PgConnection::establish(db_url)?;
        // Later events of the same approvals, as decisions would have written them.
        diesel::sql_query(
            "INSERT INTO events (tenant_id, id, approval_id, sequence, type, payload)
             SELECT tenant_id, id, approval_id, sequence, type,
                    jsonb_set(payload, '{id}', to_jsonb(id::text))
             FROM (SELECT tenant_id, gen_random_uuid() AS id, approval_id,
                          sequence + 100 * k AS sequence, type, payload
                   FROM events, generate_series(1, 2) AS k ORDER BY k, position) n",
        )
        .execute(&mut conn)?;
        let (endpoint, _arrivals) = hooked_endpoint(&api).await?;
        let ours = delivery_throughput(&mut conn, &endpoint, table).await?;
        return delivery_yardstick(&api, pid, db_url, &mut conn, ours, table).await;
    }

    // (b) Decisions: u-1 on every approval, then u-2, then u-3 (whose decision approves), so
    // concurrent decisions land on different approvals.
    let requested: Vec<String> = ids
        .iter()
        .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .collect();
    // The yardstick decides the tasks of the approvals we leave pending, half of them before
    // our run and half after, so that both see the same machine (its disk and its neighbours
    // vary by the minute).
    let (ours, theirs) = requested.split_at(DECIDED);
    let (before, after) = theirs.split_at(theirs.len() / 2);
    let yardstick = |conn: &mut PgConnection, approvals: &[String]| -> anyhow::Result<Yardstick> {
        let targets = targets_of(conn, approvals)?;
        let perf = Perf::start("pgbench");
        let run = pgbench(
            db_url,
            "decision.sql",
            DECIDERS,
            targets,
            targets.div_ceil(DECIDERS),
        );
        perf.stop();
        run
    };
    let yard_before = yardstick(&mut conn, before)?;
    let ids: Arc<Vec<String>> = Arc::new(ours.to_vec());
    let a = api.clone();
    let perf = Perf::start("decisions");
    let (decided, decision_cpu) = measure_cpu(
        pid,
        load_on(DECIDERS, 3 * DECIDED, move |i| {
            let (a, ids) = (a.clone(), ids.clone());
            async move {
                let (who, id) = (i / DECIDED, &ids[i % DECIDED]);
                let status = a.approve(id, ["u-1", "u-2", "u-3"][who]).await?;
                let expected = if who == 2 { "approved" } else { "pending" };
                ensure!(status == expected, "decision {i}: status {status}");
                Ok(())
            }
        }),
    )
    .await;
    perf.stop();
    let (took, wall) = decided?;
    let all = Stats::of(&took);
    let our_rate = took.len() as f64 / wall.as_secs_f64();
    table.row(
        "POST decisions (all)",
        &all,
        Some(our_rate),
        Some(("p99", all.p99, DECISION_P99_TARGET)),
    );

    let yard = yard_before.and(yardstick(&mut conn, after)?);
    let yard_stats = Stats::of(&yard.took);
    table.row(
        "pgbench bench/decision.sql (yardstick)",
        &yard_stats,
        Some(yard.rate),
        None,
    );
    table.compare(
        "decisions/s",
        our_rate,
        yard.rate,
        Some((true, DECISION_RATE_TARGET)),
    );
    table.compare(
        "decision p50 (ms)",
        all.p50.as_secs_f64() * 1000.0,
        yard_stats.p50.as_secs_f64() * 1000.0,
        None,
    );
    table.compare(
        "decision p99 (ms)",
        all.p99.as_secs_f64() * 1000.0,
        yard_stats.p99.as_secs_f64() * 1000.0,
        Some((false, DECISION_P99_RATIO_TARGET)),
    );
    table.compare(
        "Postgres CPU per decision (ms)",
        per(decision_cpu.postgres, took.len()).as_secs_f64() * 1000.0,
        per(yard.postgres, yard.transactions).as_secs_f64() * 1000.0,
        None,
    );
    table.bound(
        "signoff CPU per decision (ms)",
        per(decision_cpu.signoff, took.len()),
        DECISION_CPU_TARGET,
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

    if std::env::var("BENCH_ONLY").as_deref() == Ok("decisions") {
        // Requests and decisions beside their yardsticks only (for iterating on the hot path).
        return Ok(());
    }

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
    fan_out(&api, pid, &mut conn, table).await?;

    let (endpoint, mut rx) = hooked_endpoint(&api).await?;
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

    let ours = delivery_throughput(&mut conn, &endpoint, table).await?;
    delivery_yardstick(&api, pid, db_url, &mut conn, ours, table).await?;

    // (e) Lists and the inbox, at ten thousand approvals and at a million.
    lists::lists(&api, pid, db_url, table).await
}

/// Fan-out: one request asking a role of CROWD members, and the largest event it wrote.
async fn fan_out(
    api: &Api,
    pid: u32,
    conn: &mut PgConnection,
    table: &mut Table,
) -> anyhow::Result<()> {
    diesel::sql_query(format!(
        "INSERT INTO principals (tenant_id, id, kind, display_name, email, locale, time_zone, roles)
         SELECT '{TENANT}', 'crowd-' || n, 'user', 'Member ' || n, 'm' || n || '@example.com',
                'en', 'UTC', ARRAY['crowd']
         FROM generate_series(1, {CROWD}) AS n"
    ))
    .execute(conn)?;
    let crowd = api
        .post(
            "/v1/processes",
            json!({"name": "bench-crowd", "stages": [{"name": "Everyone", "groups": [
                {"name": "crowd", "source": {"type": "role", "role": "crowd"},
                 "require": {"type": "count", "count": 1}}]}]}),
        )
        .await?;
    let crowd = id_of(&crowd)?;
    // On a settled database: what the phases before left to vacuum and write out (autovacuum
    // and the checkpointer took 2-3 s of Postgres CPU in this window of the full run) is done
    // first, so that the figure is the request's own.
    conn.batch_execute("VACUUM (ANALYZE)")?;
    conn.batch_execute("CHECKPOINT")?;
    let perf = Perf::start("fan-out");
    let started = Instant::now();
    let (asked, cpu) = measure_cpu(
        pid,
        api.post(
            "/v1/approvals",
            json!({"ticket": {"id": "CROWD-1"}, "process_id": crowd}),
        ),
    )
    .await;
    asked?;
    let took = started.elapsed();
    perf.stop();
    for (who, spent) in [("signoff", cpu.signoff), ("Postgres", cpu.postgres)] {
        table.compared.push([
            format!("{who} CPU, role of {CROWD} (ms)"),
            ms(spent),
            "-".into(),
            "-".into(),
            String::new(),
            String::new(),
        ]);
    }
    table.row(
        &format!("POST /v1/approvals, role of {CROWD}"),
        &Stats::of(&[took]),
        None,
        Some(("time", took, CROWD_REQUEST_TARGET)),
    );
    let largest = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT coalesce(max(octet_length(payload::text)), 0)::int8 FROM events)",
    ))
    .get_result::<i64>(conn)? as usize;
    let ok = largest <= EVENT_BYTES_TARGET;
    if !ok {
        table.missed.push(format!(
            "largest event {largest} bytes > {EVENT_BYTES_TARGET}"
        ));
    }
    table.compared.push([
        "largest event payload (bytes)".into(),
        largest.to_string(),
        "-".into(),
        "-".into(),
        format!("≤ {EVENT_BYTES_TARGET}"),
        if ok { "ok" } else { "MISSED" }.into(),
    ]);

    Ok(())
}

/// A receiver on a loopback port and an endpoint subscribed to everything that sends to it;
/// answers the endpoint's id and the receiver's arrivals of `approval.approved`.
async fn hooked_endpoint(
    api: &Api,
) -> anyhow::Result<(String, mpsc::UnboundedReceiver<(String, Instant)>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let url = start_receiver(tx)?;
    let endpoint = api
        .post(
            "/v1/webhook-endpoints",
            json!({"url": url, "events": ["*"], "description": "bench"}),
        )
        .await?;
    Ok((id_of(&endpoint)?, rx))
}

/// Queues `count` deliveries to `endpoint` of events it has none of (written before it
/// existed), at once, as a backlog after an outage would be.
fn queue_backlog(conn: &mut PgConnection, endpoint: &str, count: i64) -> anyhow::Result<()> {
    #[derive(diesel::QueryableByName)]
    struct Queued {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let queued = diesel::sql_query(format!(
        "WITH q AS (
           INSERT INTO webhook_deliveries
             (id, tenant_id, endpoint_id, event_id, event_position, approval_id, event_type)
           SELECT gen_random_uuid(), e.tenant_id, '{endpoint}'::uuid, e.id, e.position,
                  e.approval_id, e.type
           FROM events e
           WHERE e.tenant_id = '{TENANT}' AND NOT EXISTS
             (SELECT 1 FROM webhook_deliveries d
              WHERE d.endpoint_id = '{endpoint}'::uuid AND d.event_id = e.id)
           ORDER BY e.position LIMIT {count}
           RETURNING 1)
         SELECT n, pg_notify('signoff_work', 'deliveries')::text
         FROM (SELECT count(*) AS n FROM q) c"
    ))
    .get_result::<Queued>(conn)?
    .n;
    ensure!(
        queued == count,
        "only {queued} events to deliver, {count} needed"
    );
    Ok(())
}

/// Throughput: a backlog of DELIVERIES ([`queue_backlog`]) sent by the replica to a receiver
/// that answers at once; answers deliveries/s.
async fn delivery_throughput(
    conn: &mut PgConnection,
    endpoint: &str,
    table: &mut Table,
) -> anyhow::Result<f64> {
    let received = RECEIVED.load(std::sync::atomic::Ordering::Relaxed);
    queue_backlog(conn, endpoint, DELIVERIES)?;
    let started = Instant::now();
    // The receiver counts what arrives; the database is asked only once all has arrived
    // (asking it all along would cost Postgres as much as the worker's own queries).
    let limit = Duration::from_secs(60);
    while RECEIVED.load(std::sync::atomic::Ordering::Relaxed) < received + DELIVERIES as usize {
        ensure!(
            started.elapsed() < limit,
            "deliveries still arriving after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pending = |conn: &mut PgConnection| -> anyhow::Result<bool> {
        Ok(diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "EXISTS (SELECT 1 FROM webhook_deliveries WHERE state = 'pending')",
        ))
        .get_result(conn)?)
    };
    while pending(conn)? {
        ensure!(
            started.elapsed() < limit,
            "deliveries still pending after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = DELIVERIES as f64 / started.elapsed().as_secs_f64();
    let ok = rate >= DELIVERY_RATE_TARGET;
    if !ok {
        table
            .missed
            .push(format!("deliveries/s {rate:.0} < {DELIVERY_RATE_TARGET}"));
    }
    table.compared.push([
        format!("deliveries/s (backlog of {DELIVERIES})"),
        format!("{rate:.0}"),
        "-".into(),
        "-".into(),
        format!("≥ {DELIVERY_RATE_TARGET}"),
        if ok { "ok" } else { "MISSED" }.into(),
    ]);
    Ok(rate)
}

/// The deliveries' yardstick: pgbench running bench/delivery.sql (claim a batch of up to 8, the
/// attempts one endpoint may have in flight from one replica, and record them delivered) on one
/// client, on a backlog like ours for an endpoint of its own, for `SECONDS`, with signoff
/// paused (SIGSTOP) so that its worker does not take the backlog; what it left is then
/// removed. Prints our deliveries/s beside it.
async fn delivery_yardstick(
    api: &Api,
    pid: u32,
    db_url: &str,
    conn: &mut PgConnection,
    ours: f64,
    table: &mut Table,
) -> anyhow::Result<()> {
    const SECONDS: u64 = 2;
    // More than it can send in that time.
    const BACKLOG: i64 = 2 * DELIVERIES;
    conn.batch_execute(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/bench/delivery-setup.sql"
    ))?)?;
    let endpoint = api
        .post(
            "/v1/webhook-endpoints",
            json!({"url": "http://127.0.0.1:9/yardstick", "events": ["*"],
                   "description": "bench yardstick"}),
        )
        .await?;
    let endpoint = id_of(&endpoint)?;
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
    };
    signal("-STOP")?;
    let run = (|| {
        queue_backlog(conn, &endpoint, BACKLOG)?;
        let seconds = SECONDS.to_string();
        let yard = pgbench_with(db_url, "delivery.sql", 1, 0, &["-T", &seconds])?;
        let delivered = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT count(*) FROM webhook_deliveries
              WHERE endpoint_id = '{endpoint}'::uuid AND state = 'succeeded')"
        )))
        .get_result::<i64>(conn)?;
        conn.batch_execute(&format!(
            "DELETE FROM webhook_deliveries WHERE endpoint_id = '{endpoint}'::uuid;
             UPDATE webhook_endpoints SET enabled = false WHERE id = '{endpoint}'::uuid"
        ))?;
        anyhow::Ok((delivered, yard))
    })();
    signal("-CONT")?;
    let (delivered, yard) = run?;
    ensure!(
        delivered < BACKLOG,
        "the yardstick drained its backlog in under {SECONDS} s: give it a larger one"
    );
    // Over the time pgbench ran its transactions (without connecting).
    let theirs = delivered as f64 * yard.rate / yard.transactions.max(1) as f64;
    table.compare("deliveries/s", ours, theirs, None);
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
    let (mut child, address) = spawn_signoff(&db_url).await?;
    let pid = child.id();
    let api = Arc::new(Api {
        address,
        client: reqwest::Client::builder().timeout(WAIT).build()?,
        token: token()?,
    });

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "signoff bench: release build, {cpus} CPUs, {CLIENTS} concurrent clients in the load \
         phases, loopback HTTP, database {db}"
    );
    let started = Instant::now();
    let mut table = Table::default();
    let outcome = run(api, pid, &db_url, &mut table).await;
    let _ = child.kill();
    let _ = child.wait();
    table.print();
    println!();
    table.print_compared();
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
