//! Login by signature and logout. The page asks `/api/v1/auth/challenge` for a nonce, the
//! operator signs it with his AUTH key in the signing client, and the form posts the CMS here;
//! [`crate::api::auth::signed_login`] checks it exactly as `/api/v1/auth/login` does. Only a
//! certificate carrying the CA-operator role opens a session; every login and every refusal
//! of a valid signer is journaled.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use ca_core::profile::Role;
use ca_core::store::AuditEvent;
use http_common::pages::{self, PageContext};

use super::session::{self, Operator};
use super::{message, render, Chrome, ConsoleUser};
use crate::api::auth::{signed_login, Signed};
use crate::Services;

/// What the console says to a valid signer without the operator role.
pub const NOT_AN_OPERATOR: &str = "Вход в консоль открыт только операторам удостоверяющего центра: в вашем \
                                   регистрационном свидетельстве нет роли оператора УЦ.";

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    chrome: Chrome,
    /// Why the last attempt failed, shown next to the button.
    error: Option<String>,
}

fn login_page(svc: &Services, page: &PageContext, status: StatusCode, error: Option<String>) -> Response {
    let page =
        LoginPage { chrome: Chrome::anonymous(svc, "Вход оператора", page.csrf_token.clone()), error };
    render(status, &page)
}

/// `GET /console/login`.
pub(crate) async fn page(
    State(svc): State<Arc<Services>>,
    Extension(page): Extension<PageContext>,
    user: Option<ConsoleUser>,
) -> Response {
    match user {
        Some(_) => Redirect::to("/console").into_response(),
        None => login_page(&svc, &page, StatusCode::OK, None),
    }
}

/// The login form (its CSRF token was checked by the guard).
#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    /// Base64 of the CMS over the challenge, made by the signing client.
    #[serde(default)]
    cms: String,
}

fn journal(svc: &Services, event: AuditEvent) {
    if let Some(store) = &svc.store {
        if let Err(e) = store.append_audit(&event) {
            tracing::error!(error = %e, "cannot journal a console login");
        }
    }
}

/// `POST /console/login` (the guard checked the form's token).
pub(crate) async fn login(
    State(svc): State<Arc<Services>>,
    Extension(page): Extension<PageContext>,
    Form(form): Form<LoginForm>,
) -> Response {
    if form.cms.trim().is_empty() {
        let why = "Подпись не получена: подпишите вход в программе для подписи.";
        return login_page(&svc, &page, StatusCode::BAD_REQUEST, Some(why.into()));
    }
    let signer = match signed_login(svc.clone(), Signed::Cms(form.cms.into_bytes(), None)).await {
        Ok(s) => s,
        Err(e) => {
            return login_page(
                &svc,
                &page,
                e.status,
                Some(format!("Вход не выполнен: подпись не принята ({}).", e.message)),
            )
        }
    };
    let Some(certificate) = signer.certificate else {
        return message(&svc, None, StatusCode::INTERNAL_SERVER_ERROR, "Ошибка", "подпись без сертификата");
    };
    let id = &certificate.identity;
    let name = id.common_name.clone().unwrap_or_default();
    let actor = format!("operator {name} ({})", certificate.serial);
    if !id.roles.contains(&Role::CaOperator) {
        journal(
            &svc,
            AuditEvent::new(actor, "console.login-refused")
                .target(certificate.serial.clone())
                .details(serde_json::json!({ "reason": "not-an-operator" })),
        );
        return message(&svc, None, StatusCode::FORBIDDEN, "Вход не разрешён", NOT_AN_OPERATOR);
    }
    let operator = Operator { name, serial: certificate.serial.clone(), iin: id.iin.map(|i| i.to_string()) };
    let token = match svc.console.sessions.open(operator, svc.clock.now()) {
        Ok(t) => t,
        Err(e) => return message(&svc, None, StatusCode::INTERNAL_SERVER_ERROR, "Ошибка", format!("random: {e}")),
    };
    journal(&svc, AuditEvent::new(actor, "console.login").target(certificate.serial.clone()));
    let mut response = Redirect::to("/console").into_response();
    let max_age = std::time::Duration::from_secs(session::ABSOLUTE.whole_seconds().unsigned_abs());
    response.headers_mut().append(header::SET_COOKIE, pages::cookie(session::COOKIE, &token, Some(max_age)));
    response
}

/// `POST /console/logout` (the guard checked the form's token).
pub(crate) async fn logout(State(svc): State<Arc<Services>>, user: ConsoleUser) -> Response {
    svc.console.sessions.close(&user.token);
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, pages::removed_cookie(session::COOKIE));
    response
}
