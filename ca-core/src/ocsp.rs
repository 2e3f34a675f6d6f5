//! OCSP responses (RFC 6960) from the store: status is read at request time, so a revocation
//! is visible the moment it commits. Signed by a delegated responder certificate
//! (id-kp-OCSPSigning, id-pkix-ocsp-nocheck) through the [`Signer`] trait.
//!
//! Every input yields a DER `OCSPResponse`: a request that does not decode, is too large or
//! carries an unreasonable nonce gets `malformedRequest`; one about another CA's certificate
//! gets `unauthorized`; a serial this CA never issued gets `revoked` with certificateHold at
//! 1970-01-01 and the extended-revoke extension (RFC 6960 section 2.2).
//!
//! Once the CA's own certificate is revoked, every certificate it issued is answered `revoked`
//! (RFC 6960 section 2.7 allows it for a CA key compromise; we do it for any CA revocation,
//! since a chain through a revoked CA certificate is invalid whatever the reason): at the CA's
//! revocation time with cACompromise when the CA was revoked for a compromise, otherwise with
//! the CA's own reason — unless the certificate's own, earlier revocation says more.

use std::sync::Arc;

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse, ResponderId, ResponseData,
    RevokedInfo, SingleResponse, Version,
};

use crate::clock::Clock;
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;
use crate::signer::Signer;
use crate::store::{CertificateState, CertificateStatus, Revocation, StatusAsOf, Store, StoreError};

/// id-pkix-ocsp-nonce
pub const NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-extended-revoke
pub const EXTENDED_REVOKE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.9");
/// Most CertIDs answered in one request.
pub const MAX_REQUESTS: usize = 32;
/// Largest nonce extension value accepted (RFC 8954 allows 1..32 octets of nonce).
pub const MAX_NONCE_LEN: usize = 34;

/// What became of a request, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Answered {
        good: usize,
        revoked: usize,
        never_issued: usize,
    },
    Malformed,
    Unauthorized,
    InternalError,
    /// The store's read replica is too far behind and `[store] when_replica_behind = "try-later"`.
    TryLater,
}

/// Hashes of the issuer that CertIDs are matched against, for each supported hash.
struct IssuerHashes {
    algorithm: ObjectIdentifier,
    name: Vec<u8>,
    key: Vec<u8>,
}

/// An OCSP responder for one CA.
pub struct Responder {
    /// The CA's name in the store.
    pub issuer: String,
    hashes: Vec<IssuerHashes>,
    responder_cert: Certificate,
    responder_key_hash: Vec<u8>,
    /// The serial of the CA's own certificate, to see it revoked.
    ca_serial: Option<SerialNumber>,
    signer: Arc<dyn Signer>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// How long a response may be cached (nextUpdate - thisUpdate).
    pub validity: Duration,
}

/// The responder cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ResponderError {
    #[error("certificate does not decode: {0}")]
    Certificate(String),
    #[error("the responder key does not match the responder certificate")]
    KeyMismatch,
    #[error("the responder certificate is not issued by this CA")]
    NotIssuedByCa,
}

/// The digest of `data` by one of the hashes a CertID may use; `None` for another.
pub(crate) fn digest(alg: &ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::digest as d;
    let algorithm = match *alg {
        rfc5912::ID_SHA_1 => &d::SHA1_FOR_LEGACY_USE_ONLY,
        rfc5912::ID_SHA_256 => &d::SHA256,
        rfc5912::ID_SHA_384 => &d::SHA384,
        rfc5912::ID_SHA_512 => &d::SHA512,
        _ => return None,
    };
    Some(d::digest(algorithm, data).as_ref().to_vec())
}

/// A DER OCSPRequest for `cert`, issued by `issuer`: one CertID with SHA-1 (the hash every
/// responder supports, RFC 5019 §2.1.1), no nonce (so a responder may answer from its cache),
/// unsigned. What a relying party posts to a foreign CA's responder.
pub fn request_for(cert: &Certificate, issuer: &Certificate) -> Result<Vec<u8>, der::Error> {
    let hash = |data: &[u8]| OctetString::new(digest(&rfc5912::ID_SHA_1, data).expect("SHA-1 is supported"));
    let id = CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned { oid: rfc5912::ID_SHA_1, parameters: Some(Null.into()) },
        issuer_name_hash: hash(&issuer.tbs_certificate.subject.to_der()?)?,
        issuer_key_hash: hash(issuer.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes())?,
        serial_number: cert.tbs_certificate.serial_number.clone(),
    };
    OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request { req_cert: id, single_request_extensions: None }],
            request_extensions: None,
        },
        optional_signature: None,
    }
    .to_der()
}

fn generalized(t: OffsetDateTime) -> OcspGeneralizedTime {
    let secs = u64::try_from(t.unix_timestamp()).unwrap_or(0);
    let time = GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| GeneralizedTime::from_unix_duration(std::time::Duration::ZERO).expect("epoch"));
    OcspGeneralizedTime(time)
}

impl Responder {
    pub fn new(
        issuer: impl Into<String>,
        issuer_cert_der: &[u8],
        responder_cert_der: &[u8],
        signer: Arc<dyn Signer>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ResponderError> {
        let ca = Certificate::from_der(issuer_cert_der).map_err(|e| ResponderError::Certificate(e.to_string()))?;
        let responder =
            Certificate::from_der(responder_cert_der).map_err(|e| ResponderError::Certificate(e.to_string()))?;
        if &responder.tbs_certificate.subject_public_key_info != signer.public_key() {
            return Err(ResponderError::KeyMismatch);
        }
        if responder.tbs_certificate.issuer != ca.tbs_certificate.subject {
            return Err(ResponderError::NotIssuedByCa);
        }
        let name_der = ca.tbs_certificate.subject.to_der().map_err(|e| ResponderError::Certificate(e.to_string()))?;
        let key_bits = ca.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
        let hashes = [rfc5912::ID_SHA_1, rfc5912::ID_SHA_256, rfc5912::ID_SHA_384, rfc5912::ID_SHA_512]
            .into_iter()
            .map(|algorithm| IssuerHashes {
                algorithm,
                name: digest(&algorithm, &name_der).expect("supported hash"),
                key: digest(&algorithm, key_bits).expect("supported hash"),
            })
            .collect();
        let responder_key_hash = digest(
            &rfc5912::ID_SHA_1,
            responder.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes(),
        )
        .expect("SHA-1 is supported");
        let ca_serial = SerialNumber::from_bytes(ca.tbs_certificate.serial_number.as_bytes()).ok();
        Ok(Self {
            issuer: issuer.into(),
            hashes,
            responder_cert: responder,
            responder_key_hash,
            ca_serial,
            signer,
            store,
            clock,
            validity: Duration::minutes(10),
        })
    }

    /// The responder certificate this responder signs with (and puts into its responses).
    pub fn certificate(&self) -> &Certificate {
        &self.responder_cert
    }

    fn is_ours(&self, id: &CertId) -> bool {
        self.hashes.iter().any(|h| {
            h.algorithm == id.hash_algorithm.oid
                && h.name == id.issuer_name_hash.as_bytes()
                && h.key == id.issuer_key_hash.as_bytes()
        })
    }

    /// Whether every CertID of the DER `request` names this responder's CA (by its name and
    /// key hashes): the request is this responder's to answer. A request that does not decode
    /// is nobody's.
    pub fn serves(&self, request: &[u8]) -> bool {
        OcspRequest::from_der(request).is_ok_and(|r| {
            !r.tbs_request.request_list.is_empty()
                && r.tbs_request.request_list.iter().all(|r| self.is_ours(&r.req_cert))
        })
    }

    /// Answer a DER `OCSPRequest` with a DER `OCSPResponse`. Never fails: errors become OCSP
    /// error statuses.
    pub fn respond(&self, request: &[u8]) -> (Vec<u8>, Outcome) {
        let (response, outcome) = match self.answer(request) {
            Ok((r, o)) => (r, o),
            Err(o) => (
                match o {
                    Outcome::Malformed => OcspResponse::malformed_request(),
                    Outcome::Unauthorized => OcspResponse::unauthorized(),
                    Outcome::TryLater => OcspResponse::try_later(),
                    _ => OcspResponse::internal_error(),
                },
                o,
            ),
        };
        match response.to_der() {
            Ok(der) => (der, outcome),
            // The fixed error responses always encode.
            Err(_) => (OcspResponse::internal_error().to_der().unwrap_or_default(), Outcome::InternalError),
        }
    }

    fn answer(&self, request: &[u8]) -> Result<(OcspResponse, Outcome), Outcome> {
        let request = OcspRequest::from_der(request).map_err(|_| Outcome::Malformed)?;
        let tbs = &request.tbs_request;
        if tbs.request_list.is_empty() || tbs.request_list.len() > MAX_REQUESTS {
            return Err(Outcome::Malformed);
        }
        let nonce = tbs.request_extensions.iter().flatten().find(|e| e.extn_id == NONCE);
        if let Some(n) = nonce {
            if n.extn_value.as_bytes().is_empty() || n.extn_value.as_bytes().len() > MAX_NONCE_LEN {
                return Err(Outcome::Malformed);
            }
        }
        if tbs.request_list.iter().any(|r| !self.is_ours(&r.req_cert)) {
            return Err(Outcome::Unauthorized);
        }
        // Every status of the request (and the CA's own) in one read, with how current it is:
        // read from a lagging replica, thisUpdate is the time up to which its data is complete.
        let serials: Vec<Option<SerialNumber>> = tbs
            .request_list
            .iter()
            .map(|r| SerialNumber::from_bytes(r.req_cert.serial_number.as_bytes()).ok())
            .collect();
        let asked: Vec<SerialNumber> = self.ca_serial.iter().chain(serials.iter().flatten()).cloned().collect();
        let (mut states, as_of) = self.store.states_as_of(&asked).map_err(|e| match e {
            StoreError::ReplicaBehind { .. } => Outcome::TryLater,
            _ => Outcome::InternalError,
        })?;
        let now = self.clock.now();
        let this_update = generalized(match as_of {
            StatusAsOf::Current => now,
            StatusAsOf::Replica(complete) => complete.min(now),
        });
        let next_update = generalized(now + self.validity);
        let ca_revocation = match self.ca_serial {
            Some(_) => ca_revocation(states.remove(0)),
            None => None,
        };
        let mut states = states.into_iter();
        let (mut good, mut revoked, mut never_issued) = (0, 0, 0);
        let mut responses = Vec::with_capacity(tbs.request_list.len());
        for (r, serial) in tbs.request_list.iter().zip(&serials) {
            let status = match serial {
                None => None,
                Some(_) => states.next().flatten(),
            };
            let cert_status = match status {
                Some(rec) if rec.issuer == self.issuer && rec.status == CertificateStatus::Issued => {
                    match &ca_revocation {
                        None => {
                            good += 1;
                            CertStatus::good()
                        }
                        Some(ca) => {
                            revoked += 1;
                            revoked_status(ca)
                        }
                    }
                }
                Some(rec) if rec.issuer == self.issuer && rec.status == CertificateStatus::Revoked => {
                    revoked += 1;
                    let own = rec.revocation.ok_or(Outcome::InternalError)?;
                    match &ca_revocation {
                        Some(ca) if ca.revoked_at < own.revoked_at => revoked_status(ca),
                        _ => revoked_status(&own),
                    }
                }
                // Reserved but never issued, issued by another CA of ours, or unknown: RFC 6960
                // 2.2 "non-issued" — revoked, certificateHold, at the epoch.
                _ => {
                    never_issued += 1;
                    CertStatus::revoked(RevokedInfo {
                        revocation_time: generalized(OffsetDateTime::UNIX_EPOCH),
                        revocation_reason: Some(CrlReason::CertificateHold),
                    })
                }
            };
            responses.push(SingleResponse {
                cert_id: r.req_cert.clone(),
                cert_status,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            });
        }
        let mut extensions = Vec::new();
        if let Some(n) = nonce {
            extensions.push(n.clone());
        }
        if never_issued > 0 {
            let null = Null.to_der().map_err(|_| Outcome::InternalError)?;
            extensions.push(Extension {
                extn_id: EXTENDED_REVOKE,
                critical: false,
                extn_value: OctetString::new(null).map_err(|_| Outcome::InternalError)?,
            });
        }
        let data = ResponseData {
            version: Version::V1,
            responder_id: ResponderId::ByKey(
                OctetString::new(self.responder_key_hash.clone()).map_err(|_| Outcome::InternalError)?,
            ),
            produced_at: generalized(now),
            responses,
            response_extensions: (!extensions.is_empty()).then_some(extensions),
        };
        let tbs_der = data.to_der().map_err(|_| Outcome::InternalError)?;
        let signature = self.signer.sign(&tbs_der).map_err(|e| {
            tracing::error!(error = %e, "OCSP responder key failed to sign");
            Outcome::InternalError
        })?;
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: self.signer.algorithm().algorithm_identifier(),
            signature: BitString::from_bytes(&signature).map_err(|_| Outcome::InternalError)?,
            certs: Some(vec![self.responder_cert.clone()]),
        };
        let response = OcspResponse::successful(basic).map_err(|_| Outcome::InternalError)?;
        Ok((response, Outcome::Answered { good, revoked, never_issued }))
    }
}

/// How the CA's own certificate stands, as its certificates inherit it: `None` while it is not
/// revoked (or the store does not know it).
fn ca_revocation(state: Option<CertificateState>) -> Option<Revocation> {
    state.filter(|s| s.status == CertificateStatus::Revoked).and_then(|s| s.revocation).map(|r| Revocation {
        reason: if r.reason.is_compromise() { RevocationReason::CaCompromise } else { r.reason },
        ..r
    })
}

fn revoked_status(rev: &Revocation) -> CertStatus {
    CertStatus::revoked(RevokedInfo {
        revocation_time: generalized(rev.revoked_at),
        revocation_reason: (rev.reason != RevocationReason::Unspecified).then(|| rev.reason.into()),
    })
}

/// A DER `malformedRequest` response, for requests that never reach a responder.
/// The responder, among those of several CA generations, whose CA the request's CertIDs name;
/// else the first, which answers `malformedRequest` or `unauthorized` as the request deserves.
pub fn route<'r>(responders: &'r [std::sync::Arc<Responder>], request: &[u8]) -> Option<&'r std::sync::Arc<Responder>> {
    responders.iter().find(|r| r.serves(request)).or_else(|| responders.first())
}

pub fn malformed_response() -> Vec<u8> {
    OcspResponse::malformed_request().to_der().unwrap_or_default()
}

/// A DER `internalError` response.
pub fn internal_error_response() -> Vec<u8> {
    OcspResponse::internal_error().to_der().unwrap_or_default()
}

/// A DER `tryLater` response (RFC 6960 4.2.1: the service exists but cannot answer now, e.g.
/// no responder key has been set up yet).
pub fn try_later_response() -> Vec<u8> {
    OcspResponse::try_later().to_der().unwrap_or_default()
}
