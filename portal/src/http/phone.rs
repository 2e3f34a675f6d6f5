//! The phone-binding routes: the cabinet's code request, binding and view; the counter's and
//! partners' signed requests.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;

use super::routes::{authenticated, client, json, ok, run, Answer};
use super::AppState;
use crate::phone::cabinet::BindRequest;
use crate::phone::system::SystemKind;

/// The phone-binding routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/phone", get(cabinet))
        .route("/api/v1/phone/code", post(request_code))
        .route("/api/v1/phone/binding", post(bind))
        .route("/api/v1/counter/phone/code", post(counter_code))
        .route("/api/v1/counter/phone/bindings", post(counter_bind))
        .route("/api/v1/partner/phone/code", post(partner_code))
        .route("/api/v1/partner/phone/bindings", post(partner_bind))
}

async fn cabinet(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Answer {
    let auth = authenticated(&state, &headers, false).await?;
    ok(run(&state, false, move |p| p.phone_cabinet(&auth)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeJson {
    phone: String,
}

async fn request_code(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: CodeJson = json(&body)?;
    let auth = authenticated(&state, &headers, false).await?;
    let client = client(&headers, &extensions);
    let sent = run(&state, false, move |p| p.request_phone_code(&auth, &req.phone, &client)).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)).into_response())
}

async fn bind(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: BindRequest = json(&body)?;
    let auth = authenticated(&state, &headers, false).await?;
    let client = client(&headers, &extensions);
    ok(run(&state, false, move |p| p.bind_phone(&auth, &req, &client)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedJson {
    /// The signed request (base64 or PEM of the CMS).
    cms: String,
}

async fn system_code(
    state: Arc<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
    kind: SystemKind,
) -> Answer {
    let req: SignedJson = json(&body)?;
    let client = client(&headers, &extensions);
    let mut sent = run(&state, false, move |p| p.system_request_phone_code(req.cms.as_bytes(), kind, &client)).await?;
    // A system signs its own binding request; the person's statement is not for it.
    sent.statement = String::new();
    Ok((StatusCode::ACCEPTED, Json(sent)).into_response())
}

async fn counter_code(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    system_code(state, headers, extensions, body, SystemKind::Counter).await
}

async fn partner_code(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    system_code(state, headers, extensions, body, SystemKind::Partner).await
}

async fn counter_bind(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: SignedJson = json(&body)?;
    let client = client(&headers, &extensions);
    // Argon2id: a new account's password is hashed.
    let signed = run(&state, true, move |p| p.counter_bind_phone(req.cms.as_bytes(), &client)).await?;
    ok(serde_json::json!({ "cms": base64::engine::general_purpose::STANDARD.encode(signed) }))
}

async fn partner_bind(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: SignedJson = json(&body)?;
    let client = client(&headers, &extensions);
    let signed = run(&state, false, move |p| p.partner_bind_phone(req.cms.as_bytes(), &client)).await?;
    ok(serde_json::json!({ "cms": base64::engine::general_purpose::STANDARD.encode(signed) }))
}
