//! Registration by EDS: the form (agreement, individual or legal entity, the chosen
//! certificate's IIN, BIN, full name, email and validity, email, password twice), the
//! certificate's details for the page, and the signed submission, which goes to
//! [`Portal::register`](crate::Portal::register) as the API's registration does.

use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use der::{Decode, DecodePem};
use http_common::pages::{render, PageContext};
use serde::Deserialize;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::Done;
use crate::account::registration::RegistrationRequest;
use crate::account::AccountKind;
use crate::http::{run, ApiError, AppState};
use crate::web::i18n::account::{texts, Account};
use crate::web::{shown, status_of, FormError, Page};
use crate::PortalError;

/// What the form sends (all optional: a missing field is the operation's clear error).
#[derive(Default, Deserialize)]
pub(super) struct RegistrationForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    iin: String,
    #[serde(default)]
    bin: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: Zeroizing<String>,
    #[serde(default)]
    password_repeat: Zeroizing<String>,
    #[serde(default)]
    agreement_accepted: Option<String>,
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    cms: String,
}

/// What the form shows again after a refusal (never the passwords).
#[derive(Default)]
pub(super) struct Shown {
    kind: String,
    iin: String,
    bin: String,
    email: String,
    agreement: bool,
}

#[derive(Template)]
#[template(path = "account/register.html")]
struct Register {
    page: Page,
    t: &'static Account,
    form: Shown,
    error: FormError,
}

pub(super) async fn page(State(state): State<Arc<AppState>>, Extension(ctx): Extension<PageContext>) -> Response {
    let page = Register {
        page: Page::new(&state, &ctx, None),
        t: texts(ctx.lang),
        form: Shown::default(),
        error: FormError::none(),
    };
    render(StatusCode::OK, &page)
}

/// The field a refusal belongs to.
fn field_of(error: &PortalError) -> FormError {
    match error.kind() {
        "agreement-not-accepted" => FormError::at("agreement_accepted", error),
        "invalid-email" => FormError::at("email", error),
        k if k.starts_with("password-") => FormError::at("password", error),
        _ => FormError::general(error),
    }
}

pub(super) async fn submit(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<PageContext>,
    Form(form): Form<RegistrationForm>,
) -> Response {
    let t = texts(ctx.lang);
    let kind = AccountKind::from_name(form.kind.trim()).unwrap_or(AccountKind::Individual);
    let shown_form = Shown {
        kind: kind.name().to_owned(),
        iin: form.iin.trim().to_owned(),
        bin: form.bin.trim().to_owned(),
        email: form.email.trim().to_owned(),
        agreement: form.agreement_accepted.is_some(),
    };
    let request = RegistrationRequest {
        kind,
        iin: form.iin,
        bin: Some(form.bin).filter(|b| kind == AccountKind::LegalEntity && !b.trim().is_empty()),
        email: form.email,
        password: form.password,
        password_repeat: form.password_repeat,
        agreement_accepted: form.agreement_accepted.as_deref() == Some("true"),
        challenge: form.challenge,
        cms: form.cms,
    };
    let result = run(&state, true, move |p| p.register(&request)).await;
    match result {
        Ok(message) => {
            render(StatusCode::OK, &Done::new(&state, &ctx, t.register_title, message, "/login", t.to_login))
        }
        Err(ApiError(e)) => {
            state.portal.metrics.registration(e.kind());
            let e = shown(e);
            let page = Register { page: Page::new(&state, &ctx, None), t, form: shown_form, error: field_of(&e) };
            render(status_of(&e), &page)
        }
    }
}

#[derive(Deserialize)]
struct CertificateJson {
    pem: String,
}

/// The chosen certificate as the registration page shows it before signing: IIN, BIN, full
/// name, email, validity. Only read, never trusted: the portal verifies the signature itself.
pub(super) async fn certificate(body: Bytes) -> Response {
    let refused =
        |message: &str| ApiError(PortalError::invalid("malformed-certificate", message.to_owned())).into_response();
    let Ok(req) = serde_json::from_slice::<CertificateJson>(&body) else {
        return refused("the body is not {\"pem\": …}");
    };
    let cert = match Certificate::from_pem(req.pem.trim().as_bytes()) {
        Ok(c) => c,
        Err(_) => match base64::Engine::decode(&base64::engine::general_purpose::STANDARD, req.pem.trim()) {
            Ok(der) => match Certificate::from_der(&der) {
                Ok(c) => c,
                Err(_) => return refused("not a certificate"),
            },
            Err(_) => return refused("not a certificate"),
        },
    };
    let id = ca_core::identity::CertificateIdentity::from_certificate(&cert);
    let validity = &cert.tbs_certificate.validity;
    let date = |t: &x509_cert::time::Time| {
        time::OffsetDateTime::from(t.to_system_time())
            .format(time::macros::format_description!("[day].[month].[year]"))
            .unwrap_or_default()
    };
    let name = match (&id.surname, &id.first_name) {
        (Some(s), Some(f)) => [Some(s.as_str()), Some(f.as_str()), id.patronymic.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        _ => id.common_name.clone().unwrap_or_default(),
    };
    Json(serde_json::json!({
        "iin": id.iin.map(|i| i.to_string()),
        "bin": id.bin.map(|b| b.to_string()),
        "name": name,
        "email": id.email,
        "not_before": date(&validity.not_before),
        "not_after": date(&validity.not_after),
    }))
    .into_response()
}
