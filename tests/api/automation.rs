//! Automation over HTTP: tickets reported by the host, rules that start approvals when a ticket
//! enters a status, CEL conditions on rules and stages, preview, disabling a process and
//! reading its old versions, and the ticket's badge line.

use serde_json::{Value, json};

use crate::helpers::*;

/// A process with one stage asking `approver`, and optionally a second stage with `when`.
fn process(name: &str, approver: &str, second: Option<(&str, &str)>) -> Value {
    let mut stages = vec![json!({"name": "Manager", "groups": [
        {"name": "manager", "source": {"type": "principals", "ids": [approver]},
         "require": {"type": "count", "count": 1}}]})];
    if let Some((who, when)) = second {
        stages.push(json!({"name": "Finance", "when": when, "groups": [
            {"name": "finance", "source": {"type": "principals", "ids": [who]},
             "require": {"type": "count", "count": 1}}]}));
    }
    json!({"name": name, "on_approved_status": "approved", "on_rejected_status": "rejected",
           "stages": stages})
}

async fn create_process(app: &TestApp, body: Value) -> String {
    let a = app.post("/v1/processes", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

async fn rule(app: &TestApp, body: Value) -> String {
    let a = app.post("/v1/rules", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

async fn report(app: &TestApp, id: &str, status: &str, attributes: Value) -> Answer {
    let a = app
        .put(
            &format!("/v1/tickets/{id}"),
            json!({"title": "New laptop", "requester_id": "u-7", "status": status,
                   "attributes": attributes}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a
}

/// Grace (manager), Alan (finance) and the requester u-7.
async fn people(app: &TestApp) {
    app.principal("grace", json!({"display_name": "Grace Hopper"}))
        .await;
    app.principal("alan", json!({"display_name": "Alan Turing"}))
        .await;
    app.principal("u-7", json!({"display_name": "Ada", "roles": ["engineer"]}))
        .await;
}

fn actions(a: &Answer) -> Vec<String> {
    a.body["effects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_rule_starts_an_approval_when_a_ticket_enters_its_status() {
    let app = spawn_app().await;
    people(&app).await;
    let pid = create_process(&app, process("Laptops", "grace", None)).await;
    let rid = rule(
        &app,
        json!({"name": "Laptops", "process_id": pid, "on_status": "waiting_approval",
               "condition": "ticket.attributes.service_subcategory == 'laptops'"}),
    )
    .await;

    let new = report(
        &app,
        "T-1",
        "new",
        json!({"service_subcategory": "laptops"}),
    )
    .await;
    assert_eq!(actions(&new), Vec::<String>::new());
    assert!(new.body["approval"].is_null());

    let entered = report(
        &app,
        "T-1",
        "waiting_approval",
        json!({"service_subcategory": "laptops"}),
    )
    .await;
    assert_eq!(actions(&entered), ["started"]);
    assert_eq!(entered.body["effects"][0]["rule_id"], rid.as_str());
    assert_eq!(entered.body["ticket"]["status"], "waiting_approval");
    assert_eq!(entered.body["approval"]["state"], "pending");
    assert_eq!(
        entered.body["approval"]["summary"],
        "Awaiting approval from Grace Hopper"
    );
    let id = entered.body["effects"][0]["approval_id"].as_str().unwrap();
    let view = app.get(&format!("/v1/approvals/{id}")).await;
    assert_eq!(view.body["requested_by"], format!("rule:{rid}"));
    assert_eq!(view.body["rule"]["id"], rid.as_str());
    assert_eq!(view.body["rule"]["name"], "Laptops");
    assert_eq!(
        view.body["ticket"]["attributes"]["service_subcategory"],
        "laptops"
    );

    // The same status again changes nothing.
    let again = report(
        &app,
        "T-1",
        "waiting_approval",
        json!({"service_subcategory": "laptops", "note": "edited"}),
    )
    .await;
    assert_eq!(actions(&again), Vec::<String>::new());
    assert_eq!(again.body["approval"]["id"], id);
    let events = app.get(&format!("/v1/approvals/{id}/events")).await;
    assert_eq!(events.body["items"].as_array().unwrap().len(), 1);

    // GET answers the same ticket and approval.
    let got = app.get("/v1/tickets/T-1").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["ticket"]["attributes"]["note"], "edited");
    assert_eq!(got.body["approval"]["id"], id);
    app.get("/v1/tickets/T-404")
        .await
        .assert_problem(404, "not_found");

    // Deciding changes the badge to the decider's name.
    let d = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "grace", "decision": "approve"}),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let got = app.get("/v1/tickets/T-1").await;
    assert_eq!(got.body["approval"]["summary"], "Approved by Grace Hopper");
    assert_eq!(got.body["approval"]["state"], "approved");
}

#[tokio::test]
async fn rules_are_tried_by_priority_and_a_false_condition_falls_through() {
    let app = spawn_app().await;
    people(&app).await;
    let cheap = create_process(&app, process("Cheap", "grace", None)).await;
    let dear = create_process(&app, process("Dear", "alan", None)).await;
    let catch_all = create_process(&app, process("Other", "grace", None)).await;
    let over = rule(
        &app,
        json!({"name": "Over 100", "process_id": dear, "on_status": "new", "priority": 1,
               "condition": "ticket.attributes.amount > 100"}),
    )
    .await;
    let under = rule(
        &app,
        json!({"name": "Any laptop", "process_id": cheap, "on_status": "new", "priority": 5,
               "condition": "ticket.attributes.service_subcategory == 'laptops'"}),
    )
    .await;
    let last = rule(
        &app,
        json!({"name": "Everything", "process_id": catch_all, "on_status": "new",
               "priority": 9}),
    )
    .await;
    // Disabled rules are never tried.
    rule(
        &app,
        json!({"name": "Off", "process_id": catch_all, "on_status": "new", "priority": 0,
               "enabled": false}),
    )
    .await;

    let dear_one = report(
        &app,
        "T-1",
        "new",
        json!({"service_subcategory": "laptops", "amount": 1800}),
    )
    .await;
    assert_eq!(dear_one.body["effects"][0]["rule_id"], over.as_str());
    let cheap_one = report(
        &app,
        "T-2",
        "new",
        json!({"service_subcategory": "laptops", "amount": 50}),
    )
    .await;
    assert_eq!(cheap_one.body["effects"][0]["rule_id"], under.as_str());
    // A condition that cannot be evaluated (no amount) does not match either.
    let other = report(&app, "T-3", "new", json!({"service_subcategory": "chairs"})).await;
    assert_eq!(other.body["effects"][0]["rule_id"], last.as_str());

    // rules/test says the same without writing anything.
    let t = app
        .post(
            "/v1/rules/test",
            json!({"ticket": {"id": "T-9", "status": "new", "requester_id": "u-7",
                              "attributes": {"service_subcategory": "chairs"}}}),
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.body["chosen"], last.as_str());
    let rules = t.body["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3, "the disabled rule is not tried: {}", t.text);
    assert_eq!(rules[0]["id"], over.as_str());
    assert_eq!(rules[0]["matched"], false);
    assert!(
        rules[0]["error"].as_str().unwrap().contains("amount"),
        "{}",
        t.text
    );
    assert_eq!(rules[1]["matched"], false);
    assert!(rules[1]["error"].is_null());
    assert_eq!(rules[2]["matched"], true);
    app.get("/v1/tickets/T-9")
        .await
        .assert_problem(404, "not_found");
    let none = app
        .post(
            "/v1/rules/test",
            json!({"ticket": {"id": "T-9", "status": "closed"}}),
        )
        .await;
    assert!(none.body["chosen"].is_null());
    assert_eq!(none.body["rules"], json!([]));
    let no_status = app
        .post("/v1/rules/test", json!({"ticket": {"id": "T-9"}}))
        .await;
    no_status.assert_problem(422, "validation_failed");
    assert_eq!(no_status.error_fields(), ["ticket.status"]);
}

#[tokio::test]
async fn re_entering_the_status_resets_the_approval_and_on_leave_cancel_cancels_it() {
    let app = spawn_app().await;
    people(&app).await;
    let pid = create_process(&app, process("Laptops", "grace", None)).await;
    let keep = rule(
        &app,
        json!({"name": "Keep", "process_id": pid, "on_status": "waiting"}),
    )
    .await;
    let first = report(&app, "T-1", "waiting", json!({})).await;
    let old = first.body["effects"][0]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Leaving with on_leave: keep leaves it pending; coming back resets it.
    let left = report(&app, "T-1", "on_hold", json!({})).await;
    assert_eq!(actions(&left), Vec::<String>::new());
    assert_eq!(left.body["approval"]["state"], "pending");
    let back = report(&app, "T-1", "waiting", json!({})).await;
    assert_eq!(actions(&back), ["superseded", "started"]);
    assert_eq!(back.body["effects"][0]["approval_id"], old.as_str());
    assert_eq!(back.body["effects"][0]["rule_id"], keep.as_str());
    let old_view = app.get(&format!("/v1/approvals/{old}")).await;
    assert_eq!(old_view.body["state"], "cancelled");
    let new = back.body["effects"][1]["approval_id"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(back.body["approval"]["id"], new);

    // A rule with on_leave: cancel.
    let pid2 = create_process(&app, process("Chairs", "alan", None)).await;
    rule(
        &app,
        json!({"name": "Cancel", "process_id": pid2, "on_status": "review",
               "on_leave": "cancel"}),
    )
    .await;
    let started = report(&app, "T-2", "review", json!({})).await;
    let id = started.body["effects"][0]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let left = report(&app, "T-2", "closed", json!({})).await;
    assert_eq!(actions(&left), ["cancelled"]);
    assert_eq!(left.body["effects"][0]["approval_id"], id.as_str());
    assert_eq!(left.body["approval"]["state"], "cancelled");
    assert_eq!(left.body["approval"]["summary"], "Cancelled");
    let events = app.get(&format!("/v1/approvals/{id}/events")).await;
    let kinds: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["approval.requested", "approval.cancelled"]);
}

#[tokio::test]
async fn a_rule_that_cannot_start_reports_why_and_keeps_the_old_approval() {
    let app = spawn_app().await;
    people(&app).await;
    let pid = create_process(&app, process("Laptops", "grace", None)).await;
    rule(
        &app,
        json!({"name": "Laptops", "process_id": pid, "on_status": "waiting"}),
    )
    .await;
    // A pending approval the host requested itself blocks the rule's.
    let manual = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1"}, "approvers": ["alan"]}),
        )
        .await;
    assert_eq!(manual.status, 201, "{}", manual.text);
    let r = report(&app, "T-1", "waiting", json!({})).await;
    assert_eq!(actions(&r), ["not_started"]);
    assert_eq!(r.body["effects"][0]["problem"]["code"], "approval_pending");
    assert_eq!(r.body["approval"]["id"], manual.body["id"]);
    assert_eq!(r.body["approval"]["state"], "pending");
    // The request's ticket was stored: GET answers it, merged with the report.
    assert_eq!(
        app.get("/v1/tickets/T-1").await.body["ticket"]["title"],
        "New laptop"
    );
    // requested_by `rule:` is reserved.
    let forged = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-5"}, "approvers": ["alan"], "requested_by": "rule:x"}),
        )
        .await;
    forged.assert_problem(422, "validation_failed");
    assert_eq!(forged.error_fields(), ["requested_by"]);
}

#[tokio::test]
async fn racing_reports_of_one_ticket_give_one_approval() {
    let app = spawn_app().await;
    people(&app).await;
    let pid = create_process(&app, process("Laptops", "grace", None)).await;
    rule(
        &app,
        json!({"name": "Laptops", "process_id": pid, "on_status": "waiting"}),
    )
    .await;
    let calls = (0..8).map(|_| report(&app, "T-1", "waiting", json!({"n": 1})));
    let answers = futures_util::future::join_all(calls).await;
    let started: usize = answers.iter().map(|a| actions(a).len()).sum();
    assert_eq!(started, 1, "exactly one report entered the status");
    let list = app.get("/v1/approvals?ticket_id=T-1").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_stage_is_skipped_by_its_condition_and_run_when_it_cannot_be_evaluated() {
    let app = spawn_app().await;
    people(&app).await;
    let pid = create_process(
        &app,
        process(
            "Laptops",
            "grace",
            Some(("alan", "ticket.attributes.amount > 100")),
        ),
    )
    .await;
    let request = |ticket: &str, attributes: Value| {
        json!({"ticket": {"id": ticket, "requester_id": "u-7", "attributes": attributes},
               "process_id": pid})
    };
    let decide = |id: String| {
        let app = &app;
        async move {
            app.post(
                &format!("/v1/approvals/{id}/decisions"),
                json!({"approver_id": "grace", "decision": "approve"}),
            )
            .await
        }
    };
    // Cheap: the finance stage is skipped, the approval ends after the manager.
    let cheap = app
        .post("/v1/approvals", request("T-1", json!({"amount": 50})))
        .await;
    assert_eq!(cheap.status, 201, "{}", cheap.text);
    let done = decide(cheap.body["id"].as_str().unwrap().to_string()).await;
    assert_eq!(done.body["state"], "approved", "{}", done.text);
    assert_eq!(done.body["stages"][1]["state"], "skipped");
    assert_eq!(done.body["stages"][1]["skip_reason"], "condition");
    // Dear: the finance stage runs.
    let dear = app
        .post("/v1/approvals", request("T-2", json!({"amount": 500})))
        .await;
    let next = decide(dear.body["id"].as_str().unwrap().to_string()).await;
    assert_eq!(next.body["state"], "pending");
    assert_eq!(next.body["current_stage"], 1);
    // No amount: the condition fails, the stage runs and says why.
    let unknown = app.post("/v1/approvals", request("T-3", json!({}))).await;
    let id = unknown.body["id"].as_str().unwrap().to_string();
    let next = decide(id.clone()).await;
    assert_eq!(next.body["current_stage"], 1, "{}", next.text);
    let notes = next.body["stages"][1]["notes"].to_string();
    assert!(notes.contains("could not be evaluated"), "{notes}");
    let events = app.get(&format!("/v1/approvals/{id}/events")).await;
    let second = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["type"] == "approval.requested")
        .unwrap()
        .clone();
    assert_eq!(second["data"]["detail"]["stage"], 1);
    assert!(
        second["data"]["detail"]["notes"]
            .to_string()
            .contains("could not be evaluated"),
        "{second}"
    );
}

#[tokio::test]
async fn invalid_cel_is_refused_with_its_position() {
    let app = spawn_app().await;
    let mut body = process("Bad", "grace", Some(("alan", "ticket.attributes.amount >")));
    let bad = app.post("/v1/processes", body.clone()).await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(bad.error_fields(), ["stages[1].when"]);
    let message = bad.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("line 1, column"), "{message}");
    body["stages"][1]["when"] = json!("ticket.attributes.amount > 100");
    let pid = create_process(&app, body).await;

    let r = app
        .post(
            "/v1/rules",
            json!({"name": "R", "process_id": pid, "on_status": "new",
                   "condition": "ticket.status == 'new' &&\n  ticket.("}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["condition"]);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("line 2"),
        "{}",
        r.text
    );
    let r = app
        .post(
            "/v1/rules",
            json!({"name": "R", "process_id": "0190a0a0-0000-7000-8000-000000000000",
                   "on_status": "new", "on_leave": "later", "surprise": 1}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(fields, ["on_leave", "surprise"]);
    let r = app
        .post(
            "/v1/rules",
            json!({"name": "R", "process_id": "0190a0a0-0000-7000-8000-000000000000",
                   "on_status": "new"}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["process_id"]);
}

#[tokio::test]
async fn rules_are_read_updated_with_if_match_and_deleted() {
    let app = spawn_app().await;
    let pid = create_process(&app, process("P", "grace", None)).await;
    let id = rule(
        &app,
        json!({"name": "R", "process_id": pid, "on_status": "new"}),
    )
    .await;
    let got = app.get(&format!("/v1/rules/{id}")).await;
    assert_eq!(got.header("etag"), Some("\"1\""));
    assert_eq!(got.body["on_leave"], "keep");
    assert_eq!(got.body["enabled"], true);
    let path = format!("/v1/rules/{id}");
    let body = json!({"name": "R2", "process_id": pid, "on_status": "new", "priority": 3});
    app.put(&path, body.clone())
        .await
        .assert_problem(428, "if_match_required");
    let t = app.token.clone();
    let stale = app
        .call_as(
            &t,
            reqwest::Method::PUT,
            &path,
            Some(body.clone()),
            &[("if-match", "\"7\"")],
        )
        .await;
    stale.assert_problem(412, "version_mismatch");
    let ok = app
        .call_as(
            &t,
            reqwest::Method::PUT,
            &path,
            Some(body),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.header("etag"), Some("\"2\""));
    assert_eq!(ok.body["name"], "R2");
    let list = app.get("/v1/rules?on_status=new").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("/v1/rules?on_status=other").await.body["items"],
        json!([])
    );
    assert_eq!(app.delete(&path).await.status, 204);
    app.get(&path).await.assert_problem(404, "not_found");
    app.delete(&path).await.assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_preview_resolves_every_stage_and_writes_nothing() {
    let app = spawn_app().await;
    people(&app).await;
    let pid = create_process(
        &app,
        process(
            "Laptops",
            "grace",
            Some(("alan", "ticket.attributes.amount > 100")),
        ),
    )
    .await;
    let body = json!({"ticket": {"id": "T-1", "requester_id": "u-7",
                                 "attributes": {"amount": 50}},
                      "process_id": pid});
    let p = app.post("/v1/approvals/preview", body.clone()).await;
    assert_eq!(p.status, 200, "{}", p.text);
    let a = &p.body["approval"];
    assert_eq!(a["state"], "preview");
    assert_eq!(a["stages"][0]["tasks"][0]["approver_id"], "grace");
    assert_eq!(a["stages"][1]["state"], "skipped");
    assert_eq!(a["stages"][1]["skip_reason"], "condition");
    let notes = p.body["notes"].to_string();
    assert!(
        notes.contains("Finance") && notes.contains("condition"),
        "{notes}"
    );
    // The requester is removed, with the reason.
    let self_asked = json!({"ticket": {"id": "T-1", "requester_id": "grace",
                                       "attributes": {"amount": 500}},
                            "process_id": pid});
    let p = app.post("/v1/approvals/preview", self_asked).await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.body["notes"].to_string().contains("grace"), "{}", p.text);
    assert_eq!(
        p.body["approval"]["stages"][1]["tasks"][0]["approver_id"],
        "alan"
    );
    // Nothing was written: no approval, no ticket, no event, no delivery.
    assert_eq!(app.get("/v1/approvals").await.body["items"], json!([]));
    app.get("/v1/tickets/T-1")
        .await
        .assert_problem(404, "not_found");
    use diesel::RunQueryDsl;
    let mut conn = app.db();
    let events: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM events)",
    ))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(events, 0);
    // A read scope is enough; a preview of nonsense is the request's 422.
    let reader = token("acme", "approvals:read");
    let r = app
        .call_as(
            &reader,
            reqwest::Method::POST,
            "/v1/approvals/preview",
            Some(body),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.post("/v1/approvals/preview", json!({"ticket": {}}))
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn a_disabled_process_refuses_requests_until_restored_and_old_versions_are_readable() {
    let app = spawn_app().await;
    people(&app).await;
    let pid = create_process(&app, process("P", "grace", None)).await;
    let path = format!("/v1/processes/{pid}");
    // Version 2 asks Alan instead.
    let t = app.token.clone();
    let v2 = app
        .call_as(
            &t,
            reqwest::Method::PUT,
            &path,
            Some(process("P", "alan", None)),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(v2.status, 200, "{}", v2.text);
    let versions = app.get(&format!("{path}/versions")).await;
    assert_eq!(versions.status, 200, "{}", versions.text);
    let numbers: Vec<i64> = versions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    let one = app.get(&format!("{path}/versions/1")).await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(
        one.body["definition"]["stages"][0]["groups"][0]["source"]["ids"],
        json!(["grace"])
    );
    app.get(&format!("{path}/versions/3"))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("{path}/versions/x"))
        .await
        .assert_problem(404, "not_found");

    let running = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1"}, "process_id": pid}),
        )
        .await;
    assert_eq!(running.status, 201);
    app.post(&format!("{path}/disable"), json!({}))
        .await
        .assert_problem(422, "validation_failed");
    let off = app
        .post(
            &format!("{path}/disable"),
            json!({"reason": "holiday freeze"}),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(off.body["enabled"], false);
    assert_eq!(off.body["disabled_reason"], "holiday freeze");
    app.post(&format!("{path}/disable"), json!({"reason": "again"}))
        .await
        .assert_problem(409, "process_disabled");
    app.post(
        "/v1/approvals",
        json!({"ticket": {"id": "T-2"}, "process_id": pid}),
    )
    .await
    .assert_problem(409, "process_disabled");
    // The running approval goes on.
    let id = running.body["id"].as_str().unwrap();
    let d = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "alan", "decision": "approve"}),
        )
        .await;
    assert_eq!(d.body["state"], "approved", "{}", d.text);
    let on = app.post(&format!("{path}/restore"), json!({})).await;
    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(on.body["enabled"], true);
    let again = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-2"}, "process_id": pid}),
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
}

#[tokio::test]
async fn the_badge_reads_in_the_requesters_language() {
    let app = spawn_app().await;
    people(&app).await;
    app.principal("u-8", json!({"display_name": "Marie", "locale": "fr-FR"}))
        .await;
    let pid = create_process(&app, process("P", "grace", None)).await;
    rule(
        &app,
        json!({"name": "R", "process_id": pid, "on_status": "new"}),
    )
    .await;
    let r = app
        .put(
            "/v1/tickets/T-1",
            json!({"requester_id": "u-8", "status": "new"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["approval"]["summary"],
        "En attente d'approbation de Grace Hopper"
    );
    let id = r.body["approval"]["id"].as_str().unwrap();
    let d = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "grace", "decision": "reject", "comment": "non"}),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let got = app.get("/v1/tickets/T-1").await;
    assert_eq!(got.body["approval"]["summary"], "Rejeté par Grace Hopper");
    // English for an English requester.
    let en = report(&app, "T-2", "new", json!({})).await;
    assert_eq!(
        en.body["approval"]["summary"],
        "Awaiting approval from Grace Hopper"
    );
    // Bad reports are 422s naming the field.
    let bad = app
        .put(
            "/v1/tickets/T-3",
            json!({"status": 5, "attributes": [], "colour": "red"}),
        )
        .await;
    bad.assert_problem(422, "validation_failed");
    let mut fields = bad.error_fields();
    fields.sort();
    assert_eq!(fields, ["attributes", "colour", "status"]);
    // Deleting the ticket removes it.
    assert_eq!(app.delete("/v1/tickets/T-1").await.status, 204);
    app.get("/v1/tickets/T-1")
        .await
        .assert_problem(404, "not_found");
}
