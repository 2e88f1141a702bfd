//! Spawns the real application on port 0 against its own fresh database, cloned from a
//! migrated template so each test starts in milliseconds.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use signoff::clock::Clock;
use signoff::config::Settings;
use signoff::startup::Application;
use signoff::worker::{Ran, Worker};

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789";
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "signoff-test";
pub const TENANT: &str = "acme";

/// Every scope, for tests that are not about scopes.
pub const ALL_SCOPES: &str = "processes:read processes:write approvals:read approvals:write \
approvals:decide approvals:admin directory:write webhooks:manage";

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a Postgres server (make test sets it)")
}

/// `postgres://…/name` with another database name.
pub fn url_for(db: &str) -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{db}")
}

/// The migrated template, made once per test binary (and safely by concurrent binaries).
fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        // One template per test process, so concurrent runs never drop each other's.
        let name = format!("signoff_template_{}", std::process::id());
        let mut admin = PgConnection::establish(&admin_url()).expect("connect to admin database");
        diesel::sql_query("SELECT pg_advisory_lock(4242)")
            .execute(&mut admin)
            .unwrap();
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut admin)
            .unwrap();
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap();
        {
            let mut conn = PgConnection::establish(&url_for(&name)).unwrap();
            signoff::db::run_migrations(&mut conn).expect("migrations apply");
        }
        diesel::sql_query("SELECT pg_advisory_unlock(4242)")
            .execute(&mut admin)
            .unwrap();
        name
    })
}

/// A fresh, migrated database for one test.
pub fn fresh_database() -> String {
    let template = template();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&admin_url()).unwrap();
    diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .execute(&mut admin)
        .unwrap();
    name
}

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Settings for a test app; `extra` overrides variables.
pub fn settings(db_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = [
        ("DATABASE_URL", db_url),
        ("SIGNOFF_BIND", "127.0.0.1:0"),
        ("SIGNOFF_PUBLIC_URL", "http://signoff.test"),
        ("SIGNOFF_JWT_HS256_SECRET", SECRET),
        ("SIGNOFF_JWT_ISSUER", ISSUER),
        ("SIGNOFF_JWT_AUDIENCE", AUDIENCE),
        ("SIGNOFF_MIGRATE_ON_START", "false"),
        ("SIGNOFF_DB_POOL_SIZE", "8"),
        ("SIGNOFF_DB_TIMEOUT", "PT2S"),
        ("SIGNOFF_WEBHOOK_ALLOW_PRIVATE", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("SIGNOFF_JWT_JWKS".into(), fixture("jwks.json"));
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::from_env(&env).expect("valid test settings")
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db_name: String,
    pub token: String,
    /// The app's worker (None for an app running in a child process).
    pub worker: Option<Worker>,
    /// The clock the app reads.
    pub clock: Clock,
}

/// Spawns the app on its own fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let db_name = fresh_database();
    let settings = settings(&url_for(&db_name), extra);
    spawn_with_settings(settings, db_name).await
}

pub async fn spawn_with_settings(settings: Settings, db_name: String) -> TestApp {
    spawn_with_clock(settings, db_name, Clock::system()).await
}

/// Spawns the app on its own fresh database, reading `clock`; `extra` overrides variables.
/// With `SIGNOFF_WORKER=false` nothing runs in the background: the test drives the worker
/// with [`TestApp::run_worker_once`].
pub async fn spawn_app_with_clock(extra: &[(&str, &str)], clock: Clock) -> TestApp {
    let db_name = fresh_database();
    let settings = settings(&url_for(&db_name), extra);
    spawn_with_clock(settings, db_name, clock).await
}

pub async fn spawn_with_clock(settings: Settings, db_name: String, clock: Clock) -> TestApp {
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let worker = Some(app.worker());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db_name,
        token: token(TENANT, ALL_SCOPES),
        worker,
        clock,
    }
}

/// How often [`within`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Looks until `check` answers `Some`, for at most `timeout`; `None` if it never did (for a
/// caller that wants to say more than [`eventually`] does when it gives up).
///
/// This is the one place the tests wait on real time, and only for what is outside the test's
/// clock: a child process starting or exiting, a receiver or a browser answering, Postgres
/// reaching a state (a lock waited on, a dead client's session ended). Anything the app decides
/// by its own clock is moved with `app.clock` and `run_worker_once` instead.
pub async fn within<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        // Real time on purpose: what is awaited does not read the test's clock (see above).
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// What `check` answers once it answers `Some`, looking for at most `timeout` (see [`within`]);
/// panics naming `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match within(timeout, check).await {
        Some(found) => found,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Claims as a test wants them; fields set to `None` are left out.
pub fn claims(tenant: &str, scope: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "test-client", "exp": now + 600,
           "iat": now, "tenant": tenant, "scope": scope})
}

pub fn sign_hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Signs with one of the fixture private keys, naming `kid`.
pub fn sign_with_key(claims: &Value, alg: Algorithm, pem_file: &str, kid: &str) -> String {
    let pem = std::fs::read(fixture(pem_file)).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        other => panic!("no fixture for {other:?}"),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub fn token(tenant: &str, scope: &str) -> String {
    sign_hs256(&claims(tenant, scope), SECRET)
}

/// An answer: status, headers and JSON body (Null when the body is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        assert!(self.body["type"].as_str().unwrap().ends_with(code));
    }

    /// The fields a 422 lists.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    /// Runs the worker once by hand: every due timer, then every due delivery, sent and
    /// recorded before this returns (like zero-to-production's `dispatch_all_pending_emails`).
    pub async fn run_worker_once(&self) -> Ran {
        self.worker
            .as_ref()
            .expect("this app runs in another process")
            .run_pending()
            .await
            .expect("the worker ran")
    }

    /// A direct connection to this test's database, to check what was stored.
    pub fn db(&self) -> PgConnection {
        PgConnection::establish(&url_for(&self.db_name)).expect("connect to test database")
    }

    /// Sends a request with the default all-scopes token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(&self.token.clone(), method, path, body, &[])
            .await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.address, path));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
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

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// Upserts a principal with sensible defaults merged with `extra`.
    pub async fn principal(&self, id: &str, extra: Value) -> Answer {
        let mut body = json!({"kind": "user", "display_name": format!("Person {id}"),
                              "email": format!("{id}@example.com")});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let a = self.put(&format!("/v1/principals/{id}"), body).await;
        assert!(a.status.is_success(), "principal {id}: {}", a.text);
        a
    }
}

/// A small valid process definition.
pub fn simple_process(name: &str) -> Value {
    json!({
        "name": name,
        "on_approved_status": "approved",
        "on_rejected_status": "rejected",
        "stages": [{"name": "Approvers", "groups": [
            {"name": "approvers", "source": {"type": "principals", "ids": ["u-1", "u-2"]},
             "require": {"type": "count", "count": 1}}]}]
    })
}
