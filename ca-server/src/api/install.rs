//! `GET /install/{application}?t=<token>`: the install link of the issuance notice. It serves
//! the application's issued certificates with the CA chain, once:
//!
//! - `format=pem` (default): every certificate, AUTH, SIGN, then the chain up to the root;
//! - `format=p7c`: the same set as a PKCS#7 certs-only bundle (DER);
//! - `format=der&cert=auth|sign`: one certificate, DER.
//!
//! The token is random (256 bits) and only its SHA-256 is stored; it expires
//! (`[server] install_link_hours`), and the first successful download spends it: a second use
//! answers 410. A wrong token, a token of another application and an unknown application all
//! answer the same 404, so the link tells nothing about other applications. Every attempt is
//! audited (`install.download` or `install.refused`), never with the token.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ca_core::identity::KeyType;
use ca_core::ra::application::ApplicationNumber;
use ca_core::ra::install::token_sha256;
use ca_core::ra::store::{TokenPurpose, TokenUse};
use ca_core::ra::ApplicationState;
use ca_core::store::{AuditEvent, Store};

use super::ApiError;
use crate::Services;

#[derive(serde::Deserialize)]
pub(crate) struct InstallQuery {
    t: Option<String>,
    format: Option<String>,
    cert: Option<String>,
}

/// The one answer for a link that is not one: no token, a wrong one, another application's.
fn unknown_link() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such install link")
}

enum Format {
    Pem,
    P7c,
    Der(KeyType),
}

fn format_of(q: &InstallQuery) -> Result<Format, ApiError> {
    match (q.format.as_deref().unwrap_or("pem"), q.cert.as_deref()) {
        ("pem", None) => Ok(Format::Pem),
        ("p7c", None) => Ok(Format::P7c),
        ("der", Some("auth")) => Ok(Format::Der(KeyType::Auth)),
        ("der", Some("sign")) => Ok(Format::Der(KeyType::Sign)),
        ("der", _) => {
            Err(ApiError::bad_request("bad-request", "format=der serves one certificate: add cert=auth or cert=sign"))
        }
        _ => Err(ApiError::bad_request("bad-request", "format is pem, p7c, or der with cert=auth|sign")),
    }
}

pub(crate) async fn install(
    State(services): State<Arc<Services>>,
    UrlPath(number): UrlPath<String>,
    Query(query): Query<InstallQuery>,
) -> Response {
    let result = tokio::task::spawn_blocking(move || download(&services, &number, &query)).await;
    match result {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

fn download(services: &Services, number: &str, query: &InstallQuery) -> Result<Response, ApiError> {
    let ra_store = services
        .ra_store
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no store"))?;
    let format = format_of(query)?;
    let target: String = number.chars().take(40).collect();
    let audit = |action: &str, details: serde_json::Value| {
        let event = AuditEvent::new("applicant", action).target(target.clone()).details(details);
        if let Err(e) = Store::append_audit(ra_store.as_ref(), &event) {
            tracing::error!(error = %e, "cannot journal an install download");
        }
    };
    let refused = |outcome: &'static str, error: ApiError| {
        audit("install.refused", serde_json::json!({ "outcome": outcome }));
        error
    };
    let (Ok(number), Some(token)) = (number.parse::<ApplicationNumber>(), query.t.as_deref()) else {
        return Err(refused("unknown", unknown_link()));
    };
    let now = services.clock.now();
    let hash = token_sha256(token);
    let store_error = |e: ca_core::store::StoreError| ApiError::internal(format!("store: {e}"));
    match ra_store.use_token(&number, TokenPurpose::Install, &hash, now, false).map_err(store_error)? {
        TokenUse::Accepted => {}
        TokenUse::Unknown => return Err(refused("unknown", unknown_link())),
        TokenUse::Expired => {
            let e = ApiError::new(StatusCode::GONE, "expired", "this install link has expired");
            return Err(refused("expired", e));
        }
        TokenUse::Used => {
            let e = ApiError::new(StatusCode::GONE, "used", "this install link was used already");
            return Err(refused("used", e));
        }
    }
    let application = ra_store.application(&number).map_err(store_error)?.ok_or_else(unknown_link)?;
    if application.state != ApplicationState::Issued {
        return Err(refused("not-issued", ApiError::new(StatusCode::CONFLICT, "not-issued", "nothing is issued yet")));
    }
    let mut own = Vec::new();
    for serial in &application.serials {
        let record = Store::certificate(ra_store.as_ref(), serial).map_err(store_error)?;
        let der = record
            .and_then(|r| r.der)
            .ok_or_else(|| ApiError::internal(format!("certificate {serial} of {number} has no DER in the store")))?;
        own.push(der);
    }
    let chain = services.chain_of(own.first().map(Vec::as_slice).unwrap_or_default());
    let (content_type, body, file) = match format {
        Format::Pem => {
            let mut text = String::new();
            for der in own.iter().chain(chain.iter()) {
                let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                text.push_str(&pem);
            }
            ("application/x-pem-file", text.into_bytes(), format!("{number}.pem"))
        }
        Format::P7c => {
            let all: Vec<Vec<u8>> = own.iter().chain(chain.iter()).cloned().collect();
            let bundle = ca_core::cms::certs_only(&all).map_err(|e| ApiError::internal(e.to_string()))?;
            ("application/pkcs7-mime", bundle, format!("{number}.p7c"))
        }
        Format::Der(key_type) => {
            let der = own
                .iter()
                .find(|der| certificate_key_type(der) == Some(key_type))
                .cloned()
                .ok_or_else(|| ApiError::internal(format!("{number} has no {} certificate", key_type.name())))?;
            ("application/pkix-cert", der, format!("{number}-{}.cer", key_type.name().to_lowercase()))
        }
    };
    // Spent only now that the answer is ready; a download racing this one finds it spent.
    match ra_store.use_token(&number, TokenPurpose::Install, &hash, now, true).map_err(store_error)? {
        TokenUse::Accepted => {}
        _ => {
            let e = ApiError::new(StatusCode::GONE, "used", "this install link was used already");
            return Err(refused("used", e));
        }
    }
    audit(
        "install.download",
        serde_json::json!({
            "format": query.format.as_deref().unwrap_or("pem"),
            "serials": application.serials.iter().map(|s| s.to_hex()).collect::<Vec<_>>(),
        }),
    );
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

fn certificate_key_type(der: &[u8]) -> Option<KeyType> {
    let cert = <x509_cert::Certificate as der::Decode>::from_der(der).ok()?;
    ca_core::identity::CertificateIdentity::from_certificate(&cert).key_type
}
