//! The account pages: the start page, login (password, EDS, one-time password), logout,
//! registration by EDS, password recovery (EDS, email) and the forced password change. Each
//! form calls the operation its JSON twin calls; a refusal re-renders the form with the
//! operation's message next to its field (or above the form), never saying more than the API
//! says (an unknown login and a wrong password get one message).

mod recovery;
mod registration;

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use http_common::pages::{render, PageContext};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::i18n::account::{texts, Account};
use super::{see_other, shown, signed_in, signed_in_redirect, signed_out, status_of, FormError, Page};
use crate::http::{client, run, AppState};
use crate::PortalError;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(start))
        .route("/login", get(login_page))
        .route("/login/password", post(login_password))
        .route("/login/eds", post(login_eds))
        .route("/login/otp/request", post(request_otp))
        .route("/login/otp", post(login_otp))
        .route("/logout", post(logout))
        .route("/register", get(registration::page).post(registration::submit))
        .route("/register/certificate", post(registration::certificate))
        .route("/recovery", get(recovery::page))
        .route("/recovery/statement", post(recovery::recovery_statement))
        .route("/recovery/eds", post(recovery::by_eds))
        .route("/recovery/email", post(recovery::by_email))
        .route("/password/change", get(recovery::change_page).post(recovery::change))
}

/// The outcome of a form that needs no more input (registered, recovered, changed).
#[derive(Template)]
#[template(path = "account/done.html")]
struct Done {
    page: Page,
    title: &'static str,
    message: String,
    next_href: &'static str,
    next_label: &'static str,
}

impl Done {
    /// For someone not signed in.
    fn new(
        state: &AppState,
        ctx: &PageContext,
        title: &'static str,
        message: &str,
        next_href: &'static str,
        next_label: &'static str,
    ) -> Self {
        Self { page: Page::new(state, ctx, None), title, message: message.to_owned(), next_href, next_label }
    }
}

#[derive(Template)]
#[template(path = "account/start.html")]
struct Start {
    page: Page,
    t: &'static Account,
}

async fn start(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
) -> Response {
    let auth = match signed_in(&state, &headers, true).await {
        Ok(a) => a,
        Err(e) => return failure(&state, &ctx, e),
    };
    if auth.as_ref().is_some_and(|a| a.account.state == crate::account::AccountState::MustChangePassword) {
        return see_other("/password/change");
    }
    render(StatusCode::OK, &Start { page: Page::new(&state, &ctx, auth.as_ref()), t: texts(ctx.lang) })
}

#[derive(Template)]
#[template(path = "account/login.html")]
struct Login {
    page: Page,
    t: &'static Account,
    /// `password`, `eds` or `otp`.
    tab: &'static str,
    login: String,
    error: FormError,
    notice: String,
    otp_sent: bool,
}

impl Login {
    fn new(state: &AppState, ctx: &PageContext, tab: &'static str) -> Self {
        Self {
            page: Page::new(state, ctx, None),
            t: texts(ctx.lang),
            tab,
            login: String::new(),
            error: FormError::none(),
            notice: String::new(),
            otp_sent: false,
        }
    }
}

#[derive(Deserialize)]
struct TabQuery {
    #[serde(default)]
    tab: Option<String>,
}

fn tab_name(tab: Option<&str>) -> &'static str {
    match tab {
        Some("eds") => "eds",
        Some("otp") => "otp",
        _ => "password",
    }
}

async fn login_page(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    Query(q): Query<TabQuery>,
) -> Response {
    render(StatusCode::OK, &Login::new(&state, &ctx, tab_name(q.tab.as_deref())))
}

/// A page for an error no form owns (the store failed, say).
pub(super) fn failure(state: &AppState, ctx: &PageContext, error: PortalError) -> Response {
    let error = shown(error);
    let mut page = Login::new(state, ctx, "password");
    let status = status_of(&error);
    page.error = FormError::general(&error);
    render(status, &page)
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: Zeroizing<String>,
}

async fn login_password(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<PasswordForm>,
) -> Response {
    let client = client(&state, &headers, &extensions);
    let login = form.login.trim().to_owned();
    let typed = login.clone();
    match run(&state, true, move |p| p.login_password(&typed, &form.password, &client)).await {
        Ok(grant) => signed_in_redirect(&grant),
        Err(crate::http::ApiError(e)) => {
            let e = shown(e);
            let mut page = Login::new(&state, &ctx, "password");
            page.login = login;
            page.error = match e.kind() {
                "invalid-login" => FormError::at("login", &e),
                // One message for an unknown login and a wrong password, shown at the password.
                "wrong-login-or-password" => FormError::at("password", &e),
                _ => FormError::general(&e),
            };
            render(status_of(&e), &page)
        }
    }
}

#[derive(Deserialize)]
struct EdsForm {
    #[serde(default)]
    cms: String,
}

async fn login_eds(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<EdsForm>,
) -> Response {
    let client = client(&state, &headers, &extensions);
    match run(&state, false, move |p| p.login_eds(form.cms.as_bytes(), None, &client)).await {
        Ok(grant) => signed_in_redirect(&grant),
        Err(crate::http::ApiError(e)) => {
            let e = shown(e);
            let mut page = Login::new(&state, &ctx, "eds");
            page.error = FormError::general(&e);
            render(status_of(&e), &page)
        }
    }
}

#[derive(Deserialize)]
struct OtpRequestForm {
    #[serde(default)]
    login: String,
}

async fn request_otp(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    Form(form): Form<OtpRequestForm>,
) -> Response {
    let login = form.login.trim().to_owned();
    let typed = login.clone();
    let mut page = Login::new(&state, &ctx, "otp");
    page.login = login;
    match run(&state, false, move |p| p.request_login_otp(&typed)).await {
        Ok(message) => {
            page.notice = message.to_owned();
            page.otp_sent = true;
            render(StatusCode::OK, &page)
        }
        Err(crate::http::ApiError(e)) => {
            let e = shown(e);
            page.error = if e.kind() == "invalid-login" { FormError::at("login", &e) } else { FormError::general(&e) };
            render(status_of(&e), &page)
        }
    }
}

#[derive(Deserialize)]
struct OtpForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    code: Zeroizing<String>,
}

async fn login_otp(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<OtpForm>,
) -> Response {
    let client = client(&state, &headers, &extensions);
    let login = form.login.trim().to_owned();
    let typed = login.clone();
    match run(&state, false, move |p| p.login_otp(&typed, form.code.trim(), &client)).await {
        Ok(grant) => signed_in_redirect(&grant),
        Err(crate::http::ApiError(e)) => {
            let e = shown(e);
            let mut page = Login::new(&state, &ctx, "otp");
            page.login = login;
            page.otp_sent = true;
            page.error = match e.kind() {
                "invalid-login" => FormError::at("login", &e),
                "wrong-otp" => FormError::at("code", &e),
                _ => FormError::general(&e),
            };
            render(status_of(&e), &page)
        }
    }
}

async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers, true).await {
        Ok(Some(auth)) => {
            if let Err(crate::http::ApiError(e)) = run(&state, false, move |p| p.logout(&auth)).await {
                tracing::warn!(error = %e, "logout failed");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "logout: the session could not be read"),
    }
    signed_out(see_other("/"))
}
