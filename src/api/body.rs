//! The one reader of JSON request bodies. Every endpoint reads its body through [`JsonBody`],
//! so every endpoint refuses the same things with the same problem documents:
//!
//! - a `Content-Type` other than `application/json` (or `application/*+json`): 415
//!   `unsupported_media_type`;
//! - more than [`MAX_BODY_BYTES`]: 413 `body_too_large`;
//! - text that is not JSON, or a second JSON value after the first: 400 `invalid_json`;
//! - a key that appears twice in one object, a string (or key) with a control character other
//!   than tab and line breaks (Postgres cannot store NUL), nesting deeper than [`MAX_DEPTH`]:
//!   422 `validation_failed` naming the field;
//! - for a typed body, a field of the wrong type, a missing field or an unknown one: 422
//!   `validation_failed` naming the field.
//!
//! The JSON is scanned once, by a `DeserializeSeed` that builds the `serde_json::Value` while
//! it checks: serde_json itself keeps the last of duplicate keys and accepts any string.

use std::cell::RefCell;
use std::fmt;
use std::ops::Deref;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::domain::validate::FieldError;
use crate::error::AppError;

/// Largest JSON body we read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Deepest nesting of arrays and objects we read. A process definition needs about eight.
pub const MAX_DEPTH: usize = 32;

/// A JSON request body, checked as the module says; `T` is the typed request, or `Value` for
/// handlers that read the JSON themselves. Dereferences to `T`.
#[derive(Debug)]
pub struct JsonBody<T = Value>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = is_json_content_type(req);
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(AppError::new(
                    crate::error::Kind::UnsupportedMediaType,
                    "unsupported_media_type",
                    "send the body as application/json",
                ));
            }
            if declared_len.is_some_and(|n| n > MAX_BODY_BYTES) {
                return Err(too_large());
            }
            let mut bytes = Vec::with_capacity(declared_len.unwrap_or(1024).min(MAX_BODY_BYTES));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    AppError::bad_request(
                        "invalid_body",
                        format!("the body could not be read: {e}"),
                    )
                })?;
                if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            let value = parse(&bytes)?;
            typed(value).map(JsonBody)
        })
    }
}

fn too_large() -> AppError {
    AppError::new(
        crate::error::Kind::PayloadTooLarge,
        "body_too_large",
        format!("the body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// `application/json`, `application/problem+json` and the like, any parameters.
fn is_json_content_type(req: &HttpRequest) -> bool {
    let Some(ct) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads JSON text into a `Value`, refusing what the module says it refuses.
pub fn parse(bytes: &[u8]) -> Result<Value, AppError> {
    let fault = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Checked {
        depth: 0,
        path: String::new(),
        fault: &fault,
    };
    let read = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match read {
        Ok(v) => Ok(v),
        Err(e) => match fault.into_inner() {
            Some(f) => Err(AppError::invalid(vec![f])),
            None => Err(AppError::bad_request(
                "invalid_json",
                format!("the body is not valid JSON: {e}"),
            )),
        },
    }
}

/// Converts checked JSON into the typed request; a mismatch is a 422 naming the field. Every
/// request body is an object: serde would read a struct from an array too (`[null, null]` as
/// its fields in order), so anything else is refused here first.
pub fn typed<T: DeserializeOwned>(value: Value) -> Result<T, AppError> {
    if !value.is_object() {
        let kind = match value {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(AppError::invalid(vec![FieldError {
            field: "body".into(),
            message: format!("must be an object, not {kind}"),
        }]));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        AppError::invalid(vec![field_error(&path, &message)])
    })
}

/// serde says "unknown field `x`, expected …" about the object holding `x`: name `x` itself.
fn field_error(path: &str, message: &str) -> FieldError {
    let base = if path == "." { "" } else { path };
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        // serde_path_to_error already ends the path with the unknown key.
        let field = if base == name || base.ends_with(&format!(".{name}")) {
            base.to_string()
        } else {
            join(base, name)
        };
        return FieldError {
            field,
            message: "is not a known field".into(),
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        return FieldError {
            field: join(base, name),
            message: "is required".into(),
        };
    }
    FieldError {
        field: if base.is_empty() {
            "body".into()
        } else {
            base.into()
        },
        message: message.into(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn is_refused_char(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// Builds a `Value` while checking depth, duplicate keys and control characters. The first
/// fault is kept in `fault` (with its path) and parsing stops there.
struct Checked<'a> {
    depth: usize,
    path: String,
    fault: &'a RefCell<Option<FieldError>>,
}

impl Checked<'_> {
    fn refuse<E: de::Error>(&self, path: &str, message: impl Into<String>) -> E {
        let message = message.into();
        let field = if path.is_empty() { "body" } else { path };
        *self.fault.borrow_mut() = Some(FieldError {
            field: field.into(),
            message: message.clone(),
        });
        E::custom(message)
    }

    fn child(&self, path: String) -> Checked<'_> {
        Checked {
            depth: self.depth + 1,
            path,
            fault: self.fault,
        }
    }

    fn enter<E: de::Error>(&self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            return Err(self.refuse(
                &self.path,
                format!("nests deeper than {MAX_DEPTH} levels of arrays and objects"),
            ));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Checked<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        if v.chars().any(is_refused_char) {
            return Err(self.refuse(&self.path, "must not contain control characters"));
        }
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.visit_str(&v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self.child(format!(
            "{}[{}]",
            if self.path.is_empty() {
                "body"
            } else {
                &self.path
            },
            items.len()
        )))? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if key.chars().any(is_refused_char) {
                return Err(self.refuse(&path, "must not contain control characters"));
            }
            if out.contains_key(&key) {
                return Err(self.refuse(&path, "appears more than once in the object"));
            }
            let v = map.next_value_seed(self.child(path))?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(text: &str) -> (u16, String, String) {
        let p = parse(text.as_bytes()).unwrap_err();
        let p = crate::api::problem::problem_of(&p);
        let first = p.errors.unwrap_or_default().into_iter().next();
        (
            p.status,
            p.code,
            first
                .map(|f| format!("{}: {}", f.field, f.message))
                .unwrap_or_default(),
        )
    }

    #[test]
    fn reads_plain_json() {
        let v = parse(br#"{"a": [1, 2.5, "x\ny", null, true], "b": {}}"#).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": [1, 2.5, "x\ny", null, true], "b": {}})
        );
    }

    #[test]
    fn refuses_duplicate_keys_with_their_path() {
        let (status, code, f) = fault(r#"{"a": {"b": 1, "b": 2}}"#);
        assert_eq!((status, code.as_str()), (422, "validation_failed"));
        assert_eq!(f, "a.b: appears more than once in the object");
    }

    #[test]
    fn refuses_nul_and_control_characters_in_values_and_keys() {
        assert_eq!(
            fault(r#"{"list": ["ok", "x\u0000"]}"#).2,
            "list[1]: must not contain control characters"
        );
        assert_eq!(
            fault(r#"{"k\u0007": 1}"#).2,
            "k\u{7}: must not contain control characters"
        );
        assert_eq!(
            fault(r#""\u001b""#).2,
            "body: must not contain control characters"
        );
    }

    #[test]
    fn bounds_nesting() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let (status, _, f) = fault(&deep);
        assert_eq!(status, 422);
        assert!(f.contains("nests deeper than"), "{f}");
    }

    #[test]
    fn syntax_errors_and_trailing_values_are_400() {
        for bad in ["{not json", "", "{} {}", "[1,]"] {
            let (status, code, _) = fault(bad);
            assert_eq!((status, code.as_str()), (400, "invalid_json"), "{bad}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[test]
    fn typed_faults_name_the_field() {
        let f = |v: Value| {
            let p = typed::<Outer>(v).unwrap_err();
            let p = crate::api::problem::problem_of(&p);
            let e = &p.errors.unwrap()[0];
            format!("{}: {}", e.field, e.message)
        };
        use serde_json::json;
        assert_eq!(
            f(json!({"items": [{"n": 1}, {"n": 1, "x": 2}]})),
            "items[1].x: is not a known field"
        );
        assert_eq!(f(json!({"items": [{}]})), "items[0].n: is required");
        assert!(f(json!({"items": [{"n": "one"}]})).starts_with("items[0].n: invalid type"));
        assert_eq!(f(json!({})), "items: is required");
    }
}
