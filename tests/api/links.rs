//! Approver links and the hosted page over HTTP: rendered messages, one use only, a GET never
//! decides, each way a link stops working has its own code.

use diesel::RunQueryDsl;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The recipients of the approval's events of `kind`, newest last.
async fn recipients(app: &TestApp, approval: &str, kind: &str) -> Vec<Value> {
    let events = app
        .get(&format!("/v1/approvals/{approval}/events?limit=200"))
        .await;
    events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .flat_map(|e| {
            e["data"]["recipients"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn token_of(url: &str) -> String {
    url.rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string()
}

/// A link token for `approver` from the approval.requested event.
async fn token_for(app: &TestApp, approval: &str, approver: &str) -> String {
    let r = recipients(app, approval, "approval.requested").await;
    let mine = r
        .iter()
        .find(|r| r["principal"]["id"] == approver)
        .expect("a recipient");
    token_of(mine["page_url"].as_str().unwrap())
}

async fn ad_hoc(app: &TestApp, approvers: &[&str], require: Value) -> String {
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-1", "title": "New laptop & dock", "attributes": {"amount": 1800}},
                   "approvers": approvers, "require": require, "description": "For the new hire",
                   "requested_by": "tech-9"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

async fn anon(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Answer {
    app.call_as("", method, path, body, &[]).await
}

#[tokio::test]
async fn the_requested_event_carries_links_and_a_message_in_the_approvers_language() {
    let app = spawn_app().await;
    app.principal(
        "u-1",
        json!({"locale": "fr-CA", "display_name": "Ada <Admin>"}),
    )
    .await;
    app.principal("u-2", json!({"locale": "de"})).await;
    let id = ad_hoc(&app, &["u-1", "u-2"], json!({"type": "count", "count": 1})).await;
    let r = recipients(&app, &id, "approval.requested").await;
    assert_eq!(r.len(), 2);
    let fr = r.iter().find(|r| r["principal"]["id"] == "u-1").unwrap();
    let page = fr["page_url"].as_str().unwrap();
    assert!(page.starts_with("http://signoff.test/a/"), "{page}");
    assert_eq!(fr["approve_url"], format!("{page}?decision=approve"));
    assert_eq!(fr["reject_url"], format!("{page}?decision=reject"));
    assert!(token_of(page).len() >= 43, "at least 256 bits, base64url");
    assert_eq!(
        fr["message"]["subject"],
        "Approbation requise : New laptop & dock"
    );
    let text = fr["message"]["text"].as_str().unwrap();
    assert!(text.contains("Bonjour Ada <Admin>") && text.contains(page));
    let html = fr["message"]["html"].as_str().unwrap();
    assert!(html.contains("Ada &lt;Admin&gt;") && html.contains("New laptop &amp; dock"));
    let de = r.iter().find(|r| r["principal"]["id"] == "u-2").unwrap();
    assert!(
        de["message"]["subject"]
            .as_str()
            .unwrap()
            .starts_with("Genehmigung erforderlich")
    );
    assert_ne!(token_of(de["page_url"].as_str().unwrap()), token_of(page));
}

#[tokio::test]
async fn a_link_decides_once_and_then_says_who_decided() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let id = ad_hoc(&app, &["u-1"], json!({"type": "count", "count": 1})).await;
    let token = token_for(&app, &id, "u-1").await;
    let path = format!("/v1/links/{token}");

    let got = anon(&app, Method::GET, &path, None).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.header("cache-control"), Some("no-store"));
    assert_eq!(got.body["approver"]["id"], "u-1");
    assert_eq!(got.body["actions"], json!(["approve", "reject"]));
    assert_eq!(got.body["reject_requires_comment"], false);
    assert_eq!(got.body["approval"]["id"], id.as_str());
    // Reading the link decided nothing.
    assert_eq!(
        app.get(&format!("/v1/approvals/{id}")).await.body["state"],
        "pending"
    );

    let done = anon(
        &app,
        Method::POST,
        &path,
        Some(json!({"decision": "approve", "comment": "ok"})),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["approval"]["state"], "approved");
    assert_eq!(done.body["actions"], json!([]));
    let task = &done.body["approval"]["stages"][0]["tasks"][0];
    assert_eq!(task["comment"], "ok");
    assert_eq!(task["decided_by"], "u-1");

    let again = anon(
        &app,
        Method::POST,
        &path,
        Some(json!({"decision": "reject"})),
    )
    .await;
    again.assert_problem(410, "link_used");
    let read = anon(&app, Method::GET, &path, None).await;
    read.assert_problem(410, "link_used");
    assert_eq!(read.body["decided_by"], "u-1");
    assert_eq!(read.body["decision"], "approve");
}

#[tokio::test]
async fn unknown_tokens_are_404() {
    let app = spawn_app().await;
    anon(&app, Method::GET, "/v1/links/nope", None)
        .await
        .assert_problem(404, "link_not_found");
    anon(
        &app,
        Method::POST,
        "/v1/links/nope",
        Some(json!({"decision": "approve"})),
    )
    .await
    .assert_problem(404, "link_not_found");
}

#[tokio::test]
async fn a_link_stops_when_its_task_is_answered_elsewhere_or_the_approval_ends() {
    let app = spawn_app().await;
    for p in ["u-1", "u-2", "u-3"] {
        app.principal(p, json!({})).await;
    }
    let id = ad_hoc(&app, &["u-1", "u-2", "u-3"], json!({"type": "all"})).await;
    let t1 = token_for(&app, &id, "u-1").await;
    let t2 = token_for(&app, &id, "u-2").await;
    // u-1 answers through the API: their link is superseded.
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-1", "decision": "approve"}),
        )
        .await;
    assert_eq!(a.status, 200);
    anon(&app, Method::GET, &format!("/v1/links/{t1}"), None)
        .await
        .assert_problem(410, "link_superseded");
    // u-3 rejects: the approval ends and u-2's link is closed.
    let a = app
        .post(
            &format!("/v1/approvals/{id}/decisions"),
            json!({"approver_id": "u-3", "decision": "reject"}),
        )
        .await;
    assert_eq!(a.body["state"], "rejected", "{}", a.text);
    anon(
        &app,
        Method::POST,
        &format!("/v1/links/{t2}"),
        Some(json!({"decision": "approve"})),
    )
    .await
    .assert_problem(410, "link_closed");
}

#[tokio::test]
async fn an_expired_link_is_410() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let id = ad_hoc(&app, &["u-1"], json!({"type": "count", "count": 1})).await;
    let token = token_for(&app, &id, "u-1").await;
    diesel::sql_query("UPDATE approval_links SET expires_at = now() - interval '1 minute'")
        .execute(&mut app.db())
        .unwrap();
    anon(&app, Method::GET, &format!("/v1/links/{token}"), None)
        .await
        .assert_problem(410, "link_expired");
}

async fn process_requiring_comment(app: &TestApp) -> String {
    let p = app
        .post(
            "/v1/processes",
            json!({"name": "Strict", "settings": {"reject_requires_comment": true},
                   "stages": [{"name": "Boss", "groups": [{"name": "boss",
                     "source": {"type": "principals", "ids": ["u-1"]}, "require": {"type": "all"}}]}]}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-9"}, "process_id": p.body["id"]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_rejection_without_a_required_comment_is_422_and_leaves_the_link_usable() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let id = process_requiring_comment(&app).await;
    let token = token_for(&app, &id, "u-1").await;
    let path = format!("/v1/links/{token}");
    assert_eq!(
        anon(&app, Method::GET, &path, None).await.body["reject_requires_comment"],
        true
    );
    let a = anon(
        &app,
        Method::POST,
        &path,
        Some(json!({"decision": "reject", "comment": "  "})),
    )
    .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), ["comment"]);
    let b = anon(
        &app,
        Method::POST,
        &path,
        Some(json!({"decision": "reject", "comment": "Too expensive"})),
    )
    .await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.body["approval"]["state"], "rejected");
}

#[tokio::test]
async fn the_page_preselects_the_choice_and_never_decides_on_get() {
    let app = spawn_app().await;
    app.principal("u-1", json!({"locale": "de"})).await;
    let id = ad_hoc(&app, &["u-1"], json!({"type": "count", "count": 1})).await;
    let token = token_for(&app, &id, "u-1").await;
    let res = app
        .client
        .get(format!("{}/a/{token}?decision=reject", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(csp.contains("style-src 'nonce-"));
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("<html lang=\"de\">"), "approver's language");
    assert!(html.contains(r#"value="reject" checked"#));
    assert!(!html.contains(r#"value="approve" checked"#));
    assert!(html.contains("New laptop &amp; dock"));
    assert!(html.contains(r#"for="comment""#) && html.contains(r#"id="comment""#));
    assert!(!html.contains("<script"), "no script needed");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    assert_eq!(
        app.get(&format!("/v1/approvals/{id}")).await.body["state"],
        "pending"
    );
}

async fn post_form(app: &TestApp, token: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = app
        .client
        .post(format!("{}/a/{token}", app.address))
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_page_form_decides_and_a_used_link_shows_who_decided_without_a_form() {
    let app = spawn_app().await;
    app.principal("u-1", json!({"display_name": "Grace"})).await;
    let id = ad_hoc(&app, &["u-1"], json!({"type": "count", "count": 1})).await;
    let token = token_for(&app, &id, "u-1").await;
    let (status, html) = post_form(
        &app,
        &token,
        &[("decision", "approve"), ("comment", "fine")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("You approved this request"));
    let v = app.get(&format!("/v1/approvals/{id}")).await;
    assert_eq!(v.body["state"], "approved");
    assert_eq!(v.body["stages"][0]["tasks"][0]["comment"], "fine");
    let res = app
        .client
        .get(format!("{}/a/{token}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("already been used") && html.contains("Decided by Grace"),
        "{html}"
    );
    assert!(!html.contains("<form"));
}

#[tokio::test]
async fn the_page_asks_again_when_a_required_comment_is_missing() {
    let app = spawn_app().await;
    app.principal("u-1", json!({"locale": "fr"})).await;
    let id = process_requiring_comment(&app).await;
    let token = token_for(&app, &id, "u-1").await;
    let (status, html) = post_form(&app, &token, &[("decision", "reject"), ("comment", "")]).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("role=\"alert\"") && html.contains("pourquoi vous refusez"),
        "{html}"
    );
    assert!(html.contains(r#"value="reject" checked"#));
    let (status, _) = post_form(&app, &token, &[("comment", "x")]).await;
    assert_eq!(status, 422, "no choice made");
    let (status, html) = post_form(
        &app,
        &token,
        &[("decision", "reject"), ("comment", "Trop cher")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Vous avez refusé"));
    assert_eq!(
        app.get(&format!("/v1/approvals/{id}")).await.body["state"],
        "rejected"
    );
}

#[tokio::test]
async fn link_endpoints_are_throttled_per_address() {
    let app = spawn_app_with(&[("SIGNOFF_LINK_RATE_LIMIT", "3")]).await;
    for _ in 0..3 {
        assert_eq!(
            anon(&app, Method::GET, "/v1/links/guess", None)
                .await
                .status,
            404
        );
    }
    let a = anon(&app, Method::GET, "/v1/links/guess", None).await;
    a.assert_problem(429, "rate_limited");
    assert!(
        a.header("retry-after")
            .is_some_and(|v| v.parse::<u64>().unwrap() >= 1)
    );
    let page = app
        .client
        .get(format!("{}/a/guess", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429);
    // The page says when to come back, as the JSON API does.
    let wait = page
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        wait.as_deref()
            .is_some_and(|v| v.parse::<u64>().unwrap() >= 1),
        "{wait:?}"
    );
}

#[tokio::test]
async fn a_reminder_brings_fresh_links_that_work() {
    let app = spawn_app().await;
    app.principal("u-1", json!({})).await;
    let id = ad_hoc(&app, &["u-1"], json!({"type": "count", "count": 1})).await;
    let first = token_for(&app, &id, "u-1").await;
    assert_eq!(
        app.post(&format!("/v1/approvals/{id}/remind"), json!({}))
            .await
            .status,
        202
    );
    let r = recipients(&app, &id, "approval.reminder").await;
    assert_eq!(r.len(), 1);
    let fresh = token_of(r[0]["page_url"].as_str().unwrap());
    assert_ne!(fresh, first);
    let done = anon(
        &app,
        Method::POST,
        &format!("/v1/links/{fresh}"),
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    anon(&app, Method::GET, &format!("/v1/links/{first}"), None)
        .await
        .assert_problem(410, "link_closed");
}

#[tokio::test]
async fn process_templates_render_with_fallback_to_the_default_locale() {
    let app = spawn_app().await;
    app.principal("u-1", json!({"locale": "de"})).await;
    app.principal("u-2", json!({"locale": "fr"})).await;
    let p = app
        .post(
            "/v1/processes",
            json!({"name": "Templated", "stages": [{"name": "Boss", "groups": [{"name": "boss",
                     "source": {"type": "principals", "ids": ["u-1", "u-2"]}, "require": {"type": "count", "count": 1}}]}],
                   "templates": {"default_locale": "en", "locales": {
                     "en": {"subject": "[{{ process.name }}] {{ ticket.id }} for {{ approver.display_name }}",
                            "text": "Amount {{ ticket.attributes.amount }}: {{ links.approve_url }}",
                            "html": "<b>{{ ticket.title }}</b>"},
                     "fr": {"subject": "FR {{ ticket.id }}", "text": "Montant {{ ticket.attributes.amount }}"}}}}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-7", "title": "<script>", "attributes": {"amount": 1800}},
                   "process_id": p.body["id"]}),
        )
        .await;
    let id = a.body["id"].as_str().unwrap();
    let r = recipients(&app, id, "approval.requested").await;
    let de = r.iter().find(|r| r["principal"]["id"] == "u-1").unwrap();
    assert_eq!(de["message"]["subject"], "[Templated] T-7 for Person u-1");
    let text = de["message"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Amount 1800: http://signoff.test/a/"),
        "{text}"
    );
    assert_eq!(de["message"]["html"], "<b>&lt;script&gt;</b>");
    let fr = r.iter().find(|r| r["principal"]["id"] == "u-2").unwrap();
    assert_eq!(fr["message"]["subject"], "FR T-7");
    assert_eq!(fr["message"]["text"], "Montant 1800");
}

#[tokio::test]
async fn a_template_that_does_not_compile_is_refused_naming_locale_and_position() {
    let app = spawn_app().await;
    let a = app
        .post(
            "/v1/processes",
            json!({"name": "Broken", "stages": [{"name": "S", "groups": [{"name": "g",
                     "source": {"type": "role", "role": "x"}, "require": {"type": "all"}}]}],
                   "templates": {"locales": {"fr": {"subject": "ok", "text": "Bonjour\n{% if %}"}}}}),
        )
        .await;
    a.assert_problem(422, "validation_failed");
    assert_eq!(a.error_fields(), ["templates.locales.fr.text"]);
    let msg = a.body["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("line 2"), "{msg}");
}

#[tokio::test]
async fn messages_and_the_page_name_who_asks_and_whom_they_greet() {
    let app = spawn_app().await;
    app.principal("u-1", json!({"display_name": "Grace Hopper"}))
        .await;
    app.principal(
        "ada",
        json!({"display_name": "Ada Lovelace", "locale": "de"}),
    )
    .await;
    app.principal("desk", json!({"display_name": "Margaret Hamilton"}))
        .await;
    // The requester asks for themselves: they are named, not their id.
    let own = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-11", "title": "Laptop", "requester_id": "ada"},
                   "approvers": ["u-1"], "requested_by": "ada"}),
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.text);
    let own = own.body["id"].as_str().unwrap().to_string();
    let r = recipients(&app, &own, "approval.requested").await;
    let text = r[0]["message"]["text"].as_str().unwrap();
    assert!(
        text.contains("Ada Lovelace asks for your approval on ticket T-11: Laptop."),
        "{text}"
    );
    assert!(!text.contains("ada asks"), "{text}");
    let token = token_of(r[0]["page_url"].as_str().unwrap());
    let page = anon(&app, Method::GET, &format!("/a/{token}"), None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Hello Grace Hopper,"), "{}", page.text);
    assert!(
        page.text
            .contains("<dt>Requested by</dt><dd>Ada Lovelace</dd>"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("<dt>Requester</dt>"), "{}", page.text);

    // Someone else asks on the requester's behalf: both are named on the page.
    let desk = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-12", "requester_id": "ada"}, "approvers": ["u-1"],
                   "requested_by": "desk"}),
        )
        .await;
    assert_eq!(desk.status, 201, "{}", desk.text);
    let desk = desk.body["id"].as_str().unwrap().to_string();
    let r = recipients(&app, &desk, "approval.requested").await;
    assert!(
        r[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Margaret Hamilton asks for your approval"),
        "{}",
        r[0]["message"]["text"]
    );
    let token = token_of(r[0]["page_url"].as_str().unwrap());
    let page = anon(&app, Method::GET, &format!("/a/{token}"), None).await;
    assert!(
        page.text
            .contains("<dt>Requested by</dt><dd>Margaret Hamilton</dd>"),
        "{}",
        page.text
    );
    assert!(
        page.text
            .contains("<dt>Requester</dt><dd>Ada Lovelace</dd>"),
        "{}",
        page.text
    );

    // A label that names nobody is shown as sent; nobody named at all reads as the requester.
    let label = ad_hoc(&app, &["u-1"], json!({"type": "count", "count": 1})).await;
    let r = recipients(&app, &label, "approval.requested").await;
    assert!(
        r[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("tech-9 asks for your approval")
    );
    let anonymous = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "T-13", "requester_id": "ada"}, "approvers": ["u-1"]}),
        )
        .await;
    let anonymous = anonymous.body["id"].as_str().unwrap().to_string();
    let r = recipients(&app, &anonymous, "approval.requested").await;
    assert!(
        r[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Ada Lovelace asks for your approval"),
        "{}",
        r[0]["message"]["text"]
    );
}
