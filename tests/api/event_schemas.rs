//! Real events against the published schemas: every webhook body signoff delivers validates
//! against its entry in the document's `webhooks`, and the events endpoint's page against its
//! response schema (the `Event` union).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::webhooks::{FAST, Receiver, endpoint, types};

/// Checks `value` against `schema` (the subset of JSON Schema the document uses: `$ref`,
/// `oneOf` with a discriminator, `allOf`, `type`, `enum`, `required`, `properties`,
/// `additionalProperties: false`, `items`, `minimum`), collecting every fault with its path.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, faults: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let target = doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling {r}"));
        return check(doc, target, value, at, faults);
    }
    if let Some(variants) = schema["oneOf"].as_array() {
        let tag = schema["discriminator"]["propertyName"].as_str();
        if let (Some(tag), Some(mapping)) = (tag, schema["discriminator"]["mapping"].as_object()) {
            match value[tag].as_str().and_then(|t| mapping.get(t)) {
                Some(r) => check(doc, &json!({"$ref": r}), value, at, faults),
                None => faults.push(format!("{at}: {tag} {} is not in the mapping", value[tag])),
            }
        } else {
            let matching = variants
                .iter()
                .filter(|v| {
                    let mut f = vec![];
                    check(doc, v, value, at, &mut f);
                    f.is_empty()
                })
                .count();
            if matching != 1 {
                faults.push(format!("{at}: matches {matching} of the oneOf variants"));
            }
        }
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        check(doc, part, value, at, faults);
    }
    if let Some(t) = schema.get("type") {
        let allowed: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = allowed.iter().any(|t| match *t {
            "null" => value.is_null(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => false,
        });
        if !ok {
            faults.push(format!("{at}: {value} is not {allowed:?}"));
            return;
        }
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(value)
    {
        faults.push(format!("{at}: {value} is not one of {e:?}"));
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), value.as_f64())
        && n < min
    {
        faults.push(format!("{at}: {n} < {min}"));
    }
    if let Some(obj) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            let key = key.as_str().unwrap_or_default();
            if !obj.contains_key(key) {
                faults.push(format!("{at}: required {key} is missing"));
            }
        }
        let props = schema["properties"].as_object();
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, v, &format!("{at}.{k}"), faults),
                None if schema["additionalProperties"] == json!(false) => {
                    faults.push(format!("{at}: {k} is not allowed"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), value.as_array()) {
        for (i, v) in a.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"), faults);
        }
    }
}

#[track_caller]
fn assert_valid(doc: &Value, schema: &Value, value: &Value, what: &str) {
    let mut faults = vec![];
    check(doc, schema, value, "$", &mut faults);
    assert!(
        faults.is_empty(),
        "{what} does not match its schema:\n{}\n{value:#}",
        faults.join("\n")
    );
}

async fn decide(app: &TestApp, id: &str, who: &str, decision: &str) {
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": who, "decision": decision, "comment": "seen"}),
        )
        .await;
    assert!(a.status.is_success(), "{}", a.text);
}

async fn request(app: &TestApp, body: Value) -> String {
    let a = app.post("/v1/approvals", body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_delivered_event_validates_against_its_webhook_schema() {
    let mut settings = FAST.to_vec();
    settings.push(("SIGNOFF_WEBHOOK_ALLOW_PRIVATE", "true"));
    let app = spawn_app_with(&settings).await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!(["*"])).await;
    for id in ["req", "u-1", "u-2", "u-3"] {
        app.principal(id, json!({})).await;
    }
    let stage = |name: &str, who: &str| {
        json!({"name": name, "groups": [{"name": name, "source": {"type": "principals", "ids": [who]},
                                         "require": {"type": "count", "count": 1}}]})
    };
    let p = app
        .post(
            "/v1/processes",
            json!({"name": "Two", "on_approved_status": "approved", "on_rejected_status": "rejected",
                   "stages": [stage("Lead", "u-1"), stage("Finance", "u-2")]}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let ticket =
        |id: &str| json!({"id": id, "title": "Laptop", "requester_id": "req", "status": "new"});

    let two = request(
        &app,
        json!({"ticket": ticket("T-1"), "process_id": p.body["id"]}),
    )
    .await;
    decide(&app, &two, "u-1", "approve").await;
    decide(&app, &two, "u-2", "approve").await;
    let one = json!({"approvers": ["u-3"], "require": {"type": "count", "count": 1}});
    let mut body = one.clone();
    body["ticket"] = ticket("T-2");
    let rejected = request(&app, body).await;
    let r = app
        .post(&format!("/v1/approvals/{rejected}/remind"), json!({}))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    decide(&app, &rejected, "u-3", "reject").await;
    let mut body = one.clone();
    body["ticket"] = ticket("T-4");
    let withdrawn = request(&app, body).await;
    let r = app
        .post(
            &format!("/v1/approvals/{withdrawn}/reassign"),
            json!({"from": "u-3", "to": "u-1", "comment": "on leave"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = app
        .post(
            &format!("/v1/approvals/{withdrawn}/approvers"),
            json!({"group": "approvers", "approver_id": "u-2"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let revocable = app
        .post(
            "/v1/processes",
            json!({"name": "Revocable", "settings": {"revoke_window": "PT1H", "allow_abstain": true},
                   "stages": [{"name": "S", "groups": [{"name": "g",
                       "source": {"type": "principals", "ids": ["u-1", "u-2"]},
                       "require": {"type": "all"}}]}]}),
        )
        .await;
    assert_eq!(revocable.status, 201, "{}", revocable.text);
    let revoked = request(
        &app,
        json!({"ticket": ticket("T-5"), "process_id": revocable.body["id"]}),
    )
    .await;
    decide(&app, &revoked, "u-1", "approve").await;
    let r = app
        .post(
            &format!("/v1/approvals/{revoked}/decisions/revoke"),
            json!({"approver_id": "u-1"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = app
        .post(
            &format!("/v1/approvals/{revoked}/decisions"),
            json!({"approver_id": "u-2", "decision": "abstain", "comment": "conflict"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let q = app
        .post(
            &format!("/v1/approvals/{withdrawn}/info-requests"),
            json!({"actor_id": "u-1", "question": "Which model?"}),
        )
        .await;
    assert!(q.status.is_success(), "{}", q.text);
    let q = app
        .post(
            &format!("/v1/approvals/{withdrawn}/info-requests/1/answer"),
            json!({"actor_id": "req", "answer": "The small one."}),
        )
        .await;
    assert!(q.status.is_success(), "{}", q.text);
    let w = app
        .post(
            &format!("/v1/approvals/{withdrawn}/withdraw"),
            json!({"actor_id": "req", "reason": "not needed"}),
        )
        .await;
    assert!(w.status.is_success(), "{}", w.text);
    let mut body = one;
    body["ticket"] = ticket("T-3");
    let cancelled = request(&app, body).await;
    let c = app
        .post(
            &format!("/v1/approvals/{cancelled}/cancel"),
            json!({"reason": "not needed"}),
        )
        .await;
    assert!(c.status.is_success(), "{}", c.text);
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(300);
    let e = app
        .post(
            "/v1/processes",
            json!({"name": "Fleeting", "expires_at": soon.to_rfc3339(), "stages": [stage("S", "u-1")]}),
        )
        .await;
    assert_eq!(e.status, 201, "{}", e.text);

    let doc = app.get("/openapi.json").await.body;
    let expected: BTreeSet<String> = doc["webhooks"]
        .as_object()
        .expect("a webhooks section")
        .keys()
        .filter(|k| *k != "approval.escalated")
        .cloned()
        .collect();
    assert!(expected.len() >= 8, "{expected:?}");
    let got = rx
        .wait_for("every event type", |g| {
            let seen: BTreeSet<String> = types(g).into_iter().collect();
            expected.is_subset(&seen)
        })
        .await;
    for r in &got {
        let body = r.json();
        let kind = body["type"].as_str().unwrap().to_string();
        let schema =
            &doc["webhooks"][&kind]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "no webhook entry for {kind}");
        assert_valid(&doc, schema, &body, &kind);
    }
    // The outcome tells the host what to set: typed, not a cast.
    let approved = got
        .iter()
        .map(|r| r.json())
        .find(|b| b["type"] == "approval.approved");
    assert_eq!(
        approved.unwrap()["data"]["ticket"]["status_to_set"],
        "approved"
    );

    // The events endpoint lists the same typed union.
    let list = &doc["paths"]["/v1/approvals/{id}/events"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    for id in [&two, &rejected, &cancelled, &withdrawn, &revoked] {
        let page = app.get(&format!("/v1/approvals/{id}/events")).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.body["items"].as_array().is_some_and(|i| !i.is_empty()));
        assert_valid(&doc, list, &page.body, "an events page");
    }

    // The checker is not a rubber stamp: a payload without its detail, or with a wrong type, fails.
    let mut broken = got[0].json();
    broken["data"].as_object_mut().unwrap().remove("detail");
    let mut faults = vec![];
    check(
        &doc,
        &json!({"$ref": "#/components/schemas/Event"}),
        &broken,
        "$",
        &mut faults,
    );
    assert!(!faults.is_empty());
    let mut wrong = got[0].json();
    wrong["data"]["sequence"] = json!("one");
    let mut faults = vec![];
    check(
        &doc,
        &json!({"$ref": "#/components/schemas/Event"}),
        &wrong,
        "$",
        &mut faults,
    );
    assert!(!faults.is_empty());
}

#[tokio::test]
async fn a_delivered_escalation_validates_against_its_webhook_schema() {
    let app = crate::helpers::spawn_app_with_clock(
        &[
            ("SIGNOFF_WORKER", "false"),
            ("SIGNOFF_WEBHOOK_ALLOW_PRIVATE", "true"),
        ],
        signoff::clock::Clock::manual(chrono::Utc::now()),
    )
    .await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!(["approval.escalated"])).await;
    for id in ["req", "u-1", "s-1"] {
        app.principal(id, json!({})).await;
    }
    let p = app
        .post(
            "/v1/processes",
            json!({"name": "Escalates", "stages": [{"name": "Team",
                "groups": [{"name": "team", "source": {"type": "principals", "ids": ["u-1"]},
                            "require": {"type": "count", "count": 1}}],
                "timeout": {"after": "PT10H", "outcome": "reject"},
                "substitutes": {"notify_at_percent": 50,
                                "source": {"type": "principals", "ids": ["s-1"]}}}]}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    request(
        &app,
        json!({"ticket": {"id": "T-1", "requester_id": "req"}, "process_id": p.body["id"]}),
    )
    .await;
    app.clock.advance(chrono::Duration::hours(6));
    app.run_worker_once().await;
    let got = rx.wait_for("approval.escalated", |g| !g.is_empty()).await;
    let doc = app.get("/openapi.json").await.body;
    let body = got[0].json();
    assert_eq!(body["type"], "approval.escalated");
    let schema = &doc["webhooks"]["approval.escalated"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_valid(&doc, schema, &body, "approval.escalated");
    assert_eq!(body["data"]["recipients"][0]["principal"]["id"], "s-1");
    assert_eq!(body["data"]["recipients"][0]["on_behalf_of"], "u-1");
}
