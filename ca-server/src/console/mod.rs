//! The registration authority's operator console, under `/console`: server-rendered pages
//! (askama templates in `templates/console/`, Russian) and two small scripts, no inline script.
//!
//! - Login by signature: the page takes a challenge from `/api/v1/auth/challenge`, the operator
//!   signs it with his AUTH key in the signing client (`ca-signer`), and [`login`] checks it on
//!   the same path as `/api/v1/auth/login`; only a certificate with the CA-operator role gets a
//!   session (an `HttpOnly; Secure; SameSite=Strict` cookie, see [`session`]).
//! - Read-only pages: the queue ([`queue`]), an application with its history
//!   ([`application`]), card personalization ([`cards`]), the audit journal and its
//!   verification, CRL and OCSP health ([`health`]).
//! - Actions (verify, confirm, refuse an application; revoke a certificate at the counter): the
//!   page builds the statement, the operator signs it with his SIGN key in the signing client,
//!   and the console hands the CMS to the administration API's own handler
//!   ([`crate::api::admin`]). The session and its CSRF token only let the form in; the
//!   signature alone authorises the action, exactly as on `/api/v1/admin/…`.

pub(crate) mod application;
pub(crate) mod cards;
pub(crate) mod health;
pub(crate) mod login;
pub(crate) mod queue;
pub(crate) mod revocation;
pub mod session;

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use http_common::pages::{self, PageContext, PageSecurity};
use time::OffsetDateTime;

use crate::Services;
use session::{Flash, Session, Sessions};

/// Where the pages find the signing client by default (`ca-signer`'s default listen address).
pub const DEFAULT_SIGNER_URL: &str = "ws://127.0.0.1:13579";

/// The console's state in [`Services`].
pub struct Console {
    pub sessions: Sessions,
    /// The signing client's WebSocket URL, written into every page (`<meta name="signer-url">`)
    /// and allowed by the Content-Security-Policy's `connect-src`.
    pub signer_url: String,
    /// Keys the CSRF tokens of this process's pages (the sessions live in this process too).
    csrf_key: [u8; 32],
}

impl Default for Console {
    fn default() -> Self {
        let mut csrf_key = [0u8; 32];
        // Without randomness no form could be protected: the router refuses to serve the
        // console with the all-zero key left here.
        if rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut csrf_key).is_err() {
            tracing::error!("no randomness for the console's CSRF key");
        }
        Self { sessions: Sessions::default(), signer_url: DEFAULT_SIGNER_URL.into(), csrf_key }
    }
}

/// What every page's frame shows: the title, who is logged in, the form token, a message.
pub(crate) struct Chrome {
    pub title: String,
    pub operator: Option<session::Operator>,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub signer_url: String,
    /// Which navigation entry is current.
    pub nav: &'static str,
}

impl Chrome {
    pub fn of(svc: &Services, user: &ConsoleUser, title: impl Into<String>, nav: &'static str) -> Self {
        Self {
            title: title.into(),
            operator: Some(user.session.operator.clone()),
            csrf: user.csrf.clone(),
            flash: user.session.flash.clone(),
            signer_url: svc.console.signer_url.clone(),
            nav,
        }
    }

    pub fn anonymous(svc: &Services, title: impl Into<String>, csrf: String) -> Self {
        Self {
            title: title.into(),
            operator: None,
            csrf,
            flash: None,
            signer_url: svc.console.signer_url.clone(),
            nav: "",
        }
    }
}

/// The console's routes behind [`http_common::pages::guard`] (security headers, CSRF on every
/// POST, bound to the console's session cookie). They answer HTML, so the JSON error layer of
/// the API is not theirs.
pub(crate) fn router(services: Arc<Services>) -> Result<Router<Arc<Services>>, pages::BadSource> {
    let console = &services.console;
    if console.csrf_key == [0u8; 32] {
        return Err(pages::BadSource("no random CSRF key".into()));
    }
    let security = Arc::new(PageSecurity::new(&console.csrf_key, session::COOKIE, &[console.signer_url.as_str()])?);
    Ok(Router::new()
        .route("/console", get(queue::page))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(login::page).post(login::login))
        .route("/console/logout", post(login::logout))
        .route("/console/applications/{number}", get(application::page))
        .route("/console/applications/{number}/{action}", post(application::act))
        .route("/console/revocations", get(revocation::page).post(revocation::revoke))
        .route("/console/cards", get(cards::page))
        .route("/console/audit", get(health::audit))
        .route("/console/health", get(health::page))
        .route("/console/static/{file}", get(static_file))
        // Unknown console paths get a page, not the API's JSON (the router has one fallback).
        .route("/console/{*rest}", get(not_found).post(not_found))
        .layer(axum::middleware::from_fn_with_state(security, pages::guard)))
}

/// An HTML answer.
pub(crate) fn render(status: StatusCode, template: &impl Template) -> Response {
    pages::render(status, template)
}

#[derive(Template)]
#[template(path = "console/message.html")]
pub(crate) struct MessagePage {
    pub chrome: Chrome,
    pub text: String,
    /// Where to go from here.
    pub back: Option<(String, String)>,
}

/// A page that only says something (a refusal, nothing found).
pub(crate) fn message(
    svc: &Services,
    user: Option<&ConsoleUser>,
    status: StatusCode,
    heading: &str,
    text: impl Into<String>,
) -> Response {
    let chrome = match user {
        Some(u) => Chrome::of(svc, u, heading, ""),
        None => Chrome::anonymous(svc, heading, String::new()),
    };
    let back = Some(match user {
        Some(_) => ("/console".to_owned(), "К очереди заявлений".to_owned()),
        None => ("/console/login".to_owned(), "Ко входу".to_owned()),
    });
    render(status, &MessagePage { chrome, text: text.into(), back })
}

async fn not_found(State(svc): State<Arc<Services>>, user: Option<ConsoleUser>) -> Response {
    message(&svc, user.as_ref(), StatusCode::NOT_FOUND, "Страница не найдена", "Такой страницы в консоли нет.")
}

/// A logged-in operator: the session of the request's cookie, alive now. Pages that need one
/// send anyone else to the login page.
pub(crate) struct ConsoleUser {
    pub token: String,
    pub session: Session,
    /// The CSRF token of this request's cookies, for the page's forms (the guard checked the
    /// one this request carried, if it is a POST).
    pub csrf: String,
}

impl ConsoleUser {
    pub fn flash(&self, svc: &Services, ok: bool, text: impl Into<String>) {
        svc.console.sessions.flash(&self.token, Flash { ok, text: text.into() });
    }
}

impl FromRequestParts<Arc<Services>> for ConsoleUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, svc: &Arc<Services>) -> Result<Self, Self::Rejection> {
        let now: OffsetDateTime = svc.clock.now();
        let token = pages::read_cookie(&parts.headers, session::COOKIE).unwrap_or_default().to_owned();
        let csrf = parts.extensions.get::<PageContext>().map(|c| c.csrf_token.clone()).unwrap_or_default();
        match svc.console.sessions.touch(&token, now) {
            Some(session) => Ok(Self { token, session, csrf }),
            None => Err(Redirect::to("/console/login").into_response()),
        }
    }
}

impl axum::extract::OptionalFromRequestParts<Arc<Services>> for ConsoleUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, svc: &Arc<Services>) -> Result<Option<Self>, Self::Rejection> {
        Ok(<Self as FromRequestParts<Arc<Services>>>::from_request_parts(parts, svc).await.ok())
    }
}

/// The console's static files, compiled in. `signer.js` is the pages' generic client of the
/// signing client, shared with the portal ([`http_common::pages::SIGNER_JS`]).
async fn static_file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind): (&'static str, &'static str) = match file.as_str() {
        "console.css" => (include_str!("../../static/console/console.css"), "text/css; charset=utf-8"),
        "console.js" => (include_str!("../../static/console/console.js"), "text/javascript; charset=utf-8"),
        "signer.js" => (http_common::pages::SIGNER_JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    pages::asset(kind, body)
}

/// A time as the console shows it (UTC, to the second).
pub(crate) fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")).unwrap_or_default()
}

/// A duration in words an operator reads at a glance: «3 ч 05 мин», «12 мин», «40 с».
pub(crate) fn span(d: time::Duration) -> String {
    let s = d.whole_seconds().abs();
    let sign = if d.is_negative() { "−" } else { "" };
    match s {
        s if s >= 86_400 => format!("{sign}{} дн {} ч", s / 86_400, (s % 86_400) / 3600),
        s if s >= 3600 => format!("{sign}{} ч {:02} мин", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{sign}{} мин", s / 60),
        s => format!("{sign}{s} с"),
    }
}
