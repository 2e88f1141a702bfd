//! The hosted decision page in a real browser: headless Chromium driven through ChromeDriver's
//! W3C WebDriver HTTP API (plain reqwest, no WebDriver crate), in a phone-sized window.
//!
//! Runs when `BROWSER_TESTS` is set (`make test` sets it once `scripts/deps.sh` has
//! installed Debian's chromium and chromium-driver); otherwise it says it skipped. With
//! `UPDATE_SCREENSHOT=1` it also rewrites `tests/fixtures/decision-page.png`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key under which W3C WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The phone's viewport in CSS pixels.
const PHONE: (u32, u32) = (420, 900);
/// How long any one wait in the browser may take.
const WAIT: Duration = Duration::from_secs(20);

fn enabled() -> bool {
    std::env::var("BROWSER_TESTS").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

/// Missing binaries fail: whoever set BROWSER_TESTS asked for this test.
fn require_binaries() {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing but BROWSER_TESTS is set: run scripts/deps.sh \
             (it installs Debian's chromium and chromium-driver)"
        );
    }
}

/// ChromeDriver and the one browser session it runs. Dropping it, also while a failed assertion
/// unwinds, ends the session (which closes Chromium), kills ChromeDriver and removes the profile.
struct Browser {
    driver: Child,
    port: u16,
    profile: PathBuf,
    session: Option<String>,
    http: reqwest::Client,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            delete_session(self.port, &id);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `DELETE /session/{id}` on a blocking socket, since `Drop` cannot await.
fn delete_session(port: u16, id: &str) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = s.read_to_end(&mut Vec::new());
}

impl Browser {
    /// Starts ChromeDriver on a free port and opens a headless Chromium session in a fresh
    /// profile.
    async fn start() -> Self {
        require_binaries();
        let port = free_port();
        let profile =
            std::env::temp_dir().join(format!("signoff-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile).expect("create the browser profile directory");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let mut browser = Browser {
            driver,
            port,
            profile,
            session: None,
            http: reqwest::Client::new(),
        };
        browser.wait_until_ready().await;
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-quic".into(),
            format!("--user-data-dir={}", browser.profile.display()),
            "--window-size=420,900".into(),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": WAIT.as_millis() as u64, "script": 5000},
            // New headless keeps a desktop window's minimum width (500 px), whatever
            // --window-size says, so the phone's viewport comes from device emulation.
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args, "mobileEmulation": {
                "deviceMetrics": {"width": PHONE.0, "height": PHONE.1, "pixelRatio": 1,
                                  "mobile": true, "touch": true}}},
        }}});
        let created = browser.command(Method::POST, "/session", Some(caps)).await;
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {created}"));
        browser.session = Some(id.to_string());
        browser
    }

    async fn wait_until_ready(&mut self) {
        let url = format!("http://127.0.0.1:{}/status", self.port);
        let what = format!("{CHROMEDRIVER} to be ready on port {}", self.port);
        let (http, driver) = (&self.http, &mut self.driver);
        eventually(&what, WAIT, || {
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("{CHROMEDRIVER} exited at start: {status}");
            }
            let status = http.get(&url).send();
            async move {
                let v = status.await.ok()?.json::<Value>().await.ok()?;
                (v["value"]["ready"] == true).then_some(())
            }
        })
        .await
    }

    /// One WebDriver command; returns its `value`, panics with the driver's error otherwise.
    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut req = self.http.request(method.clone(), &url);
        if method == Method::POST {
            // WebDriver wants a JSON object on every POST, even when it takes no parameters.
            req = req.json(&body.unwrap_or_else(|| json!({})));
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("WebDriver {method} {path}: {status}, not JSON ({e}): {text}")
        });
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    /// A command on this session.
    async fn session(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let id = self.session.as_deref().expect("an open session");
        self.command(method, &format!("/session/{id}{path}"), body)
            .await
    }

    /// Navigates and waits for the page to load.
    async fn go(&self, url: &str) {
        self.session(Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.session(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The first element matching a CSS selector, if any.
    async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .session(
                Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found.as_array().and_then(|a| a.first()).map(|e| {
            e[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element reference in {e}"))
                .to_string()
        })
    }

    async fn element(&self, css: &str) -> String {
        match self.find(css).await {
            Some(e) => e,
            None => panic!("no {css} on the page; it says:\n{}", self.text().await),
        }
    }

    async fn property(&self, element: &str, name: &str) -> Value {
        self.session(
            Method::GET,
            &format!("/element/{element}/property/{name}"),
            None,
        )
        .await
    }

    async fn displayed(&self, element: &str) -> bool {
        self.session(Method::GET, &format!("/element/{element}/displayed"), None)
            .await
            == true
    }

    async fn click(&self, element: &str) {
        self.session(Method::POST, &format!("/element/{element}/click"), None)
            .await;
    }

    /// What the page shows, as a reader sees it.
    async fn text(&self) -> String {
        self.script("return document.body ? document.body.innerText : ''")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn lang(&self) -> String {
        self.script("return document.documentElement.lang")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until `script` returns true.
    async fn wait_for(&self, what: &str, script: &str) {
        let done = within(WAIT, || async {
            (self.script(script).await == true).then_some(())
        });
        if done.await.is_none() {
            panic!(
                "timed out waiting for {what}; the page says:\n{}",
                self.text().await
            );
        }
    }

    /// The browser console's warnings and errors since the last call (ChromeDriver's log
    /// extension; the session asks for it with goog:loggingPrefs).
    async fn console_errors(&self) -> Vec<Value> {
        let log = self
            .session(Method::POST, "/se/log", Some(json!({"type": "browser"})))
            .await;
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
            .cloned()
            .collect()
    }

    /// A PNG of the window.
    async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.session(Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 screenshot"))
            .expect("valid base64")
    }

    /// Ends the session, closing Chromium; `Drop` then only has ChromeDriver to stop.
    async fn quit(mut self) {
        if self.session.is_some() {
            self.session(Method::DELETE, "", None).await;
            self.session = None;
        }
    }
}

/// The approver's approve_url from the approval.requested event, on the app's real address
/// (tests run with SIGNOFF_PUBLIC_URL=http://signoff.test).
async fn approve_url(app: &TestApp, approval: &str) -> String {
    let events = app
        .get(&format!("/v1/approvals/{approval}/events?limit=200"))
        .await;
    assert_eq!(events.status, 200, "{}", events.text);
    let requested = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "approval.requested")
        .unwrap_or_else(|| panic!("no approval.requested event: {}", events.text))
        .clone();
    let recipient = &requested["data"]["recipients"][0];
    assert_eq!(recipient["principal"]["id"], "u-1", "{requested}");
    let url = recipient["approve_url"].as_str().expect("an approve_url");
    assert!(
        url.starts_with("http://signoff.test/a/") && url.ends_with("?decision=approve"),
        "{url}"
    );
    let rest = url.split_once("://").unwrap().1;
    let path = &rest[rest.find('/').unwrap()..];
    format!("{}{path}", app.address)
}

async fn approval_view(app: &TestApp, id: &str) -> Value {
    let a = app.get(&format!("/v1/approvals/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

/// What the page says when a link has been used, by the page's language.
fn used_text(lang: &str) -> &'static str {
    match lang {
        "fr" => "Ce lien a déjà été utilisé.",
        "de" => "Dieser Link wurde bereits verwendet.",
        _ => "This link has already been used.",
    }
}

#[tokio::test]
async fn an_approver_approves_on_the_hosted_page_in_a_real_browser() {
    if !enabled() {
        println!("skipped: set BROWSER_TESTS=1 (make test does)");
        return;
    }
    require_binaries();
    let started = Instant::now();
    let app = spawn_app().await;
    app.principal(
        "u-1",
        json!({"display_name": "Camille Martin", "locale": "fr"}),
    )
    .await;
    let description =
        "Pour la nouvelle recrue : ordinateur portable 14 pouces et station d’accueil";
    let a = app
        .post(
            "/v1/approvals",
            json!({"ticket": {"id": "IT-4711", "title": "Nouvel ordinateur portable"},
                   "approvers": ["u-1"], "description": description,
                   "requested_by": "Jeanne Dupont",
                   "on_approved_status": "approved", "on_rejected_status": "rejected"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    let url = approve_url(&app, &id).await;

    let app_ready = started.elapsed();
    let browser = Browser::start().await;
    let launched = Instant::now();
    let browser_start = launched - started - app_ready;
    browser.go(&url).await;

    // The page speaks the approver's language and shows what is asked.
    assert_eq!(browser.lang().await, "fr");
    let text = browser.text().await;
    for words in [
        "Demande d’approbation",
        "IT-4711",
        "Nouvel ordinateur portable",
        description,
        "Jeanne Dupont",
        "Votre décision",
        "Approuver",
        "Refuser",
        "Confirmer ma décision",
    ] {
        assert!(text.contains(words), "{words:?} missing from:\n{text}");
    }
    // approve_url preselects approve.
    let approve = browser.element("#approve").await;
    let reject = browser.element("#reject").await;
    assert_eq!(browser.property(&approve, "checked").await, true);
    assert_eq!(browser.property(&reject, "checked").await, false);
    let confirm = browser.element("#confirm").await;
    assert!(browser.displayed(&confirm).await);
    // It fits the phone: nothing wider than the screen, the button inside it.
    let fit = browser
        .script(
            "const r = document.getElementById('confirm').getBoundingClientRect();
             return [innerWidth, innerHeight, document.documentElement.scrollWidth,
                     r.left, r.right];",
        )
        .await;
    assert_eq!(fit[0], PHONE.0, "viewport {fit}");
    assert_eq!(fit[1], PHONE.1, "viewport {fit}");
    assert!(
        fit[2].as_f64() <= fit[0].as_f64(),
        "scrolls sideways: {fit}"
    );
    assert!(
        fit[3].as_f64() >= Some(0.0) && fit[4].as_f64() <= fit[0].as_f64(),
        "button off screen: {fit}"
    );
    // The page's only style is inline under a CSP nonce: check it applied.
    let background = browser
        .script("return getComputedStyle(document.getElementById('confirm')).backgroundColor")
        .await;
    assert_eq!(
        background, "rgb(11, 87, 208)",
        "the page's style did not apply"
    );

    // Opening the page decided nothing.
    let v = approval_view(&app, &id).await;
    assert_eq!(v["state"], "pending", "{v}");
    assert_eq!(v["stages"][0]["tasks"][0]["state"], "pending", "{v}");

    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    if std::env::var("UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let path = fixture("decision-page.png");
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {path}: {e}"));
        println!("wrote {path} ({} bytes)", png.len());
    }

    browser.click(&confirm).await;
    browser
        .wait_for(
            "the result page",
            "return document.querySelector('p.ok') !== null",
        )
        .await;
    assert_eq!(browser.lang().await, "fr");
    let text = browser.text().await;
    assert!(
        text.contains("Merci. Vous avez approuvé cette demande."),
        "{text}"
    );
    assert!(browser.find("form").await.is_none(), "{text}");

    let v = approval_view(&app, &id).await;
    assert_eq!(v["state"], "approved", "{v}");
    let task = &v["stages"][0]["tasks"][0];
    assert_eq!(task["approver_id"], "u-1", "{v}");
    assert_eq!(task["state"], "approved", "{v}");
    assert_eq!(task["decided_by"], "u-1", "{v}");

    // Nothing went wrong in the page so far: no CSP refusals, no failed loads, no script errors.
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "browser console: {errors:#?}");

    // The link worked once; opening it again says so and offers nothing to submit.
    browser.go(&url).await;
    let lang = browser.lang().await;
    let text = browser.text().await;
    assert_eq!(lang, "fr", "the page answers in the approver's language");
    assert!(text.contains(used_text(&lang)), "lang {lang}:\n{text}");
    assert!(
        text.contains("Camille Martin"),
        "who decided is shown:\n{text}"
    );
    for css in ["form", "input", "textarea", "button"] {
        assert!(browser.find(css).await.is_none(), "{css} on:\n{text}");
    }

    browser.quit().await;
    println!(
        "browser test: {} ms in all (app {} ms, ChromeDriver + Chromium {} ms, pages {} ms)",
        started.elapsed().as_millis(),
        app_ready.as_millis(),
        browser_start.as_millis(),
        launched.elapsed().as_millis()
    );
}

/// Serves `html` to every request on `listener`: a page on another origin than the API.
fn serve_page(listener: TcpListener, html: String) -> u16 {
    let port = listener.local_addr().expect("a bound listener").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    port
}

#[tokio::test]
async fn a_page_on_an_allowed_origin_calls_the_api_from_a_real_browser() {
    if !enabled() {
        println!("skipped: set BROWSER_TESTS=1 (make test does)");
        return;
    }
    require_binaries();
    let page_listener = TcpListener::bind("127.0.0.1:0").expect("bind the page server");
    let origin = format!(
        "http://127.0.0.1:{}",
        page_listener.local_addr().unwrap().port()
    );
    let app = spawn_app_with(&[("SIGNOFF_CORS_ORIGINS", &origin)]).await;
    // A preflighted call (Authorization, a JSON body, Idempotency-Key) and a read of an
    // exposed header (ETag), as a host UI makes them.
    let html = format!(
        r#"<!doctype html><title>waiting</title><script>
(async () => {{
  try {{
    const headers = {{"Authorization": "Bearer {token}", "Content-Type": "application/json",
                     "Idempotency-Key": "browser-1"}};
    const body = JSON.stringify({{"name": "From the browser", "stages": [{{"name": "S", "groups": [
      {{"name": "g", "source": {{"type": "principals", "ids": ["u-1"]}}, "require": {{"type": "count", "count": 1}}}}]}}]}});
    const created = await fetch("{api}/v1/processes", {{method: "POST", headers, body}});
    const json = await created.json();
    document.title = "done " + created.status + " " + created.headers.get("ETag") + " " + json.name;
  }} catch (e) {{ document.title = "done error " + e; }}
}})();
</script>"#,
        token = app.token,
        api = app.address
    );
    let page = serve_page(page_listener, html);
    let browser = Browser::start().await;
    browser.go(&format!("http://127.0.0.1:{page}/")).await;
    let done = "return document.title.startsWith('done')";
    browser.wait_for("the cross-origin fetch", done).await;
    assert_eq!(
        browser.script("return document.title").await,
        "done 201 \"1\" From the browser",
        "the page on an allowed origin could not call the API"
    );

    // A page on an origin that is not allowed is refused by the browser.
    let other = serve_page(
        TcpListener::bind("127.0.0.1:0").expect("bind the other page server"),
        format!(
            r#"<!doctype html><title>waiting</title><script>
fetch("{api}/v1/processes", {{headers: {{"Authorization": "Bearer {token}"}}}})
  .then(r => document.title = "done reached " + r.status)
  .catch(() => document.title = "done blocked");
</script>"#,
            token = app.token,
            api = app.address
        ),
    );
    browser.go(&format!("http://127.0.0.1:{other}/")).await;
    browser.wait_for("the refused fetch", done).await;
    assert_eq!(
        browser.script("return document.title").await,
        "done blocked"
    );
    browser.quit().await;
}
