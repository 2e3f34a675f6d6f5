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
use ca_core::cms::{self, CmsVerification, Requirements};
use ca_core::identity::KeyType;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::ApiError;
use crate::Services;

/// What a relying party demands of the signer, as JSON. Unknown fields are refused: a
/// misspelt requirement must not silently become no requirement.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequirementsJson {
    #[serde(default, alias = "key_type", alias = "keyUsage")]
    key_usage: Option<KeyType>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    iin: Option<String>,
    #[serde(default)]
    bin: Option<String>,
}

impl RequirementsJson {
    pub(crate) fn parse(self) -> Result<Requirements, ApiError> {
        let bad = |m: String| ApiError::bad_request("malformed-requirements", m);
        Ok(Requirements {
            key_type: self.key_usage,
            roles: self.roles.iter().map(|r| r.parse().map_err(|e| bad(format!("{e}")))).collect::<Result<_, _>>()?,
            iin: self.iin.map(|i| i.parse().map_err(|e| bad(format!("iin: {e}")))).transpose()?,
            bin: self.bin.map(|b| b.parse().map_err(|e| bad(format!("bin: {e}")))).transpose()?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CmsVerifyJson {
    cms: String,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    requirements: Option<RequirementsJson>,
    #[serde(default)]
    validation_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateVerifyJson {
    certificate: String,
    #[serde(default)]
    requirements: Option<RequirementsJson>,
    #[serde(default)]
    validation_time: Option<String>,
}

/// Requirements and validation time as query parameters, for a body that is the CMS or the
/// certificate itself (which has nowhere else to carry them):
/// `?key_usage=SIGN&roles=first-head,hr&iin=…&bin=…&validation_time=…`. Unknown parameters
/// are refused, as in the JSON form.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyQuery {
    #[serde(default)]
    key_usage: Option<KeyType>,
    /// Comma-separated role names or OIDs.
    #[serde(default)]
    roles: Option<String>,
    #[serde(default)]
    iin: Option<String>,
    #[serde(default)]
    bin: Option<String>,
    #[serde(default)]
    validation_time: Option<String>,
}

impl VerifyQuery {
    fn is_empty(&self) -> bool {
        self.key_usage.is_none()
            && self.roles.is_none()
            && self.iin.is_none()
            && self.bin.is_none()
            && self.validation_time.is_none()
    }

    fn parse(self) -> Result<(Requirements, Option<OffsetDateTime>), ApiError> {
        let roles = self.roles.iter().flat_map(|r| r.split(',')).map(str::trim).filter(|r| !r.is_empty());
        let requirements = RequirementsJson {
            key_usage: self.key_usage,
            roles: roles.map(String::from).collect(),
            iin: self.iin,
            bin: self.bin,
        }
        .parse()?;
        Ok((requirements, time_field(self.validation_time)?))
    }
}

/// The query, or a JSON 400 naming what is wrong with it.
pub(crate) fn verify_query(query: Result<Query<VerifyQuery>, QueryRejection>) -> Result<VerifyQuery, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::bad_request("malformed-query", e.body_text()))
}

/// Requirements from the JSON body or from the query, not both.
fn one_source<T>(
    query: VerifyQuery,
    body: Option<T>,
    from_body: impl FnOnce(T) -> Result<(Requirements, Option<OffsetDateTime>), ApiError>,
) -> Result<(Requirements, Option<OffsetDateTime>), ApiError> {
    match (query.is_empty(), body) {
        (true, Some(b)) => from_body(b),
        (_, None) => query.parse(),
        (false, Some(_)) => Err(ApiError::bad_request(
            "malformed-request",
            "requirements or validation_time are given both in the query and in the body; give them once",
        )),
    }
}

/// A parsed verification request.
pub(crate) struct VerifyRequest {
    pub input: Vec<u8>,
    pub data: Option<Vec<u8>>,
    pub requirements: Requirements,
    pub validation_time: Option<OffsetDateTime>,
}

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

fn time_field(value: Option<String>) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|t| {
            OffsetDateTime::parse(&t, &Rfc3339).map_err(|e| {
                ApiError::bad_request("malformed-request", format!("validation_time: not RFC 3339 ({t:?}): {e}"))
            })
        })
        .transpose()
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
        let (requirements, validation_time) = query.parse()?;
        return Ok(VerifyRequest { input: body.to_vec(), data: None, requirements, validation_time });
    }
    let req: CmsVerifyJson = serde_json::from_slice(body).map_err(|e| {
        json_error(e, r#"{"cms": …, "data"?: base64, "requirements"?: {…}, "validation_time"?: RFC 3339}"#)
    })?;
    let in_body = (req.requirements.is_some() || req.validation_time.is_some())
        .then_some((req.requirements, req.validation_time));
    let (requirements, validation_time) =
        one_source(query, in_body, |(r, t)| Ok((r.unwrap_or_default().parse()?, time_field(t)?)))?;
    Ok(VerifyRequest {
        input: req.cms.into_bytes(),
        data: req.data.map(|d| base64_field("data", &d)).transpose()?,
        requirements,
        validation_time,
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
    let VerifyRequest { input, data, requirements, validation_time } = req;
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
        verifier.with_context(svc.store.as_deref(), now, validation_time, requirements, |ctx| {
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
            let r = serde_json::from_slice::<CertificateVerifyJson>(&body).map_err(|e| {
                json_error(e, r#"{"certificate": …, "requirements"?: {…}, "validation_time"?: RFC 3339}"#)
            })?;
            let der = super::x509::decode_certificate(r.certificate.as_bytes())?;
            let in_body = (r.requirements.is_some() || r.validation_time.is_some())
                .then_some((r.requirements, r.validation_time));
            let (requirements, time) =
                one_source(query, in_body, |(r, t)| Ok((r.unwrap_or_default().parse()?, time_field(t)?)))?;
            Ok((der, requirements, time))
        } else {
            let der = super::x509::decode_certificate(&body)?;
            let (requirements, time) = query.parse()?;
            Ok((der, requirements, time))
        }
    });
    let (der, requirements, validation_time) = match parsed {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(verifier) = services.verifier.clone() else {
        return unavailable().into_response();
    };
    let svc = services.clone();
    let result = tokio::task::spawn_blocking(move || {
        let now = svc.clock.now();
        verifier.with_context(svc.store.as_deref(), now, validation_time, requirements, |ctx| {
            cms::verify_certificate(&der, ctx)
        })
    })
    .await;
    match result {
        Ok(Ok(v)) => {
            services.metrics.count_verdict("x509", v.valid, first_fatal(v.findings.iter().cloned()));
            let mut value = serde_json::to_value(&v).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                let reasons: Vec<_> = v.findings.iter().map(|f| f.reason).collect();
                map.insert("reasons".into(), serde_json::to_value(reasons).unwrap_or_default());
            }
            Json(value).into_response()
        }
        Ok(Err(e)) => ApiError::bad_request("malformed-certificate", e.to_string()).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}
