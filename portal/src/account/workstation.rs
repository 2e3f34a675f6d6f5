//! The workstation's side of counter registration: build and sign the request with the
//! workstation's EDS, send it, and verify the portal's signed answer before anything is
//! printed for the envelope.

use ca_core::cms::Requirements;
use ca_core::signer::Signer;
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use time::OffsetDateTime;

use super::counter::{Consents, CounterRequest, CounterResponse};
use crate::trust::PortalTrust;

/// What the operator typed.
#[derive(Clone, Debug)]
pub struct Applicant {
    pub iin: String,
    pub surname: String,
    pub given_name: String,
    pub patronymic: Option<String>,
    pub email: String,
    pub phone: String,
    pub consents: Consents,
}

/// A counter registration went wrong on the workstation's side or was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkstationError {
    #[error("signing the request: {0}")]
    Sign(String),
    #[error("sending the request: {0}")]
    Send(String),
    #[error("the portal refused ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the portal's answer does not verify: {0}")]
    BadAnswer(String),
}

/// A fresh random request id (256 bits, hex): what makes a signed system request single-use.
pub fn request_id() -> Result<String, WorkstationError> {
    let mut id = [0u8; 32];
    OsRng.try_fill_bytes(&mut id).map_err(|e| WorkstationError::Sign(format!("random: {e}")))?;
    Ok(hex::encode(id))
}

/// A fresh request for `applicant` at `now`.
pub fn request(applicant: &Applicant, now: OffsetDateTime) -> Result<CounterRequest, WorkstationError> {
    Ok(CounterRequest {
        request_id: request_id()?,
        created_at: now,
        iin: applicant.iin.clone(),
        surname: applicant.surname.clone(),
        given_name: applicant.given_name.clone(),
        patronymic: applicant.patronymic.clone(),
        email: applicant.email.clone(),
        phone: applicant.phone.clone(),
        consents: applicant.consents,
    })
}

/// The request as an attached CMS signed by the workstation (DER).
pub fn sign_request(
    request: &CounterRequest,
    key: &dyn Signer,
    certificate: &[u8],
    chain: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<Vec<u8>, WorkstationError> {
    sign(request, key, certificate, chain, now)
}

/// `request` as JSON in an attached CMS signed by the workstation (DER).
pub fn sign<T: Serialize>(
    request: &T,
    key: &dyn Signer,
    certificate: &[u8],
    chain: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<Vec<u8>, WorkstationError> {
    let json = serde_json::to_vec(request).map_err(|e| WorkstationError::Sign(e.to_string()))?;
    ca_core::cms::sign(&json, false, key, certificate, chain, now).map_err(|e| WorkstationError::Sign(e.to_string()))
}

/// POST the signed request to the portal at `base_url`; the answer's CMS (DER).
pub fn send(base_url: &str, signed: &[u8]) -> Result<Vec<u8>, WorkstationError> {
    use base64::Engine;
    let value = post(base_url, "/api/v1/counter/registrations", signed)?;
    let cms = value["cms"].as_str().ok_or_else(|| WorkstationError::BadAnswer("no cms in the answer".into()))?;
    base64::engine::general_purpose::STANDARD.decode(cms).map_err(|e| WorkstationError::BadAnswer(e.to_string()))
}

/// POST `{"cms": base64}` to `base_url` + `path`; the answer's JSON. A refusal carries the
/// portal's message.
pub fn post(base_url: &str, path: &str, signed: &[u8]) -> Result<serde_json::Value, WorkstationError> {
    use base64::Engine;
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    let body = serde_json::json!({ "cms": base64::engine::general_purpose::STANDARD.encode(signed) });
    let answer = match ureq::post(&url).set("Content-Type", "application/json").send_string(&body.to_string()) {
        Ok(r) => r,
        Err(ureq::Error::Status(status, r)) => {
            let text = r.into_string().unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            return Err(WorkstationError::Refused { status, message });
        }
        Err(e) => return Err(WorkstationError::Send(e.to_string())),
    };
    let text = answer.into_string().map_err(|e| WorkstationError::BadAnswer(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| WorkstationError::BadAnswer(e.to_string()))
}

/// Verify the portal's answer (chain and revocation at `now`) and that it answers `request`.
pub fn verify_response(
    trust: &PortalTrust,
    request: &CounterRequest,
    cms: &[u8],
    now: OffsetDateTime,
) -> Result<(CounterResponse, ca_core::cms::CertificateReport), WorkstationError> {
    let verified = trust
        .verify(cms, None, Requirements::default(), now)
        .map_err(|e| WorkstationError::BadAnswer(e.to_string()))?;
    let content =
        verified.content.ok_or_else(|| WorkstationError::BadAnswer("the answer carries no content".into()))?;
    let response: CounterResponse =
        serde_json::from_slice(&content).map_err(|e| WorkstationError::BadAnswer(e.to_string()))?;
    if response.request_id != request.request_id || response.login != request.iin.trim() {
        return Err(WorkstationError::BadAnswer("the answer is for another request".into()));
    }
    Ok((response, verified.signer))
}
