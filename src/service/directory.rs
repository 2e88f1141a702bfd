//! The directory as the engine reads it when a stage starts: who each group's source names
//! now (principals, roles, the requester's manager, ticket fields, the request's selection),
//! who is inactive or unknown, and which delegations are in force. The engine applies the
//! rules to the answer ([`crate::domain::engine::Resolve`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use serde_json::Value;

use crate::db::models::PrincipalRow;
use crate::db::principals;
use crate::domain::condition::{self, Facts};
use crate::domain::engine::{
    Candidate, Candidates, Condition, Removal, RemovalReason, Resolution, Resolve, StagePlan,
};
use crate::domain::process::{ProcessDefinition, Source};
use crate::error::AppError;

use super::view::Ticket;

/// Reads the directory for the stages of one approval, in the caller's transaction. A query
/// that fails is kept in [`Directory::failure`] and the stage reads as empty: the caller must
/// check it and roll back.
pub struct Directory<'a> {
    conn: &'a mut PgConnection,
    tenant: &'a str,
    definition: &'a ProcessDefinition,
    ticket: &'a Ticket,
    selected: &'a [String],
    now: DateTime<Utc>,
    /// Display names of everyone read, for views and messages.
    pub names: BTreeMap<String, String>,
    /// The first query that failed.
    pub failure: Option<AppError>,
}

impl<'a> Directory<'a> {
    pub fn new(
        conn: &'a mut PgConnection,
        tenant: &'a str,
        definition: &'a ProcessDefinition,
        ticket: &'a Ticket,
        selected: &'a [String],
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            conn,
            tenant,
            definition,
            ticket,
            selected,
            now,
            names: BTreeMap::new(),
            failure: None,
        }
    }

    /// The error a read hit, if any, to return instead of what the engine decided.
    pub fn finish(self) -> Result<BTreeMap<String, String>, AppError> {
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self.names),
        }
    }

    /// The principals these ids name, keyed by id, with their names remembered.
    fn principals(&mut self, ids: &[String]) -> Result<HashMap<String, PrincipalRow>, AppError> {
        let rows = principals::find_many(self.conn, self.tenant, ids)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                self.names.insert(r.id.clone(), r.display_name.clone());
                (r.id.clone(), r)
            })
            .collect())
    }

    fn read(&mut self, stage: usize) -> Result<Resolution, AppError> {
        let Some(def) = self.definition.stages.get(stage) else {
            return Ok(Resolution::default());
        };
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        wanted.extend(self.ticket.requester_id.iter().cloned());
        let mut roles: BTreeSet<&str> = BTreeSet::new();
        for g in &def.groups {
            match &g.source {
                Source::Principals { ids } => wanted.extend(ids.iter().cloned()),
                Source::TicketField { field } => wanted.extend(field_ids(self.ticket, field)),
                Source::RequesterSelected => wanted.extend(self.selected.iter().cloned()),
                Source::Role { role } => {
                    roles.insert(role);
                }
                Source::RequesterManager => {}
            }
        }
        let wanted: Vec<String> = wanted.into_iter().collect();
        let mut known = self.principals(&wanted)?;
        let manager = self
            .ticket
            .requester_id
            .as_ref()
            .and_then(|r| known.get(r))
            .and_then(|r| r.manager_id.clone());
        if let Some(m) = &manager
            && !known.contains_key(m)
        {
            known.extend(self.principals(std::slice::from_ref(m))?);
        }
        let mut role_members: HashMap<&str, Vec<String>> = HashMap::new();
        for role in roles {
            let rows = principals::with_role(self.conn, self.tenant, role)?;
            let ids = rows.iter().map(|r| r.id.clone()).collect();
            for r in rows {
                self.names.insert(r.id.clone(), r.display_name.clone());
                known.insert(r.id.clone(), r);
            }
            role_members.insert(role, ids);
        }

        let mut groups: Vec<Candidates> = def
            .groups
            .iter()
            .map(|g| {
                let named: Vec<String> = match &g.source {
                    Source::Principals { ids } => ids.clone(),
                    Source::Role { role } => {
                        role_members.get(role.as_str()).cloned().unwrap_or_default()
                    }
                    Source::RequesterSelected => self.selected.to_vec(),
                    Source::RequesterManager => manager.iter().cloned().collect(),
                    Source::TicketField { field } => field_ids(self.ticket, field),
                };
                let mut c = Candidates::default();
                for id in named {
                    match known.get(&id) {
                        Some(p) if p.active => c.members.push(Candidate::new(id)),
                        Some(_) => c.removed.push(Removal {
                            principal_id: id,
                            reason: RemovalReason::Inactive,
                        }),
                        None => c.removed.push(Removal {
                            principal_id: id,
                            reason: RemovalReason::Unknown,
                        }),
                    }
                }
                c
            })
            .collect();

        // Delegations in force now, to active delegates.
        let seated: Vec<String> = groups
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.id.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !seated.is_empty() {
            let delegations =
                crate::db::time::active_delegations(self.conn, self.tenant, &seated, self.now)?;
            if !delegations.is_empty() {
                let delegates: Vec<String> =
                    delegations.iter().map(|d| d.delegate_id.clone()).collect();
                let delegates = self.principals(&delegates)?;
                let to: HashMap<String, String> = delegations
                    .into_iter()
                    .filter(|d| delegates.get(&d.delegate_id).is_some_and(|p| p.active))
                    .map(|d| (d.principal_id, d.delegate_id))
                    .collect();
                for m in groups.iter_mut().flat_map(|g| g.members.iter_mut()) {
                    m.delegate = to.get(&m.id).cloned();
                }
            }
        }
        let requester = self.ticket.requester_id.as_ref().and_then(|r| known.get(r));
        Ok(Resolution {
            condition: def.when.as_deref().map_or(Condition::Holds, |when| {
                stage_condition(when, self.ticket, requester)
            }),
            groups,
        })
    }
}

/// What a stage's `when` says about this ticket and requester.
fn stage_condition(when: &str, ticket: &Ticket, requester: Option<&PrincipalRow>) -> Condition {
    match condition::evaluate(when, &facts(ticket, requester)) {
        Ok(true) => Condition::Holds,
        Ok(false) => Condition::False,
        Err(why) => Condition::Failed(why),
    }
}

/// The variables a condition reads: `ticket` and `requester` (null when unknown).
pub fn facts(ticket: &Ticket, requester: Option<&PrincipalRow>) -> Facts {
    Facts {
        ticket: serde_json::json!({
            "id": ticket.id,
            "title": ticket.title,
            "status": ticket.status,
            "requester_id": ticket.requester_id,
            "attributes": ticket.attributes,
        }),
        requester: requester.map_or(Value::Null, |p| {
            serde_json::json!({
                "id": p.id,
                "kind": p.kind,
                "display_name": p.display_name,
                "email": p.email,
                "locale": p.locale,
                "time_zone": p.time_zone,
                "manager_id": p.manager_id,
                "roles": p.roles.iter().flatten().collect::<Vec<_>>(),
                "active": p.active,
            })
        }),
    }
}

impl Resolve for Directory<'_> {
    fn resolve(&mut self, stage: usize, _plan: &StagePlan) -> Resolution {
        if self.failure.is_some() {
            return Resolution::default();
        }
        match self.read(stage) {
            Ok(r) => r,
            Err(e) => {
                self.failure = Some(e);
                Resolution::default()
            }
        }
    }
}

/// The principal ids a ticket attribute holds: a string, a number, or a list of either.
pub fn field_ids(ticket: &Ticket, field: &str) -> Vec<String> {
    fn id(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    match ticket.attributes.get(field) {
        Some(Value::Array(a)) => a.iter().filter_map(id).collect(),
        Some(v) => id(v).into_iter().collect(),
        None => Vec::new(),
    }
}
