//! The OCSP responder over HTTP (RFC 6960 appendix A): POST with the DER request as body,
//! GET with it base64- and URL-encoded in the path. Every answer is an OCSPResponse with HTTP 200
//! (`tryLater` when no responder is configured), except a wrong method (405, with an `Allow`
//! header and a JSON problem body).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ca_core::ocsp::Outcome;

use crate::{Services, MAX_OCSP_REQUEST};

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
    // The current issuing CA's responder, then those of retired generations: the one whose CA
    // the request names answers.
    let retired = services.retired_ocsp.get();
    let mut responders: Vec<_> = services.ocsp.get().into_iter().collect();
    responders.extend(retired.iter().cloned());
    let Some(responder) = ca_core::ocsp::route(&responders, &request).cloned() else {
        // An OCSP client reads OCSPResponse bodies, not HTTP status pages: tell it to try later.
        tracing::warn!(via, "OCSP request while no responder is configured (ca ocsp init): tryLater");
        return ocsp_response(ca_core::ocsp::try_later_response(), None);
    };
    let cache = u64::try_from(responder.validity.whole_seconds()).ok();
    // Signing is CPU-bound (and may block on a token): keep it off the async executor.
    let result = tokio::task::spawn_blocking(move || responder.respond(&request)).await;
    match result {
        Ok((der, outcome)) => {
            services.metrics.count_ocsp(&outcome);
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

pub(crate) async fn ocsp_post(State(services): State<Arc<Services>>, body: Body) -> Response {
    match axum::body::to_bytes(body, MAX_OCSP_REQUEST).await {
        Ok(bytes) => answer(&services, bytes.to_vec(), "POST").await,
        Err(_) => {
            services.metrics.count_ocsp(&Outcome::Malformed);
            tracing::warn!(limit = MAX_OCSP_REQUEST, "OCSP request body too large or unreadable");
            ocsp_response(ca_core::ocsp::malformed_response(), None)
        }
    }
}

pub(crate) async fn ocsp_get_empty(State(services): State<Arc<Services>>) -> Response {
    services.metrics.count_ocsp(&Outcome::Malformed);
    ocsp_response(ca_core::ocsp::malformed_response(), None)
}

pub(crate) async fn ocsp_get(State(services): State<Arc<Services>>, UrlPath(encoded): UrlPath<String>) -> Response {
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
            services.metrics.count_ocsp(&Outcome::Malformed);
            tracing::warn!("OCSP GET request is not base64 or too large");
            ocsp_response(ca_core::ocsp::malformed_response(), None)
        }
    }
}
