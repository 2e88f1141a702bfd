//! Reading a definition from untyped JSON, every fault reported with its path, and the
//! rules that make a definition valid.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::validate::{Faults, FieldError, index, is_external_id, join};

use super::definition::*;
use super::options::{positive_duration, read_enum, read_settings, read_templates};

/// Fields the response adds, accepted and ignored on `PUT` so a client can send back what it read.
pub(super) const READ_ONLY: &[&str] = &["id", "version", "enabled", "created_at", "updated_at"];

impl ProcessDefinition {
    /// Reads and validates a definition, reporting every fault.
    pub fn parse(body: &Value, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let mut f = Faults::default();
        let def = read_definition(&mut f, body, now);
        if let Some(def) = &def {
            check_semantics(&mut f, def);
        }
        f.finish(def)
    }
}

pub(super) fn read_definition(
    f: &mut Faults,
    body: &Value,
    now: DateTime<Utc>,
) -> Option<ProcessDefinition> {
    let m = f.object(body, "")?;
    let mut allowed = vec![
        "name",
        "description",
        "expires_at",
        "on_approved_status",
        "on_rejected_status",
        "on_started_status",
        "on_cancelled_status",
        "on_withdrawn_status",
        "settings",
        "stages",
        "templates",
    ];
    allowed.extend_from_slice(READ_ONLY);
    f.no_unknown(m, "", &allowed);

    let name = f.text(m, "", "name", 200);
    let description = f.opt_text(m, "", "description", 10_000);
    let expires_at: Option<DateTime<Utc>> = f.opt(m, "", "expires_at");
    if let Some(at) = expires_at
        && at <= now
    {
        f.push("expires_at", "must be in the future");
    }
    let on_approved_status = f.opt_text(m, "", "on_approved_status", 100);
    let on_rejected_status = f.opt_text(m, "", "on_rejected_status", 100);
    let on_started_status = f.opt_text(m, "", "on_started_status", 100);
    let on_cancelled_status = f.opt_text(m, "", "on_cancelled_status", 100);
    let on_withdrawn_status = f.opt_text(m, "", "on_withdrawn_status", 100);
    let settings = match m.get("settings") {
        None | Some(Value::Null) => Some(ProcessSettings::default()),
        Some(v) => read_settings(f, v),
    };
    let stages = read_stages(f, m);
    let templates = match m.get("templates") {
        None | Some(Value::Null) => Some(None),
        Some(v) => read_templates(f, v).map(Some),
    };
    Some(ProcessDefinition {
        name: name?,
        description,
        expires_at,
        on_approved_status,
        on_rejected_status,
        on_started_status,
        on_cancelled_status,
        on_withdrawn_status,
        settings: settings?,
        stages: stages?,
        templates: templates?,
    })
}

pub(super) fn read_stages(f: &mut Faults, m: &Map<String, Value>) -> Option<Vec<StageDef>> {
    let Some(v) = m.get("stages") else {
        f.push("stages", "is required");
        return None;
    };
    let Some(items) = v.as_array() else {
        f.push("stages", "must be an array of stages");
        return None;
    };
    if items.is_empty() {
        f.push("stages", "must contain at least one stage");
        return None;
    }
    if items.len() > MAX_STAGES {
        f.push(
            "stages",
            format!("must contain at most {MAX_STAGES} stages"),
        );
        return None;
    }
    let stages: Vec<Option<StageDef>> = items
        .iter()
        .enumerate()
        .map(|(i, s)| read_stage(f, s, &index("stages", i)))
        .collect();
    stages.into_iter().collect()
}

pub(super) fn read_stage(f: &mut Faults, v: &Value, p: &str) -> Option<StageDef> {
    let m = f.object(v, p)?;
    f.no_unknown(
        m,
        p,
        &[
            "name",
            "combine",
            "decide",
            "groups",
            "timeout",
            "reminders",
            "substitutes",
            "when",
        ],
    );
    let name = f.text(m, p, "name", 200);
    let when = crate::domain::condition::read(f, m, p, "when");
    let combine = read_enum(f, m, p, "combine", &["all", "any"]).unwrap_or_default();
    let decide: Option<StageDecide> = read_enum(f, m, p, "decide", &["first_group"]);
    if decide.is_some() && combine != Combine::Any {
        f.push(join(p, "decide"), "applies to `combine: any` stages only");
    }
    let groups = match m.get("groups").and_then(Value::as_array) {
        None => {
            f.push(
                join(p, "groups"),
                "is required: an array of approver groups",
            );
            None
        }
        Some(a) if a.is_empty() => {
            f.push(join(p, "groups"), "must contain at least one group");
            None
        }
        Some(a) if a.len() > MAX_GROUPS => {
            f.push(
                join(p, "groups"),
                format!("must contain at most {MAX_GROUPS} groups"),
            );
            None
        }
        Some(a) => {
            let gp = join(p, "groups");
            let groups: Vec<Option<GroupDef>> = a
                .iter()
                .enumerate()
                .map(|(i, g)| read_group(f, g, &index(&gp, i)))
                .collect();
            groups.into_iter().collect()
        }
    };
    let timeout = match m.get("timeout") {
        None | Some(Value::Null) => Some(None),
        Some(t) => read_timeout(f, t, &join(p, "timeout")).map(Some),
    };
    let reminders = match m.get("reminders") {
        None | Some(Value::Null) => Some(None),
        Some(r) => read_reminders(f, r, &join(p, "reminders")).map(Some),
    };
    let substitutes = match m.get("substitutes") {
        None | Some(Value::Null) => Some(None),
        Some(s) => read_substitutes(f, s, &join(p, "substitutes")).map(Some),
    };
    Some(StageDef {
        name: name?,
        combine,
        decide,
        groups: groups?,
        timeout: timeout?,
        reminders: reminders?,
        substitutes: substitutes?,
        when,
    })
}

pub(super) fn read_group(f: &mut Faults, v: &Value, p: &str) -> Option<GroupDef> {
    let m = f.object(v, p)?;
    f.no_unknown(m, p, &["name", "source", "require"]);
    let name = f.text(m, p, "name", 100);
    let source = match m.get("source") {
        None | Some(Value::Null) => {
            f.push(join(p, "source"), "is required");
            None
        }
        Some(s) => read_source(f, s, &join(p, "source")),
    };
    let require = match m.get("require") {
        None | Some(Value::Null) => {
            f.push(join(p, "require"), "is required");
            None
        }
        Some(r) => read_requirement(f, r, &join(p, "require")),
    };
    // Checked here rather than with the cross-field rules so it is reported even when another
    // part of the definition is malformed. Only a listed group has a size known in advance.
    if let (Some(Source::Principals { ids }), Some(req)) = (&source, &require) {
        let n = ids.iter().collect::<HashSet<_>>().len();
        if let Rule::Count { count } = req.rule
            && count as usize > n
        {
            f.push(
                join(p, "require.count"),
                format!("is {count} but the group lists only {n} principal(s)"),
            );
        }
        if let Some(r) = req.reject_at
            && r as usize > n
        {
            f.push(
                join(p, "require.reject_at"),
                format!("is {r} but the group lists only {n} principal(s)"),
            );
        }
    }
    Some(GroupDef {
        name: name?,
        source: source?,
        require: require?,
    })
}

/// Reads a list of principal ids, refusing empty lists and malformed ids.
pub(super) fn read_ids(f: &mut Faults, m: &Map<String, Value>, p: &str) -> Option<Vec<String>> {
    let ids: Vec<String> = f.req(m, p, "ids")?;
    let path = join(p, "ids");
    if ids.is_empty() {
        f.push(&path, "must list at least one principal id");
        return None;
    }
    if ids.len() > MAX_LISTED_PRINCIPALS {
        f.push(
            &path,
            format!("must list at most {MAX_LISTED_PRINCIPALS} ids"),
        );
        return None;
    }
    let mut ok = true;
    for (i, id) in ids.iter().enumerate() {
        if !is_external_id(id) {
            f.push(index(&path, i), "is not a valid principal id");
            ok = false;
        }
    }
    ok.then_some(ids)
}

pub(super) fn read_source(f: &mut Faults, v: &Value, p: &str) -> Option<Source> {
    let m = f.object(v, p)?;
    const TYPES: &[&str] = &[
        "principals",
        "role",
        "requester_selected",
        "requester_manager",
        "ticket_field",
    ];
    let kind = match m.get("type").and_then(Value::as_str) {
        Some(k) if TYPES.contains(&k) => k,
        _ => {
            f.push(
                join(p, "type"),
                format!("must be one of: {}", TYPES.join(", ")),
            );
            return None;
        }
    };
    match kind {
        "principals" => {
            f.no_unknown(m, p, &["type", "ids"]);
            read_ids(f, m, p).map(|ids| Source::Principals { ids })
        }
        "role" => {
            f.no_unknown(m, p, &["type", "role"]);
            f.text(m, p, "role", 100).map(|role| Source::Role { role })
        }
        "ticket_field" => {
            f.no_unknown(m, p, &["type", "field"]);
            f.text(m, p, "field", 100)
                .map(|field| Source::TicketField { field })
        }
        "requester_selected" => {
            f.no_unknown(m, p, &["type"]);
            Some(Source::RequesterSelected)
        }
        _ => {
            f.no_unknown(m, p, &["type"]);
            Some(Source::RequesterManager)
        }
    }
}

/// Reads a requirement; shared with ad-hoc approval requests.
pub fn read_requirement(f: &mut Faults, v: &Value, p: &str) -> Option<Requirement> {
    let m = f.object(v, p)?;
    const TYPES: &[&str] = &["count", "all", "majority", "percent", "first_reply"];
    let kind = match m.get("type").and_then(Value::as_str) {
        Some(k) if TYPES.contains(&k) => k,
        _ => {
            f.push(
                join(p, "type"),
                format!("must be one of: {}", TYPES.join(", ")),
            );
            return None;
        }
    };
    let reject_at: Option<u32> = f.opt(m, p, "reject_at");
    if reject_at == Some(0) {
        f.push(join(p, "reject_at"), "must be at least 1");
    }
    let rule = match kind {
        "count" => {
            f.no_unknown(m, p, &["type", "count", "reject_at"]);
            let count: u32 = f.req(m, p, "count")?;
            if count == 0 {
                f.push(join(p, "count"), "must be at least 1");
            }
            Rule::Count { count }
        }
        "percent" => {
            f.no_unknown(m, p, &["type", "percent", "reject_at"]);
            let percent: u32 = f.req(m, p, "percent")?;
            if !(1..=100).contains(&percent) {
                f.push(join(p, "percent"), "must be from 1 to 100");
            }
            Rule::Percent { percent }
        }
        other => {
            f.no_unknown(m, p, &["type", "reject_at"]);
            match other {
                "all" => Rule::All,
                "majority" => Rule::Majority,
                _ => Rule::FirstReply,
            }
        }
    };
    Some(Requirement { rule, reject_at })
}

pub fn read_timeout(f: &mut Faults, v: &Value, p: &str) -> Option<TimeoutDef> {
    let m = f.object(v, p)?;
    f.no_unknown(m, p, &["after", "calendar_id", "outcome", "escalate"]);
    let after = positive_duration(f, m, p, "after", true);
    let calendar_id: Option<String> = f.opt(m, p, "calendar_id");
    if let Some(c) = &calendar_id
        && !is_external_id(c)
    {
        f.push(join(p, "calendar_id"), "is not a valid calendar id");
    }
    let outcome = if m.get("outcome").is_none_or(Value::is_null) {
        f.push(join(p, "outcome"), "is required: approve or reject");
        None
    } else {
        read_enum(f, m, p, "outcome", &["approve", "reject"])
    };
    let escalate = match m.get("escalate") {
        None | Some(Value::Null) => None,
        Some(e) => Some(read_escalate(f, e, &join(p, "escalate"))?),
    };
    Some(TimeoutDef {
        after: after?,
        calendar_id,
        outcome: outcome?,
        escalate,
    })
}

fn read_escalate(f: &mut Faults, v: &Value, p: &str) -> Option<EscalateDef> {
    let m = f.object(v, p)?;
    f.no_unknown(m, p, &["levels", "to"]);
    let levels: Option<u32> = f.req(m, p, "levels");
    if levels.is_some_and(|l| !(1..=5).contains(&l)) {
        f.push(join(p, "levels"), "must be 1 to 5");
    }
    let to = if m.get("to").is_none_or(Value::is_null) {
        Some(EscalateTo::ApproverManager)
    } else {
        read_enum(f, m, p, "to", &["approver_manager"])
    };
    Some(EscalateDef {
        levels: levels.filter(|l| (1..=5).contains(l))?,
        to: to?,
    })
}

pub(super) fn read_percents(f: &mut Faults, m: &Map<String, Value>, p: &str) -> Option<Vec<u32>> {
    let list: Vec<u32> = f.opt(m, p, "at_percent")?;
    let path = join(p, "at_percent");
    if list.is_empty() {
        f.push(&path, "must list at least one percentage");
    }
    for (i, pct) in list.iter().enumerate() {
        if !(1..=99).contains(pct) {
            f.push(index(&path, i), "must be from 1 to 99");
        }
    }
    Some(list)
}

pub fn read_reminders(f: &mut Faults, v: &Value, p: &str) -> Option<RemindersDef> {
    let m = f.object(v, p)?;
    f.no_unknown(m, p, &["every", "max", "at_percent"]);
    let every = positive_duration(f, m, p, "every", false);
    let max: Option<u32> = f.opt(m, p, "max");
    if max.is_some_and(|n| !(1..=1000).contains(&n)) {
        f.push(join(p, "max"), "must be from 1 to 1000");
    }
    let at_percent = read_percents(f, m, p);
    if every.is_none() && at_percent.is_none() && !f.errors.iter().any(|e| e.field.starts_with(p)) {
        f.push(p, "needs `every` or `at_percent`");
    }
    Some(RemindersDef {
        every,
        max,
        at_percent,
    })
}

pub(super) fn read_substitutes(f: &mut Faults, v: &Value, p: &str) -> Option<SubstitutesDef> {
    let m = f.object(v, p)?;
    f.no_unknown(m, p, &["notify_at_percent", "source"]);
    let pct: Option<u32> = f.req(m, p, "notify_at_percent");
    if let Some(pct) = pct
        && !(1..=99).contains(&pct)
    {
        f.push(join(p, "notify_at_percent"), "must be from 1 to 99");
    }
    let sp = join(p, "source");
    let source = match m.get("source") {
        None | Some(Value::Null) => {
            f.push(&sp, "is required");
            None
        }
        Some(s) => {
            let sm = f.object(s, &sp)?;
            match sm.get("type").and_then(Value::as_str) {
                Some("approver_manager") => {
                    f.no_unknown(sm, &sp, &["type"]);
                    Some(SubstituteSource::ApproverManager)
                }
                Some("principals") => {
                    f.no_unknown(sm, &sp, &["type", "ids"]);
                    read_ids(f, sm, &sp).map(|ids| SubstituteSource::Principals { ids })
                }
                _ => {
                    f.push(
                        join(&sp, "type"),
                        "must be one of: approver_manager, principals",
                    );
                    None
                }
            }
        }
    };
    Some(SubstitutesDef {
        notify_at_percent: pct?,
        source: source?,
    })
}

/// Cross-field rules, checked once the shapes are right.
pub(super) fn check_semantics(f: &mut Faults, def: &ProcessDefinition) {
    let mut group_names = HashSet::new();
    let mut stage_names = HashSet::new();
    for (si, stage) in def.stages.iter().enumerate() {
        let sp = index("stages", si);
        if !stage_names.insert(stage.name.to_lowercase()) {
            f.push(join(&sp, "name"), "duplicates an earlier stage name");
        }
        let timed = stage.timeout.is_some();
        if let Some(r) = &stage.reminders
            && r.at_percent.is_some()
            && !timed
        {
            f.push(
                join(&sp, "reminders.at_percent"),
                "needs a stage timeout to count from",
            );
        }
        if stage.substitutes.is_some() && !timed {
            f.push(
                join(&sp, "substitutes.notify_at_percent"),
                "needs a stage timeout to count from",
            );
        }
        for (gi, group) in stage.groups.iter().enumerate() {
            let gp = index(&join(&sp, "groups"), gi);
            if !group_names.insert(group.name.to_lowercase()) {
                f.push(
                    join(&gp, "name"),
                    "duplicates another group name in this process",
                );
            }
        }
    }
}
