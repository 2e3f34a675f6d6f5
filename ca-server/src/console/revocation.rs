//! Counter revocation: the operator types the serial and picks the reason, the page builds
//! `{"action":"revoke","serial":…,"reason":…}`, he signs it with his SIGN key, and the CMS goes
//! to the handler of `POST /api/v1/admin/revocations`.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::application::{outcome, SignedForm};
use super::{render, Chrome, ConsoleUser};
use crate::api::admin;
use crate::Services;

/// The reasons an operator may give at the counter (RFC 5280 names, as the API takes them).
pub(crate) const REASONS: [(&str, &str); 6] = [
    ("keyCompromise", "Компрометация ключа"),
    ("affiliationChanged", "Изменение сведений"),
    ("superseded", "Замена свидетельства"),
    ("cessationOfOperation", "Прекращение деятельности"),
    ("certificateHold", "Приостановление"),
    ("unspecified", "Без указания причины"),
];

#[derive(Template)]
#[template(path = "console/revocation.html")]
struct RevocationPage {
    chrome: Chrome,
    reasons: Vec<(&'static str, &'static str)>,
}

/// `GET /console/revocations`.
pub(crate) async fn page(State(svc): State<Arc<Services>>, user: ConsoleUser) -> Response {
    let page = RevocationPage {
        chrome: Chrome::of(&svc, &user, "Отзыв регистрационного свидетельства", "revocations"),
        reasons: REASONS.to_vec(),
    };
    render(StatusCode::OK, &page)
}

/// `POST /console/revocations`.
pub(crate) async fn revoke(
    State(svc): State<Arc<Services>>,
    user: ConsoleUser,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<SignedForm>,
) -> Response {
    let back = Redirect::to("/console/revocations").into_response();
    let body = match form.cms() {
        Ok(b) => b,
        Err(why) => {
            user.flash(&svc, false, format!("Не выполнено: {why}."));
            return back;
        }
    };
    let response = admin::revoke_certificate(State(svc.clone()), headers, extensions, body).await;
    let (ok, text) = outcome(response, "Регистрационное свидетельство отозвано.").await;
    user.flash(&svc, ok, text);
    back
}
