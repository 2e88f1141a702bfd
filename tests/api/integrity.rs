//! Integrity at the edges: an Idempotency-Key commits with its effect, reads see one snapshot,
//! and tokens and ids cannot smuggle in what a reader does not see.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::Method;
use serde_json::{Value, json};
use signoff::service::approvals::{DecisionInput, decide};
use signoff::service::store::Ctx;

use crate::helpers::*;

async fn post_with_key(app: &TestApp, path: &str, key: &str, body: Value) -> Answer {
    let t = app.token.clone();
    app.call_as(
        &t,
        Method::POST,
        path,
        Some(body),
        &[("idempotency-key", key)],
    )
    .await
}

fn count_of(list: &Answer) -> usize {
    list.body["items"].as_array().map(Vec::len).unwrap_or(0)
}

/// The pid of a backend of this test's database waiting for a lock, once there is one;
/// panics naming `what` after 10 s.
async fn lock_waiter(url: &str, what: &str) -> i32 {
    let conn = Arc::new(Mutex::new(PgConnection::establish(url).unwrap()));
    eventually(what, Duration::from_secs(10), || {
        let conn = conn.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let pids: Vec<i32> = diesel::select(diesel::dsl::sql::<
                    diesel::sql_types::Array<diesel::sql_types::Integer>,
                >(
                    "(SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity
                       WHERE datname = current_database() AND wait_event_type = 'Lock'
                         AND pid <> pg_backend_pid())",
                ))
                .get_result(&mut *conn.lock().unwrap())
                .unwrap();
                pids.first().copied()
            })
            .await
            .unwrap()
        }
    })
    .await
}

/// Holds `LOCK TABLE {table} IN {mode} MODE` in a transaction until `release` is sent.
fn hold_lock(
    url: String,
    table: &'static str,
    mode: &'static str,
) -> (
    tokio::sync::oneshot::Receiver<()>,
    mpsc::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            diesel::sql_query(format!("LOCK TABLE {table} IN {mode} MODE")).execute(c)?;
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
            Ok(())
        })
        .unwrap();
    });
    (locked_rx, release_tx, holder)
}

// ---------------------------------------------------------------------------------------
// Idempotency: the key, the effect and the answer commit together.

#[tokio::test]
async fn a_422_holding_a_nul_is_answered_and_not_kept_for_the_key() {
    let app = spawn_app().await;
    // The unknown field's name, NUL included, is echoed in the 422's `errors`.
    let mut bad = simple_process("Nul");
    bad["extra\u{0}"] = json!(1);
    let first = post_with_key(&app, "/v1/processes", "p-nul", bad.clone()).await;
    first.assert_problem(422, "validation_failed");
    assert!(first.text.contains("\\u0000"), "{}", first.text);
    // Not a locked key, not a replay: the same request runs (and fails) again.
    let again = post_with_key(&app, "/v1/processes", "p-nul", bad).await;
    again.assert_problem(422, "validation_failed");
    assert_eq!(again.header("idempotent-replayed"), None);
    // The client fixes the body and retries with the same key: it runs.
    let fixed = post_with_key(&app, "/v1/processes", "p-nul", simple_process("Nul")).await;
    assert_eq!(fixed.status, 201, "{}", fixed.text);
    let replay = post_with_key(&app, "/v1/processes", "p-nul", simple_process("Nul")).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body["id"], fixed.body["id"]);
}

#[tokio::test]
async fn an_answer_that_cannot_be_stored_takes_its_effect_with_it() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let mut conn = app.db();
    // Storing any answer fails (a full disk, a constraint: whatever it is).
    conn.batch_execute(
        "CREATE FUNCTION refuse_answers() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'no room for answers'; END $$;
         CREATE TRIGGER refuse_answers BEFORE INSERT OR UPDATE ON idempotency_keys
           FOR EACH ROW WHEN (NEW.status IS NOT NULL) EXECUTE FUNCTION refuse_answers();",
    )
    .unwrap();
    let body = json!({"ticket": {"id": "T-1"}, "approvers": ["u-1"]});
    let failed = post_with_key(&app, "/v1/approvals", "a-1", body.clone()).await;
    assert_eq!(failed.status, 500, "{}", failed.text);
    assert_eq!(
        count_of(&app.get("/v1/approvals").await),
        0,
        "the approval was created though its answer was lost"
    );
    diesel::sql_query("DROP TRIGGER refuse_answers ON idempotency_keys")
        .execute(&mut conn)
        .unwrap();
    let retry = post_with_key(&app, "/v1/approvals", "a-1", body.clone()).await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    let replay = post_with_key(&app, "/v1/approvals", "a-1", body).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body["id"], retry.body["id"]);
    assert_eq!(count_of(&app.get("/v1/approvals").await), 1);
}

/// A second replica: the real `signoff serve` binary on the test's database, to be killed.
struct Replica {
    child: std::process::Child,
    address: String,
}

impl Replica {
    async fn start(app: &TestApp) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_signoff"))
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", url_for(&app.db_name))
            .env("SIGNOFF_BIND", format!("127.0.0.1:{port}"))
            .env("SIGNOFF_JWT_HS256_SECRET", SECRET)
            .env("SIGNOFF_JWT_ISSUER", ISSUER)
            .env("SIGNOFF_JWT_AUDIENCE", AUDIENCE)
            .env("SIGNOFF_MIGRATE_ON_START", "false")
            .env("SIGNOFF_WORKER", "false")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("signoff serve starts");
        let replica = Replica {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        eventually(
            "the replica to come up",
            Duration::from_secs(10),
            || async {
                let up = app
                    .client
                    .get(format!("{}/livez", replica.address))
                    .send()
                    .await;
                up.is_ok_and(|r| r.status() == 200).then_some(())
            },
        )
        .await;
        replica
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_replica_killed_mid_request_leaves_its_key_free_for_a_retry() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let mut replica = Replica::start(&app).await;
    let body = json!({"ticket": {"id": "T-1"}, "approvers": ["u-1"]});
    let url = url_for(&app.db_name);
    // Inserting an approval waits: the replica's request stops inside its effect.
    let (locked, release, holder) = hold_lock(url.clone(), "approvals", "SHARE ROW EXCLUSIVE");
    locked.await.unwrap();
    let on_replica = app
        .client
        .post(format!("{}/v1/approvals", replica.address))
        .bearer_auth(&app.token)
        .header("idempotency-key", "k-1")
        .json(&body)
        .send();
    let meanwhile = async {
        let pid = lock_waiter(&url, "the replica's request to wait inside its effect").await;
        // A try with the key while the first runs: 409 at once, not a wait.
        let second = post_with_key(&app, "/v1/approvals", "k-1", body.clone()).await;
        // The replica dies (SIGKILL: no code of it runs again). Postgres notices the dead
        // client when it next talks to it; terminating the backend stands for that moment.
        replica.child.kill().unwrap();
        replica.child.wait().unwrap();
        let u = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = PgConnection::establish(&u).unwrap();
            diesel::sql_query(format!("SELECT pg_terminate_backend({pid}, 5000)"))
                .execute(&mut conn)
                .unwrap();
        })
        .await
        .unwrap();
        second
    };
    let (first, second) = tokio::join!(on_replica, meanwhile);
    second.assert_problem(409, "idempotency_key_in_use");
    assert!(first.is_err(), "the killed replica answered: {first:?}");
    release.send(()).unwrap();
    holder.await.unwrap();
    // The retry runs at once: nothing of the dead request holds the key.
    let retry = post_with_key(&app, "/v1/approvals", "k-1", body.clone()).await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), None);
    assert_eq!(count_of(&app.get("/v1/approvals").await), 1);
}

// ---------------------------------------------------------------------------------------
// Torn reads: a decision committed between a read's statements must not show.

/// Answers `GET path` while a decision by u-1 on `approval` commits in the middle of the read:
/// a transaction locks `approval_tasks`, the read runs until it waits for that lock, then the
/// transaction records the decision and commits, and the read goes on.
async fn read_across_a_decision(app: &TestApp, approval: &str, path: &str) -> Answer {
    let url = url_for(&app.db_name);
    let id = uuid::Uuid::parse_str(approval).unwrap();
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let u = url.clone();
    let decider = tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&u).unwrap();
        conn.transaction::<_, signoff::error::AppError, _>(|c| {
            diesel::sql_query("LOCK TABLE approval_tasks IN ACCESS EXCLUSIVE MODE").execute(c)?;
            locked_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            let input = DecisionInput::parse(&json!({"approver_id": "u-1", "decision": "approve"}))
                .unwrap();
            let ctx = Ctx {
                now: chrono::Utc::now(),
                public_url: "http://signoff.test".into(),
            };
            decide(c, TENANT, id, &input, &ctx)?;
            Ok(())
        })
        .unwrap();
    });
    locked_rx.await.unwrap();
    let waiter = async {
        lock_waiter(&url, "the read to reach the tasks").await;
        go_tx.send(()).unwrap();
    };
    let (answer, ()) = tokio::join!(app.get(path), waiter);
    decider.await.unwrap();
    answer
}

/// Every task's state in an approval view.
fn task_states(view: &Value) -> Vec<String> {
    view["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["tasks"].as_array().unwrap().iter())
        .map(|t| t["state"].as_str().unwrap().to_string())
        .collect()
}

/// The state before the decision, whole: pending, and no task answered.
#[track_caller]
fn assert_before_the_decision(view: &Value) {
    assert_eq!(view["state"], "pending", "{view}");
    assert_eq!(task_states(view), ["pending", "pending"], "{view}");
}

async fn two_approvers(app: &TestApp) -> String {
    app.principal("u-1", json!({})).await;
    app.principal("u-2", json!({})).await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1"}, "approvers": ["u-1", "u-2"],
                   "require": {"type": "count", "count": 1}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_approval_read_across_a_decision_is_one_state() {
    let app = spawn_app().await;
    let id = two_approvers(&app).await;
    let seen = read_across_a_decision(&app, &id, &format!("/v1/approvals/{id}")).await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_before_the_decision(&seen.body);
    assert_eq!(
        app.get(&format!("/v1/approvals/{id}")).await.body["state"],
        "approved"
    );
}

/// The state before the decision or the state after it, whole: a list page is one statement,
/// which takes its snapshot once it holds its locks, so it may show either, never a mix.
#[track_caller]
fn assert_one_state(view: &Value) {
    if view["state"] == "pending" {
        assert_before_the_decision(view);
    } else {
        assert_eq!(view["state"], "approved", "{view}");
        assert_eq!(task_states(view), ["approved", "superseded"], "{view}");
    }
}

#[tokio::test]
async fn a_list_read_across_a_decision_is_one_state() {
    let app = spawn_app().await;
    let id = two_approvers(&app).await;
    let seen = read_across_a_decision(&app, &id, "/v1/approvals").await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_one_state(&seen.body["items"][0]);
}

#[tokio::test]
async fn an_inbox_read_across_a_decision_is_one_state() {
    let app = spawn_app().await;
    let id = two_approvers(&app).await;
    // The page is one statement: the approval waiting for u-1 as it was before the decision,
    // or nothing once it no longer waits; never the approval as the decision left it.
    let seen = read_across_a_decision(&app, &id, "/v1/principals/u-1/pending-approvals").await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    if count_of(&seen) > 0 {
        assert_eq!(count_of(&seen), 1, "{}", seen.text);
        assert_before_the_decision(&seen.body["items"][0]);
    }
}

/// u-1's page token from the approval.requested event.
async fn page_token(app: &TestApp, id: &str) -> String {
    let events = app.get(&format!("/v1/approvals/{id}/events")).await;
    let requested = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "approval.requested")
        .unwrap()
        .clone();
    let mine = requested["data"]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["principal"]["id"] == "u-1")
        .unwrap()
        .clone();
    let url = mine["page_url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn a_link_read_across_a_decision_is_one_state() {
    let app = spawn_app().await;
    let id = two_approvers(&app).await;
    let token = page_token(&app, &id).await;
    // Torn, the approval (still pending) and u-1's task (answered) say "superseded".
    let seen = read_across_a_decision(&app, &id, &format!("/v1/links/{token}")).await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_before_the_decision(&seen.body["approval"]);
    app.get(&format!("/v1/links/{token}"))
        .await
        .assert_problem(410, "link_closed");
}

#[tokio::test]
async fn the_hosted_page_read_across_a_decision_is_one_state() {
    let app = spawn_app().await;
    let id = two_approvers(&app).await;
    let token = page_token(&app, &id).await;
    let seen = read_across_a_decision(&app, &id, &format!("/a/{token}")).await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert!(seen.text.contains("<form"), "{}", seen.text);
}

// ---------------------------------------------------------------------------------------
// Tokens and ids.

fn with_header(claims: &Value, header: Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let head = b64.encode(header.to_string());
    let body = b64.encode(claims.to_string());
    let signing_input = format!("{head}.{body}");
    // Sign the exact header bytes we chose, as jsonwebtoken would.
    let sig = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{signing_input}.{sig}")
}

#[tokio::test]
async fn a_token_with_a_crit_header_is_refused() {
    let app = spawn_app().await;
    let c = claims(TENANT, ALL_SCOPES);
    let plain = with_header(&c, json!({"alg": "HS256", "typ": "JWT"}));
    let a = app
        .call_as(&plain, Method::GET, "/v1/processes", None, &[])
        .await;
    assert_eq!(a.status, 200, "the hand-made token is valid: {}", a.text);
    for crit in [json!(["exp"]), json!(["b64"]), json!([])] {
        let t = with_header(
            &c,
            json!({"alg": "HS256", "typ": "JWT", "crit": crit, "exp": 1, "b64": true}),
        );
        let a = app
            .call_as(&t, Method::GET, "/v1/processes", None, &[])
            .await;
        a.assert_problem(401, "unauthorized");
        assert!(
            a.body["detail"].as_str().unwrap().contains("crit"),
            "{}",
            a.text
        );
    }
}

#[tokio::test]
async fn scopes_are_split_on_ascii_spaces_only() {
    let app = spawn_app().await;
    for sep in ["\u{a0}", "\u{3000}", "\t", "\u{2003}"] {
        let t = token(TENANT, &format!("processes:read{sep}processes:write"));
        let a = app
            .call_as(&t, Method::GET, "/v1/processes", None, &[])
            .await;
        a.assert_problem(403, "insufficient_scope");
        let a = app
            .call_as(
                &t,
                Method::POST,
                "/v1/processes",
                Some(simple_process("P")),
                &[],
            )
            .await;
        a.assert_problem(403, "insufficient_scope");
    }
    let t = token(TENANT, "processes:read  processes:write");
    let a = app
        .call_as(&t, Method::GET, "/v1/processes", None, &[])
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn a_tenant_or_sub_with_hidden_characters_is_refused() {
    let app = spawn_app().await;
    for hidden in [
        "\u{200b}", "\u{200d}", "\u{feff}", "\u{202e}", "\u{2067}", "\u{200f}",
    ] {
        let t = token(&format!("{TENANT}{hidden}"), ALL_SCOPES);
        let a = app
            .call_as(&t, Method::GET, "/v1/processes", None, &[])
            .await;
        a.assert_problem(401, "unauthorized");
        let mut c = claims(TENANT, ALL_SCOPES);
        c["sub"] = json!(format!("client{hidden}"));
        let t = sign_hs256(&c, SECRET);
        let a = app
            .call_as(&t, Method::GET, "/v1/processes", None, &[])
            .await;
        a.assert_problem(401, "unauthorized");
    }
}

#[tokio::test]
async fn ids_with_hidden_characters_are_422_in_paths_and_bodies() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    // ZWSP, RLO, LRI, BOM, DEL: percent-encoded as a client sends them.
    for enc in ["%E2%80%8B", "%E2%80%AE", "%E2%81%A6", "%EF%BB%BF", "%7F"] {
        for (method, path) in [
            (Method::GET, format!("/v1/principals/u-1{enc}")),
            (Method::PUT, format!("/v1/principals/u-1{enc}")),
            (
                Method::GET,
                format!("/v1/principals/u{enc}-1/pending-approvals"),
            ),
            (Method::GET, format!("/v1/principals/u-1{enc}/delegation")),
            (Method::DELETE, format!("/v1/tickets/T-1{enc}")),
            (Method::GET, format!("/v1/calendars/cal{enc}")),
        ] {
            let body =
                (method == Method::PUT).then(|| json!({"kind": "user", "display_name": "Twin"}));
            let a = app.call(method.clone(), &path, body).await;
            a.assert_problem(422, "validation_failed");
            assert_eq!(a.error_fields(), ["path"], "{method} {path}");
        }
    }
    for hidden in ["\u{200b}", "\u{202e}", "\u{2066}", "\u{feff}"] {
        let a = app
            .post(
                "/v1/approvals",
                json!({"ticket": {"id": format!("T-1{hidden}")}, "approvers": ["u-1"]}),
            )
            .await;
        a.assert_problem(422, "validation_failed");
        let a = app
            .post(
                "/v1/approvals",
                json!({"ticket": {"id": "T-2"}, "approvers": [format!("u-1{hidden}")]}),
            )
            .await;
        a.assert_problem(422, "validation_failed");
        let a = app
            .put(
                "/v1/principals/u-2",
                json!({"kind": "user", "display_name": "B", "manager_id": format!("u-1{hidden}")}),
            )
            .await;
        a.assert_problem(422, "validation_failed");
    }
    // Letters of any script are ids.
    let a = app.principal("Zoë-東京", json!({})).await;
    assert!(a.status.is_success());
}

fn token_living(iat: Option<i64>, exp: i64) -> String {
    let mut c = claims(TENANT, ALL_SCOPES);
    c["exp"] = json!(exp);
    match iat {
        Some(iat) => c["iat"] = json!(iat),
        None => {
            c.as_object_mut().unwrap().remove("iat");
        }
    }
    sign_hs256(&c, SECRET)
}

#[tokio::test]
async fn tokens_living_longer_than_the_maximum_lifetime_are_refused() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let day = 86_400;
    let call = |t: String| {
        let app = &app;
        async move {
            app.call_as(&t, Method::GET, "/v1/processes", None, &[])
                .await
        }
    };
    for (iat, exp) in [
        (Some(now), 253_402_300_799), // 9999-12-31
        (Some(now), now + day + 3_600),
        (Some(now - 3_600), now + day),
        (None, now + 2 * day),
        // A future `iat` cannot stretch the window.
        (Some(now + 5 * day), now + 6 * day),
    ] {
        let a = call(token_living(iat, exp)).await;
        a.assert_problem(401, "unauthorized");
        assert!(
            a.body["detail"]
                .as_str()
                .unwrap()
                .contains("SIGNOFF_JWT_MAX_LIFETIME"),
            "{}",
            a.text
        );
    }
    for (iat, exp) in [(Some(now), now + day), (None, now + day - 60)] {
        let a = call(token_living(iat, exp)).await;
        assert_eq!(a.status, 200, "{iat:?} {exp}: {}", a.text);
    }
}

#[tokio::test]
async fn the_maximum_lifetime_is_configurable() {
    let app = spawn_app_with(&[("SIGNOFF_JWT_MAX_LIFETIME", "PT1H")]).await;
    let now = chrono::Utc::now().timestamp();
    let t = token_living(Some(now), now + 7_200);
    app.call_as(&t, Method::GET, "/v1/processes", None, &[])
        .await
        .assert_problem(401, "unauthorized");
    let t = token_living(Some(now), now + 3_000);
    let a = app
        .call_as(&t, Method::GET, "/v1/processes", None, &[])
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

// ---------------------------------------------------------------------------------------
// Read lanes: reads run a few at a time and the rest wait their turn; writes do not wait.

/// The value of a gauge in `/metrics`.
async fn gauge(app: &TestApp, name: &str) -> i64 {
    let m = app.get("/metrics").await;
    m.text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {}", m.text))
}

#[tokio::test]
async fn a_read_waits_for_a_free_read_lane_while_writes_go_on() {
    let app = spawn_app_with(&[
        ("SIGNOFF_DB_READ_CONCURRENCY", "1"),
        ("SIGNOFF_DB_TIMEOUT", "PT30S"),
    ])
    .await;
    let url = url_for(&app.db_name);
    app.post("/v1/processes", simple_process("Laptops")).await;
    assert_eq!(gauge(&app, "signoff_db_read_lanes").await, 1);
    // The one lane is held by a list that waits inside Postgres for the approvals table.
    let (locked, release, holder) = hold_lock(url.clone(), "approvals", "ACCESS EXCLUSIVE");
    locked.await.unwrap();
    let second_done = std::sync::atomic::AtomicBool::new(false);
    let (start_second, second_may_start) = tokio::sync::oneshot::channel::<()>();
    let first = app.get("/v1/approvals");
    let second = async {
        second_may_start.await.unwrap();
        // The processes table is not locked: this read waits for the lane, nothing else.
        let answer = app.get("/v1/processes").await;
        second_done.store(true, std::sync::atomic::Ordering::SeqCst);
        answer
    };
    let driver = async {
        lock_waiter(&url, "the list to wait for the approvals table").await;
        start_second.send(()).unwrap();
        eventually(
            "the second read to wait for a lane",
            Duration::from_secs(10),
            || async { (gauge(&app, "signoff_db_reads_waiting").await == 1).then_some(()) },
        )
        .await;
        // A write is not a read: it goes through while both reads wait.
        let written = app.principal("u-lane", json!({})).await;
        assert!(written.status.is_success(), "{}", written.text);
        assert!(!second_done.load(std::sync::atomic::Ordering::SeqCst));
        release.send(()).unwrap();
    };
    let (first, second, ()) = tokio::join!(first, second, driver);
    holder.await.unwrap();
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(count_of(&second), 1);
    assert_eq!(gauge(&app, "signoff_db_reads_waiting").await, 0);
}

/// The read pool's sessions: read-only, generic plans from the first call, no JIT (a generic
/// plan does not know its `LIMIT`: at a million approvals Postgres costed a page of 50 as a
/// tenth of the table and spent 110 ms compiling each). The write pool's are Postgres's own.
#[tokio::test]
async fn reads_run_in_read_only_sessions_that_plan_generically_and_writes_do_not() {
    let db = signoff::db::Db::new(&url_for(&fresh_database()), 2, 1, Duration::from_secs(5));
    #[derive(diesel::QueryableByName)]
    struct Session {
        #[diesel(sql_type = diesel::sql_types::Text)]
        plans: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        read_only: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        jit: String,
    }
    let session = |c: &mut PgConnection| {
        let s: Session = diesel::sql_query(
            "SELECT current_setting('plan_cache_mode') AS plans,
                    current_setting('default_transaction_read_only') AS read_only,
                    current_setting('jit') AS jit",
        )
        .get_result(c)?;
        Ok((s.plans, s.read_only, s.jit))
    };
    let write = |c: &mut PgConnection| {
        Ok(diesel::sql_query(
            "INSERT INTO principals (tenant_id, id, kind, display_name, created_at, updated_at)
             VALUES ('acme', 'p-1', 'technician', 'P', now(), now())",
        )
        .execute(c)?)
    };
    assert_eq!(
        db.query(session).await.unwrap(),
        ("force_generic_plan".into(), "on".into(), "off".into())
    );
    assert_eq!(
        db.read(session).await.unwrap(),
        ("force_generic_plan".into(), "on".into(), "off".into())
    );
    let refused = db.query(write).await.unwrap_err();
    assert!(refused.to_string().contains("read-only"), "{refused}");
    assert_eq!(db.run(session).await.unwrap().0, "auto");
    assert_eq!(db.tx(write).await.unwrap(), 1);
}
