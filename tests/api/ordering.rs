//! `?order=asc|desc` on every list: the same items both ways, pages that follow their cursor in
//! either order, and a cursor refused in the order it was not made for.

use serde_json::{Value, json};

use crate::helpers::{TestApp, simple_process, spawn_app_with};

/// Every item's `id`, following `next_cursor` page by page (two items a page).
async fn walk(app: &TestApp, path: &str, order: Option<&str>) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let order = order.map(|o| format!("&order={o}")).unwrap_or_default();
    let mut seen = vec![];
    let mut cursor = String::new();
    for _ in 0..50 {
        let a = app
            .get(&format!("{path}{sep}limit=2{order}&cursor={cursor}"))
            .await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        let items = a.body["items"].as_array().expect("items");
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return seen,
        }
    }
    panic!("{path}: the cursor never ended");
}

/// The list in both orders: `desc` is `asc` reversed, the default is `default`, and a cursor
/// made in one order is 400 `invalid_cursor` in the other.
async fn check_list(app: &TestApp, path: &str, default: &str, at_least: usize) {
    let asc = walk(app, path, Some("asc")).await;
    assert!(asc.len() >= at_least, "{path}: {asc:?}");
    let mut desc = walk(app, path, Some("desc")).await;
    desc.reverse();
    assert_eq!(asc, desc, "{path}: desc is asc reversed");
    let mut unsaid = walk(app, path, None).await;
    if default == "desc" {
        unsaid.reverse();
    }
    assert_eq!(asc, unsaid, "{path}: the default order is {default}");

    let sep = if path.contains('?') { '&' } else { '?' };
    let first = app.get(&format!("{path}{sep}limit=1&order=asc")).await;
    let cursor = first.body["next_cursor"].as_str().expect("a second page");
    app.get(&format!("{path}{sep}limit=1&order=desc&cursor={cursor}"))
        .await
        .assert_problem(400, "invalid_cursor");
    let a = app.get(&format!("{path}{sep}order=sideways")).await;
    assert_eq!(a.status, 400, "{path}: {}", a.text);
}

#[tokio::test]
async fn every_list_reads_in_both_orders_with_its_cursor() {
    let app = spawn_app_with(&[("SIGNOFF_WEBHOOK_ALLOW_PRIVATE", "true")]).await;
    for id in ["req", "u-1", "u-2"] {
        app.principal(id, json!({})).await;
    }
    let mut endpoint = String::new();
    for i in 0..3 {
        let a = app
            .post(
                "/v1/webhook-endpoints",
                json!({"url": format!("http://127.0.0.1:9/hook{i}"), "events": ["*"]}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        endpoint = a.body["id"].as_str().unwrap().to_string();
    }
    let mut process = Value::Null;
    for i in 0..3 {
        let a = app
            .post("/v1/processes", simple_process(&format!("P{i}")))
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        process = a.body["id"].clone();
        let rule = json!({"name": format!("R{i}"), "on_status": "review", "process_id": process});
        assert_eq!(app.post("/v1/rules", rule).await.status, 201);
    }
    let mut approval = String::new();
    for i in 0..3 {
        let a = app
            .post(
                "/v1/approvals",
                json!({"ticket": {"id": format!("T-{i}"), "title": "Laptop", "requester_id": "req",
                                  "status": "new"}, "process_id": process}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        approval = a.body["id"].as_str().unwrap().to_string();
    }
    let d = app
        .post(
            &format!("/v1/approvals/{approval}/decisions"),
            json!({"approver_id": "u-1", "decision": "approve"}),
        )
        .await;
    assert!(d.status.is_success(), "{}", d.text);

    check_list(&app, "/v1/approvals", "asc", 3).await;
    check_list(&app, "/v1/approvals?state=pending", "asc", 2).await;
    check_list(&app, &format!("/v1/approvals/{approval}/events"), "asc", 2).await;
    check_list(&app, "/v1/principals/u-2/pending-approvals", "asc", 2).await;
    check_list(&app, "/v1/processes", "asc", 3).await;
    check_list(&app, "/v1/rules", "asc", 3).await;
    check_list(&app, "/v1/webhook-endpoints", "asc", 3).await;
    check_list(
        &app,
        &format!("/v1/webhook-endpoints/{endpoint}/deliveries"),
        "desc",
        4,
    )
    .await;
}
