//! OCSP responses a relying party sends with a request, as a revocation source for the path
//! (RFC 6960): a response counts for a certificate only when it is signed by the
//! certificate's issuer or by a responder the issuer delegated to (a certificate it issued
//! with id-kp-OCSPSigning, carried in the response, §4.2.2.2), when its CertID names the
//! certificate (issuer name and key hashes, serial) and when it speaks for the validation
//! time (nextUpdate not before it; without nextUpdate, thisUpdate not before it). A delegated
//! responder's certificate without id-pkix-ocsp-nocheck is itself checked for revocation by the
//! CRLs at hand (RFC 6960 §4.2.2.2.1: the client decides when the CA does not say; a key that
//! may be compromised must not vouch for others), and its responses count only when a current
//! CRL says it is not revoked; with nocheck it is trusted for its validity period. A response
//! that does not count is ignored: the CRLs at hand may still answer.

use std::sync::Arc;

use const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
use const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC;
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse as OcspResponseDer, OcspResponseStatus, SingleResponse};

use super::algorithm::verify_signature;
use super::cert::PkixCert;
use super::name::names_equal;
use super::{ExternalStatus, IssuedStatus, PkixError, StatusSource, ValidationSettings};
use crate::ocsp::digest;
use crate::profile::OCSP_NOCHECK;

/// An OCSPResponse (status successful, a BasicOCSPResponse), read once.
#[derive(Clone, Debug)]
pub struct OcspResponse {
    basic: BasicOcspResponse,
    /// The ResponseData exactly as encoded: what the responder signed.
    tbs: Vec<u8>,
    /// The certificates the response carries (a delegated responder's).
    certs: Vec<Arc<PkixCert>>,
}

impl OcspResponse {
    pub fn from_der(der: &[u8]) -> Result<Self, PkixError> {
        let bad = |e: String| PkixError::Malformed(format!("OCSP response: {e}"));
        let response = OcspResponseDer::from_der(der).map_err(|e| bad(e.to_string()))?;
        if response.response_status != OcspResponseStatus::Successful {
            return Err(bad(format!("status {:?}, not successful", response.response_status)));
        }
        let bytes = response.response_bytes.ok_or_else(|| bad("no responseBytes".into()))?;
        if bytes.response_type != ID_PKIX_OCSP_BASIC {
            return Err(bad(format!("response type {} is not id-pkix-ocsp-basic", bytes.response_type)));
        }
        let basic_der = bytes.response.as_bytes();
        let basic = BasicOcspResponse::from_der(basic_der).map_err(|e| bad(e.to_string()))?;
        // `der` decodes DER strictly, so the re-encoding is the signed bytes exactly.
        let tbs = basic.tbs_response_data.to_der().map_err(|e| bad(e.to_string()))?;
        let mut certs = Vec::new();
        for cert in basic.certs.iter().flatten() {
            certs.push(Arc::new(PkixCert::from_der(&cert.to_der().map_err(|e| bad(e.to_string()))?)?));
        }
        Ok(Self { basic, tbs, certs })
    }

    /// The earliest nextUpdate of its single responses: until when a cache may keep it (`None`
    /// when one has none: newer status is always available).
    pub fn next_update(&self) -> Option<OffsetDateTime> {
        let singles = &self.basic.tbs_response_data.responses;
        singles.iter().map(|s| s.next_update.as_ref().map(offset)).collect::<Option<Vec<_>>>()?.into_iter().min()
    }

    /// The certificates the response carries that would need a revocation check of their own
    /// to sign it as delegated responders (id-kp-OCSPSigning, no id-pkix-ocsp-nocheck): what a
    /// verifier fetches CRLs for.
    pub fn responders_to_check(&self) -> impl Iterator<Item = &x509_cert::Certificate> {
        self.certs.iter().filter(|c| is_responder(c) && !has_nocheck(c)).map(|c| &c.cert)
    }

    /// Whether the response is signed by `issuer`'s key or by a responder it delegated to
    /// whose certificate is not revoked (`issued_status`) or carries nocheck.
    fn signed_for(&self, issuer: &PkixCert, settings: &ValidationSettings, issued_status: IssuedStatus<'_>) -> bool {
        let verifies = |key: &spki::SubjectPublicKeyInfoOwned| {
            verify_signature(
                &self.basic.signature_algorithm,
                key,
                None,
                &self.tbs,
                self.basic.signature.raw_bytes(),
                settings.time,
                &settings.algorithms,
            )
            .is_ok()
        };
        let issuer_key = &issuer.cert.tbs_certificate.subject_public_key_info;
        if verifies(issuer_key) {
            return true;
        }
        self.certs.iter().any(|responder| {
            let tbs = &responder.cert.tbs_certificate;
            let validity = &tbs.validity;
            names_equal(responder.issuer(), issuer.subject())
                && is_responder(responder)
                && super::crl::to_offset(&validity.not_before) <= settings.time
                && settings.time <= super::crl::to_offset(&validity.not_after)
                && verify_signature(
                    &responder.cert.signature_algorithm,
                    issuer_key,
                    None,
                    &responder.tbs,
                    responder.cert.signature.raw_bytes(),
                    settings.time,
                    &settings.algorithms,
                )
                .is_ok()
                && verifies(&tbs.subject_public_key_info)
                && (has_nocheck(responder) || issued_status(responder).is_ok())
        })
    }
}

fn is_responder(cert: &PkixCert) -> bool {
    cert.ext.extended_key_usage.as_ref().is_some_and(|eku| eku.contains(&ID_KP_OCSP_SIGNING))
}

fn has_nocheck(cert: &PkixCert) -> bool {
    cert.cert.tbs_certificate.extensions.iter().flatten().any(|e| e.extn_id == OCSP_NOCHECK)
}

fn offset(t: &x509_ocsp::OcspGeneralizedTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.0.to_unix_duration().as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The single response names `cert`, issued by `issuer`.
fn names(single: &SingleResponse, cert: &PkixCert, issuer: &PkixCert) -> bool {
    let id = &single.cert_id;
    if id.serial_number.as_bytes() != cert.cert.tbs_certificate.serial_number.as_bytes() {
        return false;
    }
    let alg = &id.hash_algorithm.oid;
    let Ok(name_der) = issuer.subject().to_der() else {
        return false;
    };
    let key_bits = issuer.cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
    digest(alg, &name_der).is_some_and(|h| h == id.issuer_name_hash.as_bytes())
        && digest(alg, key_bits).is_some_and(|h| h == id.issuer_key_hash.as_bytes())
}

/// The OCSP responses sent with one request, asked before the CRLs.
pub struct OcspResponses<'a> {
    pub responses: &'a [Arc<OcspResponse>],
    pub settings: &'a ValidationSettings,
}

impl StatusSource for OcspResponses<'_> {
    fn status(
        &self,
        cert: &PkixCert,
        issuer: &PkixCert,
        at: OffsetDateTime,
        issued_status: IssuedStatus<'_>,
    ) -> Option<Result<(String, ExternalStatus), String>> {
        for response in self.responses {
            let speaks = |s: &&SingleResponse| match &s.next_update {
                Some(next) => at <= offset(next),
                None => at <= offset(&s.this_update),
            };
            let single = response.basic.tbs_response_data.responses.iter().filter(|s| names(s, cert, issuer));
            let mut singles = single.filter(speaks).peekable();
            if singles.peek().is_none() || !response.signed_for(issuer, self.settings, issued_status) {
                continue;
            }
            for single in singles {
                match &single.cert_status {
                    CertStatus::Good(_) => {
                        let good = ExternalStatus::Good { as_of: Some(offset(&single.this_update)) };
                        return Some(Ok(("OCSP".into(), good)));
                    }
                    CertStatus::Revoked(info) => {
                        let revoked = ExternalStatus::Revoked {
                            revoked_at: offset(&info.revocation_time),
                            reason: info.revocation_reason.map(|r| format!("{r:?}")),
                            as_of: Some(offset(&single.this_update)),
                        };
                        return Some(Ok(("OCSP".into(), revoked)));
                    }
                    // "Unknown" leaves the certificate to the CRLs.
                    CertStatus::Unknown(_) => {}
                }
            }
        }
        None
    }
}
