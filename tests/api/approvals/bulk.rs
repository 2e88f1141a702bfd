//! Bulk decisions.

use serde_json::{Value, json};

use super::helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// 11. Bulk decisions

#[tokio::test]
async fn bulk_decisions_answer_per_item_and_apply_the_valid_ones() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let a = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let b = id_of(&ad_hoc(&app, "T-2", &["u-1", "u-2"], count(2)).await);
    let closed = id_of(&ad_hoc(&app, "T-3", &["u-1"], count(1)).await);
    decided(&app, &closed, "u-1", "approve").await;
    let unknown = "018f0000-0000-7000-8000-000000000000";
    let res = app
        .post(
            "/v1/decisions/bulk",
            json!({"items": [
                {"approval_id": a, "approver_id": "u-1", "decision": "approve"},
                {"approval_id": b, "approver_id": "u-9", "decision": "approve"},
                {"approval_id": unknown, "approver_id": "u-1", "decision": "approve"},
                {"approval_id": closed, "approver_id": "u-1", "decision": "approve"},
                {"approval_id": b, "approver_id": "u-2", "decision": "approve"},
                {"approval_id": b, "approver_id": "u-2", "decision": "reject"},
            ]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let results = res.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 403, 404, 409, 200, 409]);
    let codes: Vec<Value> = results.iter().map(|r| r["error"]["code"].clone()).collect();
    assert_eq!(
        codes,
        vec![
            Value::Null,
            json!("not_an_approver"),
            json!("not_found"),
            json!("approval_closed"),
            Value::Null,
            json!("already_decided"),
        ]
    );
    assert_eq!(results[0]["error"], Value::Null);
    assert_eq!(results[1]["approval_id"], b.as_str());
    assert_eq!(results[1]["error"]["status"], 403);
    assert_eq!(results[2]["approval_id"], unknown);
    assert_eq!(view(&app, &a).await["state"], "approved");
    let vb = view(&app, &b).await;
    assert_eq!(vb["state"], "pending");
    assert_eq!(task(&vb, 0, "u-2")["state"], "approved");
}

#[tokio::test]
async fn bulk_items_with_a_bad_decision_are_422_with_the_item_path() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let a = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let res = app
        .post(
            "/v1/decisions/bulk",
            json!({"items": [
                {"approval_id": a, "approver_id": "u-1", "decision": "perhaps"},
                {"approval_id": a, "approver_id": "u-1", "decision": "approve"},
            ]}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let r = &res.body["results"];
    assert_eq!(r[0]["status"], 422);
    assert_eq!(r[0]["error"]["code"], "validation_failed");
    assert_eq!(r[0]["error"]["errors"][0]["field"], "items[0].decision");
    assert_eq!(r[1]["status"], 200);
    assert_eq!(view(&app, &a).await["state"], "approved");

    let too_many: Vec<Value> = (0..101)
        .map(|_| json!({"approval_id": a, "approver_id": "u-1", "decision": "approve"}))
        .collect();
    let res = app
        .post("/v1/decisions/bulk", json!({"items": too_many}))
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.error_fields(), strings(&["items"]));
}
