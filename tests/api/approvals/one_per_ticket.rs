//! One active approval per ticket, superseding, and processes that allow several.

use serde_json::{Value, json};

use super::helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// 7. One active approval per ticket

#[tokio::test]
async fn a_second_request_on_a_ticket_is_409_naming_the_pending_approval() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let first = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "approvers": ["u-1"]}),
        )
        .await;
    a.assert_problem(409, "approval_pending");
    assert_eq!(a.body["pending_approval_id"], first.as_str());
    // Another ticket is not affected, and once decided the ticket can be asked again.
    ad_hoc(&app, "T-2", &["u-1"], count(1)).await;
    decided(&app, &first, "u-1", "approve").await;
    ad_hoc(&app, "T-1", &["u-1"], count(1)).await;
}

#[tokio::test]
async fn supersede_cancels_the_pending_approval_and_starts_anew() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let old = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let new = request(
        &app,
        json!({"ticket": ticket("T-1"), "approvers": ["u-2"], "supersede": true,
               "requested_by": "u-5"}),
    )
    .await;
    assert_eq!(new["state"], "pending");
    assert_ne!(id_of(&new), old);
    let o = view(&app, &old).await;
    assert_eq!(o["state"], "cancelled");
    assert_eq!(o["outcome"], Value::Null);
    assert_eq!(task(&o, 0, "u-1")["state"], "superseded");
    let types = event_types(&app, &old).await;
    assert_eq!(types.last().map(String::as_str), Some("approval.cancelled"));
    decide(&app, &old, "u-1", "approve")
        .await
        .assert_problem(409, "approval_closed");
    let pending = app.get("/v1/approvals?ticket_id=T-1&state=pending").await;
    assert_eq!(ids(&pending.body), vec![id_of(&new)]);
}

#[tokio::test]
async fn a_process_allowing_several_lets_two_approvals_be_pending_on_a_ticket() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let pid = new_process(
        &app,
        process(
            "Many",
            json!({"one_active_per_ticket": false}),
            vec![stage(
                "Approvers",
                "all",
                vec![group("approvers", listed(&["u-1"]), count(1))],
            )],
        ),
    )
    .await;
    let a = id_of(&from_process(&app, "T-1", &pid).await);
    let b = id_of(&from_process(&app, "T-1", &pid).await);
    assert_ne!(a, b);
    let list = app.get("/v1/approvals?ticket_id=T-1&state=pending").await;
    assert_eq!(ids(&list.body), vec![a, b]);
}
