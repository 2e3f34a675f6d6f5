//! A certificate authority: its certificate and the signer holding its key. Also the creation
//! of the hierarchy (a self-signed root and the issuing CA under it), through the same
//! reserve → lint → sign → record pipeline as every other certificate.

use const_oid::AssociatedOid;
use der::Decode;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::Certificate;

use super::tbs::{prepare, IssuerContext};
use super::{IssuanceRequest, IssueError, IssuedCertificate, Pipeline};
use crate::clock::Clock;
use crate::config::PublicationUrls;
use crate::identity::Subject;
use crate::profile::lint::IssuerFacts;
use crate::profile::{key_identifier, CaPolicies, ProfileId};
use crate::serial::SerialNumber;
use crate::signer::Signer;
use crate::store::{CertificateStatus, RevokedEntry, Store, StoreError};

/// A CA's certificate and key do not belong together, or the certificate is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("CA certificate does not decode: {0}")]
    Certificate(String),
    #[error("the CA key does not match the public key in the CA certificate")]
    KeyMismatch,
    #[error("the CA certificate is not a CA (basicConstraints CA:TRUE missing)")]
    NotACa,
}

/// A CA ready to sign.
pub struct CertificateAuthority {
    /// The CA's name in this deployment (`root`, `issuing`); names its CRL and certificate files.
    pub name: String,
    pub certificate: Certificate,
    pub certificate_der: Vec<u8>,
    key_id: Vec<u8>,
    signer: Box<dyn Signer>,
}

fn to_offset(t: &x509_cert::time::Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl CertificateAuthority {
    /// Pair a CA certificate with the signer that holds its key.
    pub fn new(
        name: impl Into<String>,
        certificate_der: Vec<u8>,
        signer: Box<dyn Signer>,
    ) -> Result<Self, AuthorityError> {
        let certificate =
            Certificate::from_der(&certificate_der).map_err(|e| AuthorityError::Certificate(e.to_string()))?;
        if &certificate.tbs_certificate.subject_public_key_info != signer.public_key() {
            return Err(AuthorityError::KeyMismatch);
        }
        let is_ca = certificate.tbs_certificate.extensions.iter().flatten().any(|e| {
            e.extn_id == x509_cert::ext::pkix::BasicConstraints::OID
                && x509_cert::ext::pkix::BasicConstraints::from_der(e.extn_value.as_bytes()).is_ok_and(|bc| bc.ca)
        });
        if !is_ca {
            return Err(AuthorityError::NotACa);
        }
        let key_id = subject_key_id(&certificate);
        Ok(Self { name: name.into(), certificate, certificate_der, key_id, signer })
    }

    pub fn subject(&self) -> &Name {
        &self.certificate.tbs_certificate.subject
    }

    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    pub fn signer(&self) -> &dyn Signer {
        self.signer.as_ref()
    }

    /// notBefore and notAfter of the CA certificate.
    pub fn validity(&self) -> (OffsetDateTime, OffsetDateTime) {
        let v = &self.certificate.tbs_certificate.validity;
        (to_offset(&v.not_before), to_offset(&v.not_after))
    }

    /// Whether this CA may sign now: its certificate is within its validity period and neither
    /// it nor the certificate of the CA that issued it is revoked in `store`. Every issuing
    /// path goes through here (the [`Issuer`](super::Issuer) and [`Self::create_subordinate`]).
    ///
    /// The check is keyed by the certificates themselves (serial; the parent by subject name and
    /// key identifier), not by the CA's name, so it holds for several issuing CAs. A CA
    /// certificate this store did not issue (an external root) is not found and not refused.
    pub fn check_standing(&self, store: &dyn Store, now: OffsetDateTime) -> Result<(), IssueError> {
        let (not_before, not_after) = self.validity();
        if now < not_before || now > not_after {
            return Err(IssueError::IssuerNotValid { ca: self.name.clone(), now, not_before, not_after });
        }
        let tbs = &self.certificate.tbs_certificate;
        let Ok(serial) = SerialNumber::from_bytes(tbs.serial_number.as_bytes()) else {
            return Ok(());
        };
        let Some(own) = store.state(&serial)? else {
            return Ok(());
        };
        if let Some(rev) = own.revocation.filter(|_| own.status == CertificateStatus::Revoked) {
            return Err(IssueError::IssuerRevoked {
                ca: self.name.clone(),
                whose: format!("the certificate of CA {}", self.name),
                serial,
                reason: rev.reason,
                revoked_at: rev.revoked_at,
            });
        }
        if tbs.issuer == tbs.subject {
            return Ok(());
        }
        // The parent's revoked certificates (few: it issues CAs) through the revoked-list index.
        let Some(parent_key_id) = authority_key_id(&self.certificate) else {
            return Ok(());
        };
        let mut revoked = Vec::new();
        store.revoked_snapshot(&own.issuer, None, &mut |e: RevokedEntry| -> Result<(), StoreError> {
            revoked.push(e);
            Ok(())
        })?;
        for entry in revoked {
            let Some(der) = store.certificate(&entry.serial)?.and_then(|r| r.der) else { continue };
            let Ok(parent) = Certificate::from_der(&der) else { continue };
            if parent.tbs_certificate.subject == tbs.issuer && subject_key_id(&parent) == parent_key_id {
                return Err(IssueError::IssuerRevoked {
                    ca: self.name.clone(),
                    whose: format!("the certificate of the CA above {}, {},", self.name, tbs.issuer),
                    serial: entry.serial,
                    reason: entry.reason,
                    revoked_at: entry.revoked_at,
                });
            }
        }
        Ok(())
    }

    /// The CA certificate in PEM.
    pub fn certificate_pem(&self) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.certificate_der)
            .expect("a DER certificate always encodes as PEM")
    }

    /// Create a self-signed root CA certificate for the key behind `signer`, asserting
    /// `policies` for the certificates under it.
    #[allow(clippy::too_many_arguments)]
    pub fn create_root(
        name: &str,
        subject: Subject,
        signer: &dyn Signer,
        validity: Duration,
        store: &dyn Store,
        clock: &dyn Clock,
        urls: &PublicationUrls,
        actor: &str,
        policies: CaPolicies,
    ) -> Result<IssuedCertificate, IssueError> {
        let now = clock.now();
        let not_after = now + validity;
        let subject_name = subject.to_name()?;
        let request = IssuanceRequest {
            profile: ProfileId::RootCa,
            subject,
            roles: vec![],
            public_key: signer.public_key().clone(),
        };
        let issuer = IssuerContext {
            name: &subject_name,
            key_id: None,
            ca_name: name,
            algorithm: signer.algorithm(),
            crl_partitions: None,
            ca_policies: policies,
        };
        let prepared = prepare(&request, ProfileId::RootCa.profile(), &issuer, urls, now, not_after)?;
        let facts = IssuerFacts { subject: &subject_name, key_id: None, algorithm: signer.algorithm(), validity: None };
        let pipeline = Pipeline { signer, facts, store, actor, issuer: name };
        Ok(pipeline.run(vec![prepared])?.remove(0))
    }

    /// Certify a subordinate (issuing) CA's key with this CA, asserting `policies` for the
    /// certificates under it.
    #[allow(clippy::too_many_arguments)]
    pub fn create_subordinate(
        &self,
        subject: Subject,
        public_key: spki::SubjectPublicKeyInfoOwned,
        validity: Duration,
        store: &dyn Store,
        clock: &dyn Clock,
        urls: &PublicationUrls,
        actor: &str,
        policies: CaPolicies,
    ) -> Result<IssuedCertificate, IssueError> {
        let ca = CaCertificate { profile: ProfileId::IssuingCa, subject, public_key, validity, policies };
        self.certify_ca(ca, store, clock, urls, actor)
    }

    /// Cross-certify a new root (its subject and key) with this root, so that relying parties
    /// who trust only this one reach the new hierarchy: no path length limit, this root's CRL.
    #[allow(clippy::too_many_arguments)]
    pub fn create_cross(
        &self,
        subject: Subject,
        public_key: spki::SubjectPublicKeyInfoOwned,
        validity: Duration,
        store: &dyn Store,
        clock: &dyn Clock,
        urls: &PublicationUrls,
        actor: &str,
        policies: CaPolicies,
    ) -> Result<IssuedCertificate, IssueError> {
        let ca = CaCertificate { profile: ProfileId::CrossCa, subject, public_key, validity, policies };
        self.certify_ca(ca, store, clock, urls, actor)
    }

    fn certify_ca(
        &self,
        ca: CaCertificate,
        store: &dyn Store,
        clock: &dyn Clock,
        urls: &PublicationUrls,
        actor: &str,
    ) -> Result<IssuedCertificate, IssueError> {
        let CaCertificate { profile, subject, public_key, validity, policies } = ca;
        let now = clock.now();
        self.check_standing(store, now)?;
        let (nb, na) = self.validity();
        let not_after = now + validity;
        if not_after > na {
            return Err(IssueError::OutlivesIssuer { not_after, ca_not_after: na });
        }
        let request = IssuanceRequest { profile, subject, roles: vec![], public_key };
        let issuer = IssuerContext {
            name: self.subject(),
            key_id: Some(self.key_id()),
            ca_name: &self.name,
            algorithm: self.signer.algorithm(),
            crl_partitions: None,
            ca_policies: policies,
        };
        let prepared = prepare(&request, profile.profile(), &issuer, urls, now, not_after)?;
        let facts = IssuerFacts {
            subject: self.subject(),
            key_id: Some(self.key_id()),
            algorithm: self.signer.algorithm(),
            validity: Some((nb.unix_timestamp(), na.unix_timestamp())),
        };
        let pipeline = Pipeline { signer: self.signer(), facts, store, actor, issuer: &self.name };
        Ok(pipeline.run(vec![prepared])?.remove(0))
    }
}

/// A CA certificate to issue: what [`CertificateAuthority::certify_ca`] needs besides the
/// pipeline.
struct CaCertificate {
    profile: ProfileId,
    subject: Subject,
    public_key: spki::SubjectPublicKeyInfoOwned,
    validity: Duration,
    policies: CaPolicies,
}

/// The subject key identifier of a certificate (computed by RFC 5280 method 1 when absent).
fn subject_key_id(certificate: &Certificate) -> Vec<u8> {
    certificate
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == SubjectKeyIdentifier::OID)
        .and_then(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
        .map(|ski| ski.0.as_bytes().to_vec())
        .unwrap_or_else(|| key_identifier(&certificate.tbs_certificate.subject_public_key_info))
}

/// The keyIdentifier of the authority key identifier, if there is one.
fn authority_key_id(certificate: &Certificate) -> Option<Vec<u8>> {
    certificate
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == AuthorityKeyIdentifier::OID)
        .and_then(|e| AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
        .and_then(|aki| aki.key_identifier)
        .map(|k| k.as_bytes().to_vec())
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("name", &self.name)
            .field("subject", &self.subject().to_string())
            .finish()
    }
}
