//! Every group source: listed principals, roles, requester-selected, the requester's manager, ticket fields.

use serde_json::json;

use super::helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// 2. Group sources

#[tokio::test]
async fn principals_group_asks_the_listed_active_principals() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    app.principal("u-off", json!({"active": false})).await;
    let pid = new_process(
        &app,
        one_group_process("Listed", listed(&["u-1", "u-2", "u-off"]), count(1)),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["u-1", "u-2"]));
    assert_eq!(v["process"]["id"], pid.as_str());
    assert_eq!(v["process"]["name"], "Listed");
    assert_eq!(v["process"]["version"], 1);
    assert_eq!(v["stages"][0]["name"], "Approvers");
    assert_eq!(v["stages"][0]["groups"][0]["pending"], 2);
}

#[tokio::test]
async fn role_group_asks_only_active_principals_with_the_role() {
    let app = spawn_app().await;
    app.principal("fin-1", json!({"roles": ["finance"]})).await;
    app.principal("fin-2", json!({"roles": ["cab", "finance"]}))
        .await;
    app.principal("fin-off", json!({"roles": ["finance"], "active": false}))
        .await;
    app.principal("cab-1", json!({"roles": ["cab"]})).await;
    let pid = new_process(
        &app,
        one_group_process(
            "Finance",
            json!({"type": "role", "role": "finance"}),
            json!({"type": "all"}),
        ),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["fin-1", "fin-2"]));
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);
}

#[tokio::test]
async fn requester_selected_group_asks_the_selected_approvers() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2", "u-9"]).await;
    let pid = new_process(
        &app,
        one_group_process("Chosen", json!({"type": "requester_selected"}), count(1)),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": ticket("T-1"), "process_id": pid, "selected_approvers": ["u-9", "u-2"]}),
    )
    .await;
    assert_eq!(asked(&v, 0), strings(&["u-2", "u-9"]));
}

#[tokio::test]
async fn requester_selected_group_without_a_selection_is_422() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let pid = new_process(
        &app,
        one_group_process("Chosen", json!({"type": "requester_selected"}), count(1)),
    )
    .await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "process_id": pid}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["selected_approvers"]));
}

#[tokio::test]
async fn requester_manager_group_asks_the_manager_of_the_ticket_requester() {
    let app = spawn_app().await;
    people(&app, &["boss", "other-boss"]).await;
    app.principal("req", json!({"manager_id": "boss"})).await;
    app.principal("someone", json!({"manager_id": "other-boss"}))
        .await;
    let pid = new_process(
        &app,
        one_group_process("Manager", json!({"type": "requester_manager"}), count(1)),
    )
    .await;
    let v = from_process(&app, "T-1", &pid).await;
    assert_eq!(asked(&v, 0), strings(&["boss"]));
    let v = decided(&app, &id_of(&v), "boss", "approve").await;
    assert_eq!(v["state"], "approved");
    assert_eq!(v["outcome"]["status_to_set"], "proc-approved");
}

#[tokio::test]
async fn ticket_field_group_asks_the_principal_named_in_the_ticket_attributes() {
    let app = spawn_app().await;
    people(&app, &["u-9", "u-1"]).await;
    let pid = new_process(
        &app,
        one_group_process(
            "Owner",
            json!({"type": "ticket_field", "field": "approver_id"}),
            count(1),
        ),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": {"id": "T-1", "requester_id": "req",
                          "attributes": {"approver_id": "u-9", "amount": 5}},
               "process_id": pid}),
    )
    .await;
    assert_eq!(asked(&v, 0), strings(&["u-9"]));
    decide(&app, &id_of(&v), "u-1", "approve")
        .await
        .assert_problem(403, "not_an_approver");
}

#[tokio::test]
async fn an_inactive_or_unknown_selected_approver_is_422_naming_its_index() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    app.principal("u-off", json!({"active": false})).await;
    let pid = new_process(
        &app,
        one_group_process("Chosen", json!({"type": "requester_selected"}), count(1)),
    )
    .await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "process_id": pid,
                   "selected_approvers": ["u-1", "u-off", "ghost"]}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(
        a.error_fields(),
        strings(&["selected_approvers[1]", "selected_approvers[2]"])
    );
}

#[tokio::test]
async fn selected_approvers_on_a_process_without_such_a_group_is_422() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let pid = new_process(
        &app,
        one_group_process("Listed", listed(&["u-1"]), count(1)),
    )
    .await;
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": ticket("T-1"), "process_id": pid, "selected_approvers": ["u-1"]}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), strings(&["selected_approvers"]));
}

#[tokio::test]
async fn a_ticket_field_may_list_several_principals() {
    let app = spawn_app().await;
    people(&app, &["u-1", "u-2"]).await;
    let pid = new_process(
        &app,
        one_group_process(
            "Owners",
            json!({"type": "ticket_field", "field": "owners"}),
            json!({"type": "all"}),
        ),
    )
    .await;
    let v = request(
        &app,
        json!({"ticket": {"id": "T-1", "requester_id": "req",
                          "attributes": {"owners": ["u-1", "u-2", "ghost"]}},
               "process_id": pid}),
    )
    .await;
    assert_eq!(asked(&v, 0), strings(&["u-1", "u-2"]));
    assert_eq!(v["stages"][0]["groups"][0]["required"], 2);
}
