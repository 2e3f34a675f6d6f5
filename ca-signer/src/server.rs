//! The local WebSocket service: loopback only, an `Origin` allow-list checked before the
//! upgrade, one greeting frame, then one answer frame per request frame.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::protocol::{greeting, Service};

/// The national client's port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:13579";
/// Largest request frame accepted (a document to sign, base64).
pub const MAX_FRAME: usize = 8 * 1024 * 1024;

/// Refuse any address that is not a loopback address: the signer must not be reachable from
/// another machine.
pub fn check_loopback(addr: &SocketAddr) -> Result<(), String> {
    match addr.ip().is_loopback() {
        true => Ok(()),
        false => Err(format!("{addr} is not a loopback address: ca-signer listens on 127.0.0.1 or ::1 only")),
    }
}

struct Shared {
    service: Arc<Service>,
    origins: Vec<String>,
}

/// The router: the WebSocket at `/` (and at any path, as browser clients differ).
pub fn router(service: Arc<Service>, allowed_origins: Vec<String>) -> Router {
    let shared = Arc::new(Shared { service, origins: allowed_origins });
    Router::new().route("/", get(upgrade)).fallback(get(upgrade)).with_state(shared)
}

/// Serve `router` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if !shared.origins.iter().any(|o| o == &origin) {
        tracing::warn!(origin = %origin, "connection refused: origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let Ok(ws) = ws else {
        return (StatusCode::UPGRADE_REQUIRED, "a WebSocket connection is expected").into_response();
    };
    tracing::info!(origin = %origin, "connection accepted");
    ws.max_message_size(MAX_FRAME).on_upgrade(move |socket| session(socket, origin, shared))
}

async fn session(mut socket: WebSocket, origin: String, shared: Arc<Shared>) {
    if socket.send(Message::Text(greeting().into())).await.is_err() {
        return;
    }
    while let Some(Ok(message)) = socket.recv().await {
        let frame = match message {
            Message::Text(text) => text.to_string(),
            Message::Close(_) => break,
            _ => continue,
        };
        let (service, origin) = (shared.service.clone(), origin.clone());
        // Signing may block on a card or a person: off the async executor.
        let answer = match tokio::task::spawn_blocking(move || service.handle(&origin, &frame)).await {
            Ok(answer) => answer,
            Err(_) => {
                serde_json::json!({ "code": crate::protocol::ERROR_CODE, "message": crate::protocol::SIGNING_FAILED })
                    .to_string()
            }
        };
        if socket.send(Message::Text(answer.into())).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_served() {
        for ok in ["127.0.0.1:13579", "[::1]:13579", "127.0.0.2:1"] {
            assert!(check_loopback(&ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for refused in ["0.0.0.0:13579", "[::]:13579", "192.0.2.7:13579"] {
            assert!(check_loopback(&refused.parse().unwrap()).is_err(), "{refused}");
        }
    }
}
