//! The cabinet's pages: the profile, the bound phone («Получить проверочный код», the code and
//! the EDS-signed statement, documents 000/001), the open sessions (end one), and the journal
//! of logins and failed attempts. Handlers only translate between forms and the domain
//! operations the JSON API also calls; every POST passes the pages' CSRF guard.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use http_common::pages::PageContext;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::area::{account_of, local_time, respond, respond_as, run_page, PageError};
use super::i18n::cabinet::{self as i18n, CabinetText};
use super::status_of;
use super::Page;
use crate::account::{AccountKind, CreatedBy};
use crate::http::{client, AppState};
use crate::phone::cabinet::BindRequest;
use crate::phone::statement;
use crate::store::phone::Channel;

/// Where the error page leads back to.
const BACK: &str = "/cabinet";

/// The cabinet's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/cabinet", get(profile))
        .route("/cabinet/phone", get(phone))
        .route("/cabinet/phone/code", post(phone_code))
        .route("/cabinet/phone/binding", post(phone_binding))
        .route("/cabinet/sessions", get(sessions))
        .route("/cabinet/sessions/{id}/end", post(end_session))
        .route("/cabinet/journal", get(journal))
}

#[derive(Template)]
#[template(path = "cabinet/profile.html")]
struct ProfilePage {
    page: Page,
    t: &'static CabinetText,
    section: &'static str,
    login: String,
    kind: &'static str,
    iin: String,
    bin: Option<String>,
    email: String,
    registered: String,
    phone: Option<String>,
}

async fn profile(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let auth = account_of(&state, &headers).await?;
        let page = Page::new(&state, &ctx, Some(&auth));
        let account = auth.account.clone();
        let phone = run_page(&state, move |p| p.phone_cabinet(&auth)).await?.phone.map(|b| b.phone);
        let t = i18n::text(ctx.lang);
        let created = match account.created_by {
            CreatedBy::Counter => t.by_counter,
            CreatedBy::SelfService => t.by_signature,
        };
        Ok(ProfilePage {
            kind: if account.kind == AccountKind::Individual { t.individual } else { t.legal_entity },
            iin: account.iin.clone(),
            bin: account.bin.clone(),
            email: account.email.clone(),
            registered: format!("{} ({created})", local_time(account.created_at)),
            phone,
            login: account.login.clone(),
            page,
            t,
            section: "profile",
        })
    }
    .await;
    respond(&state, &ctx, result, BACK)
}

/// A binding as the page lists it.
struct BindingRow {
    phone: String,
    channel: String,
    bound_at: String,
    ended_at: Option<String>,
}

/// The phone page: the bound number and its history, and one of the two steps.
#[derive(Template)]
#[template(path = "cabinet/phone.html")]
struct PhonePage {
    page: Page,
    t: &'static CabinetText,
    section: &'static str,
    current: Option<BindingRow>,
    history: Vec<BindingRow>,
    /// What happened last (bound, code sent).
    notice: Option<String>,
    step: PhoneStep,
}

/// The number entry, or the code entry with the statement to sign.
enum PhoneStep {
    Number { value: String, error: Option<String> },
    Code(CodeStep),
}

struct CodeStep {
    session_id: String,
    phone: String,
    /// Base64 of the statement the signing client signs.
    statement: String,
    expires: Option<String>,
    /// A signature made before (a retry after a mistyped code signs nothing again).
    cms: String,
    code_error: Option<String>,
    error: Option<String>,
}

impl PhonePage {
    async fn load(
        state: &Arc<AppState>,
        ctx: &PageContext,
        auth: crate::login::session::Authenticated,
        step: PhoneStep,
        notice: Option<String>,
    ) -> Result<Self, PageError> {
        let page = Page::new(state, ctx, Some(&auth));
        let cabinet = run_page(state, move |p| p.phone_cabinet(&auth)).await?;
        let row = |b: &crate::store::phone::PhoneBinding| BindingRow {
            phone: b.phone.clone(),
            channel: i18n::channel(ctx.lang, b.channel.name()),
            bound_at: local_time(b.bound_at),
            ended_at: b.ended_at.map(local_time),
        };
        Ok(Self {
            current: cabinet.phone.as_ref().map(row),
            history: cabinet.history.iter().filter(|b| b.ended_at.is_some()).map(row).collect(),
            notice,
            step,
            page,
            t: i18n::text(ctx.lang),
            section: "phone",
        })
    }
}

async fn phone(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let auth = account_of(&state, &headers).await?;
        PhonePage::load(&state, &ctx, auth, PhoneStep::Number { value: String::new(), error: None }, None).await
    }
    .await;
    respond(&state, &ctx, result, BACK)
}

/// «Получить проверочный код»: the number.
#[derive(Deserialize)]
struct NumberForm {
    #[serde(default)]
    phone: String,
}

/// The code, with the signed statement (the script fills `cms`).
#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    session_id: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    code: Zeroizing<String>,
    #[serde(default)]
    cms: String,
}

async fn phone_code(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<NumberForm>,
) -> Response {
    let result = async {
        let auth = account_of(&state, &headers).await?;
        let number = form.phone.trim().to_owned();
        let client = client(&state, &headers, &extensions);
        let (a, n) = (auth.clone(), number.clone());
        match run_page(&state, move |p| p.request_phone_code(&a, &n, &client)).await {
            Ok(sent) => {
                let step = PhoneStep::Code(CodeStep {
                    session_id: sent.session_id,
                    phone: sent.phone,
                    statement: sent.statement,
                    expires: Some(local_time(sent.expires_at)),
                    cms: String::new(),
                    code_error: None,
                    error: None,
                });
                let page = PhonePage::load(&state, &ctx, auth, step, Some(sent.message.to_owned())).await?;
                Ok((StatusCode::OK, page))
            }
            Err(PageError::Refused(e)) => {
                let step = PhoneStep::Number { value: number, error: Some(e.to_string()) };
                Ok((status_of(&e), PhonePage::load(&state, &ctx, auth, step, None).await?))
            }
            Err(e) => Err(e),
        }
    }
    .await;
    respond_as(&state, &ctx, result, BACK)
}

async fn phone_binding(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<CodeForm>,
) -> Response {
    let result = async {
        let auth = account_of(&state, &headers).await?;
        let (session_id, phone, cms) =
            (form.session_id.trim().to_owned(), form.phone.trim().to_owned(), form.cms.trim().to_owned());
        let code = Zeroizing::new(form.code.trim().to_owned());
        let client = client(&state, &headers, &extensions);
        let request = BindRequest { session_id: session_id.clone(), code, cms: cms.clone() };
        let a = auth.clone();
        match run_page(&state, move |p| p.bind_phone(&a, &request, &client)).await {
            Ok(bound) => {
                let step = PhoneStep::Number { value: String::new(), error: None };
                Ok((StatusCode::OK, PhonePage::load(&state, &ctx, auth, step, Some(bound.message.to_owned())).await?))
            }
            // The OTP session is over (expired, used, out of tries): a new code, from the number.
            Err(PageError::Refused(e)) if e.kind() == "otp-session-spent" => {
                let step = PhoneStep::Number { value: phone, error: Some(e.to_string()) };
                Ok((status_of(&e), PhonePage::load(&state, &ctx, auth, step, None).await?))
            }
            Err(PageError::Refused(e)) => {
                // The statement is rebuilt from the session and the number (the portal checks the
                // signature against its own copy anyway). After a mistyped code the signature is
                // kept for the retry; after any other refusal (the signature itself) it is not.
                let signed = statement(&session_id, &auth.account.iin, &phone, Channel::Portal);
                let wrong_code = e.kind() == "wrong-otp";
                let message = e.to_string();
                let step = PhoneStep::Code(CodeStep {
                    session_id,
                    phone,
                    statement: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, signed),
                    expires: None,
                    cms: if wrong_code { cms } else { String::new() },
                    code_error: wrong_code.then(|| message.clone()),
                    error: (!wrong_code).then_some(message),
                });
                Ok((status_of(&e), PhonePage::load(&state, &ctx, auth, step, None).await?))
            }
            Err(e) => Err(e),
        }
    }
    .await;
    respond_as(&state, &ctx, result, BACK)
}

struct SessionRow {
    id: i64,
    current: bool,
    method: String,
    opened_at: String,
    last_seen: String,
    expires: String,
    address: String,
    browser: String,
}

#[derive(Template)]
#[template(path = "cabinet/sessions.html")]
struct SessionsPage {
    page: Page,
    t: &'static CabinetText,
    section: &'static str,
    sessions: Vec<SessionRow>,
    notice: Option<String>,
}

async fn sessions_page(
    state: &Arc<AppState>,
    ctx: &PageContext,
    headers: &HeaderMap,
    notice: Option<String>,
) -> Result<SessionsPage, PageError> {
    let auth = account_of(state, headers).await?;
    let page = Page::new(state, ctx, Some(&auth));
    let current = auth.session.id;
    let list = run_page(state, move |p| p.sessions(&auth)).await?;
    Ok(SessionsPage {
        sessions: list
            .into_iter()
            .map(|s| SessionRow {
                id: s.id,
                current: s.id == current,
                method: i18n::method(ctx.lang, &s.method),
                opened_at: local_time(s.created_at),
                last_seen: local_time(s.last_seen_at),
                expires: local_time(s.expires_at),
                address: s.client_address.unwrap_or_default(),
                browser: s.user_agent.unwrap_or_default(),
            })
            .collect(),
        notice,
        page,
        t: i18n::text(ctx.lang),
        section: "sessions",
    })
}

async fn sessions(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
) -> Response {
    let result = sessions_page(&state, &ctx, &headers, None).await;
    respond(&state, &ctx, result, BACK)
}

async fn end_session(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let result = async {
        let auth = account_of(&state, &headers).await?;
        let current = auth.session.id;
        let ended = run_page(&state, move |p| p.end_session(&auth, id)).await?;
        if ended && id == current {
            // The session of this browser is over: to the login page.
            return Err(PageError::SignedOut);
        }
        let notice = ended.then(|| i18n::text(ctx.lang).session_ended.to_owned());
        sessions_page(&state, &ctx, &headers, notice).await
    }
    .await;
    respond(&state, &ctx, result, BACK)
}

struct LoginRow {
    when: String,
    method: String,
    address: String,
    browser: String,
    open: bool,
}

struct FailureRow {
    when: String,
    method: String,
    reason: String,
    address: String,
    browser: String,
}

#[derive(Template)]
#[template(path = "cabinet/journal.html")]
struct JournalPage {
    page: Page,
    t: &'static CabinetText,
    section: &'static str,
    logins: Vec<LoginRow>,
    failures: Vec<FailureRow>,
}

/// How many entries of each kind the journal page shows.
const JOURNAL_ROWS: u32 = 50;

async fn journal(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let auth = account_of(&state, &headers).await?;
        let page = Page::new(&state, &ctx, Some(&auth));
        let journal = run_page(&state, move |p| p.login_journal(&auth, JOURNAL_ROWS)).await?;
        Ok(JournalPage {
            logins: journal
                .logins
                .into_iter()
                .map(|l| LoginRow {
                    when: local_time(l.session.created_at),
                    method: i18n::method(ctx.lang, &l.session.method),
                    address: l.session.client_address.unwrap_or_default(),
                    browser: l.session.user_agent.unwrap_or_default(),
                    open: l.ended_at.is_none(),
                })
                .collect(),
            failures: journal
                .failures
                .into_iter()
                .map(|a| FailureRow {
                    when: local_time(a.at),
                    method: i18n::method(ctx.lang, &a.method),
                    reason: i18n::failure(ctx.lang, &a.reason),
                    address: a.client_address.unwrap_or_default(),
                    browser: a.user_agent.unwrap_or_default(),
                })
                .collect(),
            page,
            t: i18n::text(ctx.lang),
            section: "journal",
        })
    }
    .await;
    respond(&state, &ctx, result, BACK)
}
