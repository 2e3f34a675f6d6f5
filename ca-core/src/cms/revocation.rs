//! Where the verifier learns whether a signer's certificate is revoked. The store answers for
//! certificates of our own CAs; a CRL-backed source for foreign trusted CAs plugs in through
//! the same trait.

use std::borrow::Cow;

use time::OffsetDateTime;
use x509_cert::Certificate;

use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;
use crate::store::{CertificateStatus, Store};

/// What a revocation source knows about one certificate *now*; the verifier compares it with
/// the signing time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationFacts {
    /// Issued and not revoked (a released hold is good again).
    Good,
    /// Revoked, or on certificateHold, since `revoked_at`.
    Revoked { reason: RevocationReason, revoked_at: OffsetDateTime },
    /// The source is responsible for the certificate's issuer but does not know the serial.
    Unknown,
}

/// A source of revocation status.
pub trait RevocationSource: Send + Sync {
    /// A short name for reports (`store`, `crl:<url>` …).
    fn name(&self) -> &str;

    /// The status of `certificate`, whose signature by `issuer` has been verified. `Ok(None)`
    /// means this source does not cover the issuer; `Err` that it should, but cannot answer
    /// (database down, CRL missing or stale).
    fn status(&self, certificate: &Certificate, issuer: &Certificate) -> Result<Option<RevocationFacts>, String>;
}

/// Revocation status of our own certificates, read from the store.
pub struct StoreRevocationSource<'a> {
    store: &'a dyn Store,
    /// SubjectPublicKeyInfo DER of our CAs: a certificate whose verified issuer has one of
    /// these keys is ours, so the store must know it.
    our_ca_keys: Cow<'a, [Vec<u8>]>,
}

/// The SubjectPublicKeyInfo DER of each certificate: what [`StoreRevocationSource`] recognises
/// our CAs by. Compute once and share with [`StoreRevocationSource::with_ca_keys`].
pub fn ca_keys(ca_certificates: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, der::Error> {
    use der::{Decode, Encode};
    ca_certificates
        .iter()
        .map(|der| Certificate::from_der(der)?.tbs_certificate.subject_public_key_info.to_der())
        .collect()
}

impl<'a> StoreRevocationSource<'a> {
    /// `our_ca_certificates`: the DER of the CA certificates whose issued certificates the
    /// store records (the issuing CA; the root too, for CA certificates).
    pub fn new(store: &'a dyn Store, our_ca_certificates: &[Vec<u8>]) -> Result<Self, der::Error> {
        Ok(Self { store, our_ca_keys: Cow::Owned(ca_keys(our_ca_certificates)?) })
    }

    /// As [`new`](Self::new), with keys computed once by [`ca_keys`].
    pub fn with_ca_keys(store: &'a dyn Store, our_ca_keys: &'a [Vec<u8>]) -> Self {
        Self { store, our_ca_keys: Cow::Borrowed(our_ca_keys) }
    }
}

impl RevocationSource for StoreRevocationSource<'_> {
    fn name(&self) -> &str {
        "store"
    }

    fn status(&self, certificate: &Certificate, issuer: &Certificate) -> Result<Option<RevocationFacts>, String> {
        use der::Encode;
        let issuer_key = issuer.tbs_certificate.subject_public_key_info.to_der().map_err(|e| e.to_string())?;
        if !self.our_ca_keys.contains(&issuer_key) {
            return Ok(None);
        }
        let Ok(serial) = SerialNumber::from_bytes(certificate.tbs_certificate.serial_number.as_bytes()) else {
            // Our CA only issues 20-byte random serials; anything else is not ours.
            return Ok(Some(RevocationFacts::Unknown));
        };
        let state = self.store.state(&serial).map_err(|e| e.to_string())?;
        Ok(Some(match state {
            None => RevocationFacts::Unknown,
            Some(r) => match (r.status, r.revocation) {
                (CertificateStatus::Reserved, _) => RevocationFacts::Unknown,
                (CertificateStatus::Revoked, Some(rev)) => {
                    RevocationFacts::Revoked { reason: rev.reason, revoked_at: rev.revoked_at }
                }
                // A revoked record without its revocation row is a corrupt store: say so.
                (CertificateStatus::Revoked, None) => return Err(format!("serial {serial} is revoked without a date")),
                (CertificateStatus::Issued, _) => RevocationFacts::Good,
            },
        }))
    }
}
