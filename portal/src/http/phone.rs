//! The phone-binding routes: the cabinet's code request, binding and view; the counter's and
//! partners' signed requests.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::routes::{authenticated, client, json, ok, run, signed_answer, Answer, SignedJson};
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
    let client = client(&state, &headers, &extensions);
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
    let client = client(&state, &headers, &extensions);
    ok(run(&state, false, move |p| p.bind_phone(&auth, &req, &client)).await?)
}

async fn system_code(
    state: Arc<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
    kind: SystemKind,
) -> Answer {
    let req: SignedJson = json(&body)?;
    let client = client(&state, &headers, &extensions);
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
    let client = client(&state, &headers, &extensions);
    // Argon2id: a new account's password is hashed.
    let signed = run(&state, true, move |p| p.counter_bind_phone(req.cms.as_bytes(), &client)).await?;
    signed_answer(signed)
}

async fn partner_bind(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: SignedJson = json(&body)?;
    let client = client(&state, &headers, &extensions);
    let signed = run(&state, false, move |p| p.partner_bind_phone(req.cms.as_bytes(), &client)).await?;
    signed_answer(signed)
}

/// The phone-binding paths of the OpenAPI document.
pub(super) fn openapi_paths() -> serde_json::Map<String, serde_json::Value> {
    use super::openapi::{object, operation};
    use serde_json::json;
    let s = json!({ "type": "string" });
    let time = json!({ "type": "string", "format": "date-time" });
    let bad = ("400", "Malformed input: JSON, a phone number that is not a Kazakhstan mobile number, CMS, session id");
    let unauth = ("401", "No session, a signature that does not verify (SIGN key of the account's IIN), or a wrong code (refused at once; try the right one)");
    let refused = ("403", "Refused: the number is bound to another account, the OTP session is spent (5 wrong codes, expired, used), a registry or consent refusal, an unauthorised system, a replayed request");
    let too_soon = (
        "429",
        "A code was sent too recently: one a minute, five an hour per IIN and per number (Retry-After, retry_at)",
    );
    let signed = object(
        &["cms"],
        json!({ "cms": { "type": "string", "description": "attached CMS (base64 or PEM) over the JSON request, signed with the system's SIGN certificate" } }),
    );
    let code_sent = object(
        &["message", "session_id", "phone", "expires_at", "statement"],
        json!({
        "message": s, "session_id": { "type": "string", "description": "the OTP session (16 bytes hex)" }, "phone": { "type": "string", "description": "E.164" },
        "expires_at": time, "statement": { "type": "string", "description": "base64 of the canonical binding statement to sign (cabinet only)" } }),
    );
    let signed_answer = object(
        &["cms"],
        json!({ "cms": { "type": "string", "description": "base64 DER CMS over {request_id, login, phone, channel, outcome: bound|changed, account: created|existing, password?, at}, signed by the portal" } }),
    );
    let binding = json!({ "type": "object", "properties": { "phone": s, "channel": { "type": "string", "enum": ["portal", "mobile-app", "bank-app", "counter"] }, "bound_at": time, "ended_at": { "type": "string", "format": "date-time", "nullable": true }, "end_reason": { "type": "string", "nullable": true }, "service_seconds": { "type": "integer" } } });
    let mut paths = serde_json::Map::new();
    paths.insert("/api/v1/phone".into(), json!({ "get": operation("The cabinet: the bound phone number and the history of bindings", None,
        ("200", json!({ "type": "object", "properties": { "phone": binding.clone(), "history": { "type": "array", "items": binding } } })), &[unauth], true) }));
    paths.insert("/api/v1/phone/code".into(), json!({ "post": operation("«Получить проверочный код»: send a 6-digit code (valid 5 minutes) to the number for the logged-in person",
        Some(object(&["phone"], json!({ "phone": { "type": "string", "description": "+7 7xx xxx xx xx, 8 7xx…, with spaces, dashes, brackets" } }))),
        ("202", code_sent.clone()), &[bad, unauth, refused, too_soon], true) }));
    paths.insert("/api/v1/phone/binding".into(), json!({ "post": operation("Bind (or change to) the session's number: the code and the statement signed with the person's SIGN key",
        Some(object(&["session_id", "code", "cms"], json!({ "session_id": s, "code": s, "cms": { "type": "string", "description": "CMS over the statement (attached or detached)" } }))),
        ("200", json!({ "type": "object", "properties": { "message": s, "phone": s, "channel": s, "previous": { "type": "string", "nullable": true } } })), &[bad, unauth, refused], true) }));
    paths.insert("/api/v1/counter/phone/code".into(), json!({ "post": operation("Counter: an operator-signed request {request_id, created_at, iin, phone} to send a code to the applicant",
        Some(signed.clone()), ("202", code_sent.clone()), &[bad, unauth, refused, too_soon], false) }));
    paths.insert("/api/v1/counter/phone/bindings".into(), json!({ "post": operation("Counter: the operator-signed form {request_id, created_at, session_id, code, iin, surname, given_name, patronymic?, email, phone, consents}; creates the account (password to change) if there is none",
        Some(signed.clone()), ("200", signed_answer.clone()), &[bad, unauth, refused, ("503", "The portal's EDS is not configured")], false) }));
    paths.insert("/api/v1/partner/phone/code".into(), json!({ "post": operation("Partner system: a signed request {request_id, created_at, iin, phone} to send a code (the person must have an account)",
        Some(signed.clone()), ("202", code_sent), &[bad, unauth, refused, too_soon], false) }));
    paths.insert("/api/v1/partner/phone/bindings".into(), json!({ "post": operation("Partner system: {request_id, created_at, session_id, code, iin, phone, authentication: {method: biometric|bank-kyc, result: match|no-match, reference, at}}",
        Some(signed), ("200", signed_answer), &[bad, unauth, refused, ("503", "The portal's EDS is not configured")], false) }));
    paths
}
