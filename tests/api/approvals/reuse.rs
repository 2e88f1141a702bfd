//! Reuse of previous answers in later stages.

use serde_json::json;

use super::helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// 5. Reuse of previous answers

#[tokio::test]
async fn a_reused_answer_decides_a_later_stage_by_itself() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        two_stage_process(json!({"reuse_previous_answers": true})),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-1", "approve").await;
    let t = task(&v, 1, "u-1");
    assert_eq!(t["state"], "reused");
    assert_eq!(t["decision"], "approve");
    assert_eq!(
        t["decided_by"], "u-1",
        "a reused answer records who gave it"
    );
    assert_eq!(task(&v, 1, "u-3")["state"], "superseded");
    assert_eq!(v["stages"][1]["state"], "approved");
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["status_to_set"], "proc-approved");
    let types = event_types(&app, &id).await;
    assert!(
        types.contains(&"approval.stage_advanced".to_string()),
        "{types:?}"
    );
    assert_eq!(types.last().map(String::as_str), Some("approval.approved"));
}

#[tokio::test]
async fn a_reused_answer_counts_but_the_stage_may_still_wait() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Reuse",
            json!({"reuse_previous_answers": true}),
            vec![
                stage(
                    "First",
                    "all",
                    vec![group("first", listed(&["u-1", "u-2"]), count(1))],
                ),
                stage(
                    "Second",
                    "all",
                    vec![group("second", listed(&["u-1", "u-3"]), count(2))],
                ),
            ],
        ),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-1", "approve").await;
    assert_eq!(v["current_stage"], 1);
    assert_eq!(task(&v, 1, "u-1")["state"], "reused");
    assert_eq!(v["stages"][1]["groups"][0]["approved"], 1);
    assert_eq!(v["stages"][1]["groups"][0]["pending"], 1);
    // u-1's reused answer is final in this stage.
    decide(&app, &id, "u-1", "approve")
        .await
        .assert_problem(409, "already_decided");
    let v = decided(&app, &id, "u-3", "approve").await;
    assert_eq!(v["state"], "approved");
}

#[tokio::test]
async fn a_reused_rejection_counts_against_a_later_group() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        two_stage_process(json!({"reuse_previous_answers": true})),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    // Stage 1 needs one of u-1, u-2: u-1 rejects, u-2 approves.
    decided(&app, &id, "u-1", "reject").await;
    let v = decided(&app, &id, "u-2", "approve").await;
    assert_eq!(v["current_stage"], 1);
    let t = task(&v, 1, "u-1");
    assert_eq!(t["state"], "reused");
    assert_eq!(t["decision"], "reject");
    assert_eq!(v["stages"][1]["groups"][0]["rejected"], 1);
    assert_eq!(v["stages"][1]["groups"][0]["pending"], 1);
    let v = decided(&app, &id, "u-3", "reject").await;
    assert_eq!(v["state"], "rejected");
}
