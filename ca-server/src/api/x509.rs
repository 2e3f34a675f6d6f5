//! `POST /api/v1/x509/info`: who a certificate belongs to (IIN, BIN, names, organisation,
//! email, roles), whether it is an AUTH or a SIGN certificate, its validity, and, for this CA's
//! certificates, its current status from the store.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use ca_core::identity::{format_dn, CertificateIdentity};
use ca_core::keys::check_key_policy;
use ca_core::serial::SerialNumber;
use const_oid::AssociatedOid;
use der::Decode;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_cert::ext::pkix::CertificatePolicies;
use x509_cert::Certificate;

use super::ApiError;
use crate::Services;

#[derive(Serialize)]
struct Status {
    status: &'static str,
    revocation_time: Option<String>,
    reason: Option<String>,
}

#[derive(Serialize)]
struct Info {
    serial: String,
    subject: Subject,
    issuer: String,
    not_before: String,
    not_after: String,
    valid_now: bool,
    key_usage: Option<ca_core::identity::KeyType>,
    roles: Vec<ca_core::profile::Role>,
    public_key: serde_json::Value,
    policies: Vec<String>,
    issued_by_this_ca: bool,
    /// Current status in this CA's store (`None` for another CA's certificate).
    status: Option<Status>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct Subject {
    dn: String,
    common_name: Option<String>,
    surname: Option<String>,
    /// What follows the surname in CN.
    first_name: Option<String>,
    /// G (givenName), which holds the patronymic in the national profile.
    patronymic: Option<String>,
    iin: Option<ca_core::identity::Iin>,
    bin: Option<ca_core::identity::Bin>,
    organisation: Option<String>,
    email: Option<String>,
    country: Option<String>,
    /// Every attribute as written, in DN order.
    attributes: Vec<ca_core::identity::NameAttribute>,
}

fn time(t: &x509_cert::time::Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A certificate from a JSON body `{"certificate": base64-or-PEM}` or a raw DER/PEM body.
pub(crate) fn certificate_from_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let text_or_der: Vec<u8> = if json {
        #[derive(serde::Deserialize)]
        struct Body {
            certificate: String,
        }
        let parsed: Body = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request("malformed-request", format!("expected {{\"certificate\": …}}: {e}")))?;
        parsed.certificate.into_bytes()
    } else {
        body.to_vec()
    };
    decode_certificate(&text_or_der)
}

/// DER, PEM or base64 of a certificate, as DER.
pub(crate) fn decode_certificate(text_or_der: &[u8]) -> Result<Vec<u8>, ApiError> {
    // Binary DER is taken as it is: its last octets may well be 0x20 or 0x0a.
    if text_or_der.first() == Some(&0x30) {
        return Ok(text_or_der.to_vec());
    }
    let trimmed = text_or_der.trim_ascii();
    // Text before the PEM block (openssl's "Bag Attributes" and subject= lines) is skipped.
    if let Some(block) = ca_core::pem::first_block(trimmed) {
        let (_, der) = der::pem::decode_vec(block)
            .map_err(|e| ApiError::bad_request("malformed-certificate", format!("PEM: {e}")))?;
        return Ok(der);
    }
    let compact: Vec<u8> = trimmed.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|_| ApiError::bad_request("malformed-certificate", "not DER, PEM or base64 of a certificate"))
}

pub(crate) async fn info(State(services): State<Arc<Services>>, headers: HeaderMap, body: Bytes) -> Response {
    let der = match certificate_from_body(&headers, &body) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let cert = match Certificate::from_der(&der) {
        Ok(c) => c,
        Err(e) => return ApiError::bad_request("malformed-certificate", e.to_string()).into_response(),
    };
    let tbs = &cert.tbs_certificate;
    let id = CertificateIdentity::from_certificate(&cert);
    let (not_before, not_after) = (time(&tbs.validity.not_before), time(&tbs.validity.not_after));
    let now = OffsetDateTime::now_utc();
    let serial = SerialNumber::from_bytes(tbs.serial_number.as_bytes()).ok();
    // Ours if the issuer name is our issuing CA's subject and the store knows the serial.
    let record = match (&services.store, &serial) {
        (Some(store), Some(serial)) => {
            let (store, serial) = (store.clone(), serial.clone());
            match tokio::task::spawn_blocking(move || store.certificate(&serial)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return ApiError::internal(format!("store: {e}")).into_response(),
                Err(e) => return ApiError::internal(e.to_string()).into_response(),
            }
        }
        _ => None,
    };
    let record = record.filter(|r| r.issuer == services.ca_name && r.der.as_deref() == Some(der.as_slice()));
    let status = record.as_ref().map(|r| match &r.revocation {
        Some(rev) => Status {
            status: "revoked",
            revocation_time: Some(rfc3339(rev.revoked_at)),
            reason: Some(rev.reason.name().to_owned()),
        },
        None => Status { status: "good", revocation_time: None, reason: None },
    });
    let policies = tbs
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == CertificatePolicies::OID)
        .and_then(|e| CertificatePolicies::from_der(e.extn_value.as_bytes()).ok())
        .map(|p| p.0.iter().map(|pi| pi.policy_identifier.to_string()).collect())
        .unwrap_or_default();
    let public_key = match check_key_policy(&tbs.subject_public_key_info) {
        Ok(kind) => serde_json::to_value(kind).unwrap_or_default(),
        Err(e) => serde_json::json!({ "type": "refused", "reason": e.to_string() }),
    };
    Json(Info {
        serial: serial.map(|s| s.to_hex()).unwrap_or_else(|| hex::encode(tbs.serial_number.as_bytes())),
        subject: Subject {
            dn: format_dn(&tbs.subject),
            common_name: id.common_name,
            surname: id.surname,
            first_name: id.first_name,
            patronymic: id.patronymic,
            iin: id.iin,
            bin: id.bin,
            organisation: id.organisation,
            email: id.email,
            country: id.country,
            attributes: id.attributes,
        },
        issuer: format_dn(&tbs.issuer),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        valid_now: now >= not_before && now <= not_after,
        key_usage: id.key_type,
        roles: id.roles,
        public_key,
        policies,
        issued_by_this_ca: record.is_some(),
        status,
        warnings: id.warnings,
    })
    .into_response()
}
