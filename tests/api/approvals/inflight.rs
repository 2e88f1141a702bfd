//! Changes while an approval is pending: the requester's side withdrawing it, and a seat
//! handed to someone else (by its approver or an administrator).

use reqwest::Method;
use serde_json::{Value, json};
use signoff::clock::Clock;

use super::helpers::*;
use crate::helpers::*;

fn token_of(url: &str) -> String {
    let last = url.rsplit('/').next().unwrap();
    last.split('?').next().unwrap().to_string()
}

/// The page token of `who` from the newest event of `kind` that carries them.
async fn link_of(app: &TestApp, id: &str, kind: &str, who: &str) -> String {
    let evs = events(app, id).await;
    let r = evs
        .iter()
        .rev()
        .filter(|e| e["type"] == kind)
        .flat_map(|e| {
            e["data"]["recipients"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|r| r["principal"]["id"] == who)
        .unwrap_or_else(|| panic!("no {kind} recipient {who}"));
    token_of(r["page_url"].as_str().unwrap())
}

async fn anon(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Answer {
    app.call_as("", method, path, body, &[]).await
}

/// An ad-hoc request for `ticket` (requester `req`), asked by `tech-9`, with every status.
async fn asked(app: &TestApp, approvers: &[&str], require: Value) -> String {
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "approvers": approvers, "require": require,
                   "requested_by": "tech-9",
                   "on_started_status": "waiting", "on_approved_status": "approved",
                   "on_withdrawn_status": "withdrawn-by-requester"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    id_of(&a.body)
}

async fn withdraw(app: &TestApp, id: &str, body: Value) -> Answer {
    app.post(&format!("/v1/approvals/{id}/withdraw"), body)
        .await
}

async fn reassign(app: &TestApp, id: &str, body: Value) -> Answer {
    app.post(&format!("/v1/approvals/{id}/reassign"), body)
        .await
}

// ---------------------------------------------------------------------------------------------
// Withdraw

#[tokio::test]
async fn the_requester_withdraws_and_the_host_is_told_the_status_and_links_die() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let id = asked(&app, &["u-1", "u-2"], json!({"type": "all"})).await;
    decided(&app, &id, "u-1", "approve").await;
    let link = link_of(&app, &id, "approval.requested", "u-2").await;

    let a = withdraw(
        &app,
        &id,
        json!({"actor_id": "req", "reason": "bought one myself"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = &a.body;
    assert_eq!(v["state"], "withdrawn");
    assert_eq!(v["outcome"]["decision"], "withdrawn");
    assert_eq!(v["outcome"]["reason"], "withdrawn");
    assert_eq!(v["outcome"]["status_to_set"], "withdrawn-by-requester");
    assert_eq!(v["closed_by"]["action"], "withdraw");
    assert_eq!(v["closed_by"]["actor_id"], "req");
    assert_eq!(v["closed_by"]["reason"], "bought one myself");
    assert_eq!(task(v, 0, "u-1")["state"], "approved");
    assert_eq!(task(v, 0, "u-2")["state"], "superseded");

    let evs = events(&app, &id).await;
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "approval.withdrawn");
    assert_eq!(
        last["data"]["ticket"]["status_to_set"],
        "withdrawn-by-requester"
    );
    assert_eq!(last["data"]["detail"]["actor_id"], "req");
    assert_eq!(last["data"]["detail"]["reason"], "bought one myself");
    assert_eq!(last["data"]["summary"], "Withdrawn");

    // Nobody can answer any more, by API or by link, and the list filter finds it.
    decide(&app, &id, "u-2", "approve")
        .await
        .assert_problem(409, "approval_closed");
    anon(
        &app,
        Method::POST,
        &format!("/v1/links/{link}"),
        Some(json!({"decision": "approve"})),
    )
    .await
    .assert_problem(410, "link_closed");
    let list = app.get("/v1/approvals?state=withdrawn").await;
    assert_eq!(ids(&list.body), vec![id.clone()]);
    withdraw(&app, &id, json!({"actor_id": "req"}))
        .await
        .assert_problem(409, "approval_closed");
}

#[tokio::test]
async fn requested_by_may_withdraw_and_nobody_else_may() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let id = asked(&app, &["u-1"], count(1)).await;
    for outsider in ["u-1", "someone-else"] {
        withdraw(&app, &id, json!({"actor_id": outsider}))
            .await
            .assert_problem(403, "not_the_requester");
    }
    assert_eq!(view(&app, &id).await["state"], "pending");
    let a = withdraw(&app, &id, json!({"actor_id": "tech-9"})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["closed_by"]["actor_id"], "tech-9");
}

#[tokio::test]
async fn withdraw_refuses_bad_bodies_and_a_read_only_token() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let id = asked(&app, &["u-1"], count(1)).await;
    for body in [
        json!({}),
        json!({"actor_id": ""}),
        json!({"actor_id": "a b"}),
        json!({"actor_id": "req", "reason": "x".repeat(2001)}),
        json!({"actor_id": "req", "reason": "bell\u{7}"}),
        json!({"actor_id": "req", "surprise": true}),
    ] {
        let a = withdraw(&app, &id, body.clone()).await;
        assert_eq!(a.status, 422, "{body}: {}", a.text);
    }
    let tok = token(TENANT, "approvals:read");
    app.call_as(
        &tok,
        Method::POST,
        &format!("/v1/approvals/{id}/withdraw"),
        Some(json!({"actor_id": "req"})),
        &[],
    )
    .await
    .assert_problem(403, "insufficient_scope");
    assert_eq!(view(&app, &id).await["state"], "pending");
}

// ---------------------------------------------------------------------------------------------
// Reassign

#[tokio::test]
async fn an_approver_hands_their_seat_on_with_fresh_links_and_the_old_ones_die() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-9"]).await;
    let id = asked(&app, &["u-1", "u-2"], json!({"type": "all"})).await;
    let old = link_of(&app, &id, "approval.requested", "u-1").await;

    let a = reassign(
        &app,
        &id,
        json!({"from": "u-1", "to": "u-9", "actor_id": "u-1", "comment": "on leave"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = &a.body;
    assert_eq!(task(v, 0, "u-1")["state"], "reassigned");
    assert_eq!(task(v, 0, "u-1")["reassigned_to"], "u-9");
    assert_eq!(task(v, 0, "u-9")["state"], "pending");
    assert_eq!(task(v, 0, "u-9")["approver_name"], "Person u-9");
    assert_eq!(v["stages"][0]["groups"][0]["pending"], 2);
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);

    let evs = events(&app, &id).await;
    let ev = evs.last().unwrap();
    assert_eq!(ev["type"], "approval.reassigned");
    assert_eq!(ev["data"]["detail"]["from"], "u-1");
    assert_eq!(ev["data"]["detail"]["to"], "u-9");
    assert_eq!(ev["data"]["detail"]["reason"], "reassign");
    assert_eq!(ev["data"]["detail"]["comment"], "on leave");
    assert_eq!(recipient_ids(ev), strings(&["u-9"]));

    // The old link is dead; the new approver's works and counts.
    let gone = anon(&app, Method::GET, &format!("/v1/links/{old}"), None).await;
    gone.assert_problem(410, "link_reassigned");
    assert!(
        gone.body["detail"].as_str().unwrap().contains("Person u-9"),
        "{}",
        gone.text
    );
    // The hosted page says who has it now.
    let page = anon(&app, Method::GET, &format!("/a/{old}"), None).await;
    assert_eq!(page.status, 410);
    assert!(
        page.text
            .contains("This request was passed on to Person u-9."),
        "{}",
        page.text
    );
    decide(&app, &id, "u-1", "approve")
        .await
        .assert_problem(409, "already_decided");
    let new = link_of(&app, &id, "approval.reassigned", "u-9").await;
    let a = anon(
        &app,
        Method::POST,
        &format!("/v1/links/{new}"),
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let v = decided(&app, &id, "u-2", "approve").await;
    assert_eq!(v["state"], "approved");

    // The inboxes follow the seat.
    let inbox = app.get("/v1/principals/u-1/pending-approvals").await;
    assert_eq!(inbox.body["items"], json!([]), "{}", inbox.text);
}

#[tokio::test]
async fn each_refusal_names_its_reason_and_changes_nothing() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3", "req"]).await;
    app.principal("gone", json!({"active": false})).await;
    let id = asked(&app, &["u-1", "u-2", "u-3"], json!({"type": "all"})).await;
    decided(&app, &id, "u-3", "approve").await;
    let before = view(&app, &id).await;
    for (to, reason) in [
        ("req", "party"),
        ("tech-9", "party"),
        ("gone", "inactive"),
        ("nobody", "unknown_principal"),
        ("u-2", "already_seated"),
        ("u-3", "already_answered"),
        ("u-1", "same_person"),
    ] {
        let a = reassign(
            &app,
            &id,
            json!({"from": "u-1", "to": to, "actor_id": "u-1"}),
        )
        .await;
        a.assert_problem(422, "invalid_reassignment");
        assert_eq!(a.body["reason"], reason, "{to}: {}", a.text);
    }
    reassign(&app, &id, json!({"from": "u-3", "to": "u-9"}))
        .await
        .assert_problem(409, "already_decided");
    reassign(&app, &id, json!({"from": "zz", "to": "u-9"}))
        .await
        .assert_problem(403, "not_an_approver");
    let after = view(&app, &id).await;
    assert_eq!(after["stages"], before["stages"]);
    assert_eq!(
        event_types(&app, &id).await.last().unwrap(),
        "approval.decision_recorded"
    );
}

#[tokio::test]
async fn without_the_admin_scope_only_the_seat_holder_may_move_it_and_only_if_allowed() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-9"]).await;
    let pid = new_process(
        &app,
        one_group_process("Locked seats", listed(&["u-1", "u-2"]), count(1)),
    )
    .await;
    let locked = new_process(
        &app,
        process(
            "No reassign",
            json!({"allow_reassign": false}),
            vec![stage(
                "S",
                "all",
                vec![group("g", listed(&["u-1"]), count(1))],
            )],
        ),
    )
    .await;
    let open_id = id_of(&from_process(&app, "T-1", &pid).await);
    let locked_id = id_of(&from_process(&app, "T-2", &locked).await);
    let approver = token(TENANT, "approvals:read approvals:decide");
    let as_approver = |id: &str, body: Value| {
        let path = format!("/v1/approvals/{id}/reassign");
        let tok = approver.clone();
        let app = &app;
        async move {
            app.call_as(&tok, Method::POST, &path, Some(body), &[])
                .await
        }
    };
    as_approver(
        &open_id,
        json!({"from": "u-1", "to": "u-9", "actor_id": "u-2"}),
    )
    .await
    .assert_problem(403, "not_the_approver");
    as_approver(&open_id, json!({"from": "u-1", "to": "u-9"}))
        .await
        .assert_problem(403, "not_the_approver");
    as_approver(
        &locked_id,
        json!({"from": "u-1", "to": "u-9", "actor_id": "u-1"}),
    )
    .await
    .assert_problem(403, "reassign_not_allowed");
    let a = as_approver(
        &open_id,
        json!({"from": "u-1", "to": "u-9", "actor_id": "u-1"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    // An administrator may move any seat, whatever the process says.
    let a = reassign(
        &app,
        &locked_id,
        json!({"from": "u-1", "to": "u-9", "actor_id": "admin-1"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(task(&a.body, 0, "u-9")["state"], "pending");
    let reader = token(TENANT, "approvals:read");
    app.call_as(
        &reader,
        Method::POST,
        &format!("/v1/approvals/{open_id}/reassign"),
        Some(json!({"from": "u-9", "to": "u-2", "actor_id": "u-9"})),
        &[],
    )
    .await
    .assert_problem(403, "insufficient_scope");
}

#[tokio::test]
async fn racing_reassignments_of_one_seat_give_one_holder() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "a", "b", "c", "d"]).await;
    let id = asked(&app, &["u-1", "u-2"], json!({"type": "all"})).await;
    let tries = ["a", "b", "c", "d"].map(|to| {
        let app = &app;
        let id = id.clone();
        async move {
            reassign(
                app,
                &id,
                json!({"from": "u-1", "to": to, "actor_id": "u-1"}),
            )
            .await
            .status
        }
    });
    let statuses = futures_util::future::join_all(tries).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let v = view(&app, &id).await;
    let pending: Vec<&Value> = v["stages"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "pending")
        .collect();
    assert_eq!(pending.len(), 2, "{v}");
    let reassigned = event_types(&app, &id)
        .await
        .iter()
        .filter(|t| *t == "approval.reassigned")
        .count();
    assert_eq!(reassigned, 1);
}

// ---------------------------------------------------------------------------------------------
// Add an approver

#[tokio::test]
async fn an_administrator_adds_an_approver_who_is_asked_and_counted() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-9"]).await;
    let id = asked(&app, &["u-1", "u-2"], json!({"type": "all"})).await;
    let a = app
        .post(
            &format!("/v1/approvals/{id}/approvers"),
            json!({"group": "approvers", "approver_id": "u-9", "actor_id": "admin-1"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let g = &a.body["stages"][0]["groups"][0];
    assert_eq!(
        (g["required"].clone(), g["pending"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(task(&a.body, 0, "u-9")["state"], "pending");
    let evs = events(&app, &id).await;
    let ev = evs.last().unwrap();
    assert_eq!(ev["type"], "approval.approver_added");
    assert_eq!(ev["data"]["detail"]["group"], "approvers");
    assert_eq!(ev["data"]["detail"]["approver_id"], "u-9");
    assert_eq!(recipient_ids(ev), strings(&["u-9"]));
    decided(&app, &id, "u-1", "approve").await;
    let v = decided(&app, &id, "u-2", "approve").await;
    assert_eq!(v["state"], "pending", "the newcomer counts");
    let link = link_of(&app, &id, "approval.approver_added", "u-9").await;
    let a = anon(
        &app,
        Method::POST,
        &format!("/v1/links/{link}"),
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(view(&app, &id).await["state"], "approved");
}

#[tokio::test]
async fn adding_is_refused_with_a_reason_and_approvers_need_the_process_to_allow_it() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-9"]).await;
    let open = new_process(
        &app,
        process(
            "Open group",
            json!({"allow_add_approver": true}),
            vec![stage(
                "S",
                "all",
                vec![group("cab", listed(&["u-1", "u-2"]), count(2))],
            )],
        ),
    )
    .await;
    let closed = new_process(
        &app,
        one_group_process("Closed group", listed(&["u-1", "u-2"]), count(2)),
    )
    .await;
    let open_id = id_of(&from_process(&app, "T-1", &open).await);
    let closed_id = id_of(&from_process(&app, "T-2", &closed).await);
    let add = |id: &str, body: Value| {
        let path = format!("/v1/approvals/{id}/approvers");
        let tok = token(TENANT, "approvals:read approvals:decide");
        let app = &app;
        async move {
            app.call_as(&tok, Method::POST, &path, Some(body), &[])
                .await
        }
    };
    for (who, reason) in [
        ("req", "party"),
        ("u-2", "already_seated"),
        ("ghost", "unknown_principal"),
    ] {
        let a = add(
            &open_id,
            json!({"group": "cab", "approver_id": who, "actor_id": "u-1"}),
        )
        .await;
        a.assert_problem(422, "invalid_approver");
        assert_eq!(a.body["reason"], reason, "{}", a.text);
    }
    let a = add(
        &open_id,
        json!({"group": "nope", "approver_id": "u-9", "actor_id": "u-1"}),
    )
    .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.error_fields(), vec!["group"]);
    add(
        &open_id,
        json!({"group": "cab", "approver_id": "u-9", "actor_id": "stranger"}),
    )
    .await
    .assert_problem(403, "not_an_approver");
    add(
        &closed_id,
        json!({"group": "approvers", "approver_id": "u-9", "actor_id": "u-1"}),
    )
    .await
    .assert_problem(403, "add_approver_not_allowed");
    let a = add(
        &open_id,
        json!({"group": "cab", "approver_id": "u-9", "actor_id": "u-1"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    // A `count` stays as it was.
    assert_eq!(a.body["stages"][0]["groups"][0]["required"], 2);
}

// ---------------------------------------------------------------------------------------------
// Revoke

#[tokio::test]
async fn an_answer_is_taken_back_within_the_window_and_the_seat_gets_fresh_links() {
    let app = spawn_app_with_clock(&[], Clock::manual(chrono::Utc::now())).await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        process(
            "Revocable",
            json!({"revoke_window": "PT1H"}),
            vec![stage(
                "S",
                "all",
                vec![group("g", listed(&["u-1", "u-2"]), json!({"type": "all"}))],
            )],
        ),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    decided(&app, &id, "u-1", "approve").await;
    let revoke = |body: Value| {
        let path = format!("/v1/approvals/{id}/decisions/revoke");
        let app = &app;
        async move { app.post(&path, body).await }
    };
    let a = revoke(json!({"approver_id": "u-2"})).await;
    a.assert_problem(409, "revoke_not_allowed");
    assert_eq!(a.body["reason"], "nothing_to_revoke");
    let a = revoke(json!({"approver_id": "u-1"})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(task(&a.body, 0, "u-1")["state"], "pending");
    assert_eq!(a.body["stages"][0]["groups"][0]["approved"], 0);
    let evs = events(&app, &id).await;
    let ev = evs.last().unwrap();
    assert_eq!(ev["type"], "approval.decision_revoked");
    assert_eq!(ev["data"]["detail"]["decision"], "approve");
    assert_eq!(recipient_ids(ev), strings(&["u-1"]));
    // The fresh link decides; an hour and a minute later the answer is final.
    let link = link_of(&app, &id, "approval.decision_revoked", "u-1").await;
    let a = anon(
        &app,
        Method::POST,
        &format!("/v1/links/{link}"),
        Some(json!({"decision": "reject", "comment": "changed my mind"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(view(&app, &id).await["state"], "rejected");

    let id = id_of(&from_process(&app, "T-2", &pid).await);
    decided(&app, &id, "u-1", "approve").await;
    app.clock.advance(chrono::Duration::minutes(61));
    let path = format!("/v1/approvals/{id}/decisions/revoke");
    let a = app.post(&path, json!({"approver_id": "u-1"})).await;
    a.assert_problem(409, "revoke_not_allowed");
    assert_eq!(a.body["reason"], "window_passed");

    // Without a window, answers are final.
    let plain = new_process(
        &app,
        one_group_process("Final", listed(&["u-1", "u-2"]), count(2)),
    )
    .await;
    let id = id_of(&from_process(&app, "T-3", &plain).await);
    decided(&app, &id, "u-1", "approve").await;
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions/revoke"),
            json!({"approver_id": "u-1"}),
        )
        .await;
    a.assert_problem(409, "revoke_not_allowed");
    assert_eq!(a.body["reason"], "not_allowed");
}

// ---------------------------------------------------------------------------------------------
// Abstain

#[tokio::test]
async fn an_approver_abstains_where_allowed_and_the_rest_decide() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Abstainable",
            json!({"allow_abstain": true}),
            vec![stage(
                "S",
                "all",
                vec![group(
                    "g",
                    listed(&["u-1", "u-2", "u-3"]),
                    json!({"type": "all"}),
                )],
            )],
        ),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let abstain = |who: &str, comment: Value| {
        let path = format!("/v1/approvals/{id}/decisions");
        let body = json!({"approver_id": who, "decision": "abstain", "comment": comment});
        let app = &app;
        async move { app.post(&path, body).await }
    };
    let a = abstain("u-1", json!(null)).await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.error_fields(), vec!["comment"]);
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-2", "decision": "abstain", "comment": "x", "on_behalf_of": "u-1"}),
        )
        .await;
    assert_eq!(a.error_fields(), vec!["on_behalf_of"], "{}", a.text);
    decided(&app, &id, "u-2", "approve").await;
    decided(&app, &id, "u-3", "approve").await;
    let a = abstain("u-1", json!("I sold them this laptop")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["state"], "approved");
    assert_eq!(task(&a.body, 0, "u-1")["state"], "abstained");
    assert_eq!(
        task(&a.body, 0, "u-1")["comment"],
        "I sold them this laptop"
    );
    assert_eq!(a.body["stages"][0]["groups"][0]["required"], 2);
    let types = event_types(&app, &id).await;
    let at = types
        .iter()
        .position(|t| t == "approval.abstained")
        .expect("abstained");
    assert_eq!(types[at + 1], "approval.approved");

    // Where the process does not allow it, or once the approval is closed.
    let plain = new_process(&app, one_group_process("Plain", listed(&["u-1"]), count(1))).await;
    let other = id_of(&from_process(&app, "T-2", &plain).await);
    app.post(
        &format!("/v1/approvals/{other}/decisions"),
        json!({"approver_id": "u-1", "decision": "abstain", "comment": "x"}),
    )
    .await
    .assert_problem(422, "abstain_not_allowed");
    abstain("u-2", json!("late"))
        .await
        .assert_problem(409, "approval_closed");
}

#[tokio::test]
async fn an_abstention_that_leaves_a_count_unreachable_rejects_as_not_enough_approvers() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        process(
            "Two of two",
            json!({"allow_abstain": true}),
            vec![stage(
                "S",
                "all",
                vec![group("g", listed(&["u-1", "u-2"]), count(2))],
            )],
        ),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-1", "decision": "abstain", "comment": "on leave"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["state"], "rejected");
    assert_eq!(a.body["outcome"]["reason"], "not_enough_approvers");
    assert_eq!(a.body["outcome"]["status_to_set"], "proc-rejected");
}

#[tokio::test]
async fn a_reassignment_racing_the_old_approvers_answer_gives_one_of_them() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-9"]).await;
    for round in 0..10 {
        let t = format!("T-{round}");
        let a = app
            .post(
                "/v1/approvals",
                json!({"ticket": ticket(&t), "approvers": ["u-1", "u-2"], "require": {"type": "all"}}),
            )
            .await;
        let id = id_of(&a.body);
        let (answer, moved) = futures_util::join!(
            decide(&app, &id, "u-1", "approve"),
            reassign(&app, &id, json!({"from": "u-1", "to": "u-9"}))
        );
        let won: Vec<u16> = vec![answer.status.as_u16(), moved.status.as_u16()];
        assert_eq!(won.iter().filter(|s| **s == 200).count(), 1, "{won:?}");
        assert!(
            won.contains(&409),
            "{won:?}: {} {}",
            answer.text,
            moved.text
        );
        let v = view(&app, &id).await;
        let u1 = task(&v, 0, "u-1")["state"].clone();
        if answer.status == 200 {
            assert_eq!(u1, "approved");
        } else {
            assert_eq!(u1, "reassigned");
            assert_eq!(task(&v, 0, "u-9")["state"], "pending");
        }
    }
}

#[tokio::test]
async fn while_a_question_waits_the_requester_may_still_withdraw_and_seats_may_move() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-9"]).await;
    let id = asked(&app, &["u-1", "u-2"], json!({"type": "all"})).await;
    let q = app
        .post(
            &format!("/v1/approvals/{id}/info-requests"),
            json!({"actor_id": "u-1", "question": "Which dock?"}),
        )
        .await;
    assert_eq!(q.status, 201, "{}", q.text);
    let r = reassign(
        &app,
        &id,
        json!({"from": "u-2", "to": "u-9", "actor_id": "u-2"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["state"], "info_requested");
    let w = withdraw(&app, &id, json!({"actor_id": "req"})).await;
    assert_eq!(w.status, 200, "{}", w.text);
    assert_eq!(w.body["state"], "withdrawn");
}
