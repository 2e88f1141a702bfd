//! Regressions from a review: each test once showed a defect (self-approval through a
//! substitute, double answers, tokens in logs, ...) and guards its fix.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::webhooks::{Receiver, by_hand, endpoint};

async fn created(app: &TestApp, body: Value) -> String {
    let a = app.post("/v1/approvals", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

async fn new_process(app: &TestApp, body: Value) -> String {
    let p = app.post("/v1/processes", body).await;
    assert_eq!(p.status, 201, "{}", p.text);
    p.body["id"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------
// Webhooks: disabling an endpoint through the API does not stop what is already queued.

#[tokio::test]
async fn disabling_an_endpoint_stops_its_queued_deliveries_and_retries() {
    let app = by_hand(&[]).await;
    app.principal("u-1", json!({})).await;
    let rx = Receiver::start().await;
    // The receiver is failing: every attempt is answered 500 and retried 5 s later.
    rx.script(&[500; 10]);
    let (ep, _) = endpoint(&app, &rx.url, json!(["approval.requested"])).await;
    created(&app, json!({"ticket": {"id": "T-1"}, "approvers": ["u-1"]})).await;
    assert_eq!(
        app.run_worker_once().await.deliveries,
        1,
        "the first attempt"
    );

    // The operator switches the endpoint off.
    let t = app.token.clone();
    let off = app
        .call_as(
            &t,
            Method::PATCH,
            &format!("/v1/webhook-endpoints/{ep}"),
            Some(json!({"enabled": false})),
            &[],
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(off.body["enabled"], false);
    let before = rx.got().len();
    // Past every retry of the schedule.
    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(app.run_worker_once().await.deliveries, 0);
    assert_eq!(
        rx.got().len(),
        before,
        "a disabled endpoint keeps receiving its queued retries"
    );
}

// ---------------------------------------------------------------------------------------
// Self-approval: the requester is removed from the groups, but may still approve their own
// request by answering "on behalf of" an approver, as that approver's manager (substitute).

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request_as_a_substitute() {
    let app = spawn_app().await;
    app.principal("boss", json!({})).await;
    app.principal("u-1", json!({"manager_id": "boss"})).await;
    let p = new_process(
        &app,
        json!({"name": "Purchases", "on_approved_status": "approved",
               "on_rejected_status": "rejected",
               "stages": [{"name": "Team", "groups": [
                   {"name": "team", "source": {"type": "principals", "ids": ["u-1", "boss"]},
                    "require": {"type": "count", "count": 1}}],
                 "timeout": {"after": "PT48H", "outcome": "reject"},
                 "substitutes": {"notify_at_percent": 50, "source": {"type": "approver_manager"}}}]}),
    )
    .await;
    // boss asks for approval on their own ticket: they are (rightly) not asked.
    let id = created(
        &app,
        json!({"ticket": {"id": "T-1", "requester_id": "boss"}, "process_id": p}),
    )
    .await;
    let v = app.get(&format!("/v1/approvals/{id}")).await.body;
    let asked: Vec<&str> = v["stages"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["approver_id"].as_str().unwrap())
        .collect();
    assert_eq!(asked, ["u-1"]);
    // ...yet they approve it themselves, as u-1's manager.
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "boss", "on_behalf_of": "u-1", "decision": "approve"}),
        )
        .await;
    assert_eq!(
        a.status, 403,
        "the requester approved their own request: {}",
        a.text
    );
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request_as_a_delegate() {
    let app = spawn_app().await;
    app.principal("req", json!({})).await;
    app.principal("u-1", json!({})).await;
    let id = created(
        &app,
        json!({"ticket": {"id": "T-1", "requester_id": "req"}, "approvers": ["u-1"]}),
    )
    .await;
    // u-1 goes on leave and names the requester as delegate.
    let now = chrono::Utc::now();
    let d = app
        .put(
            "/v1/principals/u-1/delegation",
            json!({"delegate_id": "req", "starts_at": now - chrono::Duration::minutes(1),
                   "ends_at": now + chrono::Duration::days(1)}),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "req", "on_behalf_of": "u-1", "decision": "approve"}),
        )
        .await;
    assert_eq!(
        a.status, 403,
        "the requester approved their own request: {}",
        a.text
    );
}

#[tokio::test]
async fn one_person_cannot_give_two_of_the_approvals_a_group_needs() {
    // "count 2 of [u-1, u-2]" is a four-eyes rule; u-2, also the stage's substitute, answers
    // for themselves and then for u-1, and the group is approved by one person.
    let app = spawn_app().await;
    for p in ["u-1", "u-2"] {
        app.principal(p, json!({})).await;
    }
    let p = new_process(
        &app,
        json!({"name": "Four eyes", "stages": [{"name": "Both", "groups": [
                   {"name": "both", "source": {"type": "principals", "ids": ["u-1", "u-2"]},
                    "require": {"type": "count", "count": 2}}],
                 "timeout": {"after": "PT48H", "outcome": "reject"},
                 "substitutes": {"notify_at_percent": 50,
                                 "source": {"type": "principals", "ids": ["u-2"]}}}]}),
    )
    .await;
    let id = created(&app, json!({"ticket": {"id": "T-1"}, "process_id": p})).await;
    let mine = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-2", "decision": "approve"}),
        )
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    let again = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-2", "on_behalf_of": "u-1", "decision": "approve"}),
        )
        .await;
    assert_ne!(
        again.body["state"], "approved",
        "one person gave both approvals of a count-2 group: {}",
        again.text
    );
}

// ---------------------------------------------------------------------------------------
// Bad input must be a 4xx: Postgres refuses NUL in text and jsonb, which surfaces as 500.

#[tokio::test]
async fn a_nul_character_in_a_comment_is_a_4xx_not_a_500() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let id = created(&app, json!({"ticket": {"id": "T-1"}, "approvers": ["u-1"]})).await;
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-1", "decision": "approve", "comment": "ok\u{0}"}),
        )
        .await;
    assert!(a.status.is_client_error(), "{} {}", a.status, a.text);
}

#[tokio::test]
async fn a_nul_character_in_a_ticket_title_or_list_filter_is_a_4xx_not_a_500() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1", "title": "Laptop\u{0}"}, "approvers": ["u-1"]}),
        )
        .await;
    assert!(a.status.is_client_error(), "{} {}", a.status, a.text);
    let l = app.get("/v1/approvals?ticket_id=T%00").await;
    assert!(l.status.is_client_error(), "{} {}", l.status, l.text);
}

// ---------------------------------------------------------------------------------------
// JWT validation.

#[tokio::test]
async fn a_token_that_is_not_valid_yet_is_401() {
    let app = spawn_app().await;
    let mut c = claims(TENANT, ALL_SCOPES);
    c["nbf"] = json!(chrono::Utc::now().timestamp() + 3600);
    let a = app
        .call_as(
            &sign_hs256(&c, SECRET),
            Method::GET,
            "/v1/processes",
            None,
            &[],
        )
        .await;
    assert_eq!(
        a.status, 401,
        "a token valid only in an hour was accepted: {}",
        a.text
    );
}

#[tokio::test]
async fn an_audience_list_that_names_us_is_accepted() {
    // RFC 7519 §4.1.3: `aud` may be an array; many identity providers always send one.
    let app = spawn_app().await;
    let mut c = claims(TENANT, ALL_SCOPES);
    c["aud"] = json!([AUDIENCE, "another-api"]);
    let a = app
        .call_as(
            &sign_hs256(&c, SECRET),
            Method::GET,
            "/v1/processes",
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

// ---------------------------------------------------------------------------------------
// Delegation is applied to every stage when the approval is requested, not when each stage
// starts: a later stage goes to the delegate even after the delegation has ended, and the
// approver, back at work, is refused.

#[tokio::test]
async fn a_later_stage_goes_to_the_approver_once_their_delegation_has_ended() {
    let app = spawn_app_with_clock(
        &[("SIGNOFF_WORKER", "false")],
        signoff::clock::Clock::manual(chrono::Utc::now()),
    )
    .await;
    for p in ["u-1", "u-2", "d"] {
        app.principal(p, json!({})).await;
    }
    let now = app.clock.now();
    let d = app
        .put(
            "/v1/principals/u-2/delegation",
            json!({"delegate_id": "d", "starts_at": now - chrono::Duration::minutes(1),
                   "ends_at": now + chrono::Duration::seconds(2)}),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let p = new_process(
        &app,
        json!({"name": "Two steps", "stages": [
            {"name": "First", "groups": [{"name": "first", "source": {"type": "principals", "ids": ["u-1"]},
                                          "require": {"type": "count", "count": 1}}]},
            {"name": "Second", "groups": [{"name": "second", "source": {"type": "principals", "ids": ["u-2"]},
                                           "require": {"type": "count", "count": 1}}]}]}),
    )
    .await;
    let id = created(&app, json!({"ticket": {"id": "T-1"}, "process_id": p})).await;
    // The delegation ends while the first stage is still running.
    app.clock.advance(chrono::Duration::seconds(3));
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-1", "decision": "approve"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["current_stage"], 1);
    let asked: Vec<&str> = a.body["stages"][1]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["approver_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        asked,
        ["u-2"],
        "the second stage started after the delegation ended"
    );
}

// ---------------------------------------------------------------------------------------
// Link tokens are the only credential of a link, stored only as a hash; but every request
// log line carries the request path, token included, so anyone who can read the logs can
// approve or reject in the approver's name.

#[tokio::test]
async fn link_tokens_are_not_written_to_the_logs() {
    use std::process::{Command, Stdio};
    let db = fresh_database();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::env::temp_dir().join(format!("signoff-review-{db}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_signoff"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", url_for(&db))
        .env("SIGNOFF_BIND", format!("127.0.0.1:{port}"))
        .env("SIGNOFF_PUBLIC_URL", "http://signoff.test")
        .env("SIGNOFF_JWT_HS256_SECRET", SECRET)
        .env("SIGNOFF_JWT_ISSUER", ISSUER)
        .env("SIGNOFF_JWT_AUDIENCE", AUDIENCE)
        .env("SIGNOFF_MIGRATE_ON_START", "false")
        .env("SIGNOFF_WORKER", "false")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("signoff starts");
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        db_name: db,
        token: token(TENANT, ALL_SCOPES),
        worker: None,
        clock: signoff::clock::Clock::system(),
    };
    eventually(
        "signoff serve to start",
        Duration::from_secs(15),
        || async {
            let up = app
                .client
                .get(format!("{}/livez", app.address))
                .send()
                .await;
            up.is_ok().then_some(())
        },
    )
    .await;
    app.principal("u-1", json!({})).await;
    let id = created(&app, json!({"ticket": {"id": "T-1"}, "approvers": ["u-1"]})).await;
    let events = app.get(&format!("/v1/approvals/{id}/events")).await;
    let page_url = events.body["items"][0]["data"]["recipients"][0]["page_url"]
        .as_str()
        .unwrap()
        .to_string();
    let token = page_url.rsplit('/').next().unwrap().to_string();
    let opened = app
        .client
        .get(format!("{}/v1/links/{token}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    // The child writes the access log line as it answers: wait until the file has it.
    eventually(
        "the link's access log line",
        Duration::from_secs(10),
        || async {
            let logs = std::fs::read_to_string(&log).unwrap_or_default();
            logs.lines().any(|l| l.contains("/v1/links/")).then_some(())
        },
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let logs = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(
        logs.contains("request"),
        "no access log was written: {logs}"
    );
    let leaked: Vec<&str> = logs.lines().filter(|l| l.contains(&token)).collect();
    assert!(
        leaked.is_empty(),
        "the link token is in the logs:\n{}",
        leaked.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Fan-out: a role of more than 8,191 members was a 500 on every request (a multi-row insert
// over Postgres's 65,535 bound parameters).

#[tokio::test]
async fn a_role_with_ten_thousand_members_can_be_asked() {
    use diesel::connection::SimpleConnection;
    let app = spawn_app().await;
    app.db()
        .batch_execute(
            "INSERT INTO principals (tenant_id, id, kind, display_name, locale, time_zone, roles)
             SELECT 'acme', 'm-' || n, 'user', 'Member ' || n, 'en', 'UTC', ARRAY['crowd']
             FROM generate_series(1, 10000) AS n",
        )
        .unwrap();
    let pid = new_process(
        &app,
        json!({"name": "Crowd", "stages": [{"name": "All", "groups": [
            {"name": "crowd", "source": {"type": "role", "role": "crowd"},
             "require": {"type": "count", "count": 1}}]}]}),
    )
    .await;
    let id = created(&app, json!({"ticket": {"id": "T-1"}, "process_id": pid})).await;
    let view = app.get(&format!("/v1/approvals/{id}")).await;
    assert_eq!(
        view.body["stages"][0]["tasks"].as_array().unwrap().len(),
        10_000
    );
    // waiting_for stays one readable line.
    let waiting = view.body["waiting_for"][0].as_str().unwrap();
    assert!(waiting.ends_with("and 9990 others"), "{waiting}");
    // No event is over 1 MiB: the recipients come in pages of approval.requested, each event's
    // view lists the first tasks of the big stage and counts the rest.
    use diesel::RunQueryDsl;
    let mut conn = app.db();
    let largest: i32 = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
        "(SELECT max(octet_length(payload::text)) FROM events)",
    ))
    .get_result(&mut conn)
    .unwrap();
    assert!(largest < 1 << 20, "an event of {largest} bytes");
    let events = app
        .get(&format!("/v1/approvals/{id}/events?limit=200"))
        .await;
    let pages: Vec<&Value> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "approval.requested")
        .collect();
    assert_eq!(pages.len(), 100);
    let mut people = std::collections::BTreeSet::new();
    for (i, e) in pages.iter().enumerate() {
        assert_eq!(e["data"]["recipients_page"]["page"], i + 1);
        assert_eq!(e["data"]["recipients_page"]["of"], 100);
        assert_eq!(e["data"]["recipients_page"]["total"], 10_000);
        assert_eq!(e["data"]["approval"]["stages"][0]["tasks_omitted"], 9_900);
        for r in e["data"]["recipients"].as_array().unwrap() {
            people.insert(r["principal"]["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(people.len(), 10_000, "every member is told exactly once");
    let d = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "m-9999", "decision": "approve"}),
        )
        .await;
    assert_eq!(
        d.body["state"],
        "approved",
        "{}",
        &d.text[..d.text.len().min(500)]
    );
}
