//! Password recovery by EDS and by email, and the password change a recovered (or counter-made)
//! account must do at its next login. Each form calls the operation the API's twin calls.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use base64::Engine;
use http_common::pages::{render, PageContext};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::Done;
use crate::account::recovery::{statement, EdsRecoveryRequest, EmailRecoveryRequest};
use crate::account::AccountState;
use crate::http::{client, run, ApiError, AppState};
use crate::web::i18n::account::{texts, Account};
use crate::web::{see_other, shown, signed_in, status_of, FormError, Page};
use crate::PortalError;

#[derive(Template)]
#[template(path = "account/recovery.html")]
struct Recovery {
    page: Page,
    t: &'static Account,
    /// `eds` or `email`.
    way: &'static str,
    login: String,
    error: FormError,
}

#[derive(Deserialize)]
pub(super) struct WayQuery {
    #[serde(default)]
    way: Option<String>,
}

pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    Query(q): Query<WayQuery>,
) -> Response {
    let way = if q.way.as_deref() == Some("email") { "email" } else { "eds" };
    let page = Recovery {
        page: Page::new(&state, &ctx, None),
        t: texts(ctx.lang),
        way,
        login: String::new(),
        error: FormError::none(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct StatementJson {
    login: String,
    challenge: String,
}

/// The bytes to sign for a recovery (base64), as the portal will rebuild them.
pub(super) async fn recovery_statement(body: Bytes) -> Response {
    let Ok(s) = serde_json::from_slice::<StatementJson>(&body) else {
        return ApiError(PortalError::invalid("malformed-json", "the body is not {\"login\", \"challenge\"}"))
            .into_response();
    };
    let login = match crate::login::parse_login(&s.login) {
        Ok(l) => l,
        Err(e) => return ApiError(e).into_response(),
    };
    let bytes = statement(&login, s.challenge.trim());
    Json(serde_json::json!({ "statement": base64::engine::general_purpose::STANDARD.encode(bytes) })).into_response()
}

#[derive(Deserialize)]
pub(super) struct EdsForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    new_password: Zeroizing<String>,
    #[serde(default)]
    new_password_repeat: Zeroizing<String>,
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    cms: String,
}

pub(super) async fn by_eds(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<EdsForm>,
) -> Response {
    let t = texts(ctx.lang);
    let client = client(&state, &headers, &extensions);
    let login = form.login.trim().to_owned();
    let request = EdsRecoveryRequest {
        login: form.login,
        new_password: form.new_password,
        new_password_repeat: form.new_password_repeat,
        challenge: form.challenge,
        cms: form.cms,
    };
    match run(&state, true, move |p| p.recover_by_eds(&request, &client)).await {
        Ok(()) => {
            render(StatusCode::OK, &Done::new(&state, &ctx, t.recovery_title, t.password_changed, "/login", t.to_login))
        }
        Err(ApiError(e)) => {
            let e = shown(e);
            let error = match e.kind() {
                "invalid-login" => FormError::at("login", &e),
                k if k.starts_with("password-") => FormError::at("new_password", &e),
                _ => FormError::general(&e),
            };
            let page = Recovery { page: Page::new(&state, &ctx, None), t, way: "eds", login, error };
            render(status_of(&e), &page)
        }
    }
}

#[derive(Deserialize)]
pub(super) struct EmailForm {
    #[serde(default)]
    iin: Option<String>,
    #[serde(default)]
    document_number: Option<String>,
    #[serde(default)]
    document_issued: Option<String>,
    #[serde(default)]
    bin: Option<String>,
    #[serde(default)]
    registration_number: Option<String>,
}

pub(super) async fn by_email(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    Form(form): Form<EmailForm>,
) -> Response {
    let t = texts(ctx.lang);
    let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let request = EmailRecoveryRequest {
        iin: given(form.iin),
        document_number: given(form.document_number),
        document_issued: given(form.document_issued),
        bin: given(form.bin),
        registration_number: given(form.registration_number),
    };
    match run(&state, true, move |p| p.recover_by_email(&request)).await {
        Ok(message) => {
            render(StatusCode::OK, &Done::new(&state, &ctx, t.recovery_title, message, "/login", t.to_login))
        }
        Err(ApiError(e)) => {
            let e = shown(e);
            let error = match e.kind() {
                "invalid-iin" => FormError::at("iin", &e),
                "invalid-bin" => FormError::at("bin", &e),
                "invalid-date" => FormError::at("document_issued", &e),
                _ => FormError::general(&e),
            };
            let page = Recovery { page: Page::new(&state, &ctx, None), t, way: "email", login: String::new(), error };
            render(status_of(&e), &page)
        }
    }
}

#[derive(Template)]
#[template(path = "account/change.html")]
struct Change {
    page: Page,
    t: &'static Account,
    must_change: bool,
    error: FormError,
}

pub(super) async fn change_page(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
) -> Response {
    let auth = match signed_in(&state, &headers, true).await {
        Ok(Some(a)) => a,
        Ok(None) => return see_other("/login"),
        Err(e) => return super::failure(&state, &ctx, e),
    };
    let page = Change {
        page: Page::new(&state, &ctx, Some(&auth)),
        t: texts(ctx.lang),
        must_change: auth.account.state == AccountState::MustChangePassword,
        error: FormError::none(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub(super) struct ChangeForm {
    #[serde(default)]
    current_password: Zeroizing<String>,
    #[serde(default)]
    new_password: Zeroizing<String>,
    #[serde(default)]
    new_password_repeat: Zeroizing<String>,
}

pub(super) async fn change(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    headers: HeaderMap,
    Form(form): Form<ChangeForm>,
) -> Response {
    let t = texts(ctx.lang);
    let auth = match signed_in(&state, &headers, true).await {
        Ok(Some(a)) => a,
        Ok(None) => return see_other("/login"),
        Err(e) => return super::failure(&state, &ctx, e),
    };
    let must_change = auth.account.state == AccountState::MustChangePassword;
    let page = Page::new(&state, &ctx, Some(&auth));
    let result = run(&state, true, move |p| {
        p.change_password(&auth, &form.current_password, &form.new_password, &form.new_password_repeat)
    })
    .await;
    match result {
        Ok(()) => {
            let home = page.c.home;
            let done = Done {
                page,
                title: t.change_title,
                message: t.password_changed.into(),
                next_href: "/",
                next_label: home,
            };
            render(StatusCode::OK, &done)
        }
        Err(ApiError(e)) => {
            let e = shown(e);
            let error = match e.kind() {
                "wrong-password" => FormError::at("current_password", &e),
                k if k.starts_with("password-") => FormError::at("new_password", &e),
                _ => FormError::general(&e),
            };
            render(status_of(&e), &Change { page, t, must_change, error })
        }
    }
}
