//! `POST /api/v1/cms/verify` and `POST /api/v1/x509/verify`: the full analysis of a signed
//! request or a bare certificate for a relying party. A bad signature or an expired, revoked,
//! untrusted or wrong-kind signer is `200` with `valid: false` and machine-readable reasons;
//! only input that is not a CMS (or certificate) at all, or a malformed request, is `400`.
//! Verification runs on the blocking pool.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use ca_core::cms::{self, CmsVerification};

use super::verify_inputs::{from_body_or_query, from_query, verify_query, Inputs, InputsJson, VerifyQuery};
use super::ApiError;
use crate::Services;

/// A JSON body: `subject` (`cms` or `certificate`) and the optional `data`, taken out; the
/// other fields are the verification inputs.
fn split_json(
    body: &[u8],
    subject: &str,
    with_data: bool,
    expected: &str,
) -> Result<(String, Option<String>, InputsJson), ApiError> {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| json_error(e, expected))?;
    let mut text = |name: &str| -> Result<Option<String>, ApiError> {
        match map.remove(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::bad_request("malformed-request", format!("{name}: expected a string"))),
        }
    };
    let main = text(subject)?.ok_or_else(|| {
        ApiError::bad_request("malformed-request", format!("expected {expected}: missing field `{subject}`"))
    })?;
    let data = if with_data { text("data")? } else { None };
    let inputs = serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| json_error(e, expected))?;
    Ok((main, data, inputs))
}

/// A parsed verification request.
pub(crate) struct VerifyRequest {
    pub input: Vec<u8>,
    pub data: Option<Vec<u8>>,
    pub inputs: Inputs,
}

/// The JSON form of a CMS verification request, for error messages.
const CMS_JSON: &str = r#"{"cms": …, "data"?: base64, "requirements"?: {…}, "validation_time"?: RFC 3339, "revocation"?: "require"|"prefer"|"none", "intermediates"?: […], "crls"?: […], "initial_policy_set"?: […], …}"#;
/// The JSON form of a certificate verification request, for error messages.
const CERTIFICATE_JSON: &str = r#"{"certificate": …, "requirements"?: {…}, "validation_time"?: RFC 3339, "revocation"?: …, "intermediates"?: […], "crls"?: […], …}"#;

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

pub(crate) fn base64_field(name: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    let compact = cms::without_whitespace(value);
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| ApiError::bad_request("malformed-request", format!("{name}: not base64: {e}")))
}

pub(crate) fn json_error(e: serde_json::Error, expected: &str) -> ApiError {
    ApiError::bad_request("malformed-request", format!("expected {expected}: {e}"))
}

/// A CMS verification request: JSON, or the CMS itself as the body (DER, BER, base64, PEM)
/// with requirements in the query.
pub(crate) fn parse_cms_request(
    headers: &HeaderMap,
    query: VerifyQuery,
    body: &[u8],
) -> Result<VerifyRequest, ApiError> {
    if !is_json(headers) {
        return Ok(VerifyRequest { input: body.to_vec(), data: None, inputs: from_query(query)? });
    }
    let (cms, data, inputs) = split_json(body, "cms", true, CMS_JSON)?;
    Ok(VerifyRequest {
        input: cms.into_bytes(),
        data: data.map(|d| base64_field("data", &d)).transpose()?,
        inputs: from_body_or_query(query, inputs)?,
    })
}

/// The JSON answer for a CMS: the report, every reason in one list, the attached content.
/// Serialised straight into the response body (no intermediate `serde_json::Value`).
#[derive(serde::Serialize)]
pub(crate) struct CmsAnswer<'a> {
    #[serde(flatten)]
    report: &'a CmsVerification,
    reasons: Vec<ca_core::cms::Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
}

/// The JSON answer for a certificate: the report and the reasons of its findings, serialised
/// straight into the response body.
#[derive(serde::Serialize)]
struct CertificateAnswer<'a> {
    #[serde(flatten)]
    report: &'a cms::CertificateVerification,
    reasons: Vec<ca_core::cms::Reason>,
}

pub(crate) fn render_cms(v: &CmsVerification) -> CmsAnswer<'_> {
    let content = match (v.detached, &v.content) {
        (false, Some(content)) => Some(base64::engine::general_purpose::STANDARD.encode(content)),
        _ => None,
    };
    CmsAnswer { report: v, reasons: v.reasons(), content }
}

/// The first fatal reason, for metrics.
fn first_fatal(findings: impl IntoIterator<Item = ca_core::cms::Finding>) -> Option<ca_core::cms::Reason> {
    findings.into_iter().find(|f| f.fatal).map(|f| f.reason)
}

pub(crate) fn cms_first_fatal(v: &CmsVerification) -> Option<ca_core::cms::Reason> {
    first_fatal(v.findings.iter().chain(v.signers.iter().flat_map(|s| &s.findings)).cloned())
}

fn unavailable() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-configured", "verification is not configured on this server")
}

/// A verification with one signer and at most [`INLINE_CERTIFICATES`] certificates in a request
/// this small costs one signature check when the signer's path is remembered (about 50 µs) and
/// a few when it is not (about 200 µs): cheaper than handing it to the blocking pool and back,
/// which costs two thread wake-ups. Anything bigger, with more signers, or with more candidate
/// intermediates to try (each can cost a signature check) runs on the blocking pool, so that a
/// crafted request cannot hold an async worker for long.
const INLINE_BODY: usize = 16 * 1024;
/// The signer's certificate and its CA chain of a usual signing client.
const INLINE_CERTIFICATES: usize = 3;

pub(crate) async fn cms_verify(
    State(services): State<Arc<Services>>,
    query: Result<Query<VerifyQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match verify_query(query).and_then(|q| parse_cms_request(&headers, q, &body)) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(verifier) = services.verifier.clone() else {
        return unavailable().into_response();
    };
    let VerifyRequest { input, data, inputs: Inputs { requirements, validation_time, options } } = req;
    let inline = body.len() <= INLINE_BODY;
    let parsed = if inline {
        cms::SignedCms::parse(&input)
    } else {
        match tokio::task::spawn_blocking(move || cms::SignedCms::parse(&input)).await {
            Ok(parsed) => parsed,
            Err(e) => return ApiError::internal(e.to_string()).into_response(),
        }
    };
    let signed = match parsed {
        Ok(signed) => signed,
        Err(e) => return ApiError::bad_request("malformed-cms", e.to_string()).into_response(),
    };
    let inline = inline && signed.signer_count() == 1 && signed.certificate_count() <= INLINE_CERTIFICATES;
    let svc = services.clone();
    let check = move || {
        let now = svc.clock.now();
        verifier.with_context(svc.store.as_deref(), now, validation_time, requirements, options, |ctx| {
            signed.verify(data.as_deref(), ctx)
        })
    };
    let result = if inline { Ok(check()) } else { tokio::task::spawn_blocking(check).await };
    match result {
        Ok(Ok(v)) => {
            services.metrics.count_verdict("cms", v.valid, cms_first_fatal(&v));
            Json(render_cms(&v)).into_response()
        }
        Ok(Err(e)) => ApiError::bad_request("malformed-cms", e.to_string()).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

pub(crate) async fn x509_verify(
    State(services): State<Arc<Services>>,
    query: Result<Query<VerifyQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = verify_query(query).and_then(|query| {
        if is_json(&headers) {
            let (certificate, _, inputs) = split_json(&body, "certificate", false, CERTIFICATE_JSON)?;
            let der = super::x509::decode_certificate(certificate.as_bytes())?;
            Ok((der, from_body_or_query(query, inputs)?))
        } else {
            let der = super::x509::decode_certificate(&body)?;
            Ok((der, from_query(query)?))
        }
    });
    let (der, Inputs { requirements, validation_time, options }) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(verifier) = services.verifier.clone() else {
        return unavailable().into_response();
    };
    let svc = services.clone();
    let result = tokio::task::spawn_blocking(move || {
        let now = svc.clock.now();
        verifier.with_context(svc.store.as_deref(), now, validation_time, requirements, options, |ctx| {
            cms::verify_certificate(&der, ctx)
        })
    })
    .await;
    match result {
        Ok(Ok(v)) => {
            services.metrics.count_verdict("x509", v.valid, first_fatal(v.findings.iter().cloned()));
            let reasons = v.findings.iter().map(|f| f.reason).collect();
            Json(CertificateAnswer { report: &v, reasons }).into_response()
        }
        Ok(Err(e)) => ApiError::bad_request("malformed-certificate", e.to_string()).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}
