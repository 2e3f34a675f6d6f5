//! The portal's HTTP API: handlers only translate between JSON and the domain operations of
//! [`Portal`]. Errors are JSON `{"error": kind, "message": …}` like `ca-server`'s; bodies are
//! limited to [`MAX_BODY`], concurrent requests to [`MAX_CONCURRENT_REQUESTS`], each request to
//! [`REQUEST_TIMEOUT`], and concurrent Argon2id computations (19 MiB each at OWASP's minimum)
//! to a few per core so a burst of logins cannot exhaust memory.

mod documents;
pub mod metrics;
mod openapi;
mod openapi_documents;
mod phone;
pub(crate) mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use crate::{Portal, PortalError};

/// Largest request body.
pub const MAX_BODY: usize = 256 * 1024;
/// Requests served at once; more wait.
pub const MAX_CONCURRENT_REQUESTS: usize = 512;
/// Longest a request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the SMS outbox is looked at (codes live 5 minutes: they must go out at once).
pub const SMS_INTERVAL: Duration = Duration::from_secs(2);

/// What the handlers share.
pub struct AppState {
    pub portal: Arc<Portal>,
    /// Permits for password hashing and verification.
    pub argon2_permits: tokio::sync::Semaphore,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`[server] trusted_proxies`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl AppState {
    /// Clients are the TCP peers (no trusted proxy).
    pub fn new(portal: Arc<Portal>) -> Arc<Self> {
        Self::behind(portal, Vec::new())
    }

    /// Behind `trusted_proxies`: the journal's and sessions' client address is the one they
    /// forward (see [`http_common::client_address`]); anyone else's `X-Forwarded-For` is ignored.
    pub fn behind(portal: Arc<Portal>, trusted_proxies: Vec<std::net::IpAddr>) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Arc::new(Self { portal, argon2_permits: tokio::sync::Semaphore::new((2 * cores).max(2)), trusted_proxies })
    }
}

/// A JSON error answer.
pub(crate) struct ApiError(pub PortalError);

pub(crate) use routes::{client, run};

impl From<PortalError> for ApiError {
    fn from(e: PortalError) -> Self {
        Self(e)
    }
}

/// The HTTP status of an error (the API's and the pages').
pub(crate) fn status_of(error: &PortalError) -> StatusCode {
    match error {
        PortalError::Invalid { .. } => StatusCode::BAD_REQUEST,
        PortalError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        PortalError::Refused { .. } => StatusCode::FORBIDDEN,
        PortalError::Duplicate(_) => StatusCode::CONFLICT,
        PortalError::Locked { .. } | PortalError::Limited { .. } | PortalError::TooSoon { .. } => {
            StatusCode::TOO_MANY_REQUESTS
        }
        PortalError::NotFound { .. } => StatusCode::NOT_FOUND,
        PortalError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        PortalError::Store(_) | PortalError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(&e);
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        let mut body = serde_json::json!({ "error": e.kind(), "message": e.to_string() });
        let mut retry_after = None;
        if let PortalError::Locked { until, retry_after: seconds, .. } = &e {
            body["locked_until"] = serde_json::Value::String(ca_core::clock::rfc3339(*until));
            retry_after = Some(*seconds);
        }
        if let PortalError::Limited { retry_after: seconds, .. } = &e {
            retry_after = Some(*seconds);
        }
        if let PortalError::TooSoon { until, retry_after: seconds, .. } = &e {
            body["retry_at"] = serde_json::Value::String(ca_core::clock::rfc3339(*until));
            retry_after = Some(*seconds);
        }
        if status.is_server_error() && !matches!(e, PortalError::Unavailable(_)) {
            // Internal detail stays in the log.
            body["message"] = "internal error".into();
        }
        let mut response = (status, Json(body)).into_response();
        if let Some(s) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, s.into());
        }
        response
    }
}

async fn deadline(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError(PortalError::Unavailable(format!("the request took longer than {} s", REQUEST_TIMEOUT.as_secs())))
                .into_response()
        }
    }
}

async fn no_route(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "not-found", "message": format!("nothing is served at {}", uri.path()) })),
    )
        .into_response()
}

async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "other".into());
    let response = next.run(request).await;
    state.portal.metrics.request(&route, response.status().as_u16());
    response
}

/// Every route, with the limits.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(routes::metrics))
        .route("/api/v1/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/api/v1/challenge", post(routes::challenge))
        .route("/api/v1/registration/statement", post(routes::registration_statement))
        .route("/api/v1/registration", post(routes::register))
        .route("/api/v1/login/password", post(routes::login_password))
        .route("/api/v1/login/eds", post(routes::login_eds))
        .route("/api/v1/login/otp/request", post(routes::request_otp))
        .route("/api/v1/login/otp", post(routes::login_otp))
        .route("/api/v1/logout", post(routes::logout))
        .route("/api/v1/sessions", get(routes::sessions))
        .route("/api/v1/sessions/{id}", delete(routes::end_session))
        .route("/api/v1/password/change", post(routes::change_password))
        .route("/api/v1/recovery/eds", post(routes::recover_eds))
        .route("/api/v1/recovery/email", post(routes::recover_email))
        .route("/api/v1/counter/registrations", post(routes::counter_register))
        .merge(documents::routes())
        .merge(phone::routes())
        .merge(crate::web::routes(&state))
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(http_common::json_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(axum::middleware::from_fn(deadline))
        .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS))
        .with_state(state)
}

/// Serve until Ctrl-C or SIGTERM; the mail outbox is retried every minute and the SMS outbox
/// every [`SMS_INTERVAL`] meanwhile.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    let mailer = state.portal.mailer.clone().map(|mailer| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let m = mailer.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || m.deliver_pending()).await {
                    tracing::warn!(error = %e, "outbox delivery failed");
                }
            }
        })
    });
    let sms =
        state.portal.phone.dispatcher.clone().filter(|_| state.portal.phone.config.send_from_serve).map(|dispatcher| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SMS_INTERVAL);
                loop {
                    tick.tick().await;
                    let d = dispatcher.clone();
                    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || d.deliver_pending()).await {
                        tracing::warn!(error = %e, "SMS delivery failed");
                    }
                }
            })
        });
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(http_common::shutdown_signal()).await;
    for task in [mailer, sms].into_iter().flatten() {
        task.abort();
    }
    served
}
