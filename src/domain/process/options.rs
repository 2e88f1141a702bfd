//! Reading a definition's options from untyped JSON: its behaviour switches and its message
//! templates, every fault reported with its path.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::domain::duration::IsoDuration;
use crate::domain::validate::{Faults, is_locale, join};

use super::definition::*;

pub fn read_settings(f: &mut Faults, v: &Value) -> Option<ProcessSettings> {
    let m = f.object(v, "settings")?;
    f.no_unknown(
        m,
        "settings",
        &[
            "allow_self_approval",
            "reuse_previous_answers",
            "reject_requires_comment",
            "one_active_per_ticket",
            "when_no_approvers",
            "when_short",
            "allow_reassign",
            "allow_add_approver",
            "allow_abstain",
            "manual_reminders",
            "revoke_window",
        ],
    );
    let d = ProcessSettings::default();
    let p = "settings";
    Some(ProcessSettings {
        allow_self_approval: f
            .opt(m, p, "allow_self_approval")
            .unwrap_or(d.allow_self_approval),
        reuse_previous_answers: f
            .opt(m, p, "reuse_previous_answers")
            .unwrap_or(d.reuse_previous_answers),
        reject_requires_comment: f
            .opt(m, p, "reject_requires_comment")
            .unwrap_or(d.reject_requires_comment),
        one_active_per_ticket: f
            .opt(m, p, "one_active_per_ticket")
            .unwrap_or(d.one_active_per_ticket),
        when_no_approvers: read_enum(f, m, p, "when_no_approvers", &["refuse", "approve"])
            .unwrap_or(d.when_no_approvers),
        when_short: read_enum(f, m, p, "when_short", &["refuse", "cap"]).unwrap_or(d.when_short),
        allow_reassign: f.opt(m, p, "allow_reassign").unwrap_or(d.allow_reassign),
        allow_add_approver: f
            .opt(m, p, "allow_add_approver")
            .unwrap_or(d.allow_add_approver),
        allow_abstain: f.opt(m, p, "allow_abstain").unwrap_or(d.allow_abstain),
        manual_reminders: f
            .opt(m, p, "manual_reminders")
            .unwrap_or(d.manual_reminders),
        revoke_window: match m.get("revoke_window") {
            None | Some(Value::Null) => None,
            Some(_) => Some(positive_duration(f, m, p, "revoke_window", true)?),
        },
    })
}

/// Reads a string enum, naming the allowed values in the fault.
pub fn read_enum<T: serde::de::DeserializeOwned>(
    f: &mut Faults,
    m: &Map<String, Value>,
    path: &str,
    key: &str,
    allowed: &[&str],
) -> Option<T> {
    let v = m.get(key)?;
    if v.is_null() {
        return None;
    }
    match v.as_str() {
        Some(s) if allowed.contains(&s) => f.convert(v, &join(path, key)),
        _ => {
            f.push(
                join(path, key),
                format!("must be one of: {}", allowed.join(", ")),
            );
            None
        }
    }
}

pub fn read_templates(f: &mut Faults, v: &Value) -> Option<Templates> {
    let p = "templates";
    let m = f.object(v, p)?;
    f.no_unknown(m, p, &["default_locale", "locales"]);
    let default_locale: Option<String> = f.opt(m, p, "default_locale");
    if let Some(l) = &default_locale
        && !is_locale(l)
    {
        f.push(
            join(p, "default_locale"),
            "is not a language tag such as en or fr-CA",
        );
    }
    let mut locales = BTreeMap::new();
    if let Some(lv) = m.get("locales").filter(|v| !v.is_null()) {
        let lp = join(p, "locales");
        let lm = f.object(lv, &lp)?;
        for (locale, t) in lm {
            let tp = join(&lp, locale);
            if !is_locale(locale) {
                f.push(&tp, "is not a language tag such as en or fr-CA");
                continue;
            }
            let Some(tm) = f.object(t, &tp) else { continue };
            f.no_unknown(tm, &tp, &["subject", "text", "html"]);
            let subject = f.text(tm, &tp, "subject", 1_000);
            let text = f.text(tm, &tp, "text", 100_000);
            let html = f.opt_text(tm, &tp, "html", 200_000);
            for (part, source) in [("subject", &subject), ("text", &text), ("html", &html)] {
                if let Some(src) = source
                    && let Err(e) = crate::domain::messages::check(src)
                {
                    f.push(join(&tp, part), format!("does not compile: {e}"));
                }
            }
            if let (Some(subject), Some(text)) = (subject, text) {
                locales.insert(
                    locale.clone(),
                    MessageTemplate {
                        subject,
                        text,
                        html,
                    },
                );
            }
        }
    }
    if let Some(l) = &default_locale
        && !locales.is_empty()
        && !locales.contains_key(l)
    {
        f.push(
            join(p, "default_locale"),
            "must be one of the locales given",
        );
    }
    Some(Templates {
        default_locale,
        locales,
    })
}

pub(super) fn positive_duration(
    f: &mut Faults,
    m: &Map<String, Value>,
    p: &str,
    key: &str,
    required: bool,
) -> Option<IsoDuration> {
    let d: IsoDuration = if required {
        f.req(m, p, key)?
    } else {
        f.opt(m, p, key)?
    };
    if d.seconds <= 0 {
        f.push(join(p, key), "must be longer than zero");
        return None;
    }
    Some(d)
}
