//! The counter workstation's side of phone binding (document 000 p. 7–8): sign the request for
//! a code with the operator's service EDS and send it, then — once the applicant has read out
//! the code — sign and send the binding request with his form, and verify the portal's signed
//! answer before anything (a new account's password) is printed.

use ca_core::cms::Requirements;
use time::OffsetDateTime;

use super::system::{CounterBindingRequest, SystemBindingAnswer, SystemCodeRequest};
pub use crate::account::workstation::{post, sign};
use crate::account::workstation::{request_id, Applicant, WorkstationError};
use crate::trust::PortalTrust;

/// Where a counter asks for a binding code.
pub const CODE_PATH: &str = "/api/v1/counter/phone/code";
/// Where a counter sends the binding.
pub const BIND_PATH: &str = "/api/v1/counter/phone/bindings";

/// A fresh request for a code to `applicant`'s phone.
pub fn code_request(applicant: &Applicant, now: OffsetDateTime) -> Result<SystemCodeRequest, WorkstationError> {
    Ok(SystemCodeRequest {
        request_id: request_id()?,
        created_at: now,
        iin: applicant.iin.clone(),
        phone: applicant.phone.clone(),
    })
}

/// A fresh binding request with the code the applicant read out.
pub fn binding_request(
    applicant: &Applicant,
    session_id: &str,
    code: &str,
    now: OffsetDateTime,
) -> Result<CounterBindingRequest, WorkstationError> {
    Ok(CounterBindingRequest {
        request_id: request_id()?,
        created_at: now,
        session_id: session_id.to_owned(),
        code: code.trim().to_owned(),
        iin: applicant.iin.clone(),
        surname: applicant.surname.clone(),
        given_name: applicant.given_name.clone(),
        patronymic: applicant.patronymic.clone(),
        email: applicant.email.clone(),
        phone: applicant.phone.clone(),
        consents: applicant.consents,
    })
}

/// Verify the portal's signed answer (chain and revocation at `now`) and that it answers the
/// request `request_id` for `iin`.
pub fn verify_answer(
    trust: &PortalTrust,
    request_id: &str,
    iin: &str,
    cms: &[u8],
    now: OffsetDateTime,
) -> Result<(SystemBindingAnswer, ca_core::cms::CertificateReport), WorkstationError> {
    let verified = trust
        .verify(cms, None, Requirements::default(), now)
        .map_err(|e| WorkstationError::BadAnswer(e.to_string()))?;
    let content =
        verified.content.ok_or_else(|| WorkstationError::BadAnswer("the answer carries no content".into()))?;
    let answer: SystemBindingAnswer =
        serde_json::from_slice(&content).map_err(|e| WorkstationError::BadAnswer(e.to_string()))?;
    if answer.request_id != request_id || answer.login != iin.trim() {
        return Err(WorkstationError::BadAnswer("the answer is for another request".into()));
    }
    Ok((answer, verified.signer))
}
