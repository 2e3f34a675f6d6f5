//! `POST /api/v1/xml/verify` and `POST /api/v1/xml/sign`: enveloped XML signatures
//! ([`ca_core::xml`]). Verification gives the same analysis as `/api/v1/cms/verify` per
//! signature, plus exactly which element each signature covers; a bad, misplaced or wrapped
//! signature is `200` with `valid: false` and reasons, input that is not an acceptable XML
//! document (malformed, a DTD, too large or deep) is `400 malformed-xml`. Signing uses the
//! service's system certificate with the same bearer tokens as `/api/v1/cms/sign`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use ca_core::xml::{self, C14n, ReliedElement, XmlSignOptions, XmlVerification};
use serde::Deserialize;

use super::verify::{is_json, json_error};
use super::verify_inputs::{from_body_or_query, from_query, verify_query, Inputs, InputsJson, VerifyQuery};
use super::ApiError;
use crate::Services;

const XML_JSON: &str = r#"{"xml": XML text or its base64, "signed_id"?: ID the relying party reads, "requirements"?: {…}, "validation_time"?: RFC 3339, "revocation"?: …, …}"#;

/// A verification request: JSON, or the XML itself as the body (inputs in the query).
struct XmlRequest {
    xml: Vec<u8>,
    relied: ReliedElement,
    inputs: Inputs,
}

/// The `xml` field: the document as text, or base64 of its bytes (what clients that sign
/// through `signXml` often pass on).
fn xml_field(value: String) -> Result<Vec<u8>, ApiError> {
    if value.trim_start().starts_with('<') {
        return Ok(value.into_bytes());
    }
    base64::engine::general_purpose::STANDARD
        .decode(ca_core::cms::without_whitespace(&value).as_bytes())
        .map_err(|_| ApiError::bad_request("malformed-request", "xml: neither an XML document nor base64 of one"))
}

fn parse_request(headers: &HeaderMap, query: VerifyQuery, body: &[u8]) -> Result<XmlRequest, ApiError> {
    if !is_json(headers) {
        return Ok(XmlRequest { xml: body.to_vec(), relied: ReliedElement::Document, inputs: from_query(query)? });
    }
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| json_error(e, XML_JSON))?;
    let mut text = |name: &str| match map.remove(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request("malformed-request", format!("{name}: expected a string"))),
    };
    let xml = text("xml")?.ok_or_else(|| {
        ApiError::bad_request("malformed-request", format!("expected {XML_JSON}: missing field `xml`"))
    })?;
    let relied = match text("signed_id")? {
        Some(id) => ReliedElement::Id(id.trim_start_matches('#').to_string()),
        None => ReliedElement::Document,
    };
    let inputs: InputsJson =
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| json_error(e, XML_JSON))?;
    Ok(XmlRequest { xml: xml_field(xml)?, relied, inputs: from_body_or_query(query, inputs)? })
}

/// The JSON answer: the report and every reason in one list.
#[derive(serde::Serialize)]
struct XmlAnswer<'a> {
    #[serde(flatten)]
    report: &'a XmlVerification,
    reasons: Vec<ca_core::cms::Reason>,
}

/// Verifications of documents this small (one signature, a login or a short request) cost
/// one signature check and two canonicalisations of a few KB when the signer's path is
/// remembered: cheaper inline than through the blocking pool, as for CMS.
const INLINE_BODY: usize = 16 * 1024;

pub(crate) async fn verify(
    State(services): State<Arc<Services>>,
    query: Result<Query<VerifyQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let XmlRequest { xml, relied, inputs: Inputs { requirements, validation_time, options } } =
        match verify_query(query).and_then(|q| parse_request(&headers, q, &body)) {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        };
    let Some(verifier) = services.verifier.clone() else {
        return ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not-configured",
            "verification is not configured on this server",
        )
        .into_response();
    };
    let inline = body.len() <= INLINE_BODY;
    let svc = services.clone();
    let check = move || {
        let now = svc.clock.now();
        verifier.with_context(svc.store.as_deref(), now, validation_time, requirements, options, |ctx| {
            xml::verify(&xml, &relied, ctx)
        })
    };
    let result = if inline { Ok(check()) } else { tokio::task::spawn_blocking(check).await };
    match result {
        Ok(Ok(v)) => {
            services.metrics.count_verdict("xml", v.valid, v.first_fatal().map(|f| f.reason));
            Json(XmlAnswer { report: &v, reasons: v.reasons() }).into_response()
        }
        Ok(Err(e)) => ApiError::bad_request("malformed-xml", e.to_string()).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignJson {
    /// The document, as text or base64.
    xml: String,
    #[serde(default)]
    c14n: C14n,
}

pub(crate) async fn sign(State(services): State<Arc<Services>>, headers: HeaderMap, body: Bytes) -> Response {
    let system = match super::sign::authorised_signer(&services, &headers) {
        Ok(system) => system,
        Err(e) => return e.into_response(),
    };
    let req: SignJson = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return json_error(e, r#"{"xml": text or base64, "c14n"?: "inclusive"|"inclusive-with-comments"|"exclusive"|"exclusive-with-comments"}"#)
                .into_response()
        }
    };
    let document = match xml_field(req.xml) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let options = XmlSignOptions { c14n: req.c14n };
    let result = tokio::task::spawn_blocking(move || {
        xml::sign(&document, system.signer.as_ref(), &system.certificate, &system.chain, &options)
    })
    .await;
    match result {
        Ok(Ok(signed)) => {
            tracing::info!(bytes = signed.len(), "signed XML with the system key");
            Json(serde_json::json!({ "xml": String::from_utf8_lossy(&signed) })).into_response()
        }
        Ok(Err(xml::XmlError::Signer(e))) => ApiError::internal(format!("signing: {e}")).into_response(),
        Ok(Err(xml::XmlError::Certificate(e))) => {
            ApiError::internal(format!("system certificate: {e}")).into_response()
        }
        Ok(Err(e)) => ApiError::bad_request("malformed-xml", e.to_string()).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}
