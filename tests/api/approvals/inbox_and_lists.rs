//! The inbox and the lists of approvals: filters and paging.

use serde_json::{Value, json};

use super::helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// 12. Inbox

#[tokio::test]
async fn the_inbox_lists_approvals_waiting_on_a_principal_in_the_running_stage() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(&app, two_stage_process(json!({}))).await;
    let staged = id_of(&from_process(&app, "T-1", &pid).await);
    let adhoc = id_of(&ad_hoc(&app, "T-2", &["u-3", "u-2"], count(2)).await);

    let inbox = |who: &'static str| {
        let app = &app;
        async move {
            let a = app
                .get(&format!("/v1/principals/{who}/pending-approvals"))
                .await;
            assert_eq!(a.status, 200, "{}", a.text);
            ids(&a.body)
        }
    };
    // u-3 is asked only in stage 2 of `staged`.
    assert_eq!(inbox("u-3").await, vec![adhoc.clone()]);
    assert_eq!(inbox("u-2").await, vec![staged.clone(), adhoc.clone()]);
    assert_eq!(inbox("u-1").await, vec![staged.clone()]);

    decided(&app, &staged, "u-2", "approve").await;
    assert_eq!(inbox("u-2").await, vec![adhoc.clone()]);
    assert_eq!(inbox("u-3").await, vec![staged.clone(), adhoc.clone()]);
    assert_eq!(inbox("u-1").await, vec![staged.clone()]);

    decided(&app, &adhoc, "u-3", "approve").await;
    assert_eq!(inbox("u-3").await, vec![staged.clone()]);
    decided(&app, &staged, "u-3", "approve").await;
    assert_eq!(inbox("u-3").await, Vec::<String>::new());
    assert_eq!(inbox("u-1").await, Vec::<String>::new());
    assert_eq!(inbox("u-2").await, vec![adhoc]);
}

// ---------------------------------------------------------------------------------------------
// 13. Lists

#[tokio::test]
async fn the_list_filters_by_ticket_state_process_and_approver() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        one_group_process("Listed", listed(&["u-1", "u-2"]), count(1)),
    )
    .await;
    let p1 = id_of(&from_process(&app, "T-1", &pid).await);
    let p2 = id_of(&from_process(&app, "T-2", &pid).await);
    let h3 = id_of(&ad_hoc(&app, "T-3", &["u-3"], count(1)).await);
    decided(&app, &p2, "u-1", "approve").await;

    let list = |q: &'static str| {
        let app = &app;
        async move {
            let a = app.get(&format!("/v1/approvals{q}")).await;
            assert_eq!(a.status, 200, "{}", a.text);
            ids(&a.body)
        }
    };
    assert_eq!(list("").await, vec![p1.clone(), p2.clone(), h3.clone()]);
    assert_eq!(list("?ticket_id=T-2").await, vec![p2.clone()]);
    assert_eq!(list("?state=approved").await, vec![p2.clone()]);
    assert_eq!(list("?state=pending").await, vec![p1.clone(), h3.clone()]);
    assert_eq!(list("?state=rejected").await, Vec::<String>::new());
    let by_process = app.get(&format!("/v1/approvals?process_id={pid}")).await;
    assert_eq!(ids(&by_process.body), vec![p1.clone(), p2.clone()]);
    assert_eq!(list("?approver_id=u-3").await, vec![h3.clone()]);
    assert_eq!(list("?approver_id=u-2").await, vec![p1.clone(), p2.clone()]);
    assert_eq!(
        list("?approver_id=u-2&state=pending").await,
        vec![p1.clone()]
    );
    assert_eq!(list("?ticket_id=T-9").await, Vec::<String>::new());
}

#[tokio::test]
async fn the_list_pages_with_a_cursor() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let mut made = vec![];
    for t in ["T-1", "T-2", "T-3"] {
        made.push(id_of(&ad_hoc(&app, t, &["u-1"], count(1)).await));
    }
    let a = app.get("/v1/approvals?limit=2").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(ids(&a.body), made[..2].to_vec());
    let cursor = a.body["next_cursor"]
        .as_str()
        .expect("a next cursor")
        .to_string();
    let b = app
        .get(&format!("/v1/approvals?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(ids(&b.body), made[2..].to_vec());
    assert_eq!(b.body["next_cursor"], Value::Null);
    // Full page views, not just ids.
    assert_eq!(
        a.body["items"][0]["stages"][0]["tasks"][0]["approver_id"],
        "u-1"
    );
}

#[tokio::test]
async fn the_list_with_an_invalid_state_or_process_id_is_422() {
    let app = spawn_app().await;
    let a = app.get("/v1/approvals?state=maybe").await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["state"]));
    let a = app.get("/v1/approvals?process_id=nope").await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["process_id"]));
}

/// Lists answer the view each command stored, or build it from a lighter read than
/// `GET /v1/approvals/{id}` (no definition, the engine's state parsed straight into typed
/// values) for an approval stored before views were; either way an item must be that view
/// exactly, whatever the approval went through.
#[tokio::test]
async fn every_listed_approval_is_the_approval_as_read_alone() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3", "u-4"]).await;
    let pid = new_process(&app, two_stage_process(json!({}))).await;
    let staged = id_of(&from_process(&app, "T-1", &pid).await);
    decided(&app, &staged, "u-2", "approve").await;
    let approved = id_of(&ad_hoc(&app, "T-2", &["u-1", "u-2"], count(2)).await);
    decided(&app, &approved, "u-1", "approve").await;
    decided(&app, &approved, "u-2", "approve").await;
    let rejected = id_of(&ad_hoc(&app, "T-3", &["u-1", "u-3"], count(1)).await);
    let a = app
        .post(
            &format!("/v1/approvals/{rejected}/decisions"),
            json!({"approver_id": "u-3", "decision": "reject", "comment": "Not this \"quarter\" ✓"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let cancelled = id_of(&ad_hoc(&app, "T-4", &["u-1"], count(1)).await);
    let a = app
        .post(
            &format!("/v1/approvals/{cancelled}/cancel"),
            json!({"reason": "withdrawn", "actor_id": "admin-1"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let bypassed = id_of(&ad_hoc(&app, "T-5", &["u-4"], count(1)).await);
    let a = app
        .post(
            &format!("/v1/approvals/{bypassed}/bypass"),
            json!({"decision": "approve", "reason": "urgent"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    // u-4 is away: what waits for them waits for u-3 too, as their delegate.
    let away = json!({"delegate_id": "u-3", "starts_at": "2020-01-01T00:00:00Z",
                      "ends_at": "2999-01-01T00:00:00Z"});
    let a = app.put("/v1/principals/u-4/delegation", away).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let delegated = id_of(&ad_hoc(&app, "T-6", &["u-4", "u-1"], count(1)).await);

    let all = [
        &staged, &approved, &rejected, &cancelled, &bypassed, &delegated,
    ];
    let pages = [
        "/v1/approvals?limit=200".to_string(),
        "/v1/approvals?order=desc&limit=2".to_string(),
        "/v1/approvals?state=pending".to_string(),
        format!("/v1/approvals?process_id={pid}"),
        "/v1/approvals?approver_id=u-1".to_string(),
        "/v1/approvals?ticket_id=T-3".to_string(),
        "/v1/principals/u-1/pending-approvals".to_string(),
        "/v1/principals/u-3/pending-approvals".to_string(),
    ];
    // Items are the views commands stored; then, for approvals stored before views were (no
    // view), views built from their rows.
    for stored in [true, false] {
        if !stored {
            use diesel::RunQueryDsl;
            diesel::sql_query("UPDATE approvals SET view = NULL")
                .execute(&mut app.db())
                .unwrap();
        }
        let mut seen = std::collections::BTreeSet::new();
        for path in &pages {
            let a = app.get(path).await;
            assert_eq!(a.status, 200, "{path}: {}", a.text);
            let items = a.body["items"].as_array().expect("items");
            assert!(!items.is_empty(), "{path} is empty");
            for item in items {
                let id = item["id"].as_str().expect("an id");
                assert_eq!(
                    item,
                    &view(&app, id).await,
                    "{path}: {id} (stored: {stored})"
                );
                seen.insert(id.to_string());
            }
        }
        for id in all {
            assert!(seen.contains(id), "{id} was never listed");
        }
    }
}
