//! Issuing one-time approver links when approvers are notified, with the message each
//! recipient reads. A token carries 256 random bits and is stored only as its SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use diesel::PgConnection;
use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::loaded::{Ctx, Loaded};
use crate::db::models::{LinkRow, PrincipalRow};
use crate::domain::messages;
use crate::error::AppResult;
use crate::service::view::Principal;

/// How long a link lives when its stage has no deadline.
pub const DEFAULT_TTL_DAYS: i64 = 30;

/// A fresh token and the hash we store.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let h = hash(&token);
    (token, h)
}

pub fn hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// Someone to notify: an approver about their own task, or a substitute about the tasks of
/// the approvers they may answer for (one entry per person, however many they cover).
pub struct Recipient<'a> {
    pub principal: &'a PrincipalRow,
    /// The approvers whose tasks this is about, when the recipient is someone else: empty for
    /// the recipient's own task.
    pub on_behalf_of: Vec<&'a PrincipalRow>,
}

/// Issues the links of each recipient for `stage` (one per task they may answer) and builds
/// the `recipients` entries of an event: the principal, the URLs and the message rendered in
/// their language. A substitute's entry lists every approver they cover in `answers_for`,
/// each with its own links; the top-level URLs and `on_behalf_of` are the first of them.
///
/// The links are added to `links`, for the command to store once its approval row is written.
pub fn issue(
    conn: &mut PgConnection,
    loaded: &Loaded,
    stage: usize,
    recipients: &[Recipient<'_>],
    ctx: &Ctx,
    links: &mut Vec<LinkRow>,
) -> AppResult<Vec<Value>> {
    let expires_at = loaded
        .stored
        .deadlines
        .get(stage)
        .copied()
        .flatten()
        .unwrap_or(ctx.now + Duration::days(DEFAULT_TTL_DAYS));
    let asker = Asker::read(conn, loaded)?;
    let rows = links;
    let mut out = Vec::with_capacity(recipients.len());
    let mut renderer = messages::Renderer::default();
    for r in recipients {
        let tasks: Vec<&PrincipalRow> = if r.on_behalf_of.is_empty() {
            vec![r.principal]
        } else {
            r.on_behalf_of.clone()
        };
        let mut issued: Vec<(Option<Principal>, Value)> = Vec::with_capacity(tasks.len());
        for approver in tasks {
            let (token, token_hash) = new_token();
            rows.push(LinkRow {
                token_hash,
                tenant_id: loaded.row.tenant_id.clone(),
                approval_id: loaded.row.id,
                stage: stage as i32,
                approver_id: approver.id.clone(),
                recipient_id: r.principal.id.clone(),
                expires_at,
                used_at: None,
                created_at: ctx.now,
            });
            let page_url = format!("{}/a/{token}", ctx.public_url);
            let links = json!({
                "approve_url": format!("{page_url}?decision=approve"),
                "reject_url": format!("{page_url}?decision=reject"),
                "page_url": page_url,
            });
            let on_behalf =
                (approver.id != r.principal.id).then(|| Principal::from(approver.clone()));
            issued.push((on_behalf, links));
        }
        let principal = Principal::from(r.principal.clone());
        let (first_for, links) = &issued[0];
        let answers_for: Vec<Value> = issued
            .iter()
            .filter_map(|(p, l)| p.as_ref().map(|p| json!({"approver": p, "links": l})))
            .collect();
        let context = message_context(
            loaded,
            stage,
            &principal,
            first_for.as_ref(),
            &answers_for,
            &asker,
            links,
        );
        let message = renderer.render(
            loaded.definition.templates.as_ref(),
            &principal.locale,
            &context,
        );
        let mut entry = json!({
            "principal": principal,
            "on_behalf_of": first_for.as_ref().map(|p| &p.id),
            "approve_url": links["approve_url"],
            "reject_url": links["reject_url"],
            "page_url": links["page_url"],
            "expires_at": expires_at,
            "message": message,
        });
        if !answers_for.is_empty() {
            entry["answers_for"] = issued
                .iter()
                .filter_map(|(p, l)| {
                    p.as_ref().map(|p| {
                        json!({"approver_id": p.id, "display_name": p.display_name,
                               "approve_url": l["approve_url"], "reject_url": l["reject_url"],
                               "page_url": l["page_url"]})
                    })
                })
                .collect();
        }
        out.push(entry);
    }
    Ok(out)
}

/// Who asked for the approval, by name, for messages and the page.
pub struct Asker {
    /// The ticket's requester and their display name (None when the directory has none).
    pub requester: Option<(String, Option<String>)>,
    /// The display name of the principal `requested_by` names; the requester's when a rule
    /// started the approval or nobody is named; None otherwise.
    pub name: Option<String>,
}

impl Asker {
    /// Reads the names: from those the stages read (the requester's is among them), and the
    /// directory for `requested_by` when it names someone else.
    pub fn read(conn: &mut PgConnection, loaded: &Loaded) -> AppResult<Asker> {
        let names = &loaded.stored.names;
        let extra: Option<PrincipalRow> = match asked_by_principal(loaded) {
            Some(by) if !names.contains_key(by) => {
                crate::db::principals::find_many(conn, &loaded.row.tenant_id, &[by.to_string()])?
                    .pop()
            }
            _ => None,
        };
        Ok(Asker::from_names(loaded, &|id| {
            names.get(id).cloned().or_else(|| {
                extra
                    .as_ref()
                    .filter(|p| p.id == id)
                    .map(|p| p.display_name.clone())
            })
        }))
    }

    /// The names, from a lookup of display names by id.
    pub fn from_names(loaded: &Loaded, name: &dyn Fn(&str) -> Option<String>) -> Asker {
        let requester_id = loaded
            .row
            .ticket
            .get("requester_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let requester = requester_id.map(|id| {
            let n = name(&id);
            (id, n)
        });
        let by = match asked_by_principal(loaded) {
            Some(by) => name(by),
            None => requester.as_ref().and_then(|(_, n)| n.clone()),
        };
        Asker {
            requester,
            name: by,
        }
    }
}

/// The principal `requested_by` may name: None when a rule asked or nobody is named.
pub fn asked_by_principal(loaded: &Loaded) -> Option<&str> {
    loaded
        .row
        .requested_by
        .as_deref()
        .filter(|by| loaded.stored.rule.is_none() && !by.starts_with("rule:"))
}

/// What templates can use, borrowed from what the command holds.
#[derive(Serialize)]
struct MessageContext<'a> {
    approver: &'a Principal,
    on_behalf_of: Option<&'a Principal>,
    answers_for: &'a [Value],
    requester: Option<Named<'a>>,
    ticket: &'a Value,
    approval: ApprovalContext<'a>,
    process: Option<ProcessContext<'a>>,
    links: &'a Value,
}

#[derive(Serialize)]
struct Named<'a> {
    id: &'a str,
    display_name: Option<&'a str>,
}

#[derive(Serialize)]
struct ApprovalContext<'a> {
    id: String,
    description: Option<&'a str>,
    requested_by: Option<&'a str>,
    requested_by_name: Option<&'a str>,
    stage: Option<&'a str>,
    stage_index: usize,
}

#[derive(Serialize)]
struct ProcessContext<'a> {
    id: String,
    name: Option<&'a str>,
    version: Option<i32>,
}

fn message_context<'a>(
    loaded: &'a Loaded,
    stage: usize,
    approver: &'a Principal,
    on_behalf_of: Option<&'a Principal>,
    answers_for: &'a [Value],
    asker: &'a Asker,
    links: &'a Value,
) -> MessageContext<'a> {
    let row = &loaded.row;
    MessageContext {
        approver,
        on_behalf_of,
        answers_for,
        requester: asker.requester.as_ref().map(|(id, name)| Named {
            id,
            display_name: name.as_deref(),
        }),
        ticket: &row.ticket,
        approval: ApprovalContext {
            id: row.id.to_string(),
            description: row.description.as_deref(),
            requested_by: row.requested_by.as_deref(),
            requested_by_name: asker.name.as_deref(),
            stage: loaded
                .stored
                .approval
                .plan
                .get(stage)
                .map(|s| s.name.as_str()),
            stage_index: stage,
        },
        process: row.process_id.map(|id| ProcessContext {
            id: id.to_string(),
            name: row.process_name.as_deref(),
            version: row.process_version,
        }),
        links,
    }
}
