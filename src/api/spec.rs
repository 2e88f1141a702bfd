//! The finishing pass over the OpenAPI document utoipa derives from the handlers and types.
//!
//! utoipa says what each type looks like; this pass says what the whole API promises, in the
//! shape client generators and fuzzers read best:
//! - tagged unions are `oneOf` over named schemas with a `discriminator` (`type`, a mapping),
//!   and `Requirement` is one such union whose every variant carries `reject_at`, never an
//!   `allOf` over a `oneOf`;
//! - every status an operation can send is declared, with the `Problem` schema and the headers
//!   that come with it (`WWW-Authenticate`, `Retry-After`, `Idempotent-Replayed`);
//! - fields a response always carries are `required` (nullable where they can be null);
//! - closed sets (`Problem.code`, event types, delivery states) are enums; new values may be
//!   added, and clients must accept ones they do not know;
//! - `servers`, `security: []` on the public operations, a description on every operation,
//!   `info.license` as an SPDX identifier, and `contact`.

use serde_json::{Map, Value, json};

/// Every `Problem.code` signoff sends. New codes may be added; clients must treat an unknown
/// code like the status it came with.
pub const PROBLEM_CODES: &[&str] = &[
    "already_decided",
    "approval_closed",
    "approval_pending",
    "body_too_large",
    "comment_required",
    "double_answer",
    "endpoint_disabled",
    "idempotency_key_in_use",
    "idempotency_key_reused",
    "if_match_required",
    "inactive_principal",
    "insufficient_scope",
    "internal_error",
    "invalid_body",
    "invalid_cursor",
    "invalid_idempotency_key",
    "invalid_json",
    "invalid_query",
    "link_closed",
    "link_expired",
    "link_not_found",
    "link_superseded",
    "link_used",
    "method_not_allowed",
    "no_approvers",
    "not_a_substitute",
    "not_an_approver",
    "not_enough_approvers",
    "not_found",
    "process_disabled",
    "process_name_taken",
    "process_not_disabled",
    "rate_limited",
    "route_not_found",
    "self_approval_not_allowed",
    "service_unavailable",
    "stage_not_current",
    "unauthorized",
    "unsupported_media_type",
    "validation_failed",
    "version_mismatch",
    "worker_not_running",
];

/// Every event type, in webhooks and in `GET /v1/approvals/{id}/events`. New types may be
/// added; a receiver must ignore (and answer 2xx to) types it does not know.
pub const EVENT_TYPES: &[&str] = &[
    "approval.requested",
    "approval.decision_recorded",
    "approval.stage_advanced",
    "approval.reminder",
    "approval.escalated",
    "approval.approved",
    "approval.rejected",
    "approval.cancelled",
    "process.expired",
];

/// Response fields that are left out, not sent as null, when they have no value.
const SOMETIMES_ABSENT: &[(&str, &str)] = &[
    ("ProcessView", "disabled_reason"),
    ("EndpointView", "secret"),
    ("TaskView", "decision"),
    ("TaskView", "delegated_from"),
    ("TicketEffect", "problem"),
];

/// Request objects whose reader refuses fields it does not know (the roots of process,
/// principal and calendar bodies accept the read-only fields of their answers, so stay open).
const CLOSED_REQUEST_OBJECTS: &[&str] = &[
    "ProcessSettings",
    "StageDef",
    "GroupDef",
    "TimeoutDef",
    "RemindersDef",
    "SubstitutesDef",
    "Templates",
    "MessageTemplate",
    "RequestApproval",
    "DecisionInput",
    "TicketReport",
    "RuleInput",
    "RulesTestInput",
    "DisableProcess",
];

/// Request objects read field by field (`crate::domain::validate::Faults`), where an optional
/// field sent as `null` means the same as the field left out: their optional properties accept
/// `null` too.
const NULL_IS_ABSENT: &[&str] = &[
    "CalendarDef",
    "PrincipalInput",
    "ProcessDefinition",
    "ProcessSettings",
    "StageDef",
    "Templates",
    "RequestApproval",
    "Ticket",
    "TicketReport",
    "RuleInput",
];

/// What `Idempotency-Key` may be (with `maxLength` 255): tabs, spaces and visible ASCII, at
/// least one visible (`super::idempotency`).
const IDEMPOTENCY_KEY_PATTERN: &str = "^[\\t -~]*[!-~][\\t -~]*$";

const UNKNOWN_VALUES: &str = "New values may be added: treat one you do not know as you would \
an unexpected value, not as an error.";

/// Applies every finishing step to the derived document.
pub fn finish(spec: &mut Value) {
    info(spec);
    requirement_union(spec);
    discriminate_unions(spec);
    closed_sets(spec);
    closed_request_objects(spec);
    null_is_absent(spec);
    required_response_fields(spec);
    operations(spec);
}

fn schemas(spec: &mut Value) -> &mut Map<String, Value> {
    spec.pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("the document has component schemas")
}

fn info(spec: &mut Value) {
    spec["info"]["license"] = json!({"name": "Apache-2.0", "identifier": "Apache-2.0"});
    spec["info"]["contact"] = json!({
        "name": "signoff maintainers",
        "url": "https://github.com/signoff-dev/signoff"
    });
    spec["servers"] = json!([{
        "url": "/",
        "description": "The origin that serves this document: signoff serves the API and `/openapi.json` together (`make run`: http://127.0.0.1:8080)."
    }]);
}

fn pascal(tag: &str) -> String {
    tag.split(['_', '.'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The single `type` value of an inline union variant.
fn tag_of(variant: &Value) -> Option<String> {
    let e = variant.pointer("/properties/type/enum")?.as_array()?;
    match e.as_slice() {
        [Value::String(s)] => Some(s.clone()),
        _ => None,
    }
}

/// `Requirement` was `allOf: [Rule (a oneOf), {reject_at}]`, which generators cannot take:
/// it becomes a union of its own whose variants each carry `reject_at`.
fn requirement_union(spec: &mut Value) {
    let s = schemas(spec);
    let Some(rule) = s.get("Rule").cloned() else {
        return;
    };
    let reject_at = s
        .get("Requirement")
        .and_then(|r| r.pointer("/allOf/1/properties/reject_at"))
        .cloned()
        .unwrap_or_else(|| json!({"type": ["integer", "null"]}));
    let mut reject_at = reject_at;
    reject_at["minimum"] = json!(1);
    let variants = rule["oneOf"].as_array().cloned().unwrap_or_default();
    let mut refs = vec![];
    let mut mapping = Map::new();
    for mut v in variants {
        let Some(tag) = tag_of(&v) else { continue };
        v["properties"]["reject_at"] = reject_at.clone();
        v["additionalProperties"] = json!(false);
        let name = format!("Requirement{}", pascal(&tag));
        let r = format!("#/components/schemas/{name}");
        s.insert(name, v);
        refs.push(json!({"$ref": r}));
        mapping.insert(tag, json!(r));
    }
    s.insert(
        "Requirement".into(),
        json!({
            "description": "How many approvals a group needs: a rule (`type`) and, beside it, \
optionally `reject_at`, a count of rejections that rejects the group even if the rule could \
still be met.",
            "oneOf": refs,
            "discriminator": {"propertyName": "type", "mapping": mapping},
        }),
    );
    // Rule is not used on its own anywhere once Requirement carries its variants.
    let used = serde_json::to_string(&*s)
        .unwrap_or_default()
        .contains("#/components/schemas/Rule\"");
    if !used {
        s.remove("Rule");
    }
}

/// Inline `oneOf` variants tagged by `type` become named schemas under a discriminator.
fn discriminate_unions(spec: &mut Value) {
    let s = schemas(spec);
    let names: Vec<String> = s.keys().cloned().collect();
    for name in names {
        let Some(variants) = s[&name].get("oneOf").and_then(Value::as_array).cloned() else {
            continue;
        };
        if variants.is_empty() || !variants.iter().all(|v| tag_of(v).is_some()) {
            continue;
        }
        let mut refs = vec![];
        let mut mapping = Map::new();
        for mut v in variants {
            let tag = tag_of(&v).unwrap_or_default();
            v["additionalProperties"] = json!(false);
            let vname = format!("{name}{}", pascal(&tag));
            let r = format!("#/components/schemas/{vname}");
            s.insert(vname, v);
            refs.push(json!({"$ref": r}));
            mapping.insert(tag, json!(r));
        }
        s[&name]["oneOf"] = Value::Array(refs);
        s[&name]["discriminator"] = json!({"propertyName": "type", "mapping": mapping});
    }
}

fn enum_of(values: &[&str], description: &str) -> Value {
    json!({"type": "string", "enum": values, "description": format!("{description} {UNKNOWN_VALUES}")})
}

/// Closed sets as enums: problem codes, event types, delivery states, outcome decisions.
fn closed_sets(spec: &mut Value) {
    let s = schemas(spec);
    if let Some(p) = s.get_mut("Problem") {
        p["properties"]["code"] = enum_of(
            PROBLEM_CODES,
            "A stable machine-readable code; switch on this, not on `title` or `detail`.",
        );
        let props = p["properties"]
            .as_object_mut()
            .expect("Problem has properties");
        props.insert(
            "pending_approval_id".into(),
            json!({"type": "string", "description": "With 409 `approval_pending`: the approval already pending on the ticket."}),
        );
        props.insert(
            "retry_after".into(),
            json!({"type": "integer", "minimum": 0, "description": "With 429: seconds to wait, as in the `Retry-After` header."}),
        );
        props.insert(
            "decided_by".into(),
            json!({"type": "string", "description": "With 409 `double_answer`: who already answered."}),
        );
        props.insert(
            "decision".into(),
            json!({"type": "string", "description": "With 409 `double_answer`: the answer already given."}),
        );
        props.insert(
            "current_version".into(),
            json!({"type": "integer", "description": "With 412 `version_mismatch`: the version the resource has now."}),
        );
        props.insert(
            "code_detail".into(),
            json!({"type": "string", "description": "A finer-grained code for some problems."}),
        );
        p["description"] = json!(
            "An RFC 9457 problem document. Some problems add members: `errors` (422), \
`pending_approval_id` (409 `approval_pending`), `retry_after` (429), `decided_by` and \
`decision` (409 `double_answer`), `current_version` (412)."
        );
    }
    if let Some(e) = s.get_mut("EventView") {
        e["properties"]["type"] = enum_of(EVENT_TYPES, "The event type.");
    }
    if let Some(d) = s.get_mut("DeliveryView") {
        d["properties"]["state"] = enum_of(
            &["pending", "succeeded", "failed"],
            "`pending`, `succeeded` or `failed` (gave up, or the endpoint was disabled).",
        );
        d["properties"]["event_type"] = enum_of(EVENT_TYPES, "The event delivered.");
    }
    if let Some(o) = s.get_mut("OutcomeView") {
        o["properties"]["decision"] = enum_of(&["approved", "rejected"], "How the approval ended.");
    }
}

fn closed_request_objects(spec: &mut Value) {
    let s = schemas(spec);
    for name in CLOSED_REQUEST_OBJECTS {
        if let Some(o) = s.get_mut(*name)
            && o.get("properties").is_some()
        {
            o["additionalProperties"] = json!(false);
        }
    }
}

/// The optional properties of [`NULL_IS_ABSENT`] objects admit `null`.
fn null_is_absent(spec: &mut Value) {
    let s = schemas(spec);
    for name in NULL_IS_ABSENT {
        let Some(o) = s.get_mut(*name) else { continue };
        let required: Vec<Value> = o["required"].as_array().cloned().unwrap_or_default();
        let Some(props) = o.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (key, prop) in props.iter_mut() {
            if required.contains(&json!(key)) {
                continue;
            }
            nullable(prop);
        }
    }
}

/// Makes a property schema admit `null`: a `null` in its `type`, or beside its `$ref`.
fn nullable(prop: &mut Value) {
    let Some(m) = prop.as_object_mut() else {
        return;
    };
    let admits_null = |v: &Value| v["type"] == "null";
    if let Some(t) = m.get_mut("type") {
        match t {
            Value::String(one) if one != "null" => *t = json!([one.clone(), "null"]),
            Value::Array(many) if !many.contains(&json!("null")) => many.push(json!("null")),
            _ => {}
        }
        if let Some(e) = m.get_mut("enum").and_then(Value::as_array_mut)
            && !e.contains(&Value::Null)
        {
            e.push(Value::Null);
        }
    } else if let Some(r) = m.remove("$ref") {
        m.insert("oneOf".into(), json!([{"type": "null"}, {"$ref": r}]));
    } else if let Some(one_of) = m.get_mut("oneOf").and_then(Value::as_array_mut)
        && !one_of.iter().any(admits_null)
    {
        one_of.insert(0, json!({"type": "null"}));
    }
}

/// Every `$ref` name reachable from `roots` through `schemas`.
fn reachable(schemas: &Map<String, Value>, roots: &[Value]) -> std::collections::BTreeSet<String> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        if let Some(n) = x.as_str().and_then(|r| r.rsplit('/').next()) {
                            out.push(n.to_string());
                        }
                    } else {
                        refs(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![];
    roots.iter().for_each(|r| refs(r, &mut todo));
    while let Some(n) = todo.pop() {
        if seen.insert(n.clone())
            && let Some(s) = schemas.get(&n)
        {
            refs(s, &mut todo);
        }
    }
    seen
}

/// Objects only ever sent (never read from a request) list every property as required, but
/// those in [`SOMETIMES_ABSENT`].
fn required_response_fields(spec: &mut Value) {
    let mut bodies = vec![];
    if let Some(paths) = spec["paths"].as_object() {
        for item in paths.values() {
            for op in item.as_object().into_iter().flat_map(|m| m.values()) {
                bodies.push(op["requestBody"].clone());
            }
        }
    }
    let s = schemas(spec);
    let requested = reachable(s, &bodies);
    for (name, schema) in s.iter_mut() {
        // Problem lists its own: the extension members come with some problems only.
        if requested.contains(name) || name == "Problem" {
            continue;
        }
        let parts: Vec<&mut Value> = if schema.get("allOf").is_some() {
            schema["allOf"]
                .as_array_mut()
                .map(|a| a.iter_mut().collect())
                .unwrap_or_default()
        } else {
            vec![schema]
        };
        for part in parts {
            let Some(props) = part.get("properties").and_then(Value::as_object) else {
                continue;
            };
            let required: Vec<Value> = props
                .keys()
                .filter(|k| !SOMETIMES_ABSENT.contains(&(name.as_str(), k.as_str())))
                .map(|k| json!(k))
                .collect();
            part["required"] = Value::Array(required);
        }
    }
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn header(description: &str, schema: Value) -> Value {
    json!({"description": description, "schema": schema})
}

/// Declares every status each operation can send, and the public operations as public.
fn operations(spec: &mut Value) {
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

fn operation(path: &str, method: &str, op: &mut Value) {
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
    let scoped = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["bearer"].as_array().is_some_and(|a| !a.is_empty()));
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
    if !public {
        let mut r = problem("Missing or invalid token (`unauthorized`)");
        r["headers"] = json!({"WWW-Authenticate": header(
            "`Bearer realm=\"signoff\", error=\"invalid_token\"`",
            json!({"type": "string"}))});
        add!("401", r);
        if scoped {
            add!(
                "403",
                problem("The token lacks the scope this operation needs (`insufficient_scope`)"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case() {
        assert_eq!(pascal("first_reply"), "FirstReply");
        assert_eq!(pascal("approval.stage_advanced"), "ApprovalStageAdvanced");
    }
}
