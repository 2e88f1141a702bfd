//! Concurrency is decided by the database: racing decisions and racing requests still give
//! exactly one outcome. And a decision costs a fixed number of queries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::Connection;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use reqwest::Method;
use serde_json::{Value, json};
use signoff::service::approvals::{self as svc, DecisionInput, RequestApproval};

use crate::helpers::*;

async fn many_principals(app: &TestApp, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("a-{i:02}")).collect();
    let calls = ids.iter().map(|id| app.principal(id, json!({})));
    futures_util::future::join_all(calls).await;
    ids
}

#[tokio::test]
async fn sixty_approvers_deciding_at_once_give_exactly_one_outcome() {
    let app = spawn_app_with(&[
        ("SIGNOFF_DB_POOL_SIZE", "20"),
        ("SIGNOFF_DB_TIMEOUT", "PT30S"),
    ])
    .await;
    let ids = many_principals(&app, 60).await;
    let created = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-RACE", "title": "Race"}, "approvers": ids,
                   "require": {"type": "count", "count": 1}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!(
        "/v1/approvals/{}/decisions",
        created.body["id"].as_str().unwrap()
    );
    let calls = ids.iter().map(|id| {
        let path = path.clone();
        let app = &app;
        async move {
            app.call(
                Method::POST,
                &path,
                Some(json!({"approver_id": id, "decision": "approve"})),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let closed = answers
        .iter()
        .filter(|a| a.status == 409 && a.body["code"] == "approval_closed")
        .count();
    assert!(
        answers.iter().all(|a| a.status.as_u16() < 500),
        "a 5xx among the answers"
    );
    assert_eq!((ok, closed), (1, 59));

    let events = app
        .get(&format!(
            "/v1/approvals/{}/events?limit=200",
            created.body["id"].as_str().unwrap()
        ))
        .await;
    let types: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "approval.approved").count(),
        1
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "approval.decision_recorded")
            .count(),
        1
    );
    let view = app
        .get(&format!(
            "/v1/approvals/{}",
            created.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(view.body["state"], "approved");
    let tasks = view.body["stages"][0]["tasks"].as_array().unwrap();
    assert_eq!(tasks.iter().filter(|t| t["state"] == "approved").count(), 1);
    assert_eq!(
        tasks.iter().filter(|t| t["state"] == "superseded").count(),
        59
    );
}

#[tokio::test]
async fn racing_requests_on_one_ticket_make_one_pending_approval() {
    let app = spawn_app_with(&[("SIGNOFF_DB_TIMEOUT", "PT30S")]).await;
    app.principal("u-1", json!({})).await;
    let calls = (0..10).map(|_| {
        app.post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1"}, "approvers": ["u-1"]}),
        )
    });
    let answers = futures_util::future::join_all(calls).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|a| a.status == 409)
        .map(|a| &a.body)
        .collect();
    assert_eq!(created, 1);
    assert_eq!(refused.len(), 9);
    let winner = answers.iter().find(|a| a.status == 201).unwrap().body["id"].clone();
    assert!(
        refused
            .iter()
            .all(|b| b["code"] == "approval_pending" && b["pending_approval_id"] == winner)
    );
}

/// Counts the statements a connection sends.
struct Counter(Arc<AtomicUsize>);

impl Instrumentation for Counter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn queries_for_one_decision(group_size: usize) -> usize {
    let app = spawn_app().await;
    let ids = many_principals(&app, group_size).await;
    let mut conn = app.db();
    let request = RequestApproval::parse(&json!({
        "ticket": {"id": "T-Q"}, "approvers": ids, "require": {"type": "all"}
    }))
    .unwrap();
    let ctx = signoff::service::store::Ctx {
        now: chrono::Utc::now(),
        public_url: "http://signoff.test".into(),
    };
    let id = conn
        .transaction(|c| svc::request(c, TENANT, &request, &ctx))
        .unwrap()
        .row
        .id;
    let count = Arc::new(AtomicUsize::new(0));
    conn.set_instrumentation(Counter(count.clone()));
    // A rejection ends the approval: the costliest decision (every other task superseded).
    let decision =
        DecisionInput::parse(&json!({"approver_id": "a-00", "decision": "reject"})).unwrap();
    conn.transaction(|c| svc::decide(c, TENANT, id, &decision, &ctx))
        .unwrap();
    count.load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_decision_costs_the_same_number_of_queries_whatever_the_group_size() {
    let small = queries_for_one_decision(2).await;
    let large = queries_for_one_decision(40).await;
    println!("queries per decision: {small} (2 approvers), {large} (40 approvers)");
    assert_eq!(small, large);
    // BEGIN, lock + load, tasks, the actor's active flag, upsert tasks, update approval,
    // insert events, webhook fan-out, COMMIT.
    assert!(small <= 9, "{small} queries");
}
