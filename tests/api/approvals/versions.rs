//! Process versions and deleted processes.

use reqwest::Method;
use serde_json::json;

use super::helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// 16. Process versions and deleted processes

#[tokio::test]
async fn a_running_approval_keeps_its_process_version() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let v1 = one_group_process("Versioned", listed(&["u-1"]), count(1));
    let pid = new_process(&app, v1).await;
    let old = from_process(&app, "T-1", &pid).await;
    assert_eq!(old["process"]["version"], 1);

    let v2 = one_group_process("Versioned", listed(&["u-2"]), count(1));
    let a = app
        .call_as(
            &app.token.clone(),
            Method::PUT,
            &format!("/v1/processes/{pid}"),
            Some(v2),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["version"], 2);

    let old_id = id_of(&old);
    let again = view(&app, &old_id).await;
    assert_eq!(again["process"]["version"], 1);
    assert_eq!(asked(&again, 0), strings(&["u-1"]));
    decide(&app, &old_id, "u-2", "approve")
        .await
        .assert_problem(403, "not_an_approver");

    let new = from_process(&app, "T-2", &pid).await;
    assert_eq!(new["process"]["version"], 2);
    assert_eq!(asked(&new, 0), strings(&["u-2"]));

    let done = decided(&app, &old_id, "u-1", "approve").await;
    assert_eq!(done["state"], "approved");
    assert_eq!(done["process"]["version"], 1);
    let by_process = app.get(&format!("/v1/approvals?process_id={pid}")).await;
    assert_eq!(ids(&by_process.body), vec![old_id, id_of(&new)]);
}

#[tokio::test]
async fn a_deleted_process_refuses_new_requests_but_running_ones_finish() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let pid = new_process(
        &app,
        one_group_process("Doomed", listed(&["u-1"]), count(1)),
    )
    .await;
    let running = id_of(&from_process(&app, "T-1", &pid).await);
    assert_eq!(
        app.delete(&format!("/v1/processes/{pid}")).await.status,
        204
    );
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-2"), "process_id": pid}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["process_id"]));
    let v = decided(&app, &running, "u-1", "approve").await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["status_to_set"], "proc-approved");
}
