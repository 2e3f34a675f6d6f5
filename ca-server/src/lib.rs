//! HTTP services of the CA: the OCSP responder (RFC 6960, GET and POST), CRL distribution
//! (`/crl/<file>`) and CA certificate distribution for AIA caIssuers (`/ca/<file>`).
//! The verification API for portals comes with its own issue.
//!
//! Status comes from the store at request time; CPU-heavy signing runs off the async executor.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use ca_core::ca_dir::{CaConfig, CaDir};
use ca_core::clock::SystemClock;
use ca_core::ocsp::{Outcome, Responder};
use ca_core::store::SqliteStore;
use hsm::SoftwareKey;

/// Largest OCSP request body read; anything longer is answered with malformedRequest.
pub const MAX_OCSP_REQUEST: usize = 16 * 1024;

/// Everything the routes serve.
pub struct Services {
    pub ocsp: Option<Arc<Responder>>,
    pub crl_dir: PathBuf,
    pub certs_dir: PathBuf,
}

/// The server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ca_core::ca_dir::ConfigError),
    #[error("store: {0}")]
    Store(#[from] ca_core::store::StoreError),
    #[error("OCSP responder key: {0}")]
    Key(#[from] hsm::KeyError),
    #[error("OCSP responder: {0}")]
    Responder(#[from] ca_core::ocsp::ResponderError),
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
}

fn read_pem_certificate(path: &Path) -> Result<Vec<u8>, StartError> {
    let err = |message: String| StartError::Read { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let (label, der) = der::pem::decode_vec(text.as_bytes()).map_err(|e| err(format!("not PEM: {e}")))?;
    if label != "CERTIFICATE" {
        return Err(err(format!("PEM label {label:?}, expected CERTIFICATE")));
    }
    Ok(der)
}

impl Services {
    /// Open a CA directory. The OCSP responder runs when `ca ocsp init` has made its key and
    /// certificate; `passphrase` opens that key.
    pub fn load(dir: &CaDir, passphrase: Option<&[u8]>) -> Result<Self, StartError> {
        let config: CaConfig = dir.load_config()?;
        let ocsp = match (passphrase, dir.ocsp_key().exists()) {
            (Some(passphrase), true) => {
                let store = Arc::new(SqliteStore::open(&dir.store())?);
                let key_path = dir.ocsp_key();
                let pem = zeroize::Zeroizing::new(
                    std::fs::read_to_string(&key_path)
                        .map_err(|e| StartError::Read { path: key_path.clone(), message: e.to_string() })?,
                );
                let key = SoftwareKey::from_encrypted_pem(&pem, passphrase)?;
                let issuing = read_pem_certificate(&dir.certificate_pem(&config.issuing.name))?;
                let responder_cert = read_pem_certificate(&dir.ocsp_certificate())?;
                let responder = Responder::new(
                    config.issuing.name.clone(),
                    &issuing,
                    &responder_cert,
                    Arc::new(key),
                    store,
                    Arc::new(SystemClock),
                )?;
                Some(Arc::new(responder))
            }
            _ => None,
        };
        Ok(Self { ocsp, crl_dir: dir.publish_crl(), certs_dir: dir.certs() })
    }
}

/// All routes.
pub fn router(services: Arc<Services>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .route("/crl/{file}", get(crl_file))
        .route("/ca/{file}", get(ca_file))
        .with_state(services)
}

/// Serve until Ctrl-C or SIGTERM, then finish in-flight requests.
pub async fn serve(listener: tokio::net::TcpListener, services: Arc<Services>) -> std::io::Result<()> {
    axum::serve(listener, router(services)).with_graceful_shutdown(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

fn ocsp_response(der: Vec<u8>, cache_seconds: Option<u64>) -> Response {
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/ocsp-response")], der).into_response();
    if let Some(secs) = cache_seconds {
        if let Ok(v) = HeaderValue::from_str(&format!("max-age={secs}, public, no-transform, must-revalidate")) {
            response.headers_mut().insert(header::CACHE_CONTROL, v);
        }
    }
    response
}

async fn answer(services: &Services, request: Vec<u8>, via: &'static str) -> Response {
    let Some(responder) = services.ocsp.clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "OCSP responder not configured (ca ocsp init)").into_response();
    };
    let cache = u64::try_from(responder.validity.whole_seconds()).ok();
    // Signing is CPU-bound (and may block on a token): keep it off the async executor.
    let result = tokio::task::spawn_blocking(move || responder.respond(&request)).await;
    match result {
        Ok((der, outcome)) => {
            match outcome {
                Outcome::Answered { good, revoked, never_issued } => {
                    tracing::info!(via, good, revoked, never_issued, "OCSP answered")
                }
                other => tracing::warn!(via, outcome = ?other, "OCSP request refused"),
            }
            let cacheable = matches!(outcome, Outcome::Answered { .. }) && via == "GET";
            ocsp_response(der, if cacheable { cache } else { None })
        }
        Err(e) => {
            tracing::error!(error = %e, "OCSP worker failed");
            ocsp_response(ca_core::ocsp::internal_error_response(), None)
        }
    }
}

async fn ocsp_post(State(services): State<Arc<Services>>, body: Body) -> Response {
    match axum::body::to_bytes(body, MAX_OCSP_REQUEST).await {
        Ok(bytes) => answer(&services, bytes.to_vec(), "POST").await,
        Err(_) => {
            tracing::warn!(limit = MAX_OCSP_REQUEST, "OCSP request body too large or unreadable");
            ocsp_response(ca_core::ocsp::malformed_response(), None)
        }
    }
}

async fn ocsp_get(State(services): State<Arc<Services>>, UrlPath(encoded): UrlPath<String>) -> Response {
    // RFC 6960 appendix A.1: base64 of the DER request, URL-encoded (the router has decoded
    // percent escapes already). Accept the URL-safe alphabet too.
    let cleaned: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&cleaned))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&cleaned));
    match decoded {
        Ok(bytes) if bytes.len() <= MAX_OCSP_REQUEST => answer(&services, bytes, "GET").await,
        _ => {
            tracing::warn!("OCSP GET request is not base64 or too large");
            ocsp_response(ca_core::ocsp::malformed_response(), None)
        }
    }
}

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

async fn crl_file(State(services): State<Arc<Services>>, UrlPath(file): UrlPath<String>) -> Response {
    if !safe_name(&file, &[".crl", ".pem"]) {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let content_type = if file.ends_with(".pem") { "application/x-pem-file" } else { "application/pkix-crl" };
    // CRLs change at least hourly (delta); caches must come back soon.
    serve_file(&services.crl_dir, &file, content_type, Duration::from_secs(300)).await
}

async fn ca_file(State(services): State<Arc<Services>>, UrlPath(file): UrlPath<String>) -> Response {
    if !safe_name(&file, &[".cer", ".pem"]) || file.starts_with("ocsp") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let content_type = if file.ends_with(".pem") { "application/x-pem-file" } else { "application/pkix-cert" };
    serve_file(&services.certs_dir, &file, content_type, Duration::from_secs(86_400)).await
}
