//! The events of an approval: their sequence and paging.

use serde_json::Value;

use super::helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// 10. Events

#[tokio::test]
async fn events_trace_the_life_of_an_approval_in_sequence() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        one_group_process("Trace", listed(&["u-1", "u-2"]), count(1)),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    decided(&app, &id, "u-2", "approve").await;
    let evs = events(&app, &id).await;
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        vec![
            "approval.requested",
            "approval.decision_recorded",
            "approval.approved"
        ]
    );
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["sequence"], i as i64 + 1, "{e}");
        assert_eq!(e["data"]["sequence"], i as i64 + 1, "{e}");
        assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{e}");
        assert!(e["created_at"].is_string());
        assert_eq!(e["data"]["approval"]["id"], id.as_str());
        assert_eq!(e["data"]["ticket"]["id"], "T-1");
    }
    let mut seen: Vec<&str> = evs.iter().map(|e| e["id"].as_str().unwrap()).collect();
    seen.dedup();
    assert_eq!(seen.len(), 3);

    let requested = &evs[0];
    assert_eq!(recipient_ids(requested), strings(&["u-1", "u-2"]));
    for r in requested["data"]["recipients"].as_array().unwrap() {
        let p = &r["principal"];
        let pid = p["id"].as_str().unwrap();
        assert_eq!(p["email"], format!("{pid}@example.com"));
    }
    assert_eq!(requested["data"]["approval"]["state"], "pending");
    assert_eq!(requested["data"]["ticket"]["status_to_set"], Value::Null);

    let outcome = &evs[2];
    assert_eq!(outcome["data"]["approval"]["state"], "approved");
    assert_eq!(outcome["data"]["ticket"]["status_to_set"], "proc-approved");
    assert_eq!(
        outcome["data"]["approval"]["outcome"]["status_to_set"],
        "proc-approved"
    );
}

#[tokio::test]
async fn events_page_one_at_a_time_with_limit_1() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let id = id_of(&ad_hoc(&app, "T-1", &["u-1", "u-2"], count(1)).await);
    decided(&app, &id, "u-1", "approve").await;
    let all = events(&app, &id).await;
    assert_eq!(all.len(), 3);
    let mut got = vec![];
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            None => format!("/v1/approvals/{id}/events?limit=1"),
            Some(c) => format!("/v1/approvals/{id}/events?limit=1&cursor={c}"),
        };
        let a = app.get(&path).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let items = a.body["items"].as_array().unwrap();
        assert!(items.len() <= 1);
        got.extend(items.iter().cloned());
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let seqs: Vec<i64> = got
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(got, all);
}

#[tokio::test]
async fn events_of_an_unknown_approval_are_404() {
    let app = spawn_app().await;
    app.get("/v1/approvals/018f0000-0000-7000-8000-000000000000/events")
        .await
        .assert_problem(404, "not_found");
    app.get("/v1/approvals/not-a-uuid")
        .await
        .assert_problem(404, "not_found");
}
