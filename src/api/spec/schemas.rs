//! Schema-level steps: tagged unions, closed sets as enums, closed request objects,
//! nullable optionals, and the fields a response always carries.

use serde_json::{Map, Value, json};

use super::catalog::{
    CLOSED_REQUEST_OBJECTS, EVENT_TYPES, NULL_IS_ABSENT, PROBLEM_CODES, SOMETIMES_ABSENT,
    UNKNOWN_VALUES,
};

pub(super) fn schemas(spec: &mut Value) -> &mut Map<String, Value> {
    spec.pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("the document has component schemas")
}

pub(super) fn pascal(tag: &str) -> String {
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
pub(super) fn tag_of(variant: &Value) -> Option<String> {
    let e = variant.pointer("/properties/type/enum")?.as_array()?;
    match e.as_slice() {
        [Value::String(s)] => Some(s.clone()),
        _ => None,
    }
}

/// `Requirement` was `allOf: [Rule (a oneOf), {reject_at}]`, which generators cannot take:
/// it becomes a union of its own whose variants each carry `reject_at`.
pub(super) fn requirement_union(spec: &mut Value) {
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
pub(super) fn discriminate_unions(spec: &mut Value) {
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

pub(super) fn enum_of(values: &[&str], description: &str) -> Value {
    json!({"type": "string", "enum": values, "description": format!("{description} {UNKNOWN_VALUES}")})
}

/// Closed sets as enums: problem codes, event types, delivery states, outcome decisions.
pub(super) fn closed_sets(spec: &mut Value) {
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
`decision` (409 `double_answer`), `current_version` (412), `reason` (422 \
`invalid_reassignment` and `invalid_approver`: `party`, `inactive`, `unknown_principal`, \
`already_seated`, `already_answered` or `same_person`; 409 `revoke_not_allowed`: \
`not_allowed`, `window_passed`, `counted`, `nothing_to_revoke` or `not_yours`)."
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
        o["properties"]["decision"] = enum_of(
            &["approved", "rejected", "withdrawn"],
            "How the approval ended.",
        );
    }
}

pub(super) fn closed_request_objects(spec: &mut Value) {
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
pub(super) fn null_is_absent(spec: &mut Value) {
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
pub(super) fn nullable(prop: &mut Value) {
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
pub(super) fn reachable(
    schemas: &Map<String, Value>,
    roots: &[Value],
) -> std::collections::BTreeSet<String> {
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
pub(super) fn required_response_fields(spec: &mut Value) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case() {
        assert_eq!(pascal("first_reply"), "FirstReply");
        assert_eq!(pascal("approval.stage_advanced"), "ApprovalStageAdvanced");
    }
}
