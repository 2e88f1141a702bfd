//! Requirements (count, first reply, majority, percent, reject_at) and stages.

use serde_json::json;

use super::helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// 4. Requirements and stages

#[tokio::test]
async fn count_1_of_2_stays_pending_after_one_reject_and_rejects_after_two() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        one_group_process("One of two", listed(&["u-1", "u-2"]), count(1)),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-1", "reject").await;
    assert_eq!(v["state"], "pending");
    assert_eq!(
        v["stages"][0]["groups"][0],
        json!({"name": "approvers", "state": "pending", "required": 1,
               "approved": 0, "rejected": 1, "pending": 1,
               "capped_from": null, "skip_reason": null, "removed": []})
    );
    let v = decided(&app, &id, "u-2", "reject").await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["outcome"]["decision"], "rejected");
    assert_eq!(v["outcome"]["status_to_set"], "proc-rejected");
}

#[tokio::test]
async fn count_2_of_2_is_rejected_by_one_reject() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        one_group_process("Two of two", listed(&["u-1", "u-2"]), count(2)),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-1", "approve").await;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 1);
    let v = decided(&app, &id, "u-2", "reject").await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["stages"][0]["groups"][0]["state"], "rejected");
}

#[tokio::test]
async fn first_reply_decides_the_group_with_the_first_answer_even_a_reject() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let v = ad_hoc(
        &app,
        "T-1",
        &["u-1", "u-2", "u-3"],
        json!({"type": "first_reply"}),
    )
    .await;
    let line = v["waiting_for"][0].as_str().unwrap();
    assert!(line.contains("an answer"), "{line}");
    let v = decided(&app, &id_of(&v), "u-2", "reject").await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(task(&v, 0, "u-1")["state"], "superseded");
}

#[tokio::test]
async fn majority_of_three_needs_two_approvals() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let v = ad_hoc(
        &app,
        "T-1",
        &["u-1", "u-2", "u-3"],
        json!({"type": "majority"}),
    )
    .await;
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);
    let id = id_of(&v);
    assert_eq!(
        decided(&app, &id, "u-1", "approve").await["state"],
        "pending"
    );
    assert_eq!(
        decided(&app, &id, "u-3", "reject").await["state"],
        "pending"
    );
    assert_eq!(
        decided(&app, &id, "u-2", "approve").await["state"],
        "approved"
    );
}

#[tokio::test]
async fn percent_is_rounded_up_and_rejects_when_out_of_reach() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    // 50% of 3 is 1.5, rounded up to 2.
    let v = ad_hoc(
        &app,
        "T-1",
        &["u-1", "u-2", "u-3"],
        json!({"type": "percent", "percent": 50}),
    )
    .await;
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);
    let id = id_of(&v);
    assert_eq!(
        decided(&app, &id, "u-1", "approve").await["state"],
        "pending"
    );
    assert_eq!(
        decided(&app, &id, "u-2", "reject").await["state"],
        "pending"
    );
    let v = decided(&app, &id, "u-3", "reject").await;
    assert_eq!(v["state"], "rejected");
}

#[tokio::test]
async fn reject_at_rejects_before_the_requirement_is_out_of_reach() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        one_group_process(
            "Veto",
            listed(&["u-1", "u-2", "u-3"]),
            json!({"type": "count", "count": 1, "reject_at": 1}),
        ),
    )
    .await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-3", "reject").await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["stages"][0]["groups"][0]["pending"], 0);
}

#[tokio::test]
async fn approving_the_first_stage_advances_to_the_second() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(&app, two_stage_process(json!({}))).await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(v["stages"][1]["state"], "waiting");
    assert_eq!(v["stages"][1]["groups"][0]["state"], "waiting");
    let id = id_of(&v);
    // A stage-2 approver cannot answer while stage 1 runs.
    decide(&app, &id, "u-3", "approve")
        .await
        .assert_problem(403, "not_an_approver");
    let v = decided(&app, &id, "u-2", "approve").await;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["current_stage"], 1);
    assert_eq!(v["stages"][0]["state"], "approved");
    assert_eq!(v["stages"][1]["state"], "pending");
    assert_eq!(task(&v, 0, "u-1")["state"], "superseded");
    // Without reuse, u-1 is asked again in stage 2.
    assert_eq!(task(&v, 1, "u-1")["state"], "pending");
    let types = event_types(&app, &id).await;
    assert_eq!(
        types,
        strings(&[
            "approval.requested",
            "approval.decision_recorded",
            "approval.stage_advanced",
            "approval.requested",
        ])
    );
    let evs = events(&app, &id).await;
    assert_eq!(recipient_ids(&evs[3]), strings(&["u-1", "u-3"]));

    let v = decided(&app, &id, "u-3", "approve").await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["status_to_set"], "proc-approved");
    assert_eq!(v["stages"][1]["state"], "approved");
}

#[tokio::test]
async fn a_rejected_first_stage_rejects_the_approval_and_skips_the_rest() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(&app, two_stage_process(json!({}))).await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    decided(&app, &id, "u-1", "reject").await;
    let v = decided(&app, &id, "u-2", "reject").await;
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["outcome"]["status_to_set"], "proc-rejected");
    assert_eq!(v["stages"][1]["state"], "skipped");
    // The second stage never started: nobody in it was asked.
    assert_eq!(v["stages"][1]["tasks"], json!([]));
    assert_eq!(v["stages"][1]["skip_reason"], "closed");
}

#[tokio::test]
async fn request_from_asks_only_the_named_group_of_an_any_stage() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Either",
            json!({}),
            vec![stage(
                "Finance",
                "any",
                vec![
                    group("finance", listed(&["u-1", "u-2"]), count(1)),
                    group("cfo", listed(&["u-3"]), json!({"type": "all"})),
                ],
            )],
        ),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": ticket("T-1"), "process_id": pid, "request_from": "cfo"}),
    )
    .await;
    assert_eq!(asked(&v, 0), strings(&["u-3"]));
    assert_eq!(v["stages"][0]["groups"][0]["state"], "skipped");
    assert_eq!(v["stages"][0]["groups"][1]["state"], "pending");
    let id = id_of(&v);
    decide(&app, &id, "u-1", "approve")
        .await
        .assert_problem(403, "not_an_approver");
    let v = decided(&app, &id, "u-3", "approve").await;
    assert_eq!(v["state"], "approved");

    // Naming a group that is not in an `any` stage is refused.
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-2"), "process_id": pid, "request_from": "nobody"}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["request_from"]));
}

#[tokio::test]
async fn one_person_in_two_groups_of_a_stage_decides_once_for_both() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Overlap",
            json!({}),
            vec![stage(
                "Both",
                "all",
                vec![
                    group("left", listed(&["u-1", "u-2"]), count(1)),
                    group("right", listed(&["u-1", "u-3"]), count(1)),
                ],
            )],
        ),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["u-1", "u-2", "u-3"]));
    assert_eq!(v["waiting_for"].as_array().unwrap().len(), 2);
    let id = id_of(&v);
    let v = decided(&app, &id, "u-1", "approve").await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 1);
    assert_eq!(v["stages"][0]["groups"][1]["approved"], 1);
    assert_eq!(v["stages"][0]["groups"][0]["state"], "approved");
    assert_eq!(v["stages"][0]["groups"][1]["state"], "approved");
    let recorded = event_types(&app, &id)
        .await
        .iter()
        .filter(|t| *t == "approval.decision_recorded")
        .count();
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn an_empty_stage_is_skipped_on_the_way_to_the_next() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Gap",
            json!({}),
            vec![
                stage(
                    "First",
                    "all",
                    vec![group("first", listed(&["u-1"]), count(1))],
                ),
                stage(
                    "Nobody",
                    "all",
                    vec![group(
                        "nobody",
                        json!({"type": "role", "role": "astronaut"}),
                        count(1),
                    )],
                ),
                stage(
                    "Third",
                    "all",
                    vec![group("third", listed(&["u-3"]), count(1))],
                ),
            ],
        ),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    // Approvers are read when a stage starts: until then the stage waits.
    assert_eq!(v["stages"][1]["state"], "waiting");
    let id = id_of(&v);
    let v = decided(&app, &id, "u-1", "approve").await;
    assert_eq!(v["current_stage"], 2);
    assert_eq!(v["stages"][1]["state"], "skipped");
    assert_eq!(v["stages"][1]["skip_reason"], "no_approvers");
    assert_eq!(v["stages"][2]["state"], "pending");
    let evs = events(&app, &id).await;
    let advanced = evs
        .iter()
        .find(|e| e["type"] == "approval.stage_advanced")
        .expect("a stage_advanced event");
    assert_eq!(advanced["data"]["detail"]["from"], 0);
    assert_eq!(advanced["data"]["detail"]["to"], 2);
    assert_eq!(recipient_ids(evs.last().unwrap()), strings(&["u-3"]));
    assert_eq!(
        decided(&app, &id, "u-3", "approve").await["state"],
        "approved"
    );
}

#[tokio::test]
async fn a_member_of_the_unasked_group_is_asked_when_the_named_group_holds_them() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-3"]).await;
    let pid = new_process(
        &app,
        process(
            "Either",
            json!({}),
            vec![stage(
                "Finance",
                "any",
                vec![
                    group("finance", listed(&["u-1", "u-2"]), count(1)),
                    group("cfo", listed(&["u-2", "u-3"]), count(2)),
                ],
            )],
        ),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": ticket("T-1"), "process_id": pid, "request_from": "cfo"}),
    )
    .await;
    assert_eq!(asked(&v, 0), strings(&["u-2", "u-3"]));
    let id = id_of(&v);
    // u-2's approval would approve `finance` (count 1) but that group was not asked.
    let v = decided(&app, &id, "u-2", "approve").await;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["stages"][0]["groups"][0]["state"], "skipped");
    assert_eq!(v["stages"][0]["groups"][0]["approved"], 0);
    assert_eq!(v["stages"][0]["groups"][1]["approved"], 1);
    assert_eq!(
        decided(&app, &id, "u-3", "approve").await["state"],
        "approved"
    );
}

#[tokio::test]
async fn an_any_stage_with_decide_first_group_is_rejected_by_the_first_group_to_reject() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let mut body = process(
        "First group decides",
        json!({}),
        vec![stage(
            "Any",
            "any",
            vec![
                group("it", listed(&["u-1"]), count(1)),
                group("finance", listed(&["u-2"]), count(1)),
            ],
        )],
    );
    body["stages"][0]["decide"] = json!("first_group");
    let pid = new_process(&app, body.clone()).await;
    let id = id_of(&from_process(&app, "T-1", &pid).await);
    let v = decided(&app, &id, "u-1", "reject").await;
    assert_eq!(v["state"], "rejected", "{v}");
    assert_eq!(v["outcome"]["status_to_set"], "proc-rejected");
    let got = app.get(&format!("/v1/processes/{pid}")).await;
    assert_eq!(got.body["stages"][0]["decide"], "first_group");

    // Only `any` stages take it.
    body["name"] = json!("Not any");
    body["stages"][0]["combine"] = json!("all");
    let a = app.post("/v1/processes", body).await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.error_fields(), vec!["stages[0].decide"]);
}
