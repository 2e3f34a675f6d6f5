//! CRL and CA certificate distribution: `/crl/<file>` from the publication directory,
//! `/ca/<file>` (AIA caIssuers) from the CA directory's certificates, and the certification
//! practice statement at `/cps` (the CPS pointer in every certificate's policies). A file that
//! is not there is a JSON 404 like every other error.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::Services;

/// What `/cps` serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpsPage {
    pub content_type: &'static str,
    pub body: String,
}

impl CpsPage {
    /// The page of a configured file: HTML for `.html`/`.htm`, plain text otherwise.
    pub fn from_file(path: &Path, body: String) -> Self {
        let html = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
        Self { content_type: if html { "text/html; charset=utf-8" } else { "text/plain; charset=utf-8" }, body }
    }

    /// The built-in notice when no CPS file is configured: which CA this is, which policies its
    /// certificates carry, and where the full text comes from.
    pub fn notice(ca: &str) -> Self {
        use ca_core::profile::{
            POLICY_CA, POLICY_INDIVIDUAL_AUTH, POLICY_INDIVIDUAL_SIGN, POLICY_LEGAL_AUTH, POLICY_LEGAL_SIGN,
        };
        let body = format!(
            "Certification practice statement: {ca}\n\n\
             This address is the CPS pointer (policy qualifier) in every certificate {ca} issues.\n\
             Certificate policies:\n\
             {POLICY_INDIVIDUAL_AUTH}  individual, authentication (AUTH)\n\
             {POLICY_INDIVIDUAL_SIGN}  individual, signature (SIGN)\n\
             {POLICY_LEGAL_AUTH}  legal entity, authentication (AUTH)\n\
             {POLICY_LEGAL_SIGN}  legal entity, signature (SIGN)\n\
             {POLICY_CA}  certification authority and its services\n\n\
             The full text of the certificate policy and this CPS is published by the operator of {ca}; \
             this server has not been given a copy yet (the operator sets [server] cps_file in ca.toml).\n"
        );
        Self { content_type: "text/plain; charset=utf-8", body }
    }
}

fn not_found(what: &str, name: &str) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("no {what} named {name:?} is published here"))
        .into_response()
}

/// Only plain file names: no paths, no hidden files.
fn safe_name(name: &str, extensions: &[&str]) -> bool {
    !name.starts_with('.')
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && extensions.iter().any(|e| name.ends_with(e))
}

async fn serve_file(dir: &Path, name: &str, what: &str, content_type: &'static str, max_age: Duration) -> Response {
    let path = dir.join(name);
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, content_type.to_owned()),
                (header::CACHE_CONTROL, format!("public, max-age={}", max_age.as_secs())),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => not_found(what, name),
    }
}

pub(crate) async fn crl_file(State(services): State<Arc<Services>>, UrlPath(file): UrlPath<String>) -> Response {
    if !safe_name(&file, &[".crl", ".pem"]) {
        return not_found("CRL", &file);
    }
    let content_type = if file.ends_with(".pem") { "application/x-pem-file" } else { "application/pkix-crl" };
    // CRLs change at least hourly (delta); caches must come back soon.
    serve_file(&services.crl_dir, &file, "CRL", content_type, Duration::from_secs(300)).await
}

pub(crate) async fn ca_file(State(services): State<Arc<Services>>, UrlPath(file): UrlPath<String>) -> Response {
    if !safe_name(&file, &[".cer", ".pem"]) || file.starts_with("ocsp") {
        return not_found("CA certificate", &file);
    }
    let content_type = if file.ends_with(".pem") { "application/x-pem-file" } else { "application/pkix-cert" };
    serve_file(&services.certs_dir, &file, "CA certificate", content_type, Duration::from_secs(86_400)).await
}

/// `GET /cps`: the certification practice statement (configured file or built-in notice).
pub(crate) async fn cps(State(services): State<Arc<Services>>) -> Response {
    let page = &services.cps;
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, page.content_type.to_owned()),
            (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
        ],
        page.body.clone(),
    )
        .into_response()
}
