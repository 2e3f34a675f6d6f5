//! The handlers: read the request, run the domain operation off the async threads, answer.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{ApiError, AppState};
use crate::account::recovery::{EdsRecoveryRequest, EmailRecoveryRequest};
use crate::account::registration::{statement, RegistrationRequest};
use crate::account::AccountKind;
use crate::login::session::Authenticated;
use crate::{Client, Portal, PortalError};

pub(super) type Answer = Result<Response, ApiError>;

pub(super) fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError(PortalError::invalid("malformed-json", format!("the body is not the expected JSON: {e}")))
    })
}

pub(crate) fn client(state: &AppState, headers: &HeaderMap, extensions: &axum::http::Extensions) -> Client {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    Client {
        address: peer.map(|p| http_common::client_address(Some(p), headers, &state.trusted_proxies).to_string()),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
    }
}

pub(super) fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") && !value[7..].trim().is_empty() => {
            Ok(value[7..].trim().to_owned())
        }
        _ => Err(ApiError(PortalError::unauthenticated(
            "session-missing",
            "a session token (Authorization: Bearer) is required",
        ))),
    }
}

/// Run `f` on the blocking pool; with `argon2`, under one of the hashing permits.
pub(crate) async fn run<T: Send + 'static>(
    state: &Arc<AppState>,
    argon2: bool,
    f: impl FnOnce(&Portal) -> Result<T, PortalError> + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = if argon2 {
        Some(state.argon2_permits.acquire().await.map_err(|e| ApiError(PortalError::internal(e)))?)
    } else {
        None
    };
    let portal = state.portal.clone();
    tokio::task::spawn_blocking(move || f(&portal))
        .await
        .map_err(|e| ApiError(PortalError::internal(e)))?
        .map_err(ApiError)
}

pub(super) fn ok(value: impl serde::Serialize) -> Answer {
    Ok(Json(value).into_response())
}

pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.portal.metrics.render()).into_response()
}

/// Issuing a challenge touches no store (random bytes and an HMAC): answered on the async
/// thread, without a hop to the blocking pool.
pub(super) async fn challenge(State(state): State<Arc<AppState>>) -> Answer {
    ok(state.portal.issue_challenge()?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementJson {
    kind: AccountKind,
    iin: String,
    #[serde(default)]
    bin: Option<String>,
    email: String,
    challenge: String,
}

/// The bytes to sign for a registration (base64), as the portal will rebuild them.
pub(super) async fn registration_statement(body: Bytes) -> Answer {
    let s: StatementJson = json(&body)?;
    let bytes = statement(s.kind, s.iin.trim(), s.bin.as_deref().map(str::trim), s.email.trim(), s.challenge.trim());
    ok(serde_json::json!({ "statement": base64::engine::general_purpose::STANDARD.encode(bytes) }))
}

pub(super) async fn register(State(state): State<Arc<AppState>>, body: Bytes) -> Answer {
    let req: RegistrationRequest = json(&body)?;
    let result = run(&state, true, move |p| p.register(&req)).await;
    if let Err(ApiError(e)) = &result {
        state.portal.metrics.registration(e.kind());
    }
    ok(serde_json::json!({ "message": result? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordLogin {
    login: String,
    password: Zeroizing<String>,
}

pub(super) async fn login_password(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: PasswordLogin = json(&body)?;
    let client = client(&state, &headers, &extensions);
    ok(run(&state, true, move |p| p.login_password(&req.login, &req.password, &client)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EdsLogin {
    cms: String,
    /// The challenge (base64) of a detached signature.
    #[serde(default)]
    data: Option<String>,
}

pub(super) async fn login_eds(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: EdsLogin = json(&body)?;
    let data = req
        .data
        .map(|d| base64::engine::general_purpose::STANDARD.decode(d.trim()))
        .transpose()
        .map_err(|_| ApiError(PortalError::invalid("malformed-data", "data is not base64")))?;
    let client = client(&state, &headers, &extensions);
    ok(run(&state, false, move |p| p.login_eds(req.cms.as_bytes(), data.as_deref(), &client)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OtpRequest {
    login: String,
}

pub(super) async fn request_otp(State(state): State<Arc<AppState>>, body: Bytes) -> Answer {
    let req: OtpRequest = json(&body)?;
    let message = run(&state, false, move |p| p.request_login_otp(&req.login)).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "message": message }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OtpLogin {
    login: String,
    code: Zeroizing<String>,
}

pub(super) async fn login_otp(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: OtpLogin = json(&body)?;
    let client = client(&state, &headers, &extensions);
    ok(run(&state, false, move |p| p.login_otp(&req.login, &req.code, &client)).await?)
}

pub(super) async fn authenticated(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    allow_must_change: bool,
) -> Result<Authenticated, ApiError> {
    let token = bearer(headers)?;
    run(state, false, move |p| p.authenticate(&token, allow_must_change)).await
}

pub(super) async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Answer {
    let auth = authenticated(&state, &headers, true).await?;
    run(&state, false, move |p| p.logout(&auth)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn sessions(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Answer {
    let auth = authenticated(&state, &headers, false).await?;
    let current = auth.session.id;
    let sessions = run(&state, false, move |p| p.sessions(&auth)).await?;
    ok(serde_json::json!({ "current": current, "sessions": sessions }))
}

pub(super) async fn end_session(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<i64>) -> Answer {
    let auth = authenticated(&state, &headers, false).await?;
    if run(&state, false, move |p| p.end_session(&auth, id)).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError(PortalError::invalid("no-such-session", "no open session of this account has that id")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChangeJson {
    current_password: Zeroizing<String>,
    new_password: Zeroizing<String>,
    new_password_repeat: Zeroizing<String>,
}

pub(super) async fn change_password(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Answer {
    let req: PasswordChangeJson = json(&body)?;
    let auth = authenticated(&state, &headers, true).await?;
    run(&state, true, move |p| {
        p.change_password(&auth, &req.current_password, &req.new_password, &req.new_password_repeat)
    })
    .await?;
    ok(serde_json::json!({ "message": "Пароль изменен" }))
}

pub(super) async fn recover_eds(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: EdsRecoveryRequest = json(&body)?;
    let client = client(&state, &headers, &extensions);
    run(&state, true, move |p| p.recover_by_eds(&req, &client)).await?;
    ok(serde_json::json!({ "message": "Пароль изменен" }))
}

pub(super) async fn recover_email(State(state): State<Arc<AppState>>, body: Bytes) -> Answer {
    let req: EmailRecoveryRequest = json(&body)?;
    let message = run(&state, true, move |p| p.recover_by_email(&req)).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "message": message }))).into_response())
}

/// The body of a signed system request: `{"cms": …}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignedJson {
    /// The signed request (base64 or PEM of the CMS).
    pub(super) cms: String,
}

/// The portal's signed answer to a system request: `{"cms": base64}`.
pub(super) fn signed_answer(cms: Vec<u8>) -> Answer {
    ok(serde_json::json!({ "cms": base64::engine::general_purpose::STANDARD.encode(cms) }))
}

pub(super) async fn counter_register(State(state): State<Arc<AppState>>, body: Bytes) -> Answer {
    let req: SignedJson = json(&body)?;
    signed_answer(run(&state, true, move |p| p.counter_register(req.cms.as_bytes())).await?)
}
