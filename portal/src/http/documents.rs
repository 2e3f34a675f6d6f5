//! The digital documents API: authorities submit, subjects list and open access, third
//! parties resolve a QR token or short code, integrated systems ask with consent.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::routes::{authenticated, client, json, ok, run, Answer, SignedJson};
use super::{ApiError, AppState};
use crate::PortalError;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/documents", get(list))
        .route("/api/v1/documents/history", get(history))
        .route("/api/v1/documents/submissions", post(submit))
        .route("/api/v1/documents/access", get(grants))
        .route("/api/v1/documents/access/{grant}", delete(withdraw))
        .route("/api/v1/documents/open", post(open))
        .route("/api/v1/documents/{id}", get(document))
        .route("/api/v1/documents/{id}/access", post(open_access))
        .route("/api/v1/systems/document-requests", post(system_request))
        .route("/api/v1/systems/document-releases", post(system_release))
}

async fn submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: SignedJson = json(&body)?;
    let client = client(&state, &headers, &extensions);
    let submitted = run(&state, false, move |p| p.submit_document(req.cms.as_bytes(), &client)).await?;
    Ok((StatusCode::CREATED, Json(submitted)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    history: bool,
}

async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Answer {
    let auth = authenticated(&state, &headers, false).await?;
    ok(serde_json::json!({ "documents": run(&state, false, move |p| p.list_documents(&auth, q.history)).await? }))
}

async fn document(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<i64>) -> Answer {
    let auth = authenticated(&state, &headers, false).await?;
    ok(run(&state, false, move |p| p.my_document(&auth, id)).await?)
}

#[derive(Deserialize)]
struct HistoryQuery {
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

async fn history(State(state): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<HistoryQuery>) -> Answer {
    let auth = authenticated(&state, &headers, false).await?;
    ok(serde_json::json!({ "events": run(&state, false, move |p| p.document_history(&auth, q.limit)).await? }))
}

async fn open_access(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Path(id): Path<i64>,
) -> Answer {
    let auth = authenticated(&state, &headers, false).await?;
    let client = client(&state, &headers, &extensions);
    let opened = run(&state, false, move |p| p.open_access(&auth, id, &client)).await?;
    Ok((StatusCode::CREATED, Json(opened)).into_response())
}

async fn grants(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Answer {
    let auth = authenticated(&state, &headers, false).await?;
    ok(serde_json::json!({ "grants": run(&state, false, move |p| p.my_grants(&auth)).await? }))
}

async fn withdraw(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Path(grant): Path<i64>,
) -> Answer {
    let auth = authenticated(&state, &headers, false).await?;
    let client = client(&state, &headers, &extensions);
    run(&state, false, move |p| p.withdraw_access(&auth, grant, &client)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenJson {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

async fn open(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let auth = authenticated(&state, &headers, false).await?;
    let req: OpenJson = json(&body)?;
    let client = client(&state, &headers, &extensions);
    let view = match (req.token, req.code) {
        (Some(token), None) => run(&state, false, move |p| p.view_by_token(&auth, &token, &client)).await?,
        (None, Some(code)) => run(&state, false, move |p| p.view_by_code(&auth, &code, &client)).await?,
        _ => return Err(ApiError(PortalError::invalid("malformed-json", "give either token or code"))),
    };
    ok(view)
}

async fn system_request(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: SignedJson = json(&body)?;
    let client = client(&state, &headers, &extensions);
    let pending = run(&state, false, move |p| p.system_request_document(req.cms.as_bytes(), &client)).await?;
    Ok((StatusCode::ACCEPTED, Json(pending)).into_response())
}

async fn system_release(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Answer {
    let req: SignedJson = json(&body)?;
    let client = client(&state, &headers, &extensions);
    ok(run(&state, false, move |p| p.system_release_document(req.cms.as_bytes(), &client)).await?)
}
