//! Approval process definitions: what a process says, and the rules that make one valid.
//!
//! Requests arrive as untyped JSON and are read by [`ProcessDefinition::parse`], which reports
//! every fault with its path. Stored definitions (JSONB) are read back with serde directly.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::duration::IsoDuration;
use super::validate::{Faults, FieldError, index, is_external_id, is_locale, join};

/// Limits that keep one definition within what a person can reason about.
pub const MAX_STAGES: usize = 20;
pub const MAX_GROUPS: usize = 20;
pub const MAX_LISTED_PRINCIPALS: usize = 500;

/// A whole approval process definition: the body of `POST /v1/processes` and `PUT`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ProcessDefinition {
    /// Unique name within the tenant.
    #[schema(example = "Laptop purchase")]
    pub name: String,
    /// What the process is for.
    #[serde(default)]
    pub description: Option<String>,
    /// When the process disables itself; null means never.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Ticket status the host should set when an approval is approved.
    #[serde(default)]
    pub on_approved_status: Option<String>,
    /// Ticket status the host should set when an approval is rejected.
    #[serde(default)]
    pub on_rejected_status: Option<String>,
    #[serde(default)]
    pub settings: ProcessSettings,
    /// Stages run in order; approvers inside a stage decide in parallel.
    pub stages: Vec<StageDef>,
    /// Message templates per locale, used to render notifications.
    #[serde(default)]
    pub templates: Option<Templates>,
}

/// Behaviour switches of a process.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(default)]
pub struct ProcessSettings {
    /// May the ticket's requester approve their own request?
    pub allow_self_approval: bool,
    /// Apply a principal's earlier answer in later stages of the same approval.
    pub reuse_previous_answers: bool,
    /// A rejection must carry a comment.
    pub reject_requires_comment: bool,
    /// Refuse a second pending approval on the same ticket.
    pub one_active_per_ticket: bool,
    /// What happens when no stage has any approver.
    pub when_no_approvers: WhenNoApprovers,
    /// What happens when a `count` group resolves to fewer members than its count.
    pub when_short: WhenShort,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        Self {
            allow_self_approval: false,
            reuse_previous_answers: false,
            reject_requires_comment: false,
            one_active_per_ticket: true,
            when_no_approvers: WhenNoApprovers::Refuse,
            when_short: WhenShort::Refuse,
        }
    }
}

/// What a `count` group with fewer members than its count does: requirements never weaken
/// silently.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenShort {
    /// A request whose first stage starts short is refused with 422 `not_enough_approvers`; a
    /// later stage that starts short rejects the approval (reason `not_enough_approvers`).
    #[default]
    Refuse,
    /// The count is lowered to the members there are; the view and the stage's event say so.
    Cap,
}

/// What a request does when every stage resolves to nobody.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenNoApprovers {
    /// Refuse the request with 422 `no_approvers`.
    #[default]
    Refuse,
    /// Approve at once.
    Approve,
}

/// One level of a process.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct StageDef {
    #[schema(example = "Manager")]
    pub name: String,
    /// How the stage combines its groups.
    #[serde(default)]
    pub combine: Combine,
    pub groups: Vec<GroupDef>,
    /// When the stage ends by itself if nobody answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutDef>,
    /// Automatic reminders to approvers who have not answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminders: Option<RemindersDef>,
    /// Who may answer for an approver who has not, and when they are told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitutes: Option<SubstitutesDef>,
    /// A CEL condition over `ticket` and `requester`, evaluated when the stage starts: false
    /// skips the stage (`skip_reason: condition`); an evaluation error runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "ticket.attributes.amount > 100")]
    pub when: Option<String>,
}

/// `all`: every group must approve; `any`: one group approving is enough.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    #[default]
    All,
    Any,
}

/// A set of approvers inside a stage, with a requirement.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct GroupDef {
    #[schema(example = "finance")]
    pub name: String,
    pub source: Source,
    pub require: Requirement,
}

/// Where a group's members come from; resolved when the stage starts.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    /// The listed principal ids.
    Principals { ids: Vec<String> },
    /// Every active principal with this role.
    Role { role: String },
    /// Chosen in the approval request (`selected_approvers`).
    RequesterSelected,
    /// The manager of the ticket's requester.
    RequesterManager,
    /// A principal id read from `ticket.attributes.<field>`.
    TicketField { field: String },
}

/// How many approvals a group needs.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Requirement {
    #[serde(flatten)]
    pub rule: Rule,
    /// This many rejections reject the group even if the rule could still be met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_at: Option<u32>,
}

/// The approval rule of a group.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rule {
    /// At least `count` approvals.
    Count { count: u32 },
    /// Every member approves.
    All,
    /// More than half of the members approve.
    Majority,
    /// At least `percent`% of the members approve (rounded up).
    Percent { percent: u32 },
    /// The first answer, approve or reject, decides.
    FirstReply,
}

/// What happens when a stage's time runs out.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TimeoutDef {
    /// How long the stage waits, e.g. `PT48H`.
    pub after: IsoDuration,
    /// Count only the business hours of this calendar; wall time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_id: Option<String>,
    /// The stage's outcome at the deadline.
    pub outcome: TimeoutOutcome,
}

/// Outcome applied at a deadline.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutOutcome {
    Approve,
    Reject,
}

/// Reminder schedule: every `every` (at most `max` times), and/or at percentages of the timeout.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RemindersDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<IsoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_percent: Option<Vec<u32>>,
}

/// Substitutes of approvers who have not answered.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SubstitutesDef {
    /// At this percentage of the timeout, substitutes are notified.
    pub notify_at_percent: u32,
    pub source: SubstituteSource,
}

/// Who substitutes for an approver.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SubstituteSource {
    /// The approver's manager.
    ApproverManager,
    /// The listed principals.
    Principals { ids: Vec<String> },
}

pub use super::messages::{MessageTemplate, Templates};

impl Rule {
    /// Approvals needed out of `members`. `FirstReply` needs one.
    pub fn required(&self, members: usize) -> usize {
        let m = members;
        match *self {
            Rule::Count { count } => count as usize,
            Rule::All => m,
            Rule::Majority => m / 2 + 1,
            Rule::Percent { percent } => (m * percent as usize).div_ceil(100),
            Rule::FirstReply => 1,
        }
    }
}

/// Fields the response adds, accepted and ignored on `PUT` so a client can send back what it read.
const READ_ONLY: &[&str] = &["id", "version", "enabled", "created_at", "updated_at"];

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

    /// The group of this name, with its stage index.
    pub fn find_group(&self, name: &str) -> Option<(usize, &GroupDef)> {
        self.stages
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.groups.iter().find(|g| g.name == name).map(|g| (i, g)))
    }
}

fn read_definition(f: &mut Faults, body: &Value, now: DateTime<Utc>) -> Option<ProcessDefinition> {
    let m = f.object(body, "")?;
    let mut allowed = vec![
        "name",
        "description",
        "expires_at",
        "on_approved_status",
        "on_rejected_status",
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
        settings: settings?,
        stages: stages?,
        templates: templates?,
    })
}

fn read_settings(f: &mut Faults, v: &Value) -> Option<ProcessSettings> {
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

fn read_stages(f: &mut Faults, m: &Map<String, Value>) -> Option<Vec<StageDef>> {
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

fn read_stage(f: &mut Faults, v: &Value, p: &str) -> Option<StageDef> {
    let m = f.object(v, p)?;
    f.no_unknown(
        m,
        p,
        &[
            "name",
            "combine",
            "groups",
            "timeout",
            "reminders",
            "substitutes",
            "when",
        ],
    );
    let name = f.text(m, p, "name", 200);
    let when = super::condition::read(f, m, p, "when");
    let combine = read_enum(f, m, p, "combine", &["all", "any"]).unwrap_or_default();
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
        groups: groups?,
        timeout: timeout?,
        reminders: reminders?,
        substitutes: substitutes?,
        when,
    })
}

fn read_group(f: &mut Faults, v: &Value, p: &str) -> Option<GroupDef> {
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
fn read_ids(f: &mut Faults, m: &Map<String, Value>, p: &str) -> Option<Vec<String>> {
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

fn read_source(f: &mut Faults, v: &Value, p: &str) -> Option<Source> {
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

fn positive_duration(
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

fn read_timeout(f: &mut Faults, v: &Value, p: &str) -> Option<TimeoutDef> {
    let m = f.object(v, p)?;
    f.no_unknown(m, p, &["after", "calendar_id", "outcome"]);
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
    Some(TimeoutDef {
        after: after?,
        calendar_id,
        outcome: outcome?,
    })
}

fn read_percents(f: &mut Faults, m: &Map<String, Value>, p: &str) -> Option<Vec<u32>> {
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

fn read_reminders(f: &mut Faults, v: &Value, p: &str) -> Option<RemindersDef> {
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

fn read_substitutes(f: &mut Faults, v: &Value, p: &str) -> Option<SubstitutesDef> {
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

fn read_templates(f: &mut Faults, v: &Value) -> Option<Templates> {
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
                    && let Err(e) = super::messages::check(src)
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

/// Cross-field rules, checked once the shapes are right.
fn check_semantics(f: &mut Faults, def: &ProcessDefinition) {
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

#[cfg(test)]
mod tests {
    use super::*;
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
