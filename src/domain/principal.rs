//! Principals: people who can approve, as the host describes them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::validate::{Faults, FieldError, index, is_email, is_external_id, is_locale};

/// The kind of account a principal has in the host.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    Technician,
    Contact,
    EndUser,
}

impl PrincipalKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Technician => "technician",
            PrincipalKind::Contact => "contact",
            PrincipalKind::EndUser => "end_user",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
}

/// The body of `PUT /v1/principals/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct PrincipalInput {
    pub kind: PrincipalKind,
    #[schema(example = "Ada Lovelace")]
    pub display_name: String,
    /// Where the host sends this principal's approval requests.
    #[serde(default)]
    #[schema(example = "ada@example.com")]
    pub email: Option<String>,
    /// BCP 47 language tag; messages and the decision page use it. Default `en`.
    #[serde(default)]
    #[schema(example = "en")]
    pub locale: Option<String>,
    /// IANA time zone. Default `UTC`.
    #[serde(default)]
    #[schema(example = "Europe/London")]
    pub time_zone: Option<String>,
    /// The principal's manager (for `requester_manager` groups and substitutes).
    #[serde(default)]
    #[schema(example = "u-42")]
    pub manager_id: Option<String>,
    /// Roles used by `role` groups.
    #[serde(default)]
    #[schema(example = json!(["cab"]))]
    pub roles: Vec<String>,
    /// Inactive principals are left out of role groups. Default `true`.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl PrincipalInput {
    /// Reads and validates a principal for `id`, reporting every fault.
    pub fn parse(id: &str, body: &Value) -> Result<Self, Vec<FieldError>> {
        let mut f = Faults::default();
        let read = (|| {
            let m = f.object(body, "")?;
            f.no_unknown(
                m,
                "",
                &[
                    "id",
                    "kind",
                    "display_name",
                    "email",
                    "locale",
                    "time_zone",
                    "manager_id",
                    "roles",
                    "active",
                ],
            );
            if let Some(given) = m.get("id").and_then(Value::as_str)
                && given != id
            {
                f.push("id", "does not match the id in the path");
            }
            let kind = match m.get("kind").and_then(Value::as_str) {
                Some(k) => PrincipalKind::parse(k),
                None => None,
            };
            if kind.is_none() {
                f.push(
                    "kind",
                    "must be one of: user, technician, contact, end_user",
                );
            }
            let display_name = f.text(m, "", "display_name", 200);
            let email: Option<String> = f.opt(m, "", "email");
            if let Some(e) = &email
                && !is_email(e)
            {
                f.push("email", "is not an e-mail address");
            }
            let locale: Option<String> = f.opt(m, "", "locale");
            if let Some(l) = &locale
                && !is_locale(l)
            {
                f.push("locale", "is not a language tag such as en or fr-CA");
            }
            let time_zone: Option<String> = f.opt(m, "", "time_zone");
            if let Some(tz) = &time_zone
                && tz.parse::<chrono_tz::Tz>().is_err()
            {
                f.push(
                    "time_zone",
                    "is not an IANA time zone such as Europe/London",
                );
            }
            let manager_id: Option<String> = f.opt(m, "", "manager_id");
            if let Some(mgr) = &manager_id {
                if !is_external_id(mgr) {
                    f.push("manager_id", "is not a valid principal id");
                } else if mgr == id {
                    f.push("manager_id", "a principal cannot be their own manager");
                }
            }
            let roles: Vec<String> = f.opt(m, "", "roles").unwrap_or_default();
            for (i, r) in roles.iter().enumerate() {
                if r.trim().is_empty() || r.len() > 100 {
                    f.push(index("roles", i), "must be 1 to 100 characters");
                }
            }
            let active: bool = f.opt(m, "", "active").unwrap_or(true);
            Some(PrincipalInput {
                kind: kind?,
                display_name: display_name?,
                email,
                locale,
                time_zone,
                manager_id,
                roles,
                active,
            })
        })();
        f.finish(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_api_example_is_valid() {
        let p = PrincipalInput::parse(
            "u-1",
            &json!({"kind": "technician", "display_name": "Ada Lovelace", "email": "ada@example.com",
                    "locale": "en", "time_zone": "Europe/London", "manager_id": "u-42",
                    "roles": ["cab"], "active": true}),
        )
        .unwrap();
        assert_eq!(p.kind, PrincipalKind::Technician);
    }

    #[test]
    fn every_fault_is_listed() {
        let errors = PrincipalInput::parse(
            "u-1",
            &json!({"kind": "robot", "display_name": " ", "email": "nope", "locale": "english",
                    "time_zone": "Mars/Olympus", "manager_id": "u-1", "roles": [""], "colour": 1}),
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "colour",
                "kind",
                "display_name",
                "email",
                "locale",
                "time_zone",
                "manager_id",
                "roles[0]"
            ]
        );
    }
}
