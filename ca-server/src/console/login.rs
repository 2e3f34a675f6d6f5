//! Login by signature and logout. The page asks `/api/v1/auth/challenge` for a nonce, the
//! operator signs it with his AUTH key in the signing client, and the form posts the CMS here;
//! [`crate::api::auth::signed_login`] checks it exactly as `/api/v1/auth/login` does. Only a
//! certificate carrying the CA-operator role opens a session; every login and every refusal
//! of a valid signer is journaled.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use ca_core::profile::Role;
use ca_core::store::AuditEvent;

use super::session::{self, Operator};
use super::{message, render, set_cookie, token_matches, Chrome, ConsoleUser};
use crate::api::auth::{signed_login, Signed};
use crate::Services;

/// The cookie that carries the login form's token until there is a session (double submit).
const LOGIN_COOKIE: &str = "nca_console_login";
/// How long the login form stays usable.
const LOGIN_FORM_SECONDS: i64 = 15 * 60;

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

fn login_page(svc: &Services, status: StatusCode, error: Option<String>) -> Response {
    let token = match session::random_token() {
        Ok(t) => t,
        Err(e) => return message(svc, None, StatusCode::INTERNAL_SERVER_ERROR, "Ошибка", format!("random: {e}")),
    };
    let page = LoginPage { chrome: Chrome::anonymous(svc, "Вход оператора", token.clone()), error };
    let mut response = render(status, &page);
    response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &token, LOGIN_FORM_SECONDS));
    response
}

/// `GET /console/login`.
pub(crate) async fn page(State(svc): State<Arc<Services>>, user: Option<ConsoleUser>) -> Response {
    match user {
        Some(_) => Redirect::to("/console").into_response(),
        None => login_page(&svc, StatusCode::OK, None),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
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

/// `POST /console/login`.
pub(crate) async fn login(
    State(svc): State<Arc<Services>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = super::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !token_matches(expected, &form.csrf) {
        return login_page(
            &svc,
            StatusCode::FORBIDDEN,
            Some("Форма входа устарела или отправлена не с этой страницы. Попробуйте ещё раз.".into()),
        );
    }
    if form.cms.trim().is_empty() {
        return login_page(
            &svc,
            StatusCode::BAD_REQUEST,
            Some("Подпись не получена: подпишите вход в программе для подписи.".into()),
        );
    }
    let signer = match signed_login(svc.clone(), Signed::Cms(form.cms.into_bytes(), None)).await {
        Ok(s) => s,
        Err(e) => {
            return login_page(&svc, e.status, Some(format!("Вход не выполнен: подпись не принята ({}).", e.message)))
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
    let cookies = response.headers_mut();
    cookies.append(header::SET_COOKIE, set_cookie(session::COOKIE, &token, session::ABSOLUTE.whole_seconds()));
    cookies.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0));
    response
}

#[derive(serde::Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/logout`.
pub(crate) async fn logout(
    State(svc): State<Arc<Services>>,
    user: ConsoleUser,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !user.csrf_ok(&form.csrf) {
        return super::csrf_refused(&svc, &user);
    }
    svc.console.sessions.close(&user.token);
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(session::COOKIE, "", 0));
    response
}
