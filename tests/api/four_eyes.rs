//! "One person, one answer" end to end: each test drives a four-eyes rule through the API
//! (substitutes, reuse, delegation, short groups, self-approval, stage-start seating, double
//! answers) and fails if the rule is broken. Time moves on a manual clock and the worker runs
//! by hand.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// An app whose worker runs only when the test says so, on a manual clock starting now.
async fn by_hand() -> TestApp {
    spawn_app_with_clock(
        &[("SIGNOFF_WORKER", "false")],
        signoff::clock::Clock::manual(chrono::Utc::now()),
    )
    .await
}

async fn people(app: &TestApp, ids: &[&str]) {
    for id in ids {
        app.principal(id, json!({})).await;
    }
}

async fn process(app: &TestApp, body: Value) -> String {
    let mut body = body;
    body["on_approved_status"] = json!("approved");
    body["on_rejected_status"] = json!("rejected");
    let p = app.post("/v1/processes", body).await;
    assert_eq!(p.status, 201, "{}", p.text);
    p.body["id"].as_str().unwrap().to_string()
}

async fn request(app: &TestApp, body: Value) -> Value {
    let a = app.post("/v1/approvals", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn decide(app: &TestApp, id: &str, body: Value) -> Answer {
    app.post(&format!("/v1/approvals/{id}/decisions"), body)
        .await
}

async fn approve(app: &TestApp, id: &str, who: &str) -> Value {
    let a = decide(app, id, json!({"approver_id": who, "decision": "approve"})).await;
    assert_eq!(a.status, 200, "{who}: {}", a.text);
    a.body
}

fn listed(name: &str, ids: &[&str], require: Value) -> Value {
    json!({"name": name, "source": {"type": "principals", "ids": ids}, "require": require})
}

fn count(n: u32) -> Value {
    json!({"type": "count", "count": n})
}

/// The task of `who` in `stage`.
fn task(v: &Value, stage: usize, who: &str) -> Value {
    v["stages"][stage]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["approver_id"] == who)
        .unwrap_or_else(|| panic!("{who} has no task in stage {stage}: {v}"))
        .clone()
}

fn asked(v: &Value, stage: usize) -> Vec<String> {
    v["stages"][stage]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["approver_id"].as_str().unwrap().to_string())
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

fn token_of(url: &Value) -> String {
    let url = url.as_str().unwrap();
    url.rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

async fn link_decision(app: &TestApp, url: &Value, decision: &str) -> Answer {
    app.call_as(
        "",
        Method::POST,
        &format!("/v1/links/{}", token_of(url)),
        Some(json!({"decision": decision})),
        &[],
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Substitutes and escalation

/// A team of five whose stage escalates halfway through a ten-hour timeout to each
/// approver's manager: `boss` manages u-1 and u-2, u-1 (who sits in the stage) manages u-3,
/// the requester manages u-4 and `requested_by` manages u-5.
async fn escalating_team(app: &TestApp) -> String {
    app.principal("boss", json!({"display_name": "The Boss"}))
        .await;
    app.principal("req", json!({})).await;
    app.principal("tech", json!({})).await;
    app.principal(
        "u-1",
        json!({"display_name": "Grace Hopper", "manager_id": "boss"}),
    )
    .await;
    app.principal(
        "u-2",
        json!({"display_name": "Alan Turing", "manager_id": "boss"}),
    )
    .await;
    app.principal("u-3", json!({"manager_id": "u-1"})).await;
    app.principal("u-4", json!({"manager_id": "req"})).await;
    app.principal("u-5", json!({"manager_id": "tech"})).await;
    process(
        app,
        json!({"name": "Escalating", "stages": [{"name": "Team",
            "groups": [listed("team", &["u-1", "u-2", "u-3", "u-4", "u-5"], json!({"type": "all"}))],
            "timeout": {"after": "PT10H", "outcome": "reject"},
            "substitutes": {"notify_at_percent": 50, "source": {"type": "approver_manager"}}}]}),
    )
    .await
}

/// Requests one approval per ticket on the escalating team and fires their escalations
/// (halfway through the timeout); returns each approval with its escalation's recipients.
async fn escalated(app: &TestApp, p: &str, tickets: &[&str]) -> Vec<(String, Vec<Value>)> {
    let mut ids = Vec::new();
    for ticket in tickets {
        let v = request(
            app,
            json!({"ticket": {"id": ticket, "requester_id": "req"}, "process_id": p,
                   "requested_by": "tech"}),
        )
        .await;
        ids.push(id_of(&v));
    }
    // The API stamps deadlines with the system clock; the worker reads the manual one, which
    // started at the same instant. Six hours on: past the escalation, before the timeout.
    app.clock.advance(chrono::Duration::hours(6));
    let ran = app.run_worker_once().await;
    assert_eq!(ran.timers, tickets.len(), "the escalation timers fire");
    let mut out = Vec::new();
    for id in ids {
        let e = events_of(app, &id, "approval.escalated").await;
        assert_eq!(e.len(), 1, "one escalation: {e:?}");
        let r = e[0]["data"]["recipients"].as_array().unwrap().clone();
        out.push((id, r));
    }
    out
}

#[tokio::test]
async fn a_substitute_for_two_approvers_is_one_recipient_listing_both() {
    let app = by_hand().await;
    let p = escalating_team(&app).await;
    let (_, r) = escalated(&app, &p, &["T-1"]).await.remove(0);
    // Not u-1 (sits in the stage), not the requester, not requested_by: only the boss, once.
    let who: Vec<&str> = r
        .iter()
        .map(|e| e["principal"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["boss"], "{r:?}");
    let boss = &r[0];
    let covers: Vec<&str> = boss["answers_for"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["approver_id"].as_str().unwrap())
        .collect();
    assert_eq!(covers, ["u-1", "u-2"]);
    assert_eq!(boss["on_behalf_of"], "u-1");
    assert_eq!(boss["approve_url"], boss["answers_for"][0]["approve_url"]);
    assert_ne!(
        token_of(&boss["answers_for"][0]["page_url"]),
        token_of(&boss["answers_for"][1]["page_url"]),
        "each approver covered has a link of its own"
    );
    let text = boss["message"]["text"].as_str().unwrap();
    assert!(
        text.contains(
            "on behalf of Grace Hopper or Alan Turing. You may answer for one of them only."
        ),
        "{text}"
    );
    assert!(text.contains(boss["answers_for"][1]["reject_url"].as_str().unwrap()));
}

#[tokio::test]
async fn a_substitute_answers_through_the_link_of_either_approver_but_only_once_a_stage() {
    let app = by_hand().await;
    let p = escalating_team(&app).await;
    let approvals = escalated(&app, &p, &["T-1", "T-2"]).await;
    // In one approval the boss answers for u-1, in the other for u-2.
    for ((id, r), (ticket, first, other)) in
        approvals.into_iter().zip([("T-1", 0, 1), ("T-2", 1, 0)])
    {
        let covers = r[0]["answers_for"].as_array().unwrap().clone();
        let for_whom = covers[first]["approver_id"].as_str().unwrap();
        // Each link opens for its own approver.
        let seen = app
            .call_as(
                "",
                Method::GET,
                &format!("/v1/links/{}", token_of(&covers[other]["page_url"])),
                None,
                &[],
            )
            .await;
        assert_eq!(seen.status, 200, "{}", seen.text);
        assert_eq!(seen.body["on_behalf_of"], covers[other]["approver_id"]);

        let done = link_decision(&app, &covers[first]["approve_url"], "approve").await;
        assert_eq!(done.status, 200, "{ticket}: {}", done.text);
        let t = task(&done.body["approval"], 0, for_whom);
        assert_eq!(t["state"], "approved");
        assert_eq!(
            (t["decided_by"].clone(), t["on_behalf_of"].clone()),
            (json!("boss"), json!(for_whom))
        );
        // The boss has answered in this stage: not again, for the other approver either.
        link_decision(&app, &covers[other]["approve_url"], "approve")
            .await
            .assert_problem(403, "double_answer");
        let other_id = covers[other]["approver_id"].as_str().unwrap();
        decide(
            &app,
            &id,
            json!({"approver_id": "boss", "on_behalf_of": other_id, "decision": "approve"}),
        )
        .await
        .assert_problem(403, "double_answer");
        let v = app.get(&format!("/v1/approvals/{id}")).await.body;
        assert_eq!(task(&v, 0, other_id)["state"], "pending");
        assert_eq!(v["stages"][0]["groups"][0]["approved"], 1);
    }
}

#[tokio::test]
async fn nobody_is_escalated_to_who_sits_in_the_stage_or_asked_for_it() {
    // Listed substitutes: one sits in the stage, one is the requester, one requested_by,
    // one has already answered for someone; only the last, untouched one is asked.
    let app = by_hand().await;
    people(&app, &["u-1", "u-2", "u-3", "req", "tech", "s-1", "s-2"]).await;
    let p = process(
        &app,
        json!({"name": "Listed subs", "stages": [{"name": "Team",
            "groups": [listed("team", &["u-1", "u-2", "u-3"], json!({"type": "all"}))],
            "timeout": {"after": "PT10H", "outcome": "reject"},
            "substitutes": {"notify_at_percent": 50,
                            "source": {"type": "principals", "ids": ["u-1", "req", "tech", "s-1", "s-2"]}}}]}),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": {"id": "T-1", "requester_id": "req"}, "process_id": p,
               "requested_by": "tech"}),
    )
    .await;
    let id = id_of(&v);
    let a = decide(
        &app,
        &id,
        json!({"approver_id": "s-1", "on_behalf_of": "u-3", "decision": "approve"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    app.clock.advance(chrono::Duration::hours(6));
    app.run_worker_once().await;
    let e = events_of(&app, &id, "approval.escalated").await;
    let r = e[0]["data"]["recipients"].as_array().unwrap();
    let who: Vec<&str> = r
        .iter()
        .map(|e| e["principal"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["s-2"], "{r:?}");
    let covers: Vec<&str> = r[0]["answers_for"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["approver_id"].as_str().unwrap())
        .collect();
    assert_eq!(covers, ["u-1", "u-2"]);
}

// ---------------------------------------------------------------------------------------
// (a) Reuse: only one's own answers

#[tokio::test]
async fn an_answer_given_on_behalf_of_someone_is_not_reused_as_the_givers_own() {
    let app = by_hand().await;
    people(&app, &["u-1", "u-2", "s"]).await;
    let p = process(
        &app,
        json!({"name": "Reuse", "settings": {"reuse_previous_answers": true},
               "stages": [
                 {"name": "First", "groups": [listed("first", &["u-1", "u-2"], json!({"type": "all"}))],
                  "timeout": {"after": "PT48H", "outcome": "reject"},
                  "substitutes": {"notify_at_percent": 50, "source": {"type": "principals", "ids": ["s"]}}},
                 {"name": "Second", "groups": [listed("second", &["s", "u-1", "u-2"], json!({"type": "all"}))]}]}),
    )
    .await;
    let id = id_of(&request(&app, json!({"ticket": {"id": "T-1"}, "process_id": p})).await);
    let a = decide(
        &app,
        &id,
        json!({"approver_id": "s", "on_behalf_of": "u-1", "decision": "approve"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = approve(&app, &id, "u-2").await;
    assert_eq!(v["current_stage"], 1, "{v}");
    // u-2's own answer is reused; the one s gave for u-1 is neither s's nor u-1's.
    let reused = task(&v, 1, "u-2");
    assert_eq!(reused["state"], "reused");
    assert_eq!(reused["decided_by"], "u-2");
    assert_eq!(task(&v, 1, "s")["state"], "pending", "{v}");
    assert_eq!(task(&v, 1, "u-1")["state"], "pending", "{v}");
    assert_eq!(v["stages"][1]["groups"][0]["approved"], 1);
    assert_eq!(v["state"], "pending");
    // s must answer in stage 2 with their own word.
    let v = approve(&app, &id, "s").await;
    assert_eq!(v["state"], "pending");
    let v = approve(&app, &id, "u-1").await;
    assert_eq!(v["state"], "approved");
}

// ---------------------------------------------------------------------------------------
// (b) Delegation never shrinks a group

#[tokio::test]
async fn a_delegation_to_someone_in_the_same_group_does_not_give_them_two_seats() {
    let app = by_hand().await;
    people(&app, &["a", "b", "c"]).await;
    let now = app.clock.now();
    let d = app
        .put(
            "/v1/principals/a/delegation",
            json!({"delegate_id": "b", "starts_at": now - chrono::Duration::hours(1),
                   "ends_at": now + chrono::Duration::days(2)}),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let p = process(
        &app,
        json!({"name": "Pair", "stages": [{"name": "Both",
               "groups": [listed("pair", &["a", "b"], count(2))]}]}),
    )
    .await;
    let v = request(&app, json!({"ticket": {"id": "T-1"}, "process_id": p})).await;
    let id = id_of(&v);
    // a keeps their seat: two people are still required, and the view says why.
    assert_eq!(asked(&v, 0), ["a", "b"]);
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);
    let notes = v["stages"][0]["notes"].to_string();
    assert!(
        notes.contains("delegation of a to b not applied"),
        "{notes}"
    );
    let v = approve(&app, &id, "b").await;
    assert_eq!(v["state"], "pending");
    // b may not fill a's seat as their delegate: b already answers in the stage.
    decide(
        &app,
        &id,
        json!({"approver_id": "b", "on_behalf_of": "a", "decision": "approve"}),
    )
    .await
    .assert_problem(403, "double_answer");
    let v = app.get(&format!("/v1/approvals/{id}")).await.body;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 1);
    let v = approve(&app, &id, "a").await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 2);
}

// ---------------------------------------------------------------------------------------
// (c) Short groups

fn short_process(name: &str, when_short: &str) -> Value {
    json!({"name": name, "settings": {"when_short": when_short},
           "stages": [{"name": "Review", "groups": [
               listed("lead", &["u-1"], count(1)),
               {"name": "cab", "source": {"type": "role", "role": "cab"}, "require": count(3)}]}]})
}

async fn cab_of_two(app: &TestApp) {
    app.principal("u-1", json!({})).await;
    for id in ["c-1", "c-2"] {
        app.principal(id, json!({"roles": ["cab"]})).await;
    }
}

#[tokio::test]
async fn a_short_group_is_refused_naming_it_or_capped_and_says_so() {
    let app = by_hand().await;
    cab_of_two(&app).await;
    let refuse = process(&app, short_process("Refuse", "refuse")).await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1"}, "process_id": refuse}),
        )
        .await;
    a.assert_problem(422, "not_enough_approvers");
    assert_eq!(a.error_fields(), ["stages[0].groups[1]"]);
    assert_eq!(
        app.get("/v1/approvals").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "nothing was started"
    );

    let cap = process(&app, short_process("Cap", "cap")).await;
    let v = request(&app, json!({"ticket": {"id": "T-2"}, "process_id": cap})).await;
    let cab = &v["stages"][0]["groups"][1];
    assert_eq!(cab["capped_from"], 3, "{v}");
    assert_eq!(cab["required"], 2);
    let notes = v["stages"][0]["notes"].to_string();
    assert!(notes.contains("count lowered from 3 to 2"), "{notes}");
    // Capped is not weakened further: both cab members must approve.
    let id = id_of(&v);
    approve(&app, &id, "u-1").await;
    let v = approve(&app, &id, "c-1").await;
    assert_eq!(v["state"], "pending");
    let v = approve(&app, &id, "c-2").await;
    assert_eq!(v["state"], "approved");
}

// ---------------------------------------------------------------------------------------
// (d) requested_by may not decide

#[tokio::test]
async fn whoever_requested_the_approval_is_removed_and_may_not_decide() {
    let app = by_hand().await;
    people(&app, &["u-1", "u-2", "tech"]).await;
    let p = process(
        &app,
        json!({"name": "Desk", "stages": [{"name": "Team",
               "groups": [listed("team", &["u-1", "tech", "u-2"], count(1))],
               "timeout": {"after": "PT48H", "outcome": "reject"},
               "substitutes": {"notify_at_percent": 50, "source": {"type": "principals", "ids": ["tech"]}}}]}),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": {"id": "T-1", "requester_id": "u-9"}, "process_id": p,
               "requested_by": "tech"}),
    )
    .await;
    let id = id_of(&v);
    assert_eq!(asked(&v, 0), ["u-1", "u-2"]);
    assert_eq!(
        v["stages"][0]["groups"][0]["removed"],
        json!([{"principal_id": "tech", "reason": "requested_by"}])
    );
    let notes = v["stages"][0]["notes"].to_string();
    assert!(notes.contains("tech removed from team"), "{notes}");
    // Neither as themselves nor as the stage's listed substitute.
    decide(
        &app,
        &id,
        json!({"approver_id": "tech", "decision": "approve"}),
    )
    .await
    .assert_problem(403, "self_approval_not_allowed");
    decide(
        &app,
        &id,
        json!({"approver_id": "tech", "on_behalf_of": "u-1", "decision": "approve"}),
    )
    .await
    .assert_problem(403, "self_approval_not_allowed");
    let v = app.get(&format!("/v1/approvals/{id}")).await.body;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 0);
}

// ---------------------------------------------------------------------------------------
// (e) Members are read when their stage starts

#[tokio::test]
async fn a_role_changed_while_stage_one_runs_seats_its_new_members_in_stage_two() {
    let app = by_hand().await;
    app.principal("u-1", json!({})).await;
    app.principal("c-1", json!({"roles": ["cab"]})).await;
    let p = process(
        &app,
        json!({"name": "Change board", "stages": [
            {"name": "Lead", "groups": [listed("lead", &["u-1"], count(1))]},
            {"name": "CAB", "groups": [{"name": "cab", "source": {"type": "role", "role": "cab"},
                                        "require": {"type": "all"}}]}]}),
    )
    .await;
    let v = request(&app, json!({"ticket": {"id": "T-1"}, "process_id": p})).await;
    let id = id_of(&v);
    assert_eq!(
        v["stages"][1]["tasks"],
        json!([]),
        "stage 2 is not seated yet"
    );
    // While stage 1 runs, c-1 leaves the board and c-2 and c-3 join it.
    app.principal("c-1", json!({"roles": []})).await;
    app.principal("c-2", json!({"roles": ["cab"]})).await;
    app.principal("c-3", json!({"roles": ["cab", "other"]}))
        .await;
    let v = approve(&app, &id, "u-1").await;
    assert_eq!(v["current_stage"], 1);
    assert_eq!(asked(&v, 1), ["c-2", "c-3"]);
    assert_eq!(v["stages"][1]["groups"][0]["required"], 2);
    decide(
        &app,
        &id,
        json!({"approver_id": "c-1", "decision": "approve"}),
    )
    .await
    .assert_problem(403, "not_an_approver");
    approve(&app, &id, "c-2").await;
    let v = approve(&app, &id, "c-3").await;
    assert_eq!(v["state"], "approved");
}

// ---------------------------------------------------------------------------------------
// (f) One answer a stage; a later stage asks again

#[tokio::test]
async fn nobody_answers_twice_in_one_stage() {
    let app = by_hand().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let p = process(
        &app,
        json!({"name": "Twice", "stages": [{"name": "Team",
               "groups": [listed("team", &["u-1", "u-2", "u-3"], count(2))],
               "timeout": {"after": "PT48H", "outcome": "reject"},
               "substitutes": {"notify_at_percent": 50, "source": {"type": "principals", "ids": ["u-1"]}}}]}),
    )
    .await;
    let id = id_of(&request(&app, json!({"ticket": {"id": "T-1"}, "process_id": p})).await);
    // u-1 sits in the stage: as a substitute they may not take a second seat, before
    // answering...
    decide(
        &app,
        &id,
        json!({"approver_id": "u-1", "on_behalf_of": "u-2", "decision": "approve"}),
    )
    .await
    .assert_problem(403, "double_answer");
    approve(&app, &id, "u-1").await;
    // ...or after.
    decide(
        &app,
        &id,
        json!({"approver_id": "u-1", "on_behalf_of": "u-2", "decision": "approve"}),
    )
    .await
    .assert_problem(403, "double_answer");
    // Their own seat takes one answer.
    decide(
        &app,
        &id,
        json!({"approver_id": "u-1", "decision": "reject", "comment": "no"}),
    )
    .await
    .assert_problem(409, "already_decided");
    let v = app.get(&format!("/v1/approvals/{id}")).await.body;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 1);
    assert_eq!(task(&v, 0, "u-2")["state"], "pending");
    let v = approve(&app, &id, "u-3").await;
    assert_eq!(v["state"], "approved");
}

#[tokio::test]
async fn a_person_in_two_stages_answers_in_each_unless_their_answer_is_reused() {
    let app = by_hand().await;
    people(&app, &["u-1", "u-2"]).await;
    let stages = json!([
        {"name": "First", "groups": [listed("first", &["u-1"], count(1))]},
        {"name": "Second", "groups": [listed("second", &["u-1", "u-2"], json!({"type": "all"}))]}]);
    // Without reuse, stage 2 asks u-1 again and their stage-1 answer does not count there.
    let fresh = process(&app, json!({"name": "Fresh", "stages": stages})).await;
    let id = id_of(&request(&app, json!({"ticket": {"id": "T-1"}, "process_id": fresh})).await);
    let v = approve(&app, &id, "u-1").await;
    assert_eq!(v["current_stage"], 1);
    assert_eq!(task(&v, 1, "u-1")["state"], "pending");
    assert_eq!(v["stages"][1]["groups"][0]["approved"], 0);
    let v = approve(&app, &id, "u-1").await;
    assert_eq!(v["stages"][1]["groups"][0]["approved"], 1);
    decide(
        &app,
        &id,
        json!({"approver_id": "u-1", "decision": "approve"}),
    )
    .await
    .assert_problem(409, "already_decided");
    assert_eq!(approve(&app, &id, "u-2").await["state"], "approved");

    // With reuse, u-1's own answer fills their stage-2 seat, and it is still one answer.
    let reuse = process(
        &app,
        json!({"name": "Reused", "settings": {"reuse_previous_answers": true}, "stages": stages}),
    )
    .await;
    let id = id_of(&request(&app, json!({"ticket": {"id": "T-2"}, "process_id": reuse})).await);
    let v = approve(&app, &id, "u-1").await;
    assert_eq!(task(&v, 1, "u-1")["state"], "reused");
    decide(
        &app,
        &id,
        json!({"approver_id": "u-1", "decision": "reject", "comment": "changed"}),
    )
    .await
    .assert_problem(409, "already_decided");
    assert_eq!(v["state"], "pending");
    assert_eq!(approve(&app, &id, "u-2").await["state"], "approved");
}

// ---------------------------------------------------------------------------------------
// The remaining scenarios of the issue: deciders must be active now, ticket_field reads
// numeric ids and records unknown ones, an empty group is skipped with its reason, and a
// requester alone in their group never approves their own request.

#[tokio::test]
async fn a_principal_deactivated_after_being_asked_may_not_decide() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = process(
        &app,
        json!({"name": "P", "stages": [{"name": "S", "groups": [listed("g", &["u-1", "u-2"], count(1))]}]}),
    )
    .await;
    let a = request(&app, json!({"ticket": {"id": "T-1"}, "process_id": pid})).await;
    app.principal("u-1", json!({"active": false})).await;
    decide(
        &app,
        &id_of(&a),
        json!({"approver_id": "u-1", "decision": "approve"}),
    )
    .await
    .assert_problem(403, "inactive_principal");
    let done = approve(&app, &id_of(&a), "u-2").await;
    assert_eq!(done["state"], "approved");
}

#[tokio::test]
async fn a_ticket_field_reads_numeric_ids_and_records_unknown_ones() {
    let app = spawn_app().await;
    people(&app, &["42", "u-2"]).await;
    let pid = process(
        &app,
        json!({"name": "P", "stages": [{"name": "S", "groups": [
            {"name": "owners", "source": {"type": "ticket_field", "field": "owners"},
             "require": count(1)}]}]}),
    )
    .await;
    let a = request(
        &app,
        json!({"ticket": {"id": "T-1", "attributes": {"owners": [42, "u-404", "u-2"]}},
               "process_id": pid}),
    )
    .await;
    let mut seated = asked(&a, 0);
    seated.sort();
    assert_eq!(seated, ["42", "u-2"]);
    let removed = &a["stages"][0]["groups"][0]["removed"];
    assert_eq!(removed[0]["principal_id"], "u-404", "{a}");
    assert_eq!(removed[0]["reason"], "unknown");
    assert!(a["stages"][0]["notes"].to_string().contains("u-404"));
}

#[tokio::test]
async fn an_empty_group_of_an_all_stage_is_skipped_and_says_so() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let pid = process(
        &app,
        json!({"name": "P", "stages": [{"name": "S", "combine": "all", "groups": [
            {"name": "nobody", "source": {"type": "role", "role": "no-such-role"}, "require": count(1)},
            listed("someone", &["u-1"], count(1))]}]}),
    )
    .await;
    let a = request(&app, json!({"ticket": {"id": "T-1"}, "process_id": pid})).await;
    let groups = &a["stages"][0]["groups"];
    assert_eq!(groups[0]["state"], "skipped", "{a}");
    assert_eq!(groups[0]["skip_reason"], "no_approvers");
    assert_eq!(groups[1]["state"], "pending");
    let done = approve(&app, &id_of(&a), "u-1").await;
    assert_eq!(done["state"], "approved");
}

#[tokio::test]
async fn a_requester_alone_in_their_group_never_approves_their_own_request() {
    let app = spawn_app().await;
    people(&app, &["u-7"]).await;
    let pid = process(
        &app,
        json!({"name": "P", "settings": {"when_no_approvers": "approve"},
               "stages": [{"name": "S", "groups": [listed("me", &["u-7"], count(1))]}]}),
    )
    .await;
    let r = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1", "requester_id": "u-7"}, "process_id": pid}),
        )
        .await;
    r.assert_problem(422, "no_approvers");
    let list = app.get("/v1/approvals?ticket_id=T-1").await;
    assert_eq!(list.body["items"], json!([]), "nothing was approved");
}
