//! Approver links: the JSON endpoints and the small hosted decision page. The token in the
//! path is the only credential. A GET never decides (mail scanners open links); only a POST
//! does, once.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use minijinja::{AutoEscape, Environment, context};
use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::problem::Problem;
use super::ratelimit::RateLimiter;
use crate::api::body::JsonBody;
use crate::db::Db;
use crate::domain::engine::Verdict;
use crate::domain::messages::language;
use crate::error::{AppError, AppResult};
use crate::service::links::{self, Closed, LinkView, Open};
use crate::service::store::Ctx;

/// Body of `POST /v1/links/{token}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkDecision {
    pub decision: Verdict,
    #[serde(default)]
    pub comment: Option<String>,
}

fn limited(req: &HttpRequest, limiter: &RateLimiter) -> Result<(), u64> {
    limiter.check(req.peer_addr().map(|a| a.ip()))
}

fn too_many(wait: u64) -> AppError {
    AppError::new(
        crate::error::Kind::TooManyRequests,
        "rate_limited",
        format!("too many requests from this address; retry in {wait} s"),
    )
    .with("retry_after", wait)
}

/// The page's 429: in the browser's language, with `Retry-After` as the JSON API's has.
fn rate_limited_page(lang: &str, wait: u64) -> HttpResponse {
    let mut res = page(
        StatusCode::TOO_MANY_REQUESTS,
        serde_json::json!({"t": words(lang), "state": "closed", "code": "rate_limited"}),
    );
    if let Ok(v) = HeaderValue::from_str(&wait.max(1).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

fn no_store(mut res: HttpResponse) -> HttpResponse {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

fn closed_error(c: Closed) -> AppError {
    match c.answered {
        Some((by, at, v)) => c
            .error
            .with("decided_by", by)
            .with(
                "decided_at",
                at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            )
            .with("decision", serde_json::to_value(v).unwrap_or_default()),
        None => c.error,
    }
}

/// What a link shows: the approval, who it is for, and what it can do.
///
/// No authentication: the token is the credential. 404 `link_not_found` for an unknown
/// token; 410 with `link_used`, `link_superseded`, `link_reassigned`, `link_expired` or
/// `link_closed` when it no longer works; 429 when one address asks too often.
#[utoipa::path(
    tag = "links",
    params(("token" = String, Path, description = "The token from approve_url / reject_url / page_url")),
    responses(
        (status = 200, description = "The link is usable", body = LinkView),
        (status = 404, description = "Unknown token (`link_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Used, superseded, expired or closed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address (`rate_limited`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/links/{token}")]
pub async fn get_link(
    req: HttpRequest,
    db: web::Data<Db>,
    ctx: Ctx,
    limiter: web::Data<RateLimiter>,
    token: web::Path<String>,
) -> AppResult<HttpResponse> {
    limited(&req, &limiter).map_err(too_many)?;
    let token = token.into_inner();
    let found = db
        .read(move |c| links::open(c, &token, false, &ctx))
        .await?;
    match found {
        Ok(open) => Ok(no_store(HttpResponse::Ok().json(links::view(&open, true)))),
        Err(closed) => Err(closed_error(closed)),
    }
}

/// Decide through a link. The link is spent in the same transaction as the decision.
#[utoipa::path(
    tag = "links",
    params(("token" = String, Path, description = "The link's token")),
    request_body = LinkDecision,
    responses(
        (status = 200, description = "Recorded; the link no longer works", body = LinkView),
        (status = 404, description = "Unknown token (`link_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Used, superseded, expired or closed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A comment is required to reject", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/links/{token}")]
pub async fn post_link(
    req: HttpRequest,
    db: web::Data<Db>,
    ctx: Ctx,
    limiter: web::Data<RateLimiter>,
    token: web::Path<String>,
    body: JsonBody<LinkDecision>,
) -> AppResult<HttpResponse> {
    limited(&req, &limiter).map_err(too_many)?;
    let token = token.into_inner();
    let body = body.into_inner();
    if body
        .comment
        .as_deref()
        .is_some_and(|c| !crate::domain::validate::is_storable_text(c, 10_000))
    {
        return Err(AppError::invalid_field(
            "comment",
            "must be at most 10000 characters, without control characters",
        ));
    }
    let done = db
        .tx(move |c| {
            let comment = body.comment.filter(|c| !c.trim().is_empty());
            links::decide(c, &token, body.decision, comment, &ctx)
        })
        .await?;
    match done {
        Ok(open) => Ok(no_store(HttpResponse::Ok().json(links::view(&open, false)))),
        Err(closed) => Err(closed_error(closed)),
    }
}

// ---------------------------------------------------------------------------------------
// The hosted page.

/// Query of the page: a preselected choice from approve_url / reject_url.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    pub decision: Option<String>,
}

/// The page's form.
#[derive(Debug, Deserialize)]
pub struct PageForm {
    pub decision: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

const PAGE: &str = include_str!("decision_page.html");

/// The page's words in English, French and German.
fn words(lang: &str) -> Value {
    match language(lang).as_str() {
        "fr" => serde_json::json!({
            "lang": "fr", "title": "Demande d’approbation", "hello": "Bonjour", "requester": "Demandeur", "ticket": "Ticket", "description": "Description",
            "requested_by": "Demandé par", "process": "Processus", "stage": "Étape",
            "for": "Vous répondez pour", "your_decision": "Votre décision", "approve": "Approuver",
            "reject": "Refuser", "comment": "Commentaire", "comment_optional": "(facultatif)",
            "comment_required": "(obligatoire pour refuser)", "confirm": "Confirmer ma décision",
            "thanks_approve": "Merci. Vous avez approuvé cette demande.",
            "thanks_reject": "Merci. Vous avez refusé cette demande.",
            "used": "Ce lien a déjà été utilisé.", "decided_by": "Décision de",
            "decided_at": "le", "approved": "approuvé", "rejected": "refusé",
            "gone": "Ce lien ne fonctionne plus.", "link_not_found": "Ce lien n’est pas valide.",
            "link_superseded": "Cette demande a déjà reçu une réponse ou a été remplacée.",
            "link_reassigned": "Cette demande a été confiée à",
            "awaiting_info": "Une question a été posée au demandeur : ce lien fonctionnera de nouveau après sa réponse.",
            "link_expired": "Ce lien a expiré.", "link_closed": "Cette approbation est terminée.",
            "choose": "Choisissez approuver ou refuser.",
            "need_comment": "Merci d’indiquer pourquoi vous refusez cette demande.",
            "rate_limited": "Trop de tentatives. Patientez une minute puis réessayez.",
            "close": "Vous pouvez fermer cette page."
        }),
        "de" => serde_json::json!({
            "lang": "de", "title": "Genehmigungsanfrage", "hello": "Hallo", "requester": "Antragsteller", "ticket": "Ticket", "description": "Beschreibung",
            "requested_by": "Angefordert von", "process": "Prozess", "stage": "Stufe",
            "for": "Sie antworten für", "your_decision": "Ihre Entscheidung", "approve": "Genehmigen",
            "reject": "Ablehnen", "comment": "Kommentar", "comment_optional": "(optional)",
            "comment_required": "(zum Ablehnen erforderlich)", "confirm": "Entscheidung bestätigen",
            "thanks_approve": "Vielen Dank. Sie haben diese Anfrage genehmigt.",
            "thanks_reject": "Vielen Dank. Sie haben diese Anfrage abgelehnt.",
            "used": "Dieser Link wurde bereits verwendet.", "decided_by": "Entschieden von",
            "decided_at": "am", "approved": "genehmigt", "rejected": "abgelehnt",
            "gone": "Dieser Link funktioniert nicht mehr.", "link_not_found": "Dieser Link ist ungültig.",
            "link_superseded": "Diese Anfrage wurde bereits beantwortet oder ersetzt.",
            "link_reassigned": "Diese Anfrage wurde weitergegeben an",
            "awaiting_info": "Dem Antragsteller wurde eine Frage gestellt: Dieser Link funktioniert nach seiner Antwort wieder.",
            "link_expired": "Dieser Link ist abgelaufen.", "link_closed": "Diese Genehmigung ist abgeschlossen.",
            "choose": "Wählen Sie Genehmigen oder Ablehnen.",
            "need_comment": "Bitte begründen Sie die Ablehnung.",
            "rate_limited": "Zu viele Versuche. Bitte warten Sie eine Minute.",
            "close": "Sie können diese Seite schließen."
        }),
        _ => serde_json::json!({
            "lang": "en", "title": "Approval request", "hello": "Hello", "requester": "Requester", "ticket": "Ticket", "description": "Description",
            "requested_by": "Requested by", "process": "Process", "stage": "Stage",
            "for": "You answer for", "your_decision": "Your decision", "approve": "Approve",
            "reject": "Reject", "comment": "Comment", "comment_optional": "(optional)",
            "comment_required": "(required to reject)", "confirm": "Confirm my decision",
            "thanks_approve": "Thank you. You approved this request.",
            "thanks_reject": "Thank you. You rejected this request.",
            "used": "This link has already been used.", "decided_by": "Decided by",
            "decided_at": "on", "approved": "approved", "rejected": "rejected",
            "gone": "This link no longer works.", "link_not_found": "This link is not valid.",
            "link_superseded": "This request has been answered or replaced.",
            "link_reassigned": "This request was passed on to",
            "awaiting_info": "The requester was asked a question: this link works again once they answer.",
            "link_expired": "This link has expired.", "link_closed": "This approval has ended.",
            "choose": "Choose approve or reject.",
            "need_comment": "Please say why you reject this request.",
            "rate_limited": "Too many attempts. Please wait a minute and try again.",
            "close": "You can close this page."
        }),
    }
}

/// Which language to answer in when there is no approver to go by: the browser's first.
fn browser_language(req: &HttpRequest) -> String {
    req.headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|l| l.split(';').next().unwrap_or("en").trim().to_string())
        .unwrap_or_else(|| "en".into())
}

/// Renders the page with its security headers: a strict CSP allowing only our inline style
/// (by nonce), no caching, no referrer, no framing.
fn page(status: StatusCode, view: Value) -> HttpResponse {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let nonce = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    let html = env
        .render_str(
            PAGE,
            context! { nonce => &nonce, ..minijinja::Value::from_serialize(&view) },
        )
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "decision page failed to render");
            "<!doctype html><title>Error</title><p>Something went wrong.</p>".into()
        });
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut res = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(html);
    res = no_store(res);
    res
}

fn open_view(open: &Open, chosen: Option<&str>, error: Option<&str>, comment: &str) -> Value {
    let v = links::view(open, true);
    let lang = v.approver.locale.clone();
    let stored = &open.loaded.stored;
    // People by name where the directory had one: who asked, for whom, and the requester
    // when someone else asked.
    let requested_by = open.asker.name.clone().or(v.approval.requested_by.clone());
    let requester = open
        .asker
        .requester
        .as_ref()
        .and_then(|(_, name)| name.clone())
        .filter(|name| Some(name) != requested_by.as_ref());
    serde_json::json!({
        "t": words(&lang),
        "state": "open",
        "approver": v.approver,
        "on_behalf_of": v.on_behalf_of.as_deref().map(|id| stored.name_of(id)),
        "ticket": v.approval.ticket,
        "description": v.approval.description,
        "requested_by": requested_by,
        "requester": requester,
        "process": v.approval.process.as_ref().map(|p| &p.name),
        "stage": v.stage,
        "chosen": chosen,
        "error": error,
        "comment": comment,
        "reject_requires_comment": v.reject_requires_comment,
    })
}

fn closed_view(lang: &str, closed: &Closed) -> (StatusCode, Value) {
    // The link holder's language when the token tells us who they are.
    let lang = closed.locale.as_deref().unwrap_or(lang);
    let code = closed.error.code().to_string();
    let status = actix_web::ResponseError::status_code(&closed.error);
    let answered = closed.answered.as_ref().map(|(by, at, v)| {
        serde_json::json!({"by": closed.answered_by_name.as_deref().unwrap_or(by),
                           "at": at.format("%Y-%m-%d %H:%M UTC").to_string(),
                           "decision": if *v == Verdict::Approve { "approved" } else { "rejected" }})
    });
    (
        status,
        serde_json::json!({"t": words(lang), "state": "closed", "code": code, "answered": answered,
                           "reassigned_to": closed.reassigned_to_name}),
    )
}

/// The hosted decision page. Opening it never decides.
#[get("/a/{token}")]
pub async fn decision_page(
    req: HttpRequest,
    db: web::Data<Db>,
    ctx: Ctx,
    limiter: web::Data<RateLimiter>,
    token: web::Path<String>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = browser_language(&req);
    if let Err(wait) = limited(&req, &limiter) {
        return rate_limited_page(&lang, wait);
    }
    let token = token.into_inner();
    match db.read(move |c| links::open(c, &token, false, &ctx)).await {
        Ok(Ok(open)) => {
            let chosen = query
                .decision
                .as_deref()
                .filter(|d| matches!(*d, "approve" | "reject"));
            page(StatusCode::OK, open_view(&open, chosen, None, ""))
        }
        Ok(Err(closed)) => {
            let (status, v) = closed_view(&lang, &closed);
            page(status, v)
        }
        Err(e) => error_page(&lang, &e),
    }
}

fn error_page(lang: &str, e: &AppError) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(e);
    if status.is_server_error() {
        tracing::error!(error = %e, "decision page failed");
    }
    page(
        status,
        serde_json::json!({"t": words(lang), "state": "closed", "code": e.code()}),
    )
}

/// The page's form: records the decision and shows the result.
#[post("/a/{token}")]
pub async fn decision_page_post(
    req: HttpRequest,
    db: web::Data<Db>,
    ctx: Ctx,
    limiter: web::Data<RateLimiter>,
    token: web::Path<String>,
    form: web::Form<PageForm>,
) -> HttpResponse {
    let lang = browser_language(&req);
    if let Err(wait) = limited(&req, &limiter) {
        return rate_limited_page(&lang, wait);
    }
    let form = form.into_inner();
    let mut comment = form.comment.clone().unwrap_or_default();
    // A page cannot show a 422 body well; drop what cannot be stored and keep the rest.
    comment.retain(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
    let comment: String = comment.chars().take(10_000).collect();
    let verdict = match form.decision.as_deref() {
        Some("approve") => Some(Verdict::Approve),
        Some("reject") => Some(Verdict::Reject),
        _ => None,
    };
    let token = token.into_inner();
    // Invalid input re-renders the form with the message, in the approver's language.
    let rerender = |key: &'static str,
                    db: web::Data<Db>,
                    token: String,
                    ctx: Ctx,
                    comment: String,
                    chosen: Option<String>| async move {
        match db.read(move |c| links::open(c, &token, false, &ctx)).await {
            Ok(Ok(open)) => {
                let lang = open.recipient.locale.clone();
                let msg = words(&lang)[key].as_str().unwrap_or_default().to_string();
                page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    open_view(&open, chosen.as_deref(), Some(&msg), &comment),
                )
            }
            Ok(Err(closed)) => {
                let (status, v) = closed_view("en", &closed);
                page(status, v)
            }
            Err(e) => error_page("en", &e),
        }
    };
    let Some(verdict) = verdict else {
        return rerender("choose", db, token, ctx, comment, None).await;
    };
    let text = Some(comment.clone()).filter(|c| !c.trim().is_empty());
    let (db2, token2, ctx2) = (db.clone(), token.clone(), ctx.clone());
    let done = db
        .tx(move |c| links::decide(c, &token, verdict, text, &ctx))
        .await;
    match done {
        Ok(Ok(open)) => {
            let v = links::view(&open, false);
            let lang = v.approver.locale.clone();
            page(
                StatusCode::OK,
                serde_json::json!({"t": words(&lang), "state": "done",
                    "decision": if verdict == Verdict::Approve { "approve" } else { "reject" },
                    "ticket": v.approval.ticket, "approver": v.approver}),
            )
        }
        Ok(Err(closed)) => {
            let (status, v) = closed_view(&lang, &closed);
            page(status, v)
        }
        Err(e) if e.code() == "validation_failed" => {
            let chosen = Some(
                if verdict == Verdict::Approve {
                    "approve"
                } else {
                    "reject"
                }
                .to_string(),
            );
            rerender("need_comment", db2, token2, ctx2, comment, chosen).await
        }
        Err(e) => error_page(&lang, &e),
    }
}
