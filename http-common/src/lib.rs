//! What the workspace's HTTP servers share, so that `ca-server` and `portal-server` answer
//! alike: framework refusals (wrong method, body too large, unknown path, bad content type)
//! as the JSON error body `{"error": kind, "message": …}` every handler uses; the client's
//! address behind trusted reverse proxies; graceful shutdown on Ctrl-C or SIGTERM.
//!
//! [`pages`]: what the server-rendered pages share (security headers, CSRF, cookies, language,
//! rendering).
//!
//! It knows no domain: neither the CA nor the portal, and neither depends on the other through
//! it.

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr};

use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub mod pages;

/// The JSON error answer: `{"error": kind, "message": message}` with `status`.
pub fn error_response(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": kind, "message": message.into() }))).into_response()
}

/// Middleware: a 4xx/5xx answer that is not JSON (the framework's own refusals) becomes the
/// JSON error body, its text as the message; `Allow` is kept. HTML answers (the pages' own
/// error pages) are left as they are.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let kind = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body-too-large",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::NOT_FOUND => "not-found",
        s if s.is_server_error() => "internal",
        _ => "bad-request",
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    let message = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => match (status, &allow) {
            (StatusCode::METHOD_NOT_ALLOWED, Some(a)) => {
                format!("method not allowed here; allowed: {}", a.to_str().unwrap_or_default())
            }
            _ => status.canonical_reason().unwrap_or("error").to_owned(),
        },
    };
    let mut response = error_response(status, kind, message);
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// The address a request comes from: the TCP peer, unless the peer is one of
/// `trusted_proxies`; then the rightmost `X-Forwarded-For` address that is not itself a trusted
/// proxy (each proxy appends the address it got the request from, so everything left of that
/// is whatever the client claimed). A header from any other peer is ignored, as is garbage in
/// it; no peer at all is 0.0.0.0.
pub fn client_address(peer: Option<IpAddr>, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded.into_iter().rev().find(|a| !trusted_proxies.contains(a)).unwrap_or(peer)
}

/// Resolves on Ctrl-C or SIGTERM (for `axum::serve(…).with_graceful_shutdown`).
pub async fn shutdown_signal() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "192.0.2.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7, 192.0.2.1".parse().unwrap());
        let trusted = [proxy];
        // From the proxy: the rightmost address that is not a trusted proxy.
        assert_eq!(client_address(Some(proxy), &headers, &trusted), "198.51.100.7".parse::<IpAddr>().unwrap());
        // From anyone else: the header is the client's own claim, ignored.
        let other: IpAddr = "198.51.100.50".parse().unwrap();
        assert_eq!(client_address(Some(other), &headers, &trusted), other);
        // Garbage from the proxy: the proxy itself.
        let mut garbage = HeaderMap::new();
        garbage.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(client_address(Some(proxy), &garbage, &trusted), proxy);
        assert_eq!(client_address(None, &headers, &trusted), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
}
