//! Host actions end to end: a real receiver plays the host's API; the worker runs by hand on a
//! manual clock. What the host is sent (method, path, headers, body), in which order, what the
//! log keeps, and what is never shown (secret values).

use diesel::RunQueryDsl;
use reqwest::Method;
use serde_json::{Value, json};
use signoff::clock::Clock;

use crate::helpers::*;
use crate::webhooks::{Received, Receiver};

/// base64 of 32 bytes: the key that seals secrets at rest.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const SECRET: &str = "rt-s3cr3t-token-value";

const BY_HAND: &[(&str, &str)] = &[
    ("SIGNOFF_WORKER", "false"),
    ("SIGNOFF_SECRET_KEY", KEY),
    ("SIGNOFF_WEBHOOK_RETRY_SCHEDULE", "PT0S,PT10S,PT10S,PT10S"),
    ("SIGNOFF_WEBHOOK_TIMEOUT", "PT2S"),
];

async fn app() -> TestApp {
    spawn_app_with_clock(BY_HAND, Clock::manual(chrono::Utc::now())).await
}

/// The RT-style action: set the status, then comment with the badge line and the answers.
fn rt_action(base: &str) -> Value {
    json!({
        "name": "RT ticket",
        "events": ["approval.requested", "approval.approved", "approval.rejected"],
        "when": "event.data.ticket.status_to_set != null",
        "requests": [
            {"method": "PUT", "url": format!("{base}/REST/2.0/ticket/{{{{ ticket.id }}}}"),
             "headers": {"Authorization": "token {{ secrets.rt_token }}",
                         "Content-Type": "application/json"},
             "body": "{\"Status\": {{ ticket.status_to_set | tojson }}}"},
            {"method": "POST", "url": format!("{base}/REST/2.0/ticket/{{{{ ticket.id }}}}/comment"),
             "headers": {"Authorization": "token {{ secrets.rt_token }}",
                         "Content-Type": "text/plain"},
             "body": "{{ summary }}{% for d in decided %}\n{{ d.name }}: {{ d.decision }}{% if d.comment %} ({{ d.comment }}){% endif %}{% endfor %}"}
        ],
        "secrets": {"rt_token": SECRET}
    })
}

async fn create(app: &TestApp, body: Value) -> Value {
    let a = app.post("/v1/host-actions", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body
}

async fn ask(app: &TestApp, ticket: &str) -> String {
    app.principal("u-1", json!({})).await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": ticket, "title": "Laptop"}, "approvers": ["u-1"],
                   "on_started_status": "waiting for approval",
                   "on_approved_status": "approved", "on_rejected_status": "rejected"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

fn base(rx: &Receiver) -> String {
    rx.url.trim_end_matches("/hooks").to_string()
}

fn text(r: &Received) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

#[tokio::test]
async fn the_host_is_told_its_status_on_start_and_outcome_then_a_comment_naming_who_decided() {
    let app = app().await;
    let rx = Receiver::start().await;
    let action = create(&app, rt_action(&base(&rx))).await;
    assert_eq!(action["secret_names"], json!(["rt_token"]));
    assert!(!action.to_string().contains(SECRET), "{action}");

    let id = ask(&app, "T-1").await;
    app.run_worker_once().await;
    let got = rx.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str()),
        ("PUT", "/REST/2.0/ticket/T-1")
    );
    assert_eq!(got[0].json(), json!({"Status": "waiting for approval"}));
    assert_eq!(
        got[0].headers["authorization"],
        format!("token {SECRET}").as_str()
    );
    assert_eq!(got[0].headers["content-type"], "application/json");
    assert_eq!(
        (got[1].method.as_str(), got[1].path.as_str()),
        ("POST", "/REST/2.0/ticket/T-1/comment")
    );
    assert_eq!(text(&got[1]), "Awaiting approval from Person u-1");

    let d = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-1", "decision": "approve", "comment": "fine by me"}),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    app.run_worker_once().await;
    let got = rx.got();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[2].json(), json!({"Status": "approved"}));
    assert_eq!(
        text(&got[3]),
        "Approved by Person u-1\nPerson u-1: approved (fine by me)"
    );

    // The log shows each request as sent, without headers, bodies or the secret.
    let log = app
        .get(&format!(
            "/v1/host-actions/{}/deliveries",
            action["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(log.status, 200, "{}", log.text);
    // The decision's own event (`decision_recorded`) is not among the action's events.
    let states: Vec<(&str, &str)> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["event_type"].as_str().unwrap(),
                d["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("approval.approved", "succeeded"),
            ("approval.requested", "succeeded")
        ]
    );
    assert_eq!(
        log.body["items"][0]["attempts"][0]["url"],
        format!("{}/REST/2.0/ticket/T-1", base(&rx))
    );
    assert!(!log.text.contains(SECRET), "{}", log.text);
}

#[tokio::test]
async fn a_failing_host_is_retried_on_the_same_request_and_the_outcome_waits_for_the_start() {
    let app = app().await;
    let rx = Receiver::start().await;
    create(&app, rt_action(&base(&rx))).await;
    // The host is down for the first status and comes back.
    rx.script(&[503, 503]);
    let id = ask(&app, "T-2").await;
    app.run_worker_once().await;
    let d = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-1", "decision": "reject", "comment": "too dear"}),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    app.run_worker_once().await;
    // One attempt so far: the rejection waits behind the start's failed status.
    assert_eq!(rx.got().len(), 1);
    app.clock.advance(chrono::Duration::seconds(12));
    app.run_worker_once().await;
    assert_eq!(rx.got().len(), 2, "the same request again, once");
    app.clock.advance(chrono::Duration::seconds(12));
    app.run_worker_once().await;
    let got = rx.got();
    let sent: Vec<String> = got
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, text(r)))
        .collect();
    assert_eq!(
        sent,
        [
            "PUT /REST/2.0/ticket/T-2 {\"Status\": \"waiting for approval\"}",
            "PUT /REST/2.0/ticket/T-2 {\"Status\": \"waiting for approval\"}",
            "PUT /REST/2.0/ticket/T-2 {\"Status\": \"waiting for approval\"}",
            "POST /REST/2.0/ticket/T-2/comment Awaiting approval from Person u-1",
            "PUT /REST/2.0/ticket/T-2 {\"Status\": \"rejected\"}",
            "POST /REST/2.0/ticket/T-2/comment Rejected by Person u-1\nPerson u-1: rejected (too dear)",
        ]
    );
}

#[tokio::test]
async fn event_data_cannot_reshape_the_url_and_when_skips_what_it_excludes() {
    let app = app().await;
    let rx = Receiver::start().await;
    let mut a = rt_action(&base(&rx));
    a["events"] = json!(["*"]);
    a["requests"] = json!([a["requests"][0].clone()]);
    create(&app, a).await;
    app.principal("u-1", json!({})).await;
    let r = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "..?admin=1#f&y%2F", "title": "Laptop"}, "approvers": ["u-1"],
                   "on_started_status": "waiting"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ran = app.run_worker_once().await;
    let got = rx.got();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "/REST/2.0/ticket/..%3Fadmin%3D1%23f%26y%252F");
    // `decision_recorded` or `stage_advanced` would carry no status: `when` skips them. Here only
    // the start happened.
    assert!(ran.actions >= 1);
}

#[tokio::test]
async fn an_action_that_could_leak_or_not_render_is_refused_naming_each_field() {
    let app = app().await;
    let bad = json!({
        "name": "bad", "events": ["approval.nope"], "when": "event.data.(",
        "requests": [
            {"method": "PUT", "url": "https://{{ ticket.host }}/x", "body": "{% if %}"},
            {"method": "POST", "url": "https://rt.example.com/t/{{ secrets.rt_token }}"},
            {"method": "POST", "url": "https://rt.example.com/t",
             "headers": {"Authorization": "token {{ secrets.missing }}", "Host": "x"}}
        ],
        "secrets": {"rt_token": "x", "bad name": "y"}
    });
    let a = app.post("/v1/host-actions", bad).await;
    a.assert_problem(422, "validation_failed");
    let fields = a.error_fields();
    for f in [
        "events[0]",
        "when",
        "requests[0].url",
        "requests[0].body",
        "requests[1].url",
        "requests[2]",
        "requests[2].headers.Host",
        "secrets.bad name",
    ] {
        assert!(
            fields.contains(&f.to_string()),
            "{f} not in {fields:?}: {}",
            a.text
        );
    }
    // Without a key to seal them, secrets are not stored at all.
    let keyless = spawn_app_with(&[]).await;
    let a = keyless
        .post("/v1/host-actions", rt_action("https://rt.example.com"))
        .await;
    a.assert_problem(422, "validation_failed");
    assert!(
        a.error_fields().contains(&"secrets".to_string()),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_write_only_and_merge_on_replace() {
    let app = app().await;
    let created = create(&app, rt_action("https://rt.example.com")).await;
    let id = created["id"].as_str().unwrap();
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Text)]
        secrets: String,
    }
    let stored: Vec<Stored> =
        diesel::sql_query("SELECT secrets::text AS secrets FROM host_actions")
            .load(&mut app.db())
            .unwrap();
    assert!(
        stored[0].secrets.contains("sealed:v1:"),
        "{}",
        stored[0].secrets
    );
    assert!(!stored[0].secrets.contains(SECRET));

    let got = app.get(&format!("/v1/host-actions/{id}")).await;
    assert_eq!(got.status, 200);
    assert!(!got.text.contains(SECRET));
    let etag = got.header("etag").unwrap().to_string();

    // A replace that adds a secret keeps the one it does not name; null removes one.
    let mut body = rt_action("https://rt.example.com");
    body["secrets"] = json!({"other": "v"});
    let no_match = app
        .call(
            Method::PUT,
            &format!("/v1/host-actions/{id}"),
            Some(body.clone()),
        )
        .await;
    no_match.assert_problem(428, "if_match_required");
    let put = app
        .call_as(
            &app.token.clone(),
            Method::PUT,
            &format!("/v1/host-actions/{id}"),
            Some(body),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["secret_names"], json!(["other", "rt_token"]));
    assert_eq!(put.body["version"], 2);
    let mut body = rt_action("https://rt.example.com");
    body["secrets"] = json!({"rt_token": null});
    let put = app
        .call_as(
            &app.token.clone(),
            Method::PUT,
            &format!("/v1/host-actions/{id}"),
            Some(body),
            &[("if-match", "\"2\"")],
        )
        .await;
    // Its requests still use rt_token: removing it is refused.
    put.assert_problem(422, "validation_failed");

    let list = app.get("/v1/host-actions").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let del = app.delete(&format!("/v1/host-actions/{id}")).await;
    assert_eq!(del.status, 204);
    app.get(&format!("/v1/host-actions/{id}"))
        .await
        .assert_problem(404, "not_found");
}
