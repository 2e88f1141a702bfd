//! A small reader over untyped JSON that collects every fault with its path, so a client
//! learns about all of them in one 422 instead of fixing them one round trip at a time.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// One field at fault in a request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `stages[1].groups[0].require.count`.
    pub field: String,
    /// What is wrong with it, in plain words.
    pub message: String,
}

/// Collects faults while a body is read.
#[derive(Default, Debug)]
pub struct Faults {
    pub errors: Vec<FieldError>,
}

/// Joins a path and a key: `stages[0]` + `name` = `stages[0].name`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Path of an element of an array.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Faults {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The value as an object, or a fault. At the root, a NUL character anywhere is a fault:
    /// Postgres cannot store one in text or JSON.
    pub fn object<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        if path.is_empty() && has_nul(v) {
            self.push("body", "must not contain NUL characters");
        }
        match v {
            Value::Object(m) => Some(m),
            other => {
                let at = if path.is_empty() { "body" } else { path };
                self.push(at, format!("must be an object, not {}", type_name(other)));
                None
            }
        }
    }

    /// Flags keys outside `allowed`: a misspelt optional field would otherwise vanish silently.
    pub fn no_unknown(&mut self, m: &Map<String, Value>, path: &str, allowed: &[&str]) {
        for key in m.keys() {
            if !allowed.contains(&key.as_str()) {
                self.push(join(path, key), "is not a known field");
            }
        }
    }

    /// An optional field: absent or null gives `None`; a value of the wrong type is a fault.
    pub fn opt<T: DeserializeOwned>(
        &mut self,
        m: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<T> {
        match m.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => self.convert(v, &join(path, key)),
        }
    }

    /// A required field.
    pub fn req<T: DeserializeOwned>(
        &mut self,
        m: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<T> {
        match m.get(key) {
            None | Some(Value::Null) => {
                self.push(join(path, key), "is required");
                None
            }
            Some(v) => self.convert(v, &join(path, key)),
        }
    }

    /// Converts one value, turning serde's complaint into a fault at `path`.
    pub fn convert<T: DeserializeOwned>(&mut self, v: &Value, path: &str) -> Option<T> {
        match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let msg = e.to_string();
                // serde's "invalid type: string \"x\", expected u32" reads well once trimmed.
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                self.push(path, msg);
                None
            }
        }
    }

    /// A required non-empty string of at most `max` characters, trimmed.
    pub fn text(
        &mut self,
        m: &Map<String, Value>,
        path: &str,
        key: &str,
        max: usize,
    ) -> Option<String> {
        let s: String = self.req(m, path, key)?;
        self.check_text(&s, &join(path, key), max)
    }

    /// An optional string of at most `max` characters.
    pub fn opt_text(
        &mut self,
        m: &Map<String, Value>,
        path: &str,
        key: &str,
        max: usize,
    ) -> Option<String> {
        let s: String = self.opt(m, path, key)?;
        if s.chars().count() > max {
            self.push(join(path, key), format!("must be at most {max} characters"));
            return None;
        }
        if !is_storable_text(&s, max) {
            self.push(join(path, key), "must not contain control characters");
            return None;
        }
        Some(s)
    }

    pub fn check_text(&mut self, s: &str, path: &str, max: usize) -> Option<String> {
        let t = s.trim();
        if t.is_empty() {
            self.push(path, "must not be empty");
            None
        } else if t.chars().count() > max {
            self.push(path, format!("must be at most {max} characters"));
            None
        } else if !is_storable_text(t, max) {
            self.push(path, "must not contain control characters");
            None
        } else {
            Some(t.to_string())
        }
    }

    /// Finishes reading: the value when nothing was at fault, every fault otherwise.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ if !self.errors.is_empty() => Err(self.errors),
            _ => Err(vec![FieldError {
                field: "body".into(),
                message: "could not be read".into(),
            }]),
        }
    }
}

/// Does any string (or key) in this JSON hold a NUL character?
pub fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Free text we store: bounded, and no control characters but line breaks and tabs.
pub fn is_storable_text(s: &str, max: usize) -> bool {
    s.chars().count() <= max
        && !s
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// Is this a plausible BCP 47 language tag (`en`, `fr-CA`, `zh-Hant-TW`)?
pub fn is_locale(s: &str) -> bool {
    let mut parts = s.split(['-', '_']);
    let lang = parts.next().unwrap_or("");
    (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Is this a plausible e-mail address? Real validation is the host's job: it sends the mail.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Ids supplied by the host (principals, tickets, calendars): printable, no slashes, bounded,
/// and nothing invisible (see [`is_hidden_character`]), so two ids that look the same are the
/// same id.
pub fn is_external_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s
            .chars()
            .any(|c| is_hidden_character(c) || c == '/' || c.is_whitespace())
}

/// A character that changes what a reader sees without being seen: controls (C0, DEL, C1),
/// zero-width and other invisible format characters (ZWSP, ZWNJ, ZWJ, word joiner, BOM, soft
/// hyphen, invisible operators, tags) and bidirectional controls (LRM, RLM, ALM, embeddings,
/// overrides, isolates). "acme" and "acme\u{200b}" must not be two tenants.
pub fn is_hidden_character(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Does `s` hold a [hidden character](is_hidden_character)?
pub fn has_hidden_characters(s: &str) -> bool {
    s.chars().any(is_hidden_character)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_invisible_or_bidi_characters_are_refused() {
        for bad in [
            "acme\u{200b}",
            "ac\u{200d}me",
            "\u{feff}acme",
            "acme\u{202e}",
            "u-\u{2066}1\u{2069}",
            "u-1\u{200f}",
            "u-1\u{7f}",
            "u-1\u{85}",
            "u\u{ad}1",
            "u-1\u{e0041}",
        ] {
            assert!(!is_external_id(bad), "{bad:?}");
            assert!(has_hidden_characters(bad), "{bad:?}");
        }
        for ok in ["acme", "u-1", "Zoë", "東京", "שלום", "user@example.com"] {
            assert!(is_external_id(ok), "{ok}");
            assert!(!has_hidden_characters(ok), "{ok}");
        }
    }

    #[test]
    fn locales() {
        for ok in ["en", "fr-CA", "zh-Hant-TW", "de_DE", "ast"] {
            assert!(is_locale(ok), "{ok}");
        }
        for bad in ["", "e", "english", "en-", "12", "en-a"] {
            assert!(!is_locale(bad), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert!(is_email("ada@example.com"));
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn reader_collects_every_fault() {
        let v = serde_json::json!({"a": "x", "b": 3, "zz": 1});
        let mut f = Faults::default();
        let m = f.object(&v, "").unwrap();
        let _: Option<u32> = f.req(m, "", "a");
        let _: Option<String> = f.req(m, "", "c");
        f.no_unknown(m, "", &["a", "b", "c"]);
        let fields: Vec<_> = f.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "c", "zz"]);
    }
}
