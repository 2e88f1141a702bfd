//! Concurrency is decided by the database: racing decisions and racing requests still give
//! exactly one outcome. And a decision costs a fixed number of queries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::{Connection, RunQueryDsl};
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

/// What a command runs with, now.
fn ctx() -> signoff::service::store::Ctx {
    signoff::service::store::Ctx {
        now: chrono::Utc::now(),
        public_url: "http://signoff.test".into(),
    }
}

/// Asks every one of `ids` on `ticket`, through the service; answers the approval's id.
fn ask_all(
    conn: &mut diesel::PgConnection,
    ticket: &str,
    ids: &[String],
    ctx: &signoff::service::store::Ctx,
) -> uuid::Uuid {
    let request = RequestApproval::parse(&json!({
        "ticket": {"id": ticket}, "approvers": ids, "require": {"type": "all"}
    }))
    .unwrap();
    conn.transaction(|c| svc::request(c, TENANT, &request, ctx))
        .unwrap()
        .row
        .id
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

/// Statements one decision sends: in the caller's transaction, or (`at_once`) on its own.
async fn queries_for_one_decision(group_size: usize, at_once: bool) -> usize {
    let app = spawn_app().await;
    let ids = many_principals(&app, group_size).await;
    let mut conn = app.db();
    let ctx = ctx();
    let id = ask_all(&mut conn, "T-Q", &ids, &ctx);
    let count = Arc::new(AtomicUsize::new(0));
    conn.set_instrumentation(Counter(count.clone()));
    // A rejection ends the approval: the costliest decision (every other task superseded).
    let decision =
        DecisionInput::parse(&json!({"approver_id": "a-00", "decision": "reject"})).unwrap();
    if at_once {
        svc::decide_at_once(&mut conn, TENANT, id, &decision, &ctx).unwrap();
    } else {
        conn.transaction(|c| svc::decide(c, TENANT, id, &decision, &ctx))
            .unwrap();
    }
    count.load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_decision_costs_the_same_number_of_queries_whatever_the_group_size() {
    let small = queries_for_one_decision(2, false).await;
    let large = queries_for_one_decision(40, false).await;
    println!("queries per decision: {small} (2 approvers), {large} (40 approvers)");
    assert_eq!(small, large);
    // BEGIN, read (locking), write, COMMIT.
    assert_eq!(small, 4, "{small} queries");
    // Without a transaction: read, write.
    assert_eq!(queries_for_one_decision(2, true).await, 2);
    assert_eq!(queries_for_one_decision(40, true).await, 2);
}

/// A decision read without the lock, whose approval another decision changed before it was
/// written, writes nothing (not its task, not its event, not the row); read again, it lands.
#[tokio::test]
async fn a_decision_read_before_another_one_landed_writes_nothing_and_lands_when_read_again() {
    use signoff::domain::engine::Verdict;
    use signoff::service::store::{self, EventContext, Saved};

    let app = spawn_app().await;
    let ids = many_principals(&app, 3).await;
    let mut conn = app.db();
    let ctx = ctx();
    let id = ask_all(&mut conn, "T-S", &ids, &ctx);
    let approve = |who: &str| {
        DecisionInput::parse(&json!({"approver_id": who, "decision": "approve"})).unwrap()
    };

    // a-00's decision is read, without the lock...
    let (mut stale, _) = store::read(&mut conn, TENANT, id, "a-00", false).unwrap();
    // ...a-01's lands...
    svc::decide_at_once(&mut conn, TENANT, id, &approve("a-01"), &ctx).unwrap();
    let before = app.get(&format!("/v1/approvals/{id}/events")).await.body;
    // ...and a-00's, computed on what it read, is refused by the write.
    let effects = store::run_engine(&mut conn, &mut stale, ctx.now, |a, dir| {
        a.decide("a-00", "a-00", Verdict::Approve, None, ctx.now, dir)
    })
    .unwrap()
    .unwrap();
    let saved = store::save(
        &mut conn,
        &mut stale,
        &effects,
        &EventContext::default(),
        &ctx,
    );
    assert_eq!(saved.unwrap(), Saved::Stale);
    let after = app.get(&format!("/v1/approvals/{id}/events")).await.body;
    assert_eq!(before, after, "a stale write stored an event");
    let view = app.get(&format!("/v1/approvals/{id}")).await.body;
    let states: Vec<&str> = view["stages"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pending", "approved", "pending"]);

    // Read again, it lands on top of a-01's.
    let done = svc::decide_at_once(&mut conn, TENANT, id, &approve("a-00"), &ctx).unwrap();
    assert_eq!(done.row.last_sequence, 3);
    let view = app.get(&format!("/v1/approvals/{id}")).await.body;
    assert_eq!(view["stages"][0]["groups"][0]["approved"], 2);
}

/// A decision that starts the next stage needs that stage's links and timers written with it,
/// which one statement cannot do: without a transaction of the caller's it is decided in one of
/// its own, under the lock, and the next stage's approver gets a link that works.
#[tokio::test]
async fn a_decision_starting_a_stage_commits_its_links_and_timers_with_it() {
    use signoff::domain::engine::Verdict;
    use signoff::service::store::{self, EventContext, Saved};

    let app = spawn_app().await;
    many_principals(&app, 2).await;
    let stage = |name: &str, who: &str| {
        json!({"name": name, "timeout": {"after": "P2D", "outcome": "reject"},
               "groups": [{"name": name, "source": {"type": "principals", "ids": [who]},
                           "require": {"type": "all"}}]})
    };
    let process = app
        .post(
            "/v1/processes",
            json!({"name": "two", "stages": [stage("one", "a-00"), stage("two", "a-01")]}),
        )
        .await;
    assert_eq!(process.status, 201, "{}", process.text);
    let view = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-2"}, "process_id": process.body["id"]}),
        )
        .await
        .body;
    let id = view["id"].as_str().unwrap().to_string();
    let count = |conn: &mut diesel::PgConnection, table: &str| -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT count(*) FROM {table} WHERE approval_id = '{id}' AND stage = 1)"
        )))
        .get_result(conn)
        .unwrap()
    };
    // Read without the lock, the decision is refused by the write before anything is written.
    let mut conn = app.db();
    let ctx = ctx();
    let uuid = id.parse().unwrap();
    let (mut read, _) = store::read(&mut conn, TENANT, uuid, "a-00", false).unwrap();
    let effects = store::run_engine(&mut conn, &mut read, ctx.now, |a, dir| {
        a.decide("a-00", "a-00", Verdict::Approve, None, ctx.now, dir)
    })
    .unwrap()
    .unwrap();
    let saved = store::save(
        &mut conn,
        &mut read,
        &effects,
        &EventContext::default(),
        &ctx,
    );
    assert_eq!(saved.unwrap(), Saved::NeedsLock);
    assert_eq!(
        (
            count(&mut conn, "approval_links"),
            count(&mut conn, "timers")
        ),
        (0, 0)
    );

    let view = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "a-00", "decision": "approve"}),
        )
        .await;
    assert_eq!(view.status, 200, "{}", view.text);
    assert_eq!(view.body["current_stage"], 1);
    assert!(view.body["stages"][1]["deadline"].is_string());
    let events = app.get(&format!("/v1/approvals/{id}/events")).await.body;
    let requested: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "approval.requested" && e["data"]["detail"]["stage"] == 1)
        .collect();
    assert_eq!(requested.len(), 1);
    let recipient = &requested[0]["data"]["recipients"][0];
    assert_eq!(recipient["principal"]["id"], "a-01");
    let page = recipient["page_url"].as_str().unwrap();
    let token = page.rsplit('/').next().unwrap();
    let link = app
        .call_as("", Method::GET, &format!("/v1/links/{token}"), None, &[])
        .await;
    assert_eq!(
        link.status, 200,
        "the stage's link was not stored: {}",
        link.text
    );
    assert!(
        count(&mut conn, "timers") >= 1,
        "the stage's timeout was not scheduled"
    );
}

/// Bulk requests over the same approvals in opposite orders lock them in one order, so none
/// deadlocks: every item answers 200, none a 500.
#[tokio::test]
async fn bulk_requests_over_the_same_approvals_in_opposite_orders_all_land() {
    let app = spawn_app_with(&[
        ("SIGNOFF_DB_POOL_SIZE", "20"),
        ("SIGNOFF_DB_TIMEOUT", "PT30S"),
    ])
    .await;
    let ids = many_principals(&app, 30).await;
    let mut approvals = vec![];
    for t in ["T-A", "T-B"] {
        let created = app
            .post(
                "/v1/approvals",
                json!({"ticket": {"id": t}, "approvers": ids, "require": {"type": "all"}}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        approvals.push(created.body["id"].as_str().unwrap().to_string());
    }
    let calls = ids.iter().enumerate().map(|(i, who)| {
        let (first, second) = if i % 2 == 0 {
            (&approvals[0], &approvals[1])
        } else {
            (&approvals[1], &approvals[0])
        };
        let body = json!({"items": [
            {"approval_id": first, "approver_id": who, "decision": "approve"},
            {"approval_id": second, "approver_id": who, "decision": "approve"}]});
        let app = &app;
        async move { app.post("/v1/decisions/bulk", body).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.text);
        let statuses: Vec<&Value> = a.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["status"])
            .collect();
        assert_eq!(statuses, vec![&json!(200), &json!(200)], "{}", a.text);
        // Results come back in the order asked, whatever order they were applied in.
        let asked: Vec<&Value> = a.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["approval_id"])
            .collect();
        assert_ne!(asked[0], asked[1]);
    }
    for id in &approvals {
        let v = app.get(&format!("/v1/approvals/{id}")).await;
        assert_eq!(v.body["state"], "approved", "{}", v.text);
    }
}
