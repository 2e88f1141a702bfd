//! Operation-level steps: every status an operation can send, with the `Problem` schema and
//! its headers, descriptions and security on every operation.

use serde_json::{Map, Value, json};

use super::catalog::IDEMPOTENCY_KEY_PATTERN;

pub(super) fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

pub(super) fn header(description: &str, schema: Value) -> Value {
    json!({"description": description, "schema": schema})
}

/// Declares every status each operation can send, and the public operations as public.
pub(super) fn operations(spec: &mut Value) {
    let Some(paths) = spec["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            operation(path, method, op);
        }
    }
}

pub(super) fn operation(path: &str, method: &str, op: &mut Value) {
    let public = op
        .get("security")
        .is_none_or(|s| s.as_array().is_some_and(|a| a.is_empty()));
    if public {
        op["security"] = json!([]);
    }
    if op
        .get("description")
        .is_none_or(|d| d.as_str().is_none_or(str::is_empty))
    {
        op["description"] = op.get("summary").cloned().unwrap_or_else(|| json!(path));
    }
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params.iter_mut().filter(|p| p["in"] == "header") {
            // A header is a string, never null.
            p["schema"] = if p["name"] == "Idempotency-Key" {
                json!({"type": "string", "minLength": 1, "maxLength": 255,
                       "pattern": IDEMPOTENCY_KEY_PATTERN})
            } else {
                json!({"type": "string"})
            };
        }
    }
    // rotate-secret reads an optional body: none is `{}`.
    if path.ends_with("/rotate-secret")
        && let Some(body) = op.get_mut("requestBody")
    {
        body["required"] = json!(false);
    }
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let has = |place: &str| params.iter().any(|p| p["in"] == place);
    let idempotent = params.iter().any(|p| p["name"] == "Idempotency-Key");
    let has_body = op.get("requestBody").is_some();
    let scopes: Vec<String> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["bearer"].as_array())
        .flatten()
        .filter_map(|s| s.as_str().map(|s| format!("`{s}`")))
        .collect();
    let responses = op["responses"]
        .as_object_mut()
        .expect("operations have responses");
    fn add_to(responses: &mut Map<String, Value>, status: &str, r: Value) {
        responses.entry(status).or_insert(r);
    }
    macro_rules! add {
        ($status:expr, $r:expr $(,)?) => {
            add_to(responses, $status, $r)
        };
    }
    if has_body || has("query") || idempotent {
        add!(
            "400",
            problem(
                "The body is not JSON (`invalid_json`), a query parameter is malformed \
(`invalid_query`, `invalid_cursor`), or the Idempotency-Key is (`invalid_idempotency_key`)",
            ),
        );
    }
    // Every operation behind a token answers 401 without a valid one, and 403 without its
    // scope: declared here once, not on each handler.
    if !public {
        add!("401", problem("Missing or invalid token (`unauthorized`)"));
        responses["401"]["headers"] = json!({"WWW-Authenticate": header(
            "`Bearer realm=\"signoff\", error=\"invalid_token\"`",
            json!({"type": "string"}))});
        if !scopes.is_empty() {
            add!(
                "403",
                problem(&format!(
                    "The token lacks the {} scope (`insufficient_scope`)",
                    scopes.join(" or ")
                )),
            );
        }
    }
    if has("path") {
        add!(
            "404",
            problem("No such resource in this tenant (`not_found`)")
        );
    }
    if has_body {
        add!(
            "413",
            problem("The body is larger than 1 MiB (`body_too_large`)"),
        );
        add!(
            "415",
            problem("The body is not sent as `application/json` (`unsupported_media_type`)"),
        );
    }
    if has_body || has("query") {
        add!(
            "422",
            problem(
                "Fields at fault, every one listed in `errors` with its path (`validation_failed`)"
            ),
        );
    }
    if has("path") {
        add!(
            "422",
            problem(
                "An id in the path holds a control, zero-width or bidirectional character \
(`validation_failed`, field `path`)"
            ),
        );
    }
    if idempotent {
        add!(
            "409",
            problem(
                "The Idempotency-Key is in use by a request still running (`idempotency_key_in_use`)"
            ),
        );
    }
    let retry_after = header(
        "Seconds to wait before trying again",
        json!({"type": "integer", "minimum": 0}),
    );
    if let Some(r) = responses.get_mut("429") {
        r["headers"] = json!({"Retry-After": retry_after.clone()});
    }
    add!(
        "500",
        problem("An unexpected failure; the cause is logged, not shown (`internal_error`)")
    );
    if path != "/livez" && path != "/metrics" {
        let mut r = problem("The database is unavailable; retry later (`service_unavailable`)");
        r["headers"] = json!({"Retry-After": retry_after});
        if let Some(existing) = responses.get_mut("503") {
            if existing.get("content").is_none() {
                *existing = r;
            }
        } else {
            responses.insert("503".into(), r);
        }
    }
    if idempotent && method == "post" {
        for (status, r) in responses.iter_mut() {
            if status.starts_with('2') {
                r["headers"]["Idempotent-Replayed"] = header(
                    "`true` when this answer is the stored answer to an earlier request with the same Idempotency-Key",
                    json!({"type": "string", "enum": ["true"]}),
                );
            }
        }
    }
}
