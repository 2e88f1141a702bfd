//! Host actions: HTTP requests to the host's own API (set a ticket's status, comment on it),
//! rendered from templates over an event and sent by the worker with the webhooks' client,
//! retry schedule and bounds.
//!
//! What a stored action cannot do, whatever its templates or the event's data say:
//! - send anywhere but the origin written in its URL: the scheme, host and port are literal text
//!   before any template tag, checked when the action is saved and again on every rendered URL;
//! - change the shape of a URL from event data: every value rendered into a URL is
//!   percent-encoded (`/`, `?`, `#`, `&` included), so a ticket id of `../../admin` stays a
//!   single path segment;
//! - put a secret into a URL (where logs and proxies keep it): URL templates are rendered
//!   without `secrets`, and one that names them is refused when saved;
//! - run without bound: templates run on fuel, as message templates do.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use minijinja::{Environment, UndefinedBehavior, Value as Jinja};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{HeaderName, HeaderValue, USER_AGENT};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::delivery::{self, Verdict};
use super::ssrf;
use crate::db::webhooks::AttemptResult;
use crate::domain::validate::{Faults, index, join};

/// Requests one action may send per event.
pub const MAX_REQUESTS: usize = 10;
/// Headers one request may carry.
pub const MAX_HEADERS: usize = 20;
/// Longest template (URL, header value or body), in bytes.
pub const MAX_TEMPLATE: usize = 16 * 1024;
/// Longest rendered body, in bytes.
pub const MAX_BODY: usize = 256 * 1024;
/// Template instructions one render may run.
const FUEL: u64 = 100_000;
/// What a URL value keeps as it is: RFC 3986's unreserved characters; everything else
/// (`/ ? # & = %` and spaces included) is percent-encoded.
const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The methods an action may use.
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
/// Headers the client sets itself, or that would let a template reshape the request.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-authorization",
];

/// One request of a host action, as saved: every field but `method` is a template.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    #[schema(example = "PUT")]
    pub method: String,
    /// The scheme, host and port are literal; the path and query may hold template tags,
    /// whose values are percent-encoded. `secrets` are not available here.
    #[schema(example = "https://rt.example.com/REST/2.0/ticket/{{ ticket.id }}")]
    pub url: String,
    /// Header name to value template (`secrets.<name>` may be used here).
    #[serde(default)]
    #[schema(example = json!({"Authorization": "token {{ secrets.rt_token }}", "Content-Type": "application/json"}))]
    pub headers: BTreeMap<String, String>,
    /// The body template (`secrets.<name>` may be used here); none for no body.
    #[serde(default)]
    #[schema(example = "{\"Status\": {{ ticket.status_to_set | tojson }}}")]
    pub body: Option<String>,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

fn environment(url: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // `approval.outcome.decision` on an event without an outcome is empty, not an error.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    if url {
        env.set_formatter(|out, _state, value| {
            if value.is_undefined() || value.is_none() {
                return Ok(());
            }
            let text = value.to_string();
            // `.` and `..` (or `%2e`, which URL parsers read as a dot) would move the path.
            if text == "." || text == ".." {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("the value `{text}` would be read as a path step"),
                ));
            }
            out.write_str(&utf8_percent_encode(&text, URL_VALUE).to_string())
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
        });
    }
    env
}

fn describe(e: &minijinja::Error) -> String {
    let what = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_string);
    match e.line() {
        Some(line) => format!("does not compile: line {line}: {what}"),
        None => format!("does not compile: {what}"),
    }
}

/// The literal origin a URL template starts with (`https://rt.example.com:8443`): the text up
/// to the first `/`, `?` or `#` after the authority, with no template tag in it.
pub fn origin(template: &str) -> Result<String, String> {
    let scheme_end = template
        .find("://")
        .ok_or("must start with a literal http:// or https:// origin")?;
    let scheme = &template[..scheme_end];
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Err("must start with a literal http:// or https:// origin".into());
    }
    let rest = &template[scheme_end + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = &template[..scheme_end + 3 + end];
    if origin.contains('{') || origin.contains('@') {
        return Err(
            "must start with a literal origin: no template tag (and no user info) before the path"
                .into(),
        );
    }
    let parsed = url::Url::parse(origin).map_err(|_| "does not start with a valid origin")?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    Ok(origin.to_string())
}

/// Checks one request as saved, naming each fault under `requests[i]`.
pub fn check(f: &mut Faults, r: &ActionRequest, i: usize, allow_private: bool) {
    let at = index("requests", i);
    if !METHODS.contains(&r.method.as_str()) {
        f.push(
            join(&at, "method"),
            format!("must be one of {}", METHODS.join(", ")),
        );
    }
    check_url(f, &join(&at, "url"), &r.url, allow_private);
    if r.headers.len() > MAX_HEADERS {
        f.push(
            join(&at, "headers"),
            format!("must have at most {MAX_HEADERS} headers"),
        );
    }
    for (name, value) in &r.headers {
        let path = join(&join(&at, "headers"), name);
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            f.push(&path, "is not a valid header name");
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            f.push(&path, "is set by signoff itself and may not be given");
        }
        check_template(f, &path, value);
    }
    if let Some(body) = &r.body {
        check_template(f, &join(&at, "body"), body);
    }
}

fn check_template(f: &mut Faults, path: &str, source: &str) {
    if source.len() > MAX_TEMPLATE {
        f.push(path, format!("must be at most {MAX_TEMPLATE} bytes"));
        return;
    }
    if let Err(e) = environment(false).template_from_str(source) {
        f.push(path, describe(&e));
    }
}

fn check_url(f: &mut Faults, path: &str, source: &str, allow_private: bool) {
    if source.len() > 2_000 {
        f.push(path, "must be at most 2000 characters");
        return;
    }
    let origin = match origin(source) {
        Ok(o) => o,
        Err(e) => return f.push(path, e),
    };
    if let Err(e) = ssrf::check_url(&origin, allow_private) {
        return f.push(path, e);
    }
    let env = environment(true);
    match env.template_from_str(source) {
        Err(e) => f.push(path, describe(&e)),
        Ok(t) => {
            let names: HashSet<String> = t.undeclared_variables(false);
            if names.contains("secrets") {
                f.push(
                    path,
                    "may not use secrets (URLs end up in logs); put them in a header or the body",
                );
            }
        }
    }
}

/// The names of the secrets a request's headers and body use (`secrets.<name>`).
pub fn secrets_used(r: &ActionRequest) -> Vec<String> {
    let env = environment(false);
    let mut out: Vec<String> = r
        .headers
        .values()
        .chain(r.body.iter())
        .filter_map(|t| env.template_from_str(t).ok())
        .flat_map(|t| t.undeclared_variables(true))
        .filter_map(|v| v.strip_prefix("secrets.").map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What templates see: the webhook body as `event`, and its parts by name (`approval`,
/// `ticket` with the view's title and attributes beside `status_to_set`, `summary`, and
/// `decided`: the answers given, oldest first).
pub fn context(event: &Value) -> Value {
    let data = &event["data"];
    let approval = &data["approval"];
    let mut ticket: Map<String, Value> =
        approval["ticket"].as_object().cloned().unwrap_or_default();
    if let Some(t) = data["ticket"].as_object() {
        ticket.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut decided: Vec<Value> = approval["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["tasks"].as_array().into_iter().flatten())
        .filter(|t| matches!(t["state"].as_str(), Some("approved" | "rejected")))
        .map(|t| {
            let by = t["decided_by"].as_str().or(t["approver_id"].as_str());
            json!({
                "approver_id": t["approver_id"],
                "name": t["approver_name"].as_str().or(by),
                "decided_by": by,
                "decision": t["state"],
                "comment": t["comment"],
                "decided_at": t["decided_at"],
                "on_behalf_of": t["on_behalf_of"],
            })
        })
        .collect();
    decided.sort_by(|a, b| a["decided_at"].as_str().cmp(&b["decided_at"].as_str()));
    json!({
        "event": event,
        "approval": approval,
        "ticket": ticket,
        "summary": data["summary"],
        "decided": decided,
    })
}

/// Renders one request over `ctx` (see [`context`]); `secrets` are given to headers and the
/// body only. Err says what went wrong, without any secret.
pub fn render(
    r: &ActionRequest,
    ctx: &Value,
    secrets: &BTreeMap<String, String>,
) -> Result<Rendered, String> {
    let origin = origin(&r.url)?;
    let url = environment(true)
        .render_str(&r.url, ctx)
        .map_err(|e| format!("url: {}", describe(&e).replace("does not compile: ", "")))?;
    // A template tag may not reach back into the origin: the rendered URL starts with it and
    // goes on with a path, a query or nothing.
    let tail = url.strip_prefix(&origin).unwrap_or("\u{0}");
    if !(tail.is_empty() || tail.starts_with(['/', '?', '#'])) {
        return Err("url: the rendered URL leaves the action's origin".into());
    }
    let mut full = match ctx {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    full.insert("secrets".into(), json!(secrets));
    let full = Jinja::from_serialize(&full);
    let env = environment(false);
    let mut headers = Vec::with_capacity(r.headers.len());
    for (name, template) in &r.headers {
        let value = env.render_str(template, &full).map_err(|e| {
            format!(
                "headers.{name}: {}",
                describe(&e).replace("does not compile: ", "")
            )
        })?;
        if HeaderValue::from_str(&value).is_err() {
            return Err(format!(
                "headers.{name}: the rendered value is not a valid header value (line breaks or control characters)"
            ));
        }
        headers.push((name.clone(), value));
    }
    let body = match &r.body {
        None => None,
        Some(t) => {
            let b = env
                .render_str(t, &full)
                .map_err(|e| format!("body: {}", describe(&e).replace("does not compile: ", "")))?;
            if b.len() > MAX_BODY {
                return Err(format!("body: the rendered body is over {MAX_BODY} bytes"));
            }
            Some(b)
        }
    };
    Ok(Rendered {
        method: r.method.clone(),
        url,
        headers,
        body,
    })
}

/// `text` with every secret value replaced, for the delivery log.
pub fn redact(text: &str, secrets: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for v in secrets.values().filter(|v| v.len() >= 4) {
        out = out.replace(v.as_str(), "[secret]");
    }
    out
}

/// Sends one rendered request with the webhooks' client (no redirects, the outbound address
/// policy, the timeout over the whole exchange, at most 4 KiB of the answer read).
pub async fn send(
    http: &reqwest::Client,
    r: &Rendered,
    allow_private: bool,
    timeout: Duration,
) -> (AttemptResult, Verdict) {
    let attempted_at = Utc::now();
    let started = Instant::now();
    let elapsed = || started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let failed = |error: String, status: Option<i32>, excerpt: Option<String>| {
        (
            AttemptResult {
                attempted_at,
                status_code: status,
                latency_ms: elapsed(),
                error: Some(error),
                response_excerpt: excerpt,
            },
            Verdict::Retry { not_before: None },
        )
    };
    if let Err(e) = ssrf::check_url(&r.url, allow_private) {
        return failed(format!("target refused: URL {e}"), None, None);
    }
    let method = match reqwest::Method::from_bytes(r.method.as_bytes()) {
        Ok(m) => m,
        Err(_) => return failed(format!("unknown method {}", r.method), None, None),
    };
    let mut req = http.request(method, &r.url).header(
        USER_AGENT,
        concat!("signoff-host-actions/", env!("CARGO_PKG_VERSION")),
    );
    for (name, value) in &r.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    if let Some(body) = &r.body {
        req = req.body(body.clone());
    }
    let exchange = async {
        let res = req.send().await?;
        let status = res.status();
        let wait = delivery::retry_after(res.headers());
        Ok::<_, reqwest::Error>((status, wait, delivery::excerpt(res).await))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => failed(
            format!(
                "timed out: no complete answer within {} ms",
                timeout.as_millis()
            ),
            None,
            None,
        ),
        Ok(Err(e)) => failed(delivery::describe_error(&e), None, None),
        Ok(Ok((status, wait, excerpt))) => {
            let code = Some(status.as_u16() as i32);
            if status.is_success() {
                return (
                    AttemptResult {
                        attempted_at,
                        status_code: code,
                        latency_ms: elapsed(),
                        error: None,
                        response_excerpt: excerpt,
                    },
                    Verdict::Delivered,
                );
            }
            let error = if status.is_redirection() {
                format!("answered {status}; redirects are not followed")
            } else {
                format!("answered {status}")
            };
            let (mut result, _) = failed(error, code, excerpt);
            result.latency_ms = elapsed();
            (result, Verdict::Retry { not_before: wait })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str, body: Option<&str>) -> ActionRequest {
        ActionRequest {
            method: "PUT".into(),
            url: url.into(),
            headers: BTreeMap::from([(
                "Authorization".to_string(),
                "token {{ secrets.rt }}".to_string(),
            )]),
            body: body.map(str::to_string),
        }
    }

    fn faults(r: &ActionRequest) -> Vec<String> {
        let mut f = Faults::default();
        check(&mut f, r, 0, true);
        match f.finish(Some(())) {
            Ok(()) => vec![],
            Err(e) => e
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect(),
        }
    }

    fn event() -> Value {
        json!({"id": "evt_1", "type": "approval.approved", "data": {
            "approval": {"id": "a-1", "ticket": {"id": "T-1", "title": "Laptop"},
                         "stages": [{"tasks": [
                             {"approver_id": "bob", "approver_name": "Bob", "state": "approved",
                              "comment": "ok", "decided_at": "2026-12-07T10:00:00Z"},
                             {"approver_id": "eve", "state": "superseded"}]}]},
            "ticket": {"id": "../../admin?x=1#", "status_to_set": "approved"},
            "summary": "Approved by Bob"}})
    }

    #[test]
    fn the_origin_must_be_literal() {
        for (url, ok) in [
            (
                "https://rt.example.com/REST/2.0/ticket/{{ ticket.id }}",
                true,
            ),
            ("https://rt.example.com:8443?q={{ ticket.id }}", true),
            ("https://rt.example.com", true),
            ("https://{{ ticket.host }}/x", false),
            ("https://rt.example.com{{ ticket.port }}/x", false),
            ("{{ event.url }}", false),
            ("ftp://rt.example.com/x", false),
            ("https://user:{{ secrets.p }}@rt.example.com/x", false),
        ] {
            assert_eq!(origin(url).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn saving_names_each_fault() {
        let mut r = req(
            "https://rt.example.com/t/{{ secrets.rt }}",
            Some("{% if %}"),
        );
        r.method = "TRACE".into();
        r.headers.insert("Host".into(), "evil".into());
        let got = faults(&r);
        assert!(
            got.iter().any(|f| f.starts_with("requests[0].method")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|f| f.starts_with("requests[0].url: may not use secrets")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|f| f.starts_with("requests[0].body: does not compile")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|f| f.starts_with("requests[0].headers.Host")),
            "{got:?}"
        );
        assert!(
            faults(&req(
                "https://rt.example.com/t/{{ ticket.id }}",
                Some("{{ summary }}")
            ))
            .is_empty()
        );
    }

    #[test]
    fn values_in_a_url_cannot_change_its_shape() {
        let r = req(
            "https://rt.example.com/REST/2.0/ticket/{{ ticket.id }}",
            None,
        );
        let out = render(&r, &context(&event()), &BTreeMap::new()).unwrap();
        assert_eq!(
            out.url,
            "https://rt.example.com/REST/2.0/ticket/..%2F..%2Fadmin%3Fx%3D1%23"
        );
        let mut e = event();
        e["data"]["ticket"]["id"] = json!("..");
        let err = render(&r, &context(&e), &BTreeMap::new()).unwrap_err();
        assert!(err.contains("path step"), "{err}");
    }

    #[test]
    fn secrets_reach_headers_and_bodies_and_context_has_the_parts() {
        let r = req(
            "https://rt.example.com/t",
            Some(
                "{\"Status\": {{ ticket.status_to_set | tojson }}, \"c\": {{ (decided | map(attribute='name') | join(', ')) | tojson }}, \"s\": \"{{ summary }} {{ ticket.title }}\"}",
            ),
        );
        let secrets = BTreeMap::from([("rt".to_string(), "s3cr3t".to_string())]);
        let out = render(&r, &context(&event()), &secrets).unwrap();
        assert_eq!(
            out.headers,
            vec![("Authorization".into(), "token s3cr3t".into())]
        );
        assert_eq!(
            out.body.as_deref(),
            Some("{\"Status\": \"approved\", \"c\": \"Bob\", \"s\": \"Approved by Bob Laptop\"}")
        );
        assert_eq!(redact("got token s3cr3t", &secrets), "got token [secret]");
    }

    #[test]
    fn a_header_value_cannot_smuggle_a_line_break() {
        let mut r = req("https://rt.example.com/t", None);
        r.headers
            .insert("X-Title".into(), "{{ event.evil }}".into());
        let mut e = event();
        e["evil"] = json!("a\r\nX-Other: 1");
        let err = render(&r, &context(&e), &BTreeMap::new()).unwrap_err();
        assert!(err.starts_with("headers.X-Title"), "{err}");
    }

    #[test]
    fn a_runaway_template_stops() {
        let r = req(
            "https://rt.example.com/t",
            Some(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            ),
        );
        assert!(render(&r, &context(&event()), &BTreeMap::new()).is_err());
    }
}
