//! The time-stamping authority over HTTP (RFC 3161 3.4): `POST /tsa` with a DER TimeStampReq
//! as `application/timestamp-query`, answered with a DER TimeStampResp as
//! `application/timestamp-reply` and HTTP 200 — a refusal is a TimeStampResp too (status
//! rejection with its failInfo), which is what time-stamp clients read. Only a body of another
//! content type is refused by HTTP (415, JSON like every other HTTP-level error).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ca_core::tsa::request::Rejection;
use ca_core::tsa::{FailureInfo, Outcome};

use crate::api::ApiError;
use crate::{Services, MAX_TSA_REQUEST};

/// The media type of a request (RFC 3161 3.4).
pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";
/// The media type of a reply.
pub const TIMESTAMP_REPLY: &str = "application/timestamp-reply";

fn reply(der: Vec<u8>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, TIMESTAMP_REPLY)], der).into_response()
}

fn refuse(services: &Services, fail: FailureInfo, text: &str) -> Response {
    services.metrics.count_tsa(&Outcome::Rejected(fail));
    reply(ca_core::tsa::rejection(&Rejection::new(fail, text)))
}

/// Whether the Content-Type is `application/timestamp-query` (parameters and case aside).
fn is_timestamp_query(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(TIMESTAMP_QUERY))
}

pub(crate) async fn tsa_post(State(services): State<Arc<Services>>, headers: HeaderMap, body: Body) -> Response {
    if !is_timestamp_query(&headers) {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("POST /tsa takes a DER TimeStampReq as {TIMESTAMP_QUERY} (RFC 3161 3.4)"),
        )
        .into_response();
    }
    let Some(tsa) = services.tsa.get() else {
        tracing::warn!("time-stamp request while no TSA is configured (ca tsa init, [tsa] enabled)");
        return refuse(&services, FailureInfo::SystemFailure, "the time-stamping service is not available");
    };
    let request = match axum::body::to_bytes(body, MAX_TSA_REQUEST).await {
        Ok(bytes) => bytes,
        Err(_) => {
            tracing::warn!(limit = MAX_TSA_REQUEST, "time-stamp request body too large or unreadable");
            let text = format!("the request is longer than {MAX_TSA_REQUEST} octets or unreadable");
            return refuse(&services, FailureInfo::BadDataFormat, &text);
        }
    };
    // Signing is CPU-bound (and may block on a token): keep it off the async executor.
    match tokio::task::spawn_blocking(move || tsa.respond(&request)).await {
        Ok((der, outcome)) => {
            services.metrics.count_tsa(&outcome);
            match outcome {
                Outcome::Granted => tracing::debug!("time stamp granted"),
                Outcome::Rejected(fail) => tracing::info!(fail = fail.name(), "time-stamp request rejected"),
            }
            reply(der)
        }
        Err(e) => {
            tracing::error!(error = %e, "time-stamp worker failed");
            refuse(&services, FailureInfo::SystemFailure, "the time-stamping service failed; try again later")
        }
    }
}
