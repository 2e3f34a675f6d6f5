//! Signed system-to-system requests (an authority submitting a document, an integrated system
//! asking for one): an attached CMS over the request's canonical JSON, verified at the portal's
//! time (chain, revocation by the CRLs at hand), a SIGN certificate, fresh, used once.
//!
//! The canonical JSON is what `serde_json` writes for the request type: no whitespace, the
//! fields in the declared order (alphabetical), object keys inside `data` sorted. A request
//! whose signed bytes are not in that form is refused, so a stored signature always covers
//! exactly the bytes the portal shows.

use ca_core::cms::{CertificateReport, Requirements};
use ca_core::identity::KeyType;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::PortalError;
use crate::Portal;

/// A request that travels signed.
pub trait SignedRequest: DeserializeOwned + Serialize {
    /// 32 random bytes, hex: single use.
    fn request_id(&self) -> &str;
    fn created_at(&self) -> OffsetDateTime;
}

/// A verified request with its signer and the exact bytes signed.
pub struct Verified<T> {
    pub request: T,
    pub signer: CertificateReport,
    /// The CMS as DER.
    pub cms: Vec<u8>,
    /// The canonical bytes the signature covers.
    pub content: Vec<u8>,
}

/// The canonical bytes of a request.
pub fn canonical<T: Serialize>(request: &T) -> Vec<u8> {
    serde_json::to_vec(request).unwrap_or_default()
}

impl Portal {
    /// Verify a signed request (CMS as DER, base64 or PEM) and parse its content; not yet
    /// marked used (see [`Portal::use_request_id`]).
    pub(crate) fn verify_signed_request<T: SignedRequest>(&self, cms: &[u8]) -> Result<Verified<T>, PortalError> {
        let der = ca_core::cms::decode_input(cms).map_err(|e| PortalError::invalid("malformed-cms", e.to_string()))?;
        let now = self.clock.now();
        let requirements = Requirements { key_type: Some(KeyType::Sign), ..Requirements::default() };
        let verified = self.trust.verify(&der, None, requirements, now)?;
        let content = verified
            .content
            .ok_or_else(|| PortalError::invalid("content-missing", "the request must be an attached signature"))?;
        let request: T = serde_json::from_slice(&content).map_err(|e| {
            PortalError::invalid("invalid-request", format!("the signed content is not the expected request: {e}"))
        })?;
        if canonical(&request) != content {
            return Err(PortalError::invalid(
                "non-canonical-request",
                "the signed content is not in canonical form (compact JSON, fields in order, keys sorted)",
            ));
        }
        let window = self.documents.access.request_window();
        if (request.created_at() - now).abs() > window {
            return Err(PortalError::invalid("request-stale", "the request's time is too far from the portal's clock"));
        }
        request_id(request.request_id())?;
        Ok(Verified { request, signer: verified.signer, cms: der, content })
    }

    /// Mark a request id used; a replay is refused.
    pub(crate) fn use_request_id(&self, id: &str) -> Result<(), PortalError> {
        let now = self.clock.now();
        let window = self.documents.access.request_window();
        if !self.store.use_request_id(&request_id(id)?, now, now + window * 2)? {
            return Err(PortalError::refused("request-replayed", "this request was already handled"));
        }
        Ok(())
    }
}

fn request_id(id: &str) -> Result<[u8; 32], PortalError> {
    hex::decode(id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| PortalError::invalid("invalid-request", "request_id is 32 bytes in hex"))
}
