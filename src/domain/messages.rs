//! Notification messages: the process's templates (or ours) rendered in the approver's
//! language with minijinja, sandboxed (no loader, bounded fuel) and HTML auto-escaped in the
//! `html` part.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Notification templates.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Templates {
    /// Locale used when the approver's locale has no template.
    #[serde(default)]
    pub default_locale: Option<String>,
    #[serde(default)]
    pub locales: BTreeMap<String, MessageTemplate>,
}

/// One locale's message.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct MessageTemplate {
    pub subject: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// Work a template may do before it is stopped: a loop over the whole ticket, not forever.
const FUEL: u64 = 50_000;

/// A rendered message, ready for the host to send.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
}

struct Builtin {
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

const EN: Builtin = Builtin {
    subject: "Approval needed: {{ ticket.title or ticket.id }}",
    text: "Hello {{ approver.display_name }},\n\n\
{% if answers_for and answers_for|length > 1 %}You are asked to decide on behalf of {% for a in answers_for %}{{ a.approver.display_name }}{% if loop.revindex0 > 1 %}, {% elif loop.revindex0 == 1 %} or {% endif %}{% endfor %}. You may answer for one of them only.\n\n{% elif on_behalf_of %}You are asked to decide on behalf of {{ on_behalf_of.display_name }}.\n\n{% endif %}\
{{ approval.requested_by_name or approval.requested_by or 'Someone' }} asks for your approval on ticket {{ ticket.id }}{% if ticket.title %}: {{ ticket.title }}{% endif %}.\n\
{% if approval.description %}\n{{ approval.description }}\n{% endif %}\
{% if process %}\nProcess: {{ process.name }}, stage: {{ approval.stage }}\n{% endif %}\n\
{% if answers_for and answers_for|length > 1 %}{% for a in answers_for %}For {{ a.approver.display_name }}:\nApprove: {{ a.links.approve_url }}\nReject: {{ a.links.reject_url }}\n\n{% endfor %}{% else %}Approve: {{ links.approve_url }}\n\
Reject: {{ links.reject_url }}\n\n{% endif %}\
Each link opens a page where you confirm your decision.\n",
    html: "<p>Hello {{ approver.display_name }},</p>\
{% if answers_for and answers_for|length > 1 %}<p>You are asked to decide on behalf of {% for a in answers_for %}{{ a.approver.display_name }}{% if loop.revindex0 > 1 %}, {% elif loop.revindex0 == 1 %} or {% endif %}{% endfor %}. You may answer for one of them only.</p>{% elif on_behalf_of %}<p>You are asked to decide on behalf of {{ on_behalf_of.display_name }}.</p>{% endif %}\
<p>{{ approval.requested_by_name or approval.requested_by or 'Someone' }} asks for your approval on ticket <strong>{{ ticket.id }}</strong>{% if ticket.title %}: {{ ticket.title }}{% endif %}.</p>\
{% if approval.description %}<p>{{ approval.description }}</p>{% endif %}\
{% if process %}<p>Process: {{ process.name }}, stage: {{ approval.stage }}</p>{% endif %}\
{% if answers_for and answers_for|length > 1 %}{% for a in answers_for %}<p>For {{ a.approver.display_name }}: <a href=\"{{ a.links.approve_url|safe }}\">Approve</a> &middot; <a href=\"{{ a.links.reject_url|safe }}\">Reject</a></p>{% endfor %}{% else %}<p><a href=\"{{ links.approve_url|safe }}\">Approve</a> &middot; <a href=\"{{ links.reject_url|safe }}\">Reject</a></p>{% endif %}\
<p>Each link opens a page where you confirm your decision.</p>",
};

const FR: Builtin = Builtin {
    subject: "Approbation requise : {{ ticket.title or ticket.id }}",
    text: "Bonjour {{ approver.display_name }},\n\n\
{% if answers_for and answers_for|length > 1 %}Vous êtes sollicité·e à la place de {% for a in answers_for %}{{ a.approver.display_name }}{% if loop.revindex0 > 1 %}, {% elif loop.revindex0 == 1 %} ou {% endif %}{% endfor %}. Vous ne pouvez répondre que pour l’une de ces personnes.\n\n{% elif on_behalf_of %}Vous êtes sollicité·e à la place de {{ on_behalf_of.display_name }}.\n\n{% endif %}\
{{ approval.requested_by_name or approval.requested_by or 'Quelqu’un' }} demande votre approbation pour le ticket {{ ticket.id }}{% if ticket.title %} : {{ ticket.title }}{% endif %}.\n\
{% if approval.description %}\n{{ approval.description }}\n{% endif %}\
{% if process %}\nProcessus : {{ process.name }}, étape : {{ approval.stage }}\n{% endif %}\n\
{% if answers_for and answers_for|length > 1 %}{% for a in answers_for %}Pour {{ a.approver.display_name }} :\nApprouver : {{ a.links.approve_url }}\nRefuser : {{ a.links.reject_url }}\n\n{% endfor %}{% else %}Approuver : {{ links.approve_url }}\n\
Refuser : {{ links.reject_url }}\n\n{% endif %}\
Chaque lien ouvre une page où vous confirmez votre décision.\n",
    html: "<p>Bonjour {{ approver.display_name }},</p>\
{% if answers_for and answers_for|length > 1 %}<p>Vous êtes sollicité·e à la place de {% for a in answers_for %}{{ a.approver.display_name }}{% if loop.revindex0 > 1 %}, {% elif loop.revindex0 == 1 %} ou {% endif %}{% endfor %}. Vous ne pouvez répondre que pour l’une de ces personnes.</p>{% elif on_behalf_of %}<p>Vous êtes sollicité·e à la place de {{ on_behalf_of.display_name }}.</p>{% endif %}\
<p>{{ approval.requested_by_name or approval.requested_by or 'Quelqu’un' }} demande votre approbation pour le ticket <strong>{{ ticket.id }}</strong>{% if ticket.title %} : {{ ticket.title }}{% endif %}.</p>\
{% if approval.description %}<p>{{ approval.description }}</p>{% endif %}\
{% if process %}<p>Processus : {{ process.name }}, étape : {{ approval.stage }}</p>{% endif %}\
{% if answers_for and answers_for|length > 1 %}{% for a in answers_for %}<p>Pour {{ a.approver.display_name }} : <a href=\"{{ a.links.approve_url|safe }}\">Approuver</a> &middot; <a href=\"{{ a.links.reject_url|safe }}\">Refuser</a></p>{% endfor %}{% else %}<p><a href=\"{{ links.approve_url|safe }}\">Approuver</a> &middot; <a href=\"{{ links.reject_url|safe }}\">Refuser</a></p>{% endif %}\
<p>Chaque lien ouvre une page où vous confirmez votre décision.</p>",
};

const DE: Builtin = Builtin {
    subject: "Genehmigung erforderlich: {{ ticket.title or ticket.id }}",
    text: "Hallo {{ approver.display_name }},\n\n\
{% if answers_for and answers_for|length > 1 %}Sie werden in Vertretung von {% for a in answers_for %}{{ a.approver.display_name }}{% if loop.revindex0 > 1 %}, {% elif loop.revindex0 == 1 %} oder {% endif %}{% endfor %} um eine Entscheidung gebeten. Sie können nur für eine dieser Personen antworten.\n\n{% elif on_behalf_of %}Sie werden in Vertretung von {{ on_behalf_of.display_name }} um eine Entscheidung gebeten.\n\n{% endif %}\
{{ approval.requested_by_name or approval.requested_by or 'Jemand' }} bittet um Ihre Genehmigung für Ticket {{ ticket.id }}{% if ticket.title %}: {{ ticket.title }}{% endif %}.\n\
{% if approval.description %}\n{{ approval.description }}\n{% endif %}\
{% if process %}\nProzess: {{ process.name }}, Stufe: {{ approval.stage }}\n{% endif %}\n\
{% if answers_for and answers_for|length > 1 %}{% for a in answers_for %}Für {{ a.approver.display_name }}:\nGenehmigen: {{ a.links.approve_url }}\nAblehnen: {{ a.links.reject_url }}\n\n{% endfor %}{% else %}Genehmigen: {{ links.approve_url }}\n\
Ablehnen: {{ links.reject_url }}\n\n{% endif %}\
Jeder Link öffnet eine Seite, auf der Sie Ihre Entscheidung bestätigen.\n",
    html: "<p>Hallo {{ approver.display_name }},</p>\
{% if answers_for and answers_for|length > 1 %}<p>Sie werden in Vertretung von {% for a in answers_for %}{{ a.approver.display_name }}{% if loop.revindex0 > 1 %}, {% elif loop.revindex0 == 1 %} oder {% endif %}{% endfor %} um eine Entscheidung gebeten. Sie können nur für eine dieser Personen antworten.</p>{% elif on_behalf_of %}<p>Sie werden in Vertretung von {{ on_behalf_of.display_name }} um eine Entscheidung gebeten.</p>{% endif %}\
<p>{{ approval.requested_by_name or approval.requested_by or 'Jemand' }} bittet um Ihre Genehmigung für Ticket <strong>{{ ticket.id }}</strong>{% if ticket.title %}: {{ ticket.title }}{% endif %}.</p>\
{% if approval.description %}<p>{{ approval.description }}</p>{% endif %}\
{% if process %}<p>Prozess: {{ process.name }}, Stufe: {{ approval.stage }}</p>{% endif %}\
{% if answers_for and answers_for|length > 1 %}{% for a in answers_for %}<p>Für {{ a.approver.display_name }}: <a href=\"{{ a.links.approve_url|safe }}\">Genehmigen</a> &middot; <a href=\"{{ a.links.reject_url|safe }}\">Ablehnen</a></p>{% endfor %}{% else %}<p><a href=\"{{ links.approve_url|safe }}\">Genehmigen</a> &middot; <a href=\"{{ links.reject_url|safe }}\">Ablehnen</a></p>{% endif %}\
<p>Jeder Link öffnet eine Seite, auf der Sie Ihre Entscheidung bestätigen.</p>",
};

/// The language part of a locale: `fr-CA` → `fr`.
pub fn language(locale: &str) -> String {
    locale
        .split(['-', '_'])
        .next()
        .unwrap_or("en")
        .to_ascii_lowercase()
}

fn builtin(locale: &str) -> Option<&'static Builtin> {
    match language(locale).as_str() {
        "en" => Some(&EN),
        "fr" => Some(&FR),
        "de" => Some(&DE),
        _ => None,
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

/// Compiles a template, returning "line L: what is wrong" when it does not.
pub fn check(source: &str) -> Result<(), String> {
    let env = environment();
    env.template_from_str(source).map(|_| ()).map_err(describe)
}

fn describe(e: minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!(
            "line {line}: {}",
            e.detail().unwrap_or(&e.kind().to_string())
        ),
        None => e.to_string(),
    }
}

/// Picks the template for `locale`: the process's in that locale or its language, the
/// process's default locale, then ours in that language, then English.
fn pick<'a>(
    templates: Option<&'a Templates>,
    locale: &str,
) -> (Option<&'a MessageTemplate>, &'static Builtin) {
    let ours = builtin(locale).unwrap_or(&EN);
    let Some(t) = templates else {
        return (None, ours);
    };
    let lang = language(locale);
    let found = t
        .locales
        .get(locale)
        .or_else(|| {
            t.locales
                .iter()
                .find(|(k, _)| language(k) == lang)
                .map(|(_, v)| v)
        })
        .or_else(|| t.default_locale.as_ref().and_then(|d| t.locales.get(d)));
    (found, ours)
}

/// Renders the message for one recipient. A template that fails at run time (for example out
/// of fuel) falls back to our built-in text, so an approver is never left without a message.
pub fn render(templates: Option<&Templates>, locale: &str, ctx: &impl serde::Serialize) -> Message {
    Renderer::default().render(templates, locale, ctx)
}

/// Renders many recipients' messages, compiling each template once: a stage of thousands
/// costs one compilation per template and language, not one per person.
pub struct Renderer {
    env: Environment<'static>,
    /// By part, template source → the name it was compiled under, or why it did not compile.
    compiled: HashMap<&'static str, HashMap<String, Result<String, String>>>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self {
            env: environment(),
            compiled: HashMap::new(),
        }
    }
}

impl Renderer {
    /// `name` ends in `.html` for parts that are HTML-escaped.
    fn part(
        &mut self,
        name: &'static str,
        source: &str,
        ctx: &minijinja::Value,
    ) -> Result<String, String> {
        let n: usize = self.compiled.values().map(HashMap::len).sum();
        let sources = self.compiled.entry(name).or_default();
        if !sources.contains_key(source) {
            let id = format!("t{n}-{name}");
            let compiled = self
                .env
                .add_template_owned(id.clone(), source.to_string())
                .map(|_| id)
                .map_err(describe);
            sources.insert(source.to_string(), compiled);
        }
        let id = sources[source].clone()?;
        self.env
            .get_template(&id)
            .and_then(|t| t.render(ctx))
            .map_err(describe)
    }

    /// The message for one recipient, as [`render`]. The context is converted for the
    /// templates once, not once per part.
    pub fn render(
        &mut self,
        templates: Option<&Templates>,
        locale: &str,
        ctx: &impl serde::Serialize,
    ) -> Message {
        let ctx = &minijinja::Value::from_serialize(ctx);
        let (custom, ours) = pick(templates, locale);
        let mut part = |name: &'static str, custom: Option<&str>, ours: &str| {
            let fallback = |r: &mut Self| r.part(name, ours, ctx).unwrap_or_default();
            match custom {
                Some(src) => self.part(name, src, ctx).unwrap_or_else(|e| {
                    tracing::warn!(template = name, error = %e, "template failed; using the built-in text");
                    fallback(self)
                }),
                None => fallback(self),
            }
        };
        Message {
            subject: part(
                "subject.txt",
                custom.map(|c| c.subject.as_str()),
                ours.subject,
            )
            .trim()
            .to_string(),
            text: part("text.txt", custom.map(|c| c.text.as_str()), ours.text),
            html: part(
                "html.html",
                custom.and_then(|c| c.html.as_deref()),
                ours.html,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn ctx() -> serde_json::Value {
        json!({
            "approver": {"id": "u-1", "display_name": "Ada <admin>", "locale": "fr-CA"},
            "ticket": {"id": "T-1", "title": "New laptop & dock", "attributes": {"amount": 1800}},
            "approval": {"id": "a", "description": "For the new hire", "requested_by": "u-3", "stage": "Manager"},
            "process": {"name": "Laptop purchase"},
            "links": {"approve_url": "https://s/a/x?decision=approve", "reject_url": "https://s/a/x?decision=reject", "page_url": "https://s/a/x"}
        })
    }

    #[test]
    fn builtins_render_in_the_approvers_language() {
        let m = render(None, "fr-CA", &ctx());
        assert_eq!(m.subject, "Approbation requise : New laptop & dock");
        assert!(
            m.text
                .contains("Approuver : https://s/a/x?decision=approve")
        );
        let de = render(None, "de", &ctx());
        assert!(de.subject.starts_with("Genehmigung erforderlich"));
        let unknown = render(None, "ja", &ctx());
        assert!(unknown.subject.starts_with("Approval needed"));
    }

    #[test]
    fn the_builtins_name_who_asks_by_their_display_name() {
        let mut c = ctx();
        c["approval"]["requested_by_name"] = json!("Ada Lovelace");
        for (locale, words) in [
            ("en", "Ada Lovelace asks for your approval on ticket T-1"),
            (
                "fr",
                "Ada Lovelace demande votre approbation pour le ticket T-1",
            ),
            (
                "de",
                "Ada Lovelace bittet um Ihre Genehmigung für Ticket T-1",
            ),
        ] {
            let m = render(None, locale, &c);
            assert!(m.text.contains(words), "{locale}: {}", m.text);
            let opening = words.rsplit_once(" T-1").unwrap().0;
            assert!(m.html.contains(opening), "{locale}: {}", m.html);
            assert!(!m.text.contains("u-3"), "{locale}: {}", m.text);
        }
        // Without a name, the label as sent, then a word for nobody in particular.
        assert!(render(None, "en", &ctx()).text.contains("u-3 asks for"));
        c["approval"]["requested_by_name"] = json!(null);
        c["approval"]["requested_by"] = json!(null);
        assert!(render(None, "fr", &c).text.contains("Quelqu’un demande"));
    }

    #[test]
    fn a_substitute_for_several_approvers_gets_one_message_with_a_link_for_each() {
        let mut c = ctx();
        let link = |who: &str| {
            json!({"approve_url": format!("https://s/a/{who}?decision=approve"),
                   "reject_url": format!("https://s/a/{who}?decision=reject")})
        };
        c["on_behalf_of"] = json!({"id": "u-1", "display_name": "Grace Hopper"});
        c["answers_for"] = json!([
            {"approver": {"id": "u-1", "display_name": "Grace Hopper"}, "links": link("g")},
            {"approver": {"id": "u-2", "display_name": "Alan Turing"}, "links": link("a")},
            {"approver": {"id": "u-4", "display_name": "Edsger Dijkstra"}, "links": link("e")},
        ]);
        let m = render(None, "en", &c);
        assert!(
            m.text.contains(
                "on behalf of Grace Hopper, Alan Turing or Edsger Dijkstra. You may answer for one of them only."
            ),
            "{}",
            m.text
        );
        for who in ["g", "a", "e"] {
            assert!(
                m.text
                    .contains(&format!("https://s/a/{who}?decision=reject"))
            );
            assert!(
                m.html
                    .contains(&format!("href=\"https://s/a/{who}?decision=approve\""))
            );
        }
        assert!(
            m.text
                .contains("For Alan Turing:\nApprove: https://s/a/a?decision=approve")
        );
        let de = render(None, "de", &c);
        assert!(
            de.text
                .contains("Grace Hopper, Alan Turing oder Edsger Dijkstra"),
            "{}",
            de.text
        );
        assert!(render(None, "fr", &c).text.contains("Pour Alan Turing :"));
        // One approver only: the one-person wording and the top-level links.
        c["answers_for"] = json!([c["answers_for"][0].clone()]);
        let one = render(None, "en", &c);
        assert!(
            one.text.contains("on behalf of Grace Hopper.\n"),
            "{}",
            one.text
        );
        assert!(one.text.contains("Approve: https://s/a/x?decision=approve"));
    }

    #[test]
    fn html_is_escaped_but_text_is_not() {
        let m = render(None, "en", &ctx());
        assert!(m.html.contains("Ada &lt;admin&gt;"));
        assert!(m.html.contains("New laptop &amp; dock"));
        assert!(m.text.contains("Ada <admin>"));
        // Our own links stay readable for hosts that rewrite them.
        assert!(m.html.contains(r#"href="https://s/a/x?decision=approve""#));
    }

    fn templates(default: Option<&str>, locales: &[(&str, &str)]) -> Templates {
        Templates {
            default_locale: default.map(str::to_string),
            locales: locales
                .iter()
                .map(|(l, s)| {
                    (
                        l.to_string(),
                        MessageTemplate {
                            subject: s.to_string(),
                            text: "T {{ ticket.attributes.amount }}".into(),
                            html: None,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn process_templates_fall_back_by_language_then_default_locale() {
        let t = templates(
            Some("en"),
            &[("en", "EN {{ ticket.id }}"), ("fr", "FR {{ ticket.id }}")],
        );
        assert_eq!(render(Some(&t), "fr-CA", &ctx()).subject, "FR T-1");
        assert_eq!(render(Some(&t), "de", &ctx()).subject, "EN T-1");
        assert_eq!(render(Some(&t), "en", &ctx()).text, "T 1800");
        // Without an html part, ours is used.
        assert!(render(Some(&t), "en", &ctx()).html.contains("<a href"));
    }

    #[test]
    fn compile_errors_name_the_line() {
        let e = check("Hello\n{{ approver.display_name ").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(check("{% for x in y %}").is_err());
        assert!(check("{{ ticket.id | upper }}").is_ok());
    }

    #[test]
    fn a_runaway_template_is_stopped_and_replaced() {
        let t = templates(
            None,
            &[(
                "en",
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            )],
        );
        let m = render(Some(&t), "en", &ctx());
        assert!(m.subject.starts_with("Approval needed"), "{}", m.subject);
    }
}

/// Where a ticket's approval stands, for its one-line badge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Badge {
    /// Waiting for these people (names).
    Awaiting(Vec<String>),
    /// Approved, by this person when one decided it.
    Approved(Option<String>),
    Rejected(Option<String>),
    Cancelled,
    /// The requester's side took the request back.
    Withdrawn,
    /// An approver asked the requester a question.
    AwaitingInfo,
}

/// The message the requester gets with an approver's question, in their language (English,
/// French and German built in). No link: the requester answers in the host.
pub fn question_message(locale: &str, asker: &str, ticket: &str, question: &str) -> Message {
    let (subject, asks, answer) = match language(locale).as_str() {
        "fr" => (
            "Question sur votre demande",
            "demande",
            "Répondez dans votre outil de suivi pour que l'approbation reprenne.",
        ),
        "de" => (
            "Rückfrage zu Ihrer Anfrage",
            "fragt",
            "Antworten Sie in Ihrem Ticketsystem, damit die Genehmigung weitergeht.",
        ),
        _ => (
            "A question about your request",
            "asks",
            "Answer in your helpdesk and the approval goes on.",
        ),
    };
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    Message {
        subject: format!("{subject}: {ticket}"),
        text: format!("{asker} {asks}:\n\n{question}\n\n{answer}"),
        html: format!(
            "<p>{} {asks}:</p><blockquote>{}</blockquote><p>{answer}</p>",
            esc(asker),
            esc(question)
        ),
    }
}

/// The badge line in the locale's language (English, French and German built in; English for
/// any other): "Awaiting approval from Grace Hopper", "Approuvé par Grace Hopper".
pub fn summary(locale: &str, badge: &Badge) -> String {
    let lang = language(locale);
    let (awaiting, approved, approved_by, rejected, rejected_by, cancelled, withdrawn, info) =
        match lang.as_str() {
            "fr" => (
                "En attente d'approbation de",
                "Approuvé",
                "Approuvé par",
                "Rejeté",
                "Rejeté par",
                "Annulé",
                "Retiré",
                "En attente d'informations du demandeur",
            ),
            "de" => (
                "Wartet auf Genehmigung von",
                "Genehmigt",
                "Genehmigt von",
                "Abgelehnt",
                "Abgelehnt von",
                "Abgebrochen",
                "Zurückgezogen",
                "Wartet auf Informationen des Antragstellers",
            ),
            _ => (
                "Awaiting approval from",
                "Approved",
                "Approved by",
                "Rejected",
                "Rejected by",
                "Cancelled",
                "Withdrawn",
                "Waiting for information from the requester",
            ),
        };
    match badge {
        Badge::Awaiting(names) => format!("{awaiting} {}", names.join(", ")),
        Badge::Approved(Some(who)) => format!("{approved_by} {who}"),
        Badge::Approved(None) => approved.to_string(),
        Badge::Rejected(Some(who)) => format!("{rejected_by} {who}"),
        Badge::Rejected(None) => rejected.to_string(),
        Badge::Cancelled => cancelled.to_string(),
        Badge::Withdrawn => withdrawn.to_string(),
        Badge::AwaitingInfo => info.to_string(),
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn badges_read_in_the_requesters_language() {
        let grace = || Some("Grace Hopper".to_string());
        let two = Badge::Awaiting(vec!["Grace Hopper".into(), "Alan Turing".into()]);
        let table = [
            (
                "en",
                &two,
                "Awaiting approval from Grace Hopper, Alan Turing",
            ),
            (
                "fr-CA",
                &two,
                "En attente d'approbation de Grace Hopper, Alan Turing",
            ),
            (
                "de",
                &two,
                "Wartet auf Genehmigung von Grace Hopper, Alan Turing",
            ),
            (
                "pt-BR",
                &two,
                "Awaiting approval from Grace Hopper, Alan Turing",
            ),
        ];
        for (locale, badge, want) in table {
            assert_eq!(summary(locale, badge), want, "{locale}");
        }
        assert_eq!(
            summary("en", &Badge::Approved(grace())),
            "Approved by Grace Hopper"
        );
        assert_eq!(
            summary("fr", &Badge::Approved(grace())),
            "Approuvé par Grace Hopper"
        );
        assert_eq!(
            summary("de", &Badge::Rejected(grace())),
            "Abgelehnt von Grace Hopper"
        );
        assert_eq!(summary("fr", &Badge::Rejected(None)), "Rejeté");
        assert_eq!(summary("en", &Badge::Approved(None)), "Approved");
        assert_eq!(summary("fr", &Badge::Cancelled), "Annulé");
    }
}
