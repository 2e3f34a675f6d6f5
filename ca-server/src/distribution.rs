//! CRL and CA certificate distribution: `/crl/<file>` from the publication directory,
//! `/ca/<file>` (AIA caIssuers) from the CA directory's certificates.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::Services;

/// Only plain file names: no paths, no hidden files.
fn safe_name(name: &str, extensions: &[&str]) -> bool {
    !name.starts_with('.')
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && extensions.iter().any(|e| name.ends_with(e))
}

async fn serve_file(dir: &Path, name: &str, content_type: &'static str, max_age: Duration) -> Response {
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
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

pub(crate) async fn crl_file(State(services): State<Arc<Services>>, UrlPath(file): UrlPath<String>) -> Response {
    if !safe_name(&file, &[".crl", ".pem"]) {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let content_type = if file.ends_with(".pem") { "application/x-pem-file" } else { "application/pkix-crl" };
    // CRLs change at least hourly (delta); caches must come back soon.
    serve_file(&services.crl_dir, &file, content_type, Duration::from_secs(300)).await
}

pub(crate) async fn ca_file(State(services): State<Arc<Services>>, UrlPath(file): UrlPath<String>) -> Response {
    if !safe_name(&file, &[".cer", ".pem"]) || file.starts_with("ocsp") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let content_type = if file.ends_with(".pem") { "application/x-pem-file" } else { "application/pkix-cert" };
    serve_file(&services.certs_dir, &file, content_type, Duration::from_secs(86_400)).await
}
