//! Where the verifier learns whether a signer's certificate is revoked. The store answers for
//! certificates of our own CAs; a CRL-backed source for foreign trusted CAs plugs in through
//! the same trait.

use std::borrow::Cow;
use std::sync::Arc;

use time::OffsetDateTime;
use x509_cert::Certificate;

use crate::pkix::{OcspResponse, PkixCrl};
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;
use crate::store::{CertificateState, CertificateStatus, StatusAsOf, Store};

/// What a revocation source knows about one certificate *now*; the verifier compares it with
/// the signing time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationFacts {
    /// Issued and not revoked (a released hold is good again).
    Good,
    /// Revoked, or on certificateHold, since `revoked_at`; for a compromise, the key is known
    /// or suspected to have been out of its holder's control since `invalidity_date`
    /// (RFC 5280 5.3.2), which may be earlier.
    Revoked { reason: RevocationReason, revoked_at: OffsetDateTime, invalidity_date: Option<OffsetDateTime> },
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

    /// [`status`](Self::status) of every link of a path (certificate, its issuer) at once, so a
    /// source can answer them in one read.
    fn statuses(&self, links: &[(&Certificate, &Certificate)]) -> Vec<Result<Option<RevocationFacts>, String>> {
        links.iter().map(|(certificate, issuer)| self.status(certificate, issuer)).collect()
    }

    /// [`statuses`](Self::statuses) with how fresh they are: `Some(t)` when the source's data
    /// is complete only up to `t` (a lagging replica), `None` when current when asked.
    fn statuses_as_of(
        &self,
        links: &[(&Certificate, &Certificate)],
    ) -> (Vec<Result<Option<RevocationFacts>, String>>, Option<OffsetDateTime>) {
        (self.statuses(links), None)
    }

    /// CRLs this source fetched for `certificate` (the complete CRL of its distribution point
    /// and the delta CRL a FreshestCRL names), asked for the links no source gave a status
    /// for. They decide nothing by themselves: the verifier processes them by RFC 5280 §6.3
    /// (scope, the CRL issuer's cRLSign and own path, deltas) with the CRLs at hand. Empty:
    /// this source fetches none for the certificate; `Err`: it should, but cannot.
    fn crls(&self, _certificate: &Certificate) -> Result<Vec<Arc<PkixCrl>>, String> {
        Ok(Vec::new())
    }

    /// OCSP responses this source fetched for `certificate` issued by `issuer` (from its
    /// AIA), asked for the links whose CRLs could not be had; processed like the responses a
    /// relying party sends (RFC 6960 §4.2.2.2 responder, CertID, times). Empty: this source
    /// fetches none for the certificate; `Err`: it should, but cannot.
    fn ocsp_responses(
        &self,
        _certificate: &Certificate,
        _issuer: &Certificate,
    ) -> Result<Vec<Arc<OcspResponse>>, String> {
        Ok(Vec::new())
    }
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

impl StoreRevocationSource<'_> {
    /// The serial to look up, or the answer without looking (not ours; not a serial of ours).
    fn serial_of(
        &self,
        certificate: &Certificate,
        issuer: &Certificate,
    ) -> Result<SerialNumber, Result<Option<RevocationFacts>, String>> {
        use der::Encode;
        let issuer_key = issuer.tbs_certificate.subject_public_key_info.to_der().map_err(|e| Err(e.to_string()))?;
        if !self.our_ca_keys.contains(&issuer_key) {
            return Err(Ok(None));
        }
        // Our CA only issues 20-byte random serials; anything else is not ours.
        SerialNumber::from_bytes(certificate.tbs_certificate.serial_number.as_bytes())
            .map_err(|_| Ok(Some(RevocationFacts::Unknown)))
    }
}

fn facts(serial: &SerialNumber, state: Option<CertificateState>) -> Result<Option<RevocationFacts>, String> {
    Ok(Some(match state {
        None => RevocationFacts::Unknown,
        Some(r) => match (r.status, r.revocation) {
            (CertificateStatus::Reserved, _) => RevocationFacts::Unknown,
            (CertificateStatus::Revoked, Some(rev)) => RevocationFacts::Revoked {
                reason: rev.reason,
                revoked_at: rev.revoked_at,
                invalidity_date: rev.invalidity_date,
            },
            // A revoked record without its revocation row is a corrupt store: say so.
            (CertificateStatus::Revoked, None) => return Err(format!("serial {serial} is revoked without a date")),
            (CertificateStatus::Issued, _) => RevocationFacts::Good,
        },
    }))
}

impl RevocationSource for StoreRevocationSource<'_> {
    fn name(&self) -> &str {
        "store"
    }

    fn status(&self, certificate: &Certificate, issuer: &Certificate) -> Result<Option<RevocationFacts>, String> {
        self.statuses(&[(certificate, issuer)]).pop().unwrap_or(Ok(None))
    }

    fn statuses(&self, links: &[(&Certificate, &Certificate)]) -> Vec<Result<Option<RevocationFacts>, String>> {
        self.statuses_as_of(links).0
    }

    /// One read of the store with [`Store::states_as_of`]: from a replica, the time up to which
    /// it holds every committed change.
    fn statuses_as_of(
        &self,
        links: &[(&Certificate, &Certificate)],
    ) -> (Vec<Result<Option<RevocationFacts>, String>>, Option<OffsetDateTime>) {
        let mut answers: Vec<Result<Option<RevocationFacts>, String>> = Vec::with_capacity(links.len());
        let mut lookups: Vec<(usize, SerialNumber)> = Vec::new();
        for (i, (certificate, issuer)) in links.iter().enumerate() {
            match self.serial_of(certificate, issuer) {
                Ok(serial) => {
                    lookups.push((i, serial));
                    answers.push(Ok(None)); // filled below
                }
                Err(answer) => answers.push(answer),
            }
        }
        if lookups.is_empty() {
            return (answers, None);
        }
        let serials: Vec<SerialNumber> = lookups.iter().map(|(_, s)| s.clone()).collect();
        match self.store.states_as_of(&serials) {
            Ok((states, as_of)) => {
                for ((i, serial), state) in lookups.iter().zip(states) {
                    answers[*i] = facts(serial, state);
                }
                let as_of = match as_of {
                    StatusAsOf::Current => None,
                    StatusAsOf::Replica(complete) => Some(complete),
                };
                (answers, as_of)
            }
            Err(e) => {
                for (i, _) in &lookups {
                    answers[*i] = Err(e.to_string());
                }
                (answers, None)
            }
        }
    }
}
