//! A certificate authority: its certificate and the signer holding its key. Also the creation
//! of the hierarchy (a self-signed root and the issuing CA under it), through the same
//! reserve → lint → sign → record pipeline as every other certificate.

use const_oid::AssociatedOid;
use der::Decode;
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::name::Name;
use x509_cert::Certificate;

use super::tbs::{prepare, IssuerContext};
use super::{IssuanceRequest, IssueError, IssuedCertificate, Pipeline};
use crate::clock::Clock;
use crate::config::PublicationUrls;
use crate::identity::Subject;
use crate::profile::lint::IssuerFacts;
use crate::profile::{key_identifier, ProfileId};
use crate::signer::Signer;
use crate::store::Store;

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
        let key_id = certificate
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == SubjectKeyIdentifier::OID)
            .and_then(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
            .map(|ski| ski.0.as_bytes().to_vec())
            .unwrap_or_else(|| key_identifier(&certificate.tbs_certificate.subject_public_key_info));
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

    /// The CA certificate in PEM.
    pub fn certificate_pem(&self) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.certificate_der)
            .expect("a DER certificate always encodes as PEM")
    }

    /// Create a self-signed root CA certificate for the key behind `signer`.
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
        };
        let prepared = prepare(&request, ProfileId::RootCa.profile(), &issuer, urls, now, not_after)?;
        let facts = IssuerFacts { subject: &subject_name, key_id: None, algorithm: signer.algorithm(), validity: None };
        let pipeline = Pipeline { signer, facts, store, actor, issuer: name };
        Ok(pipeline.run(vec![prepared])?.remove(0))
    }

    /// Certify a subordinate (issuing) CA's key with this CA.
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
    ) -> Result<IssuedCertificate, IssueError> {
        let now = clock.now();
        let (nb, na) = self.validity();
        if now < nb || now > na {
            return Err(IssueError::IssuerNotValid(now));
        }
        let not_after = now + validity;
        if not_after > na {
            return Err(IssueError::OutlivesIssuer { not_after, ca_not_after: na });
        }
        let request = IssuanceRequest { profile: ProfileId::IssuingCa, subject, roles: vec![], public_key };
        let issuer = IssuerContext {
            name: self.subject(),
            key_id: Some(self.key_id()),
            ca_name: &self.name,
            algorithm: self.signer.algorithm(),
            crl_partitions: None,
        };
        let prepared = prepare(&request, ProfileId::IssuingCa.profile(), &issuer, urls, now, not_after)?;
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

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("name", &self.name)
            .field("subject", &self.subject().to_string())
            .finish()
    }
}
