//! Processes: validation, versions and ETags, listing, delete and restore.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

fn api_example() -> Value {
    json!({
        "name": "Laptop purchase",
        "description": "Hardware over 1000 EUR",
        "expires_at": "2099-06-30T00:00:00Z",
        "on_approved_status": "approved",
        "on_rejected_status": "rejected",
        "settings": {"allow_self_approval": false, "reuse_previous_answers": true,
                     "reject_requires_comment": true, "one_active_per_ticket": true,
                     "when_no_approvers": "refuse"},
        "stages": [
            {"name": "Manager", "combine": "all",
             "groups": [{"name": "manager", "source": {"type": "requester_manager"},
                         "require": {"type": "count", "count": 1}}],
             "timeout": {"after": "PT48H", "calendar_id": "office", "outcome": "reject"},
             "reminders": {"every": "PT24H", "max": 2},
             "substitutes": {"notify_at_percent": 80, "source": {"type": "approver_manager"}}},
            {"name": "Finance", "combine": "any",
             "groups": [{"name": "finance", "source": {"type": "role", "role": "finance"},
                         "require": {"type": "majority"}},
                        {"name": "cfo", "source": {"type": "principals", "ids": ["u-1"]},
                         "require": {"type": "all"}}]}
        ],
        "templates": {"default_locale": "en",
                      "locales": {"en": {"subject": "Approve {{ ticket.title }}",
                                         "text": "Please decide", "html": "<p>Please decide</p>"}}}
    })
}

async fn office_calendar(app: &TestApp) {
    let c = app
        .put(
            "/v1/calendars/office",
            json!({"time_zone": "Europe/London", "weekly": {"mon": [["09:00", "17:00"]]}}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
}

#[tokio::test]
async fn the_api_example_creates_a_process() {
    let app = spawn_app().await;
    let missing = app.post("/v1/processes", api_example()).await;
    missing.assert_problem(422, "validation_failed");
    assert_eq!(missing.error_fields(), ["stages[0].timeout.calendar_id"]);
    office_calendar(&app).await;
    let a = app.post("/v1/processes", api_example()).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.header("etag"), Some("\"1\""));
    assert_eq!(a.body["version"], 1);
    assert_eq!(a.body["enabled"], true);
    assert!(a.body["id"].is_string());
    assert!(a.body["created_at"].is_string());
    for key in [
        "name",
        "description",
        "on_approved_status",
        "settings",
        "stages",
        "templates",
    ] {
        let mut expected = api_example();
        // Settings the example leaves out answer with their defaults.
        expected["settings"]["when_short"] = json!("refuse");
        expected["settings"]["allow_reassign"] = json!(true);
        expected["settings"]["allow_add_approver"] = json!(false);
        expected["settings"]["allow_abstain"] = json!(false);
        expected["settings"]["manual_reminders"] = json!(true);
        assert_eq!(a.body[key], expected[key], "{key}");
    }
    let got = app
        .get(&format!("/v1/processes/{}", a.body["id"].as_str().unwrap()))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, a.body);
}

#[tokio::test]
async fn invalid_definition_lists_every_fault() {
    let app = spawn_app().await;
    let mut body = api_example();
    body["stages"][1]["groups"][1]["require"] = json!({"type": "count", "count": 3});
    body["stages"][1]["groups"][0]["source"] = json!({"type": "astrologer"});
    body["stages"][1]["groups"][1]["name"] = json!("manager");
    body["settings"]["when_no_approvers"] = json!("shrug");
    let a = app.post("/v1/processes", body).await;
    a.assert_problem(422, "validation_failed");
    let fields = a.error_fields();
    for f in [
        "stages[1].groups[0].source.type",
        "settings.when_no_approvers",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} not in {fields:?}");
    }
    let empty = app
        .post("/v1/processes", json!({"name": "x", "stages": []}))
        .await;
    empty.assert_problem(422, "validation_failed");
    assert_eq!(empty.error_fields(), ["stages"]);
}

#[tokio::test]
async fn semantic_faults_are_listed_together() {
    let app = spawn_app().await;
    let mut body = api_example();
    body["stages"][1]["groups"][1]["require"] = json!({"type": "count", "count": 3});
    body["stages"][1]["groups"][1]["name"] = json!("Manager");
    let a = app.post("/v1/processes", body).await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(
        a.error_fields(),
        [
            "stages[1].groups[1].require.count",
            "stages[1].groups[1].name"
        ]
    );
}

#[tokio::test]
async fn names_are_unique_per_tenant_ignoring_case() {
    let app = spawn_app().await;
    assert_eq!(
        app.post("/v1/processes", simple_process("Laptops"))
            .await
            .status,
        201
    );
    app.post("/v1/processes", simple_process("laptops"))
        .await
        .assert_problem(409, "process_name_taken");
}

#[tokio::test]
async fn update_needs_if_match_and_makes_a_new_version() {
    let app = spawn_app().await;
    let created = app.post("/v1/processes", simple_process("P")).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let path = format!("/v1/processes/{id}");
    let mut next = simple_process("P renamed");
    next["description"] = json!("second version");

    let a = app.call(Method::PUT, &path, Some(next.clone())).await;
    a.assert_problem(428, "if_match_required");

    let t = app.token.clone();
    let a = app
        .call_as(
            &t,
            Method::PUT,
            &path,
            Some(next.clone()),
            &[("if-match", "\"7\"")],
        )
        .await;
    a.assert_problem(412, "version_mismatch");

    let a = app
        .call_as(
            &t,
            Method::PUT,
            &path,
            Some(next.clone()),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["version"], 2);
    assert_eq!(a.header("etag"), Some("\"2\""));
    assert_eq!(a.body["name"], "P renamed");

    // Both versions are kept: running approvals read the one they started with.
    #[derive(diesel::QueryableByName)]
    struct Versions {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel::RunQueryDsl;
    let stored: Versions = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM process_versions WHERE process_id = '{id}'"
    ))
    .get_result(&mut app.db())
    .unwrap();
    assert_eq!(stored.n, 2);

    // The old ETag is now stale.
    let a = app
        .call_as(&t, Method::PUT, &path, Some(next), &[("if-match", "\"1\"")])
        .await;
    a.assert_problem(412, "version_mismatch");
}

#[tokio::test]
async fn concurrent_updates_with_the_same_etag_make_exactly_one_version() {
    let app = spawn_app().await;
    let created = app.post("/v1/processes", simple_process("Race")).await;
    let path = format!("/v1/processes/{}", created.body["id"].as_str().unwrap());
    let t = app.token.clone();
    let calls = (0..8).map(|i| {
        let mut body = simple_process("Race");
        body["description"] = json!(format!("writer {i}"));
        let (app, path, t) = (&app, path.clone(), t.clone());
        async move {
            app.call_as(&t, Method::PUT, &path, Some(body), &[("if-match", "\"1\"")])
                .await
                .status
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(app.get(&path).await.body["version"], 2);
}

#[tokio::test]
async fn list_pages_with_cursors_and_filters_by_enabled() {
    let app = spawn_app().await;
    let mut ids = vec![];
    for i in 0..5 {
        let a = app
            .post("/v1/processes", simple_process(&format!("P{i}")))
            .await;
        ids.push(a.body["id"].as_str().unwrap().to_string());
    }
    app.delete(&format!("/v1/processes/{}", ids[4])).await;
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/processes?limit=2&cursor={c}"),
            None => "/v1/processes?limit=2".to_string(),
        };
        let page = app.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids[..4]);
    assert_eq!(
        app.get("/v1/processes?enabled=true").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        app.get("/v1/processes?enabled=false").await.body["items"],
        json!([])
    );
}

#[tokio::test]
async fn deleted_process_is_gone_and_cannot_be_restored() {
    let app = spawn_app().await;
    let created = app.post("/v1/processes", simple_process("Doomed")).await;
    let path = format!("/v1/processes/{}", created.body["id"].as_str().unwrap());
    assert_eq!(app.delete(&path).await.status, 204);
    app.get(&path).await.assert_problem(404, "not_found");
    app.delete(&path).await.assert_problem(404, "not_found");
    app.post(
        &format!("{path}/restore"),
        json!({"expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await
    .assert_problem(404, "not_found");
    // The name is free again.
    assert_eq!(
        app.post("/v1/processes", simple_process("Doomed"))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn an_expired_process_is_disabled_and_restore_enables_it() {
    let app = spawn_app_with_clock(
        &[("SIGNOFF_WORKER", "false")],
        signoff::clock::Clock::manual(chrono::Utc::now()),
    )
    .await;
    let mut body = simple_process("Soon");
    let soon = app.clock.now() + chrono::Duration::seconds(1);
    body["expires_at"] = json!(soon.to_rfc3339());
    let created = app.post("/v1/processes", body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("/v1/processes/{}", created.body["id"].as_str().unwrap());
    app.post(&format!("{path}/restore"), json!({"expires_at": null}))
        .await
        .assert_problem(409, "process_not_disabled");
    // A read sees the expiry by itself, at the app's time: no worker needed.
    app.clock.advance(chrono::Duration::seconds(2));
    let got = app.get(&path).await;
    assert_eq!(got.body["enabled"], false);
    assert_eq!(got.body["disabled_reason"], "expired");
    assert_eq!(
        app.get("/v1/processes?enabled=false").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    app.post(
        &format!("{path}/restore"),
        json!({"expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let restored = app
        .post(
            &format!("{path}/restore"),
            json!({"expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(restored.status, 200, "{}", restored.text);
    assert_eq!(restored.body["enabled"], true);
    assert_eq!(restored.body["expires_at"], "2099-01-01T00:00:00Z");
}

#[tokio::test]
async fn malformed_process_ids_are_404() {
    let app = spawn_app().await;
    app.get("/v1/processes/not-a-uuid")
        .await
        .assert_problem(404, "not_found");
}
