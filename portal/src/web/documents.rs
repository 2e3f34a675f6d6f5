//! The digital documents' pages (document 003): the list (a minor's documents too, for his
//! representative), a document with its verification report, «Открыть доступ» with the QR code
//! and the six-digit code counting down (`/static/access.js`; the expiry is the server's) and
//! withdrawal, the third party's code entry and the QR's one-time link, and the view marks.
//!
//! The QR token is in a URL by design (the one-time link the QR code carries); the pages are
//! served with `Referrer-Policy: no-referrer`, so it does not leave in a Referer. The short code
//! and the token are shown once, in the answer to the POST that opened the access, never in a
//! URL of the portal's own.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use http_common::pages::{render, PageContext};
use serde::Deserialize;

use super::area::{account_of, form_refusal, local_time, respond, run_page, PageError};
use super::i18n::documents::{self as i18n, DocumentsText};
use super::status_of;
use super::Page;
use crate::documents::view::{DocumentListItem, DocumentView, Standing};
use crate::http::{client, AppState};
use crate::registry::Relation;

/// The documents' routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/documents", get(list))
        .route("/documents/history", get(history))
        .route("/documents/open", get(open_form).post(open_by_code))
        .route("/documents/{id}", get(document))
        .route("/documents/{id}/access", post(open_access))
        .route("/documents/access/{grant}/withdraw", post(withdraw))
}

fn whose(t: &DocumentsText, standing: Standing) -> &'static str {
    match standing {
        Standing::Representative(Relation::Parent) => t.of_child,
        Standing::Representative(Relation::Guardian) => t.of_ward,
        _ => t.mine,
    }
}

struct ListRow {
    id: i64,
    title: String,
    number: String,
    issued: String,
    whose: &'static str,
    owner_iin: String,
}

struct GrantRow {
    id: i64,
    document: String,
    code: String,
    valid_until: String,
    status: &'static str,
    live: bool,
}

#[derive(Template)]
#[template(path = "documents/list.html")]
struct ListPage {
    page: Page,
    t: &'static DocumentsText,
    documents: Vec<ListRow>,
    grants: Vec<GrantRow>,
    notice: Option<String>,
}

async fn list_page(
    state: &Arc<AppState>,
    ctx: &PageContext,
    headers: &HeaderMap,
    notice: Option<String>,
) -> Result<ListPage, PageError> {
    let auth = account_of(state, headers).await?;
    let page = Page::new(state, ctx, Some(&auth));
    let (documents, grants, now) =
        run_page(state, move |p| Ok((p.list_documents(&auth, false)?, p.my_grants(&auth)?, p.clock.now()))).await?;
    let t = i18n::text(ctx.lang);
    let titles: HashMap<i64, String> =
        documents.iter().map(|d: &DocumentListItem| (d.id, format!("{} № {}", d.title, d.number))).collect();
    Ok(ListPage {
        documents: documents
            .iter()
            .map(|d| ListRow {
                id: d.id,
                title: d.title.clone(),
                number: d.number.clone(),
                issued: local_time(d.issued_at),
                whose: whose(t, d.standing),
                owner_iin: d.subject_iin.clone(),
            })
            .collect(),
        grants: grants
            .into_iter()
            .map(|g| {
                let live = g.withdrawn_at.is_none() && g.locked_at.is_none() && g.expires_at > now;
                GrantRow {
                    id: g.id,
                    document: titles.get(&g.document_id).cloned().unwrap_or_else(|| format!("№ {}", g.document_id)),
                    code: g.short_code,
                    valid_until: local_time(g.expires_at),
                    status: if g.withdrawn_at.is_some() {
                        t.grant_withdrawn
                    } else if live {
                        t.grant_live
                    } else {
                        t.grant_expired
                    },
                    live,
                }
            })
            .collect(),
        notice,
        page,
        t,
    })
}

async fn list(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
) -> Response {
    let result = list_page(&state, &ctx, &headers, None).await;
    respond(&state, &ctx, result, "/documents")
}

/// A document as its page shows it (the subject's, a representative's or a third party's).
struct Shown {
    id: i64,
    title: String,
    number: String,
    issued: String,
    owner_iin: String,
    whose: &'static str,
    rendering: String,
    fields: Vec<(String, String)>,
    report: Option<ReportShown>,
}

struct ReportShown {
    valid: bool,
    signature_valid: bool,
    signer: Option<String>,
    serial: Option<String>,
    issuer: Option<String>,
    cert_validity: Option<String>,
    authority: String,
    authorised: bool,
    timestamp: Option<String>,
    validated_at: String,
    problems: Vec<String>,
}

impl Shown {
    fn of(view: DocumentView, t: &DocumentsText) -> Self {
        let fields = match &view.data {
            serde_json::Value::Object(map) => {
                map.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
            }
            serde_json::Value::Null => Vec::new(),
            other => vec![(String::new(), other.to_string())],
        };
        let report = view.report.map(|r| ReportShown {
            valid: r.valid,
            signature_valid: r.signature_valid,
            signer: r.signer.as_ref().map(|s| s.subject.clone()),
            serial: r.signer.as_ref().map(|s| s.serial.clone()),
            issuer: r.signer.as_ref().map(|s| s.issuer.clone()),
            cert_validity: r
                .signer
                .as_ref()
                .map(|s| format!("{} — {}", local_time(s.not_before), local_time(s.not_after))),
            authority: match &r.authority.name {
                Some(name) => format!("{name} (БИН {})", r.authority.bin),
                None => r.authority.bin.clone(),
            },
            authorised: r.authority.authorised,
            timestamp: r.timestamp.as_ref().filter(|s| s.valid).and_then(|s| {
                s.time.map(|at| match &s.tsa {
                    Some(tsa) => format!("{} ({tsa})", local_time(at)),
                    None => local_time(at),
                })
            }),
            validated_at: local_time(r.validation_time),
            problems: r.problems,
        });
        Self {
            id: view.id,
            title: view.title,
            number: view.number,
            issued: local_time(view.issued_at),
            owner_iin: view.subject_iin,
            whose: whose(t, view.standing),
            rendering: view.rendering,
            fields,
            report,
        }
    }
}

#[derive(Template)]
#[template(path = "documents/document.html")]
struct DocumentPage {
    page: Page,
    t: &'static DocumentsText,
    doc: Shown,
    /// Seen by a third party through an access grant (no «Открыть доступ» then).
    third_party: bool,
}

async fn document(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let result = async {
        let auth = account_of(&state, &headers).await?;
        let page = Page::new(&state, &ctx, Some(&auth));
        let view = run_page(&state, move |p| p.my_document(&auth, id)).await?;
        let t = i18n::text(ctx.lang);
        Ok(DocumentPage { doc: Shown::of(view, t), third_party: false, page, t })
    }
    .await;
    respond(&state, &ctx, result, &format!("/documents/{id}"))
}

#[derive(Template)]
#[template(path = "documents/access.html")]
struct AccessPage {
    page: Page,
    t: &'static DocumentsText,
    document_id: i64,
    grant_id: i64,
    title: String,
    code: String,
    url: String,
    qr_png: String,
    /// By the portal's clock, for the countdown script.
    seconds_left: i64,
    /// `mm:ss` of `seconds_left` (what the page shows before the script runs).
    countdown: String,
    valid_until: String,
}

async fn open_access(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Path(id): Path<i64>,
) -> Response {
    let result = async {
        let auth = account_of(&state, &headers).await?;
        let page = Page::new(&state, &ctx, Some(&auth));
        let client = client(&state, &headers, &extensions);
        let (opened, view, now) = run_page(&state, move |p| {
            let opened = p.open_access(&auth, id, &client)?;
            Ok((opened, p.my_document(&auth, id)?, p.clock.now()))
        })
        .await?;
        let left = (opened.expires_at - now).whole_seconds().max(0);
        Ok(AccessPage {
            document_id: opened.document_id,
            grant_id: opened.grant_id,
            title: format!("{} № {}", view.title, view.number),
            code: opened.short_code,
            url: opened.url,
            qr_png: opened.qr_png,
            seconds_left: left,
            countdown: format!("{:02}:{:02}", left / 60, left % 60),
            valid_until: local_time(opened.expires_at),
            page,
            t: i18n::text(ctx.lang),
        })
    }
    .await;
    respond(&state, &ctx, result, &format!("/documents/{id}"))
}

async fn withdraw(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Path(grant): Path<i64>,
) -> Response {
    let result = async {
        let auth = account_of(&state, &headers).await?;
        let client = client(&state, &headers, &extensions);
        let notice = match run_page(&state, move |p| p.withdraw_access(&auth, grant, &client)).await {
            Ok(()) => i18n::text(ctx.lang).withdrawn.to_owned(),
            // Already closed (expired, withdrawn in another tab): say so on the list.
            Err(PageError::Refused(e)) => e.to_string(),
            Err(e) => return Err(e),
        };
        list_page(&state, &ctx, &headers, Some(notice)).await
    }
    .await;
    respond(&state, &ctx, result, "/documents")
}

#[derive(Template)]
#[template(path = "documents/open.html")]
struct OpenPage {
    page: Page,
    t: &'static DocumentsText,
    error: Option<String>,
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: Option<String>,
}

/// The code entry; with `?token=` (the QR code's one-time link), the document at once.
async fn open_form(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Query(q): Query<TokenQuery>,
) -> Response {
    let lookup = match q.token {
        Some(token) => Lookup::Token(token),
        None => Lookup::Form,
    };
    third_party(&state, &ctx, &headers, &extensions, lookup).await
}

/// The third party's code.
#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn open_by_code(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<CodeForm>,
) -> Response {
    third_party(&state, &ctx, &headers, &extensions, Lookup::Code(form.code.trim().to_owned())).await
}

/// How the third party asks: not yet (the form), by the QR's token, or by a code.
enum Lookup {
    Form,
    Token(String),
    Code(String),
}

enum OpenOutcome {
    Form(StatusCode, OpenPage),
    Document(Box<DocumentPage>),
}

/// The document a third party may see, or the code form (with the refusal next to the field:
/// a wrong code is not echoed back, the field is empty for the next try).
async fn third_party(
    state: &Arc<AppState>,
    ctx: &PageContext,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    lookup: Lookup,
) -> Response {
    let result = async {
        let auth = account_of(state, headers).await?;
        let page = Page::new(state, ctx, Some(&auth));
        let t = i18n::text(ctx.lang);
        let client = client(state, headers, extensions);
        let view = match lookup {
            Lookup::Form => return Ok(OpenOutcome::Form(StatusCode::OK, OpenPage { error: None, page, t })),
            Lookup::Token(token) => run_page(state, move |p| p.view_by_token(&auth, &token, &client)).await,
            Lookup::Code(code) => run_page(state, move |p| p.view_by_code(&auth, &code, &client)).await,
        };
        match view.map_err(form_refusal) {
            Ok(view) => Ok(OpenOutcome::Document(Box::new(DocumentPage {
                doc: Shown::of(view, t),
                third_party: true,
                page,
                t,
            }))),
            Err(Ok(e)) => Ok(OpenOutcome::Form(status_of(&e), OpenPage { error: Some(e.to_string()), page, t })),
            Err(Err(e)) => Err(e),
        }
    }
    .await;
    match result {
        Ok(OpenOutcome::Form(status, page)) => render(status, &page),
        Ok(OpenOutcome::Document(page)) => render(StatusCode::OK, page.as_ref()),
        Err(e) => e.into_page(state, ctx, "/documents/open"),
    }
}

struct EventRow {
    when: String,
    document: String,
    event: String,
    who: String,
    how: String,
    outcome: String,
}

#[derive(Template)]
#[template(path = "documents/history.html")]
struct HistoryPage {
    page: Page,
    t: &'static DocumentsText,
    events: Vec<EventRow>,
}

/// How many events the history page shows.
const HISTORY_ROWS: u32 = 100;

async fn history(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let auth = account_of(&state, &headers).await?;
        let page = Page::new(&state, &ctx, Some(&auth));
        let events = run_page(&state, move |p| p.named_document_history(&auth, HISTORY_ROWS)).await?;
        let lang = ctx.lang;
        Ok(HistoryPage {
            events: events
                .into_iter()
                .map(|(e, name)| EventRow {
                    when: local_time(e.at),
                    document: name.unwrap_or_default(),
                    event: i18n::action(lang, &e.action),
                    who: format!("{} ({})", e.actor, i18n::actor_kind(lang, &e.actor_kind)),
                    how: e.channel.as_deref().map(|c| i18n::channel(lang, c)).unwrap_or_default(),
                    outcome: i18n::outcome(lang, &e.outcome),
                })
                .collect(),
            page,
            t: i18n::text(ctx.lang),
        })
    }
    .await;
    respond(&state, &ctx, result, "/documents/history")
}
