//! Approval process definitions: what a process says, and the rules that make one valid.
//!
//! Requests arrive as untyped JSON and are read by [`ProcessDefinition::parse`], which reports
//! every fault with its path. Stored definitions (JSONB) are read back with serde directly.

mod definition;
mod options;
mod read;

pub use definition::*;
pub use options::{read_enum, read_settings, read_templates};
pub use read::*;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::Value;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn example() -> Value {
        json!({
            "name": "Laptop purchase",
            "description": "Hardware over 1000 EUR",
            "expires_at": "2027-06-30T00:00:00Z",
            "on_approved_status": "approved",
            "on_rejected_status": "rejected",
            "settings": {"allow_self_approval": false, "reuse_previous_answers": true,
                         "reject_requires_comment": true, "one_active_per_ticket": true,
                         "when_no_approvers": "refuse"},
            "stages": [
                {"name": "Manager", "combine": "all",
                 "groups": [{"name": "manager", "source": {"type": "requester_manager"},
                             "require": {"type": "count", "count": 1}}],
                 "timeout": {"after": "PT48H", "calendar_id": "office", "outcome": "reject"},
                 "reminders": {"every": "PT24H", "max": 2},
                 "substitutes": {"notify_at_percent": 80, "source": {"type": "approver_manager"}}},
                {"name": "Finance", "combine": "any",
                 "groups": [{"name": "finance", "source": {"type": "role", "role": "finance"},
                             "require": {"type": "majority"}},
                            {"name": "cfo", "source": {"type": "principals", "ids": ["u-1"]},
                             "require": {"type": "all"}}]}
            ],
            "templates": {"default_locale": "en",
                          "locales": {"en": {"subject": "s", "text": "t", "html": "h"}}}
        })
    }

    fn fields(body: Value) -> Vec<String> {
        ProcessDefinition::parse(&body, now())
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn the_api_example_is_valid_and_round_trips() {
        let def = ProcessDefinition::parse(&example(), now()).unwrap();
        assert_eq!(def.stages.len(), 2);
        assert_eq!(def.stages[1].combine, Combine::Any);
        let stored = serde_json::to_value(&def).unwrap();
        let back: ProcessDefinition = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(back, def);
        assert_eq!(
            stored["stages"][0]["groups"][0]["require"],
            json!({"type": "count", "count": 1})
        );
        assert_eq!(stored["stages"][0]["timeout"]["after"], "PT48H");
    }

    #[test]
    fn minimal_definition_takes_defaults() {
        let def = ProcessDefinition::parse(
            &json!({"name": "x", "stages": [{"name": "s", "groups": [
                {"name": "g", "source": {"type": "role", "role": "cab"}, "require": {"type": "all"}}]}]}),
            now(),
        )
        .unwrap();
        assert!(def.settings.one_active_per_ticket);
        assert_eq!(def.settings.when_no_approvers, WhenNoApprovers::Refuse);
        assert_eq!(def.stages[0].combine, Combine::All);
    }

    #[test]
    fn every_fault_is_reported_with_its_path() {
        let mut body = example();
        body["stages"][1]["groups"][1]["require"] = json!({"type": "count", "count": 3});
        body["stages"][1]["groups"][0]["source"] = json!({"type": "astrologer"});
        body["stages"][0]["groups"][0]["name"] = json!("cfo");
        body["settings"]["when_no_approvers"] = json!("shrug");
        body["expires_at"] = json!("2020-01-01T00:00:00Z");
        body["on_aproved_status"] = json!("typo");
        let got = fields(body);
        for want in [
            "stages[1].groups[0].source.type",
            "settings.when_no_approvers",
            "expires_at",
            "on_aproved_status",
        ] {
            assert!(
                got.contains(&want.to_string()),
                "{want} missing from {got:?}"
            );
        }
    }

    #[test]
    fn semantic_faults_are_reported_together() {
        let mut body = example();
        body["stages"][1]["groups"][1]["require"] = json!({"type": "count", "count": 3});
        body["stages"][0]["groups"][0]["name"] = json!("CFO");
        let got = fields(body);
        assert_eq!(
            got,
            [
                "stages[1].groups[1].require.count",
                "stages[1].groups[1].name"
            ]
        );
    }

    #[test]
    fn a_count_above_the_listed_members_is_reported_beside_other_faults() {
        let mut body = example();
        body["stages"][1]["groups"][1]["require"] = json!({"type": "count", "count": 3});
        body["stages"][1]["groups"][0]["source"] = json!({"type": "astrologer"});
        let got = fields(body);
        assert_eq!(
            got,
            [
                "stages[1].groups[0].source.type",
                "stages[1].groups[1].require.count"
            ]
        );
    }

    #[test]
    fn empty_and_missing_parts_are_refused() {
        assert_eq!(fields(json!({"name": "x", "stages": []})), ["stages"]);
        assert_eq!(fields(json!({"stages": []})), ["name", "stages"]);
        assert_eq!(fields(json!([])), ["body"]);
        assert_eq!(
            fields(json!({"name": "x", "stages": [{"name": "s", "groups": []}]})),
            ["stages[0].groups"]
        );
    }

    #[test]
    fn requirement_values_are_checked() {
        let stage = |require: Value| {
            json!({"name": "x", "stages": [{"name": "s", "groups": [
                {"name": "g", "source": {"type": "principals", "ids": ["a", "b"]}, "require": require}]}]})
        };
        assert_eq!(
            fields(stage(json!({"type": "count", "count": 0}))),
            ["stages[0].groups[0].require.count"]
        );
        assert_eq!(
            fields(stage(json!({"type": "percent", "percent": 101}))),
            ["stages[0].groups[0].require.percent"]
        );
        assert_eq!(
            fields(stage(json!({"type": "all", "reject_at": 3}))),
            ["stages[0].groups[0].require.reject_at"]
        );
        assert_eq!(
            fields(stage(json!({"type": "most"}))),
            ["stages[0].groups[0].require.type"]
        );
        assert_eq!(
            fields(stage(json!({"type": "count", "count": "two"}))),
            ["stages[0].groups[0].require.count"]
        );
    }

    #[test]
    fn timed_features_need_a_timeout() {
        let mut body = example();
        body["stages"][0].as_object_mut().unwrap().remove("timeout");
        body["stages"][0]["reminders"] = json!({"at_percent": [50]});
        assert_eq!(
            fields(body),
            [
                "stages[0].reminders.at_percent",
                "stages[0].substitutes.notify_at_percent"
            ]
        );
    }

    #[test]
    fn templates_that_do_not_compile_are_named_with_their_position() {
        let mut body = example();
        body["templates"]["locales"]["fr"] =
            json!({"subject": "Bonjour {{ approver.display_name", "text": "ok"});
        let errors = ProcessDefinition::parse(&body, now()).unwrap_err();
        assert_eq!(errors[0].field, "templates.locales.fr.subject");
        assert!(
            errors[0].message.contains("line 1"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn rule_requirements() {
        assert_eq!(Rule::Majority.required(4), 3);
        assert_eq!(Rule::Majority.required(3), 2);
        assert_eq!(Rule::Percent { percent: 50 }.required(3), 2);
        assert_eq!(Rule::Percent { percent: 100 }.required(3), 3);
        assert_eq!(Rule::All.required(5), 5);
        assert_eq!(Rule::FirstReply.required(5), 1);
    }
}
