//! Time over HTTP: timeouts, reminders, substitutes, delegation, process expiry,
//! business-hours deadlines, and a timer that survives a restart. Timers run on a manual clock:
//! a test moves it past a deadline and runs the worker once by hand.

use reqwest::Method;
use serde_json::{Value, json};
use signoff::clock::Clock;
use signoff::worker::Ran;

use crate::helpers::*;

/// No worker in the background: timers fire when the test moves `clock` and calls
/// [`TestApp::run_worker_once`].
const BY_HAND: &[(&str, &str)] = &[("SIGNOFF_WORKER", "false")];

/// An app on a manual clock starting now, whose worker runs only when the test says so.
async fn app_by_hand() -> TestApp {
    spawn_app_with_clock(BY_HAND, Clock::manual(chrono::Utc::now())).await
}

/// Moves the app's clock on by `by`, then runs the worker once.
async fn after(app: &TestApp, by: chrono::Duration) -> Ran {
    app.clock.advance(by);
    app.run_worker_once().await
}

async fn process(app: &TestApp, name: &str, stages: Value) -> String {
    let p = app
        .post(
            "/v1/processes",
            json!({"name": name, "on_approved_status": "approved", "on_rejected_status": "rejected",
                   "stages": stages}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    p.body["id"].as_str().unwrap().to_string()
}

async fn request(app: &TestApp, process: &str, ticket: &str) -> String {
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": ticket, "requester_id": "req"}, "process_id": process}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

fn group(ids: &[&str]) -> Value {
    json!([{"name": format!("g-{}", ids.join("-")), "source": {"type": "principals", "ids": ids},
            "require": {"type": "count", "count": 1}}])
}

async fn view(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/approvals/{id}")).await.body
}

async fn event_types(app: &TestApp, id: &str) -> Vec<String> {
    app.get(&format!("/v1/approvals/{id}/events?limit=200"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

async fn events_of(app: &TestApp, id: &str, kind: &str) -> Vec<Value> {
    app.get(&format!("/v1/approvals/{id}/events?limit=200"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_stage_times_out_with_the_processes_default_outcome() {
    let app = app_by_hand().await;
    app.principal("u-1", json!({})).await;
    let p = process(
        &app,
        "Timed",
        json!([{"name": "Boss", "groups": group(&["u-1"]),
                "timeout": {"after": "PT1S", "outcome": "reject"}}]),
    )
    .await;
    let started = app.clock.now();
    let id = request(&app, &p, "T-1").await;
    let v = app.get(&format!("/v1/approvals/{id}")).await.body;
    let deadline: chrono::DateTime<chrono::Utc> = v["stages"][0]["deadline"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(deadline - started, chrono::Duration::seconds(1));
    assert_eq!(after(&app, chrono::Duration::minutes(1)).await.timers, 1);
    let v = view(&app, &id).await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["outcome"]["reason"], "timeout");
    assert_eq!(v["outcome"]["status_to_set"], "rejected");
    assert_eq!(v["stages"][0]["tasks"][0]["state"], "superseded");
    assert_eq!(
        event_types(&app, &id).await.last().unwrap(),
        "approval.rejected"
    );
}

#[tokio::test]
async fn an_approving_timeout_moves_on_to_the_next_stage() {
    let app = app_by_hand().await;
    app.principal("u-1", json!({})).await;
    app.principal("u-2", json!({})).await;
    let p = process(
        &app,
        "Two",
        json!([{"name": "First", "groups": group(&["u-1"]), "timeout": {"after": "PT1S", "outcome": "approve"}},
               {"name": "Second", "groups": group(&["u-2"])}]),
    )
    .await;
    let id = request(&app, &p, "T-1").await;
    after(&app, chrono::Duration::minutes(1)).await;
    let v = view(&app, &id).await;
    assert_eq!(v["current_stage"], 1, "{v}");
    assert_eq!(v["stages"][0]["state"], "approved");
    assert_eq!(v["stages"][1]["deadline"], Value::Null);
    let types = event_types(&app, &id).await;
    assert!(
        types.contains(&"approval.stage_advanced".to_string()),
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "approval.requested").count(),
        2
    );
}

#[tokio::test]
async fn a_stage_decided_before_its_deadline_ignores_the_timer() {
    let app = app_by_hand().await;
    app.principal("u-1", json!({})).await;
    let p = process(
        &app,
        "Quick",
        json!([{"name": "Boss", "groups": group(&["u-1"]), "timeout": {"after": "PT1S", "outcome": "reject"}}]),
    )
    .await;
    let id = request(&app, &p, "T-1").await;
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-1", "decision": "approve"}),
        )
        .await;
    assert_eq!(a.body["state"], "approved");
    after(&app, chrono::Duration::minutes(1)).await;
    let v = view(&app, &id).await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["reason"], "decisions");
}

#[tokio::test]
async fn reminders_repeat_every_interval_up_to_max_with_fresh_links() {
    let app = app_by_hand().await;
    app.principal("u-1", json!({})).await;
    let p = process(
        &app,
        "Nag",
        json!([{"name": "Boss", "groups": group(&["u-1"]), "reminders": {"every": "PT1H", "max": 2}}]),
    )
    .await;
    let id = request(&app, &p, "T-1").await;
    assert_eq!(after(&app, chrono::Duration::minutes(50)).await.timers, 0);
    for hour in 1..=4usize {
        after(&app, chrono::Duration::hours(1)).await;
        let sent = events_of(&app, &id, "approval.reminder").await.len();
        assert_eq!(sent, hour.min(2), "after {hour} h");
    }
    let reminders = events_of(&app, &id, "approval.reminder").await;
    assert_eq!(reminders.len(), 2, "max 2");
    let urls: Vec<&str> = reminders
        .iter()
        .map(|e| e["data"]["recipients"][0]["page_url"].as_str().unwrap())
        .collect();
    assert_ne!(urls[0], urls[1], "each reminder carries a fresh link");
    assert_eq!(
        reminders[0]["data"]["recipients"][0]["principal"]["id"],
        "u-1"
    );
}

#[tokio::test]
async fn reminders_at_percentages_of_the_timeout() {
    let app = app_by_hand().await;
    app.principal("u-1", json!({})).await;
    let p = process(
        &app,
        "Percent",
        json!([{"name": "Boss", "groups": group(&["u-1"]),
                "timeout": {"after": "PT4H", "outcome": "approve"}, "reminders": {"at_percent": [25, 50]}}]),
    )
    .await;
    let id = request(&app, &p, "T-1").await;
    // At 25 % (1 h) the first reminder, at 50 % (2 h) the second, at 4 h the timeout.
    let steps = [(61, 1, "pending"), (60, 2, "pending"), (120, 2, "approved")];
    for (minutes, reminders, state) in steps {
        after(&app, chrono::Duration::minutes(minutes)).await;
        assert_eq!(
            events_of(&app, &id, "approval.reminder").await.len(),
            reminders,
            "{minutes} min later"
        );
        assert_eq!(view(&app, &id).await["state"], state, "{minutes} min later");
    }
}

#[tokio::test]
async fn substitutes_are_escalated_to_and_answer_on_behalf_once() {
    let app = app_by_hand().await;
    app.principal("boss", json!({"display_name": "The Boss"}))
        .await;
    app.principal("u-1", json!({"manager_id": "boss"})).await;
    app.principal("u-2", json!({"manager_id": "boss"})).await;
    let p = process(
        &app,
        "Escalating",
        json!([{"name": "Team", "groups": [{"name": "team", "source": {"type": "principals", "ids": ["u-1", "u-2"]},
                                            "require": {"type": "all"}}],
                "timeout": {"after": "PT4H", "outcome": "reject"},
                "substitutes": {"notify_at_percent": 25, "source": {"type": "approver_manager"}}}]),
    )
    .await;
    let id = request(&app, &p, "T-1").await;
    // u-2 answers before the escalation: only u-1 is escalated.
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-2", "decision": "approve"}),
        )
        .await;
    assert_eq!(a.status, 200);
    // 25 % of 4 h: the substitutes are told after an hour.
    assert_eq!(after(&app, chrono::Duration::minutes(50)).await.timers, 0);
    assert_eq!(after(&app, chrono::Duration::minutes(20)).await.timers, 1);
    let escalated = events_of(&app, &id, "approval.escalated").await;
    assert_eq!(escalated.len(), 1, "one escalation");
    let r = escalated[0]["data"]["recipients"].as_array().unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["principal"]["id"], "boss");
    assert_eq!(r[0]["on_behalf_of"], "u-1");
    assert!(
        r[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("on behalf of Person u-1")
    );
    // The boss answers through the escalation link, for u-1.
    let token = r[0]["page_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let done = app
        .call_as(
            "",
            Method::POST,
            &format!("/v1/links/{token}"),
            Some(json!({"decision": "approve"})),
            &[],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let v = &done.body["approval"];
    assert_eq!(v["state"], "approved");
    let t = v["stages"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["approver_id"] == "u-1")
        .unwrap()
        .clone();
    assert_eq!(
        (t["decided_by"].clone(), t["on_behalf_of"].clone()),
        (json!("boss"), json!("u-1"))
    );
    assert_eq!(
        v["stages"][0]["groups"][0]["approved"], 2,
        "nothing counted twice"
    );
}

#[tokio::test]
async fn a_substitute_may_answer_before_being_notified_and_others_may_not() {
    let app = spawn_app().await;
    app.principal("boss", json!({})).await;
    app.principal("intruder", json!({})).await;
    app.principal("u-1", json!({"manager_id": "boss"})).await;
    let p = process(
        &app,
        "Subs",
        json!([{"name": "Team", "groups": group(&["u-1"]), "timeout": {"after": "PT1H", "outcome": "reject"},
                "substitutes": {"notify_at_percent": 80, "source": {"type": "approver_manager"}}}]),
    )
    .await;
    let id = request(&app, &p, "T-1").await;
    let path = format!("/v1/approvals/{id}/decisions");
    app.post(
        &path,
        json!({"approver_id": "intruder", "decision": "approve", "on_behalf_of": "u-1"}),
    )
    .await
    .assert_problem(403, "not_a_substitute");
    let a = app
        .post(&path, json!({"approver_id": "boss", "decision": "reject", "comment": "No", "on_behalf_of": "u-1"}))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["state"], "rejected");
    app.post(&path, json!({"approver_id": "u-1", "decision": "approve"}))
        .await
        .assert_problem(409, "approval_closed");
}

async fn delegate(app: &TestApp, from: &str, to: &str) {
    let now = chrono::Utc::now();
    let a = app
        .put(
            &format!("/v1/principals/{from}/delegation"),
            json!({"delegate_id": to, "starts_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
                   "ends_at": (now + chrono::Duration::hours(1)).to_rfc3339(), "note": "holiday"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["active"], true);
}

#[tokio::test]
async fn new_tasks_go_to_the_delegate_who_may_also_act_on_open_ones() {
    let app = spawn_app().await;
    for p in ["u-1", "u-2", "u-9"] {
        app.principal(p, json!({})).await;
    }
    // An approval opened before the delegation: u-9 may act for u-1.
    let before = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-0"}, "approvers": ["u-1"]}),
        )
        .await;
    let before_id = before.body["id"].as_str().unwrap().to_string();
    delegate(&app, "u-1", "u-9").await;
    assert_eq!(
        app.get("/v1/principals/u-1/delegation").await.body["delegate_id"],
        "u-9"
    );

    let a = app
        .post("/v1/approvals", json!({"ticket": {"id": "T-1"}, "approvers": ["u-1", "u-2"], "require": {"type": "all"}}))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let tasks = a.body["stages"][0]["tasks"].as_array().unwrap();
    let ids: Vec<&str> = tasks
        .iter()
        .map(|t| t["approver_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["u-2", "u-9"]);
    let t9 = tasks.iter().find(|t| t["approver_id"] == "u-9").unwrap();
    assert_eq!(t9["delegated_from"], "u-1");

    let a = app
        .post(
            &format!("/v1/approvals/{before_id}/decisions"),
            json!({"approver_id": "u-9", "decision": "approve", "on_behalf_of": "u-1"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["stages"][0]["tasks"][0]["decided_by"], "u-9");

    // Ending the delegation stops it.
    assert_eq!(
        app.delete("/v1/principals/u-1/delegation").await.status,
        204
    );
    app.get("/v1/principals/u-1/delegation")
        .await
        .assert_problem(404, "not_found");
    let c = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-2"}, "approvers": ["u-1"]}),
        )
        .await;
    assert_eq!(c.body["stages"][0]["tasks"][0]["approver_id"], "u-1");
}

#[tokio::test]
async fn delegation_within_one_group_never_merges_seats() {
    let app = spawn_app().await;
    for p in ["a", "b", "c"] {
        app.principal(p, json!({})).await;
    }
    delegate(&app, "a", "b").await;
    delegate(&app, "b", "a").await;
    delegate(&app, "c", "a").await;
    let r = app
        .post("/v1/approvals", json!({"ticket": {"id": "T-1"}, "approvers": ["a", "b", "c"], "require": {"type": "all"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut ids: Vec<String> = r.body["stages"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["approver_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    // a→b, b→a and c→a all point at someone who already sits in the group: applying any of
    // them would shrink it, so everyone keeps their seat and the notes say why.
    assert_eq!(ids, ["a", "b", "c"]);
    let notes = r.body["stages"][0]["notes"].to_string();
    assert!(notes.contains("keeps their seat"), "{notes}");
}

#[tokio::test]
async fn a_delegation_is_validated() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let now = chrono::Utc::now();
    let bad = app
        .put("/v1/principals/u-1/delegation",
             json!({"delegate_id": "u-1", "starts_at": now.to_rfc3339(), "ends_at": (now - chrono::Duration::hours(1)).to_rfc3339()}))
        .await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(bad.error_fields(), ["delegate_id", "ends_at"]);
    let unknown = app
        .put("/v1/principals/u-1/delegation",
             json!({"delegate_id": "ghost", "starts_at": now.to_rfc3339(), "ends_at": (now + chrono::Duration::hours(1)).to_rfc3339()}))
        .await;
    unknown.assert_problem(422, "validation_failed");
    assert_eq!(unknown.error_fields(), ["delegate_id"]);
}

#[tokio::test]
async fn a_process_expires_by_itself_and_restore_brings_it_back() {
    let app = app_by_hand().await;
    app.principal("u-1", json!({})).await;
    let rx = crate::webhooks::Receiver::start().await;
    let (_, secret) = crate::webhooks::endpoint(&app, &rx.url, json!(["process.expired"])).await;
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(800);
    let p = app
        .post("/v1/processes",
              json!({"name": "Fleeting", "expires_at": soon.to_rfc3339(), "stages": [{"name": "S", "groups": group(&["u-1"])}]}))
        .await;
    let pid = p.body["id"].as_str().unwrap().to_string();
    // The worker expires it and sends the event in the same run.
    after(&app, chrono::Duration::minutes(1)).await;
    let got = rx.got();
    assert_eq!(got.len(), 1, "process.expired sent");
    crate::webhooks::verify(&secret, &got[0]);
    let body = got[0].json();
    assert_eq!(body["type"], "process.expired");
    assert_eq!(body["data"]["process"]["id"], pid.as_str());
    let v = app.get(&format!("/v1/processes/{pid}")).await;
    assert_eq!(
        (v.body["enabled"].clone(), v.body["disabled_reason"].clone()),
        (json!(false), json!("expired"))
    );
    app.post(
        "/v1/approvals",
        json!({"ticket": {"id": "T-1"}, "process_id": pid}),
    )
    .await
    .assert_problem(409, "process_disabled");
    let r = app
        .post(
            &format!("/v1/processes/{pid}/restore"),
            json!({"expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1"}, "process_id": pid})
        )
        .await
        .status,
        201
    );
    after(&app, chrono::Duration::hours(1)).await;
    assert_eq!(rx.got().len(), 1, "expired once");
}

#[tokio::test]
async fn a_timer_survives_a_restart() {
    // The first replica runs no worker and stands for one that died before the deadline.
    let down = app_by_hand().await;
    down.principal("u-1", json!({})).await;
    let p = process(
        &down,
        "Durable",
        json!([{"name": "Boss", "groups": group(&["u-1"]), "timeout": {"after": "PT1S", "outcome": "approve"}}]),
    )
    .await;
    let id = request(&down, &p, "T-1").await;
    down.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(
        down.get(&format!("/v1/approvals/{id}")).await.body["state"],
        "pending",
        "no worker, no timeout"
    );
    // A new replica on the same database and the same time finds the timer due.
    let up = spawn_with_clock(
        settings(&url_for(&down.db_name), BY_HAND),
        down.db_name.clone(),
        down.clock.clone(),
    )
    .await;
    assert_eq!(up.run_worker_once().await.timers, 1);
    assert_eq!(up.run_worker_once().await.timers, 0);
    let v = view(&up, &id).await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["reason"], "timeout");
    let approved = events_of(&up, &id, "approval.approved").await;
    assert_eq!(approved.len(), 1, "fired once");
}

#[tokio::test]
async fn business_hours_deadlines_skip_closed_days() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let today = chrono::Utc::now().date_naive();
    let all_day = json!([["00:00", "24:00"]]);
    let c = app
        .put(
            "/v1/calendars/ops",
            json!({"time_zone": "UTC", "holidays": [today.to_string()],
                   "weekly": {"mon": all_day, "tue": all_day, "wed": all_day, "thu": all_day,
                              "fri": all_day, "sat": all_day, "sun": all_day}}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    assert_eq!(
        app.get("/v1/calendars/ops").await.body["holidays"],
        json!([today.to_string()])
    );
    let p = process(
        &app,
        "Office hours",
        json!([{"name": "Boss", "groups": group(&["u-1"]),
                "timeout": {"after": "PT1H", "calendar_id": "ops", "outcome": "reject"}}]),
    )
    .await;
    let id = request(&app, &p, "T-1").await;
    let v = app.get(&format!("/v1/approvals/{id}")).await.body;
    let expected = (today + chrono::Duration::days(1))
        .and_hms_opt(1, 0, 0)
        .unwrap()
        .and_utc();
    let deadline: chrono::DateTime<chrono::Utc> = v["stages"][0]["deadline"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        deadline, expected,
        "today is a holiday: the hour starts at midnight"
    );
}

#[tokio::test]
async fn calendars_are_validated_with_every_fault() {
    let app = spawn_app().await;
    let a = app
        .put(
            "/v1/calendars/bad",
            json!({"time_zone": "Mars/Olympus", "weekly": {"funday": [["09:00", "17:00"]]}}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    let fields = a.error_fields();
    assert!(fields.contains(&"time_zone".to_string()), "{fields:?}");
    assert!(fields.iter().any(|f| f.starts_with("weekly")), "{fields:?}");
    app.get("/v1/calendars/nope")
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn with_two_replicas_a_timeout_fires_once() {
    let first = app_by_hand().await;
    let second = spawn_with_clock(
        settings(&url_for(&first.db_name), BY_HAND),
        first.db_name.clone(),
        first.clock.clone(),
    )
    .await;
    first.principal("u-1", json!({})).await;
    let p = process(
        &first,
        "Raced",
        json!([{"name": "Boss", "groups": group(&["u-1"]), "timeout": {"after": "PT1H", "outcome": "reject"},
                "reminders": {"at_percent": [50]}}]),
    )
    .await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(request(&first, &p, &format!("T-{i}")).await);
    }
    // Both replicas' workers run at once, at the reminders' time, then at the deadline.
    for minutes in [31, 30] {
        first.clock.advance(chrono::Duration::minutes(minutes));
        let (a, b) = tokio::join!(first.run_worker_once(), second.run_worker_once());
        assert_eq!(a.timers + b.timers, 5, "each timer fired by one of them");
    }
    for id in &ids {
        assert_eq!(view(&second, id).await["state"], "rejected");
    }
    let (a, b) = tokio::join!(first.run_worker_once(), second.run_worker_once());
    assert_eq!(a.timers + b.timers, 0);
    for id in &ids {
        let types = event_types(&first, id).await;
        assert_eq!(
            types.iter().filter(|t| *t == "approval.rejected").count(),
            1,
            "{types:?}"
        );
        assert_eq!(
            types.iter().filter(|t| *t == "approval.reminder").count(),
            1,
            "{types:?}"
        );
    }
}

#[tokio::test]
async fn a_deadline_escalates_to_the_managers_then_applies_the_outcome() {
    let app = app_by_hand().await;
    app.principal("boss", json!({})).await;
    app.principal("mgr", json!({"manager_id": "boss"})).await;
    app.principal("u-1", json!({"manager_id": "mgr"})).await;
    app.principal("u-2", json!({})).await;
    let pid = process(
        &app,
        "Escalating",
        json!([{"name": "S", "groups": [{"name": "g", "source": {"type": "principals", "ids": ["u-1", "u-2"]},
                 "require": {"type": "count", "count": 1}}],
                "timeout": {"after": "PT2H", "outcome": "reject",
                            "escalate": {"levels": 2, "to": "approver_manager"}}}]),
    )
    .await;
    let id = request(&app, &pid, "T-1").await;
    let first = view(&app, &id).await["stages"][0]["deadline"].clone();

    // First deadline: u-1's seat moves to mgr, u-2 (no manager) keeps theirs.
    after(&app, chrono::Duration::hours(2)).await;
    let v = view(&app, &id).await;
    assert_eq!(v["state"], "pending", "{v}");
    let task = |v: &Value, who: &str| {
        v["stages"][0]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["approver_id"] == who)
            .cloned()
            .unwrap_or_else(|| panic!("no task for {who}: {v}"))
    };
    assert_eq!(task(&v, "u-1")["state"], "reassigned");
    assert_eq!(task(&v, "u-1")["reassigned_to"], "mgr");
    assert_eq!(task(&v, "mgr")["state"], "pending");
    assert_eq!(task(&v, "u-2")["state"], "pending");
    assert_ne!(
        v["stages"][0]["deadline"], first,
        "the deadline starts again"
    );
    let moved = events_of(&app, &id, "approval.reassigned").await;
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0]["data"]["detail"]["reason"], "escalation");
    assert_eq!(moved[0]["data"]["detail"]["to"], "mgr");
    assert_eq!(moved[0]["data"]["recipients"][0]["principal"]["id"], "mgr");
    // u-2 stayed: their link lives until the new deadline.
    let requested = events_of(&app, &id, "approval.requested").await;
    let u2 = requested[0]["data"]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["principal"]["id"] == "u-2")
        .unwrap()["page_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let link = app
        .call_as(
            "",
            reqwest::Method::GET,
            &format!("/v1/links/{u2}"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        link.status, 200,
        "u-2's link after the first deadline: {}",
        link.text
    );

    // An hour on, nothing; at the second deadline mgr's seat moves to boss.
    after(&app, chrono::Duration::hours(1)).await;
    assert_eq!(events_of(&app, &id, "approval.reassigned").await.len(), 1);
    after(&app, chrono::Duration::hours(1)).await;
    let v = view(&app, &id).await;
    assert_eq!(task(&v, "mgr")["reassigned_to"], "boss");
    assert_eq!(task(&v, "boss")["state"], "pending");
    assert_eq!(v["state"], "pending");

    // Levels spent: the third deadline applies the outcome.
    after(&app, chrono::Duration::hours(2)).await;
    let v = view(&app, &id).await;
    assert_eq!(v["state"], "rejected", "{v}");
    assert_eq!(v["outcome"]["reason"], "timeout");
    let types = event_types(&app, &id).await;
    assert_eq!(
        types.iter().filter(|t| *t == "approval.reassigned").count(),
        2
    );
}

#[tokio::test]
async fn a_deadline_with_no_manager_to_escalate_to_applies_the_outcome_at_once() {
    let app = app_by_hand().await;
    app.principal("u-1", json!({})).await;
    let pid = process(
        &app,
        "Nobody above",
        json!([{"name": "S", "groups": group(&["u-1"]),
                "timeout": {"after": "PT1H", "outcome": "approve", "escalate": {"levels": 3}}}]),
    )
    .await;
    let id = request(&app, &pid, "T-1").await;
    after(&app, chrono::Duration::hours(1)).await;
    let v = view(&app, &id).await;
    assert_eq!(v["state"], "approved", "{v}");
    assert_eq!(v["outcome"]["reason"], "timeout");
    // A bad escalation is refused naming the field.
    let bad = app
        .post(
            "/v1/processes",
            json!({"name": "Bad", "stages": [{"name": "S", "groups": group(&["u-1"]),
                   "timeout": {"after": "PT1H", "outcome": "approve",
                               "escalate": {"levels": 9, "to": "the_ceo"}}}]}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "stages[0].timeout.escalate.levels",
            "stages[0].timeout.escalate.to"
        ]
    );
}

#[tokio::test]
async fn a_question_stops_the_stage_clock_and_the_answer_moves_its_deadline() {
    let app = app_by_hand().await;
    app.principal("req", json!({"locale": "fr"})).await;
    for p in ["u-1", "u-2"] {
        app.principal(p, json!({})).await;
    }
    let pid = process(
        &app,
        "Questions",
        json!([{"name": "S", "groups": [{"name": "g", "source": {"type": "principals", "ids": ["u-1", "u-2"]},
                 "require": {"type": "all"}}],
                "timeout": {"after": "PT4H", "outcome": "reject"}}]),
    )
    .await;
    let id = request(&app, &pid, "T-1").await;
    let before = view(&app, &id).await["stages"][0]["deadline"].clone();
    let deadline = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let ask = app
        .post(
            &format!("/v1/approvals/{id}/info-requests"),
            json!({"actor_id": "u-1", "question": "Which model do you mean?"}),
        )
        .await;
    assert_eq!(ask.status, 201, "{}", ask.text);
    assert_eq!(ask.body["state"], "info_requested");
    assert_eq!(ask.body["conversation"][0]["kind"], "question");
    assert_eq!(ask.body["conversation"][0]["n"], 1);
    assert_eq!(ask.body["conversation"][0]["by_name"], "Person u-1");
    let asked = events_of(&app, &id, "approval.info_requested").await;
    let told = &asked[0]["data"]["recipients"][0];
    assert_eq!(told["principal"]["id"], "req");
    assert_eq!(told["role"], "requester");
    assert!(
        told["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Which model do you mean?"),
        "{told}"
    );
    assert!(
        told["message"]["subject"]
            .as_str()
            .unwrap()
            .starts_with("Question")
    );

    // While it waits: no answers, no second question, and the timeout does not fire.
    let d = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-2", "decision": "approve"}),
        )
        .await;
    d.assert_problem(409, "awaiting_info");
    let requested = events_of(&app, &id, "approval.requested").await;
    let page_url = requested[0]["data"]["recipients"][0]["page_url"]
        .as_str()
        .unwrap();
    let token = page_url.rsplit('/').next().unwrap();
    app.call_as(
        "",
        reqwest::Method::GET,
        &format!("/v1/links/{token}"),
        None,
        &[],
    )
    .await
    .assert_problem(409, "awaiting_info");
    app.post(
        &format!("/v1/approvals/{id}/info-requests"),
        json!({"actor_id": "u-2", "question": "And the colour?"}),
    )
    .await
    .assert_problem(409, "info_request_open");
    after(&app, chrono::Duration::hours(5)).await;
    assert_eq!(view(&app, &id).await["state"], "info_requested");

    // Only the requester's side answers, and only the open question.
    let answer = |n: u32, who: &str| {
        let path = format!("/v1/approvals/{id}/info-requests/{n}/answer");
        let body = json!({"actor_id": who, "answer": "The 14-inch one."});
        let app = &app;
        async move { app.post(&path, body).await }
    };
    answer(1, "u-2")
        .await
        .assert_problem(403, "not_the_requester");
    let wrong = answer(2, "req").await;
    wrong.assert_problem(409, "no_open_question");
    assert_eq!(wrong.body["open_question"], 1);
    let a = answer(1, "req").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["state"], "pending");
    assert_eq!(a.body["conversation"][1]["kind"], "answer");
    assert_eq!(a.body["conversation"][1]["text"], "The 14-inch one.");
    let moved = deadline(&a.body["stages"][0]["deadline"]) - deadline(&before);
    assert_eq!(
        moved,
        chrono::Duration::hours(5),
        "the deadline moves by the wait"
    );
    let provided = events_of(&app, &id, "approval.info_provided").await;
    assert_eq!(provided[0]["data"]["detail"]["answer"], "The 14-inch one.");
    let mut to: Vec<&str> = provided[0]["data"]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["principal"]["id"].as_str().unwrap())
        .collect();
    to.sort();
    assert_eq!(to, vec!["u-1", "u-2"]);
    answer(1, "req")
        .await
        .assert_problem(409, "no_open_question");

    // The clock runs again from where it stopped: 4 h in all, not 4 h from the start.
    let ok = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-2", "decision": "approve"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    after(&app, chrono::Duration::minutes(3 * 60 + 59)).await;
    assert_eq!(view(&app, &id).await["state"], "pending");
    after(&app, chrono::Duration::minutes(2)).await;
    let v = view(&app, &id).await;
    assert_eq!(v["state"], "rejected", "{v}");
    assert_eq!(v["outcome"]["reason"], "timeout");
}

#[tokio::test]
async fn an_ad_hoc_request_takes_settings_a_timeout_reminders_and_templates() {
    let app = app_by_hand().await;
    app.principal("u-1", json!({})).await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1", "title": "Dock", "requester_id": "req"},
                   "approvers": ["u-1"],
                   "settings": {"reject_requires_comment": true},
                   "timeout": {"after": "PT2H", "outcome": "approve"},
                   "reminders": {"every": "PT1H", "max": 1},
                   "templates": {"locales": {"en": {"subject": "Sign off {{ ticket.title }}",
                                                     "text": "Please look at {{ ticket.title }}."}}}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert!(a.body["stages"][0]["deadline"].is_string(), "{}", a.text);
    let requested = events_of(&app, &id, "approval.requested").await;
    assert_eq!(
        requested[0]["data"]["recipients"][0]["message"]["subject"],
        "Sign off Dock"
    );
    let r = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-1", "decision": "reject"}),
        )
        .await;
    assert_eq!(r.status, 422, "a comment is required: {}", r.text);
    after(&app, chrono::Duration::hours(1)).await;
    assert_eq!(events_of(&app, &id, "approval.reminder").await.len(), 1);
    after(&app, chrono::Duration::hours(1)).await;
    let v = view(&app, &id).await;
    assert_eq!(v["state"], "approved", "{v}");
    assert_eq!(v["outcome"]["reason"], "timeout");

    // Validated as a process's are, and refused beside a process.
    let bad = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-2"}, "approvers": ["u-1"],
                   "settings": {"when_short": "maybe"}, "timeout": {"after": "soon", "outcome": "approve"},
                   "templates": {"locales": {"en": {"subject": "{{ oops", "text": "x"}}}}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "settings.when_short",
            "templates.locales.en.subject",
            "timeout.after"
        ]
    );
    let no_calendar = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-3"}, "approvers": ["u-1"],
                   "timeout": {"after": "PT1H", "calendar_id": "nope", "outcome": "approve"}}),
        )
        .await;
    assert_eq!(
        no_calendar.error_fields(),
        vec!["timeout.calendar_id"],
        "{}",
        no_calendar.text
    );
    let pid = process(&app, "P", json!([{"name": "S", "groups": group(&["u-1"])}])).await;
    let mixed = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-4"}, "process_id": pid, "settings": {}}),
        )
        .await;
    assert_eq!(mixed.error_fields(), vec!["settings"], "{}", mixed.text);
}
