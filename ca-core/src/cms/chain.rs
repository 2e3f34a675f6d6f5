//! Certificate path validation for CMS signers.
//!
//! Chain building, signatures along the path, validity of the end-entity and intermediate
//! certificates and basicConstraints are rustls-webpki's (the conventions: do not hand-roll
//! chain building). webpki is told to accept any extendedKeyUsage, because our end-entity
//! certificates carry role OIDs next to clientAuth/emailProtection and whether an AUTH or a SIGN
//! key was used is a relying-party requirement reported with its own reason, not a path
//! failure. On top of webpki, this module checks what webpki deliberately leaves out: the trust
//! anchor's own validity and keyCertSign in every CA certificate of the path.

use der::Decode;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_cert::ext::pkix::KeyUsage;
use x509_cert::Certificate;

use super::report::Reason;
use super::CmsError;
use crate::identity::format_dn;

const ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512,
    webpki::aws_lc_rs::ECDSA_P256_SHA256,
    webpki::aws_lc_rs::ECDSA_P256_SHA384,
    webpki::aws_lc_rs::ECDSA_P384_SHA256,
    webpki::aws_lc_rs::ECDSA_P384_SHA384,
];

/// A certificate kept both parsed and as DER.
#[derive(Clone, Debug)]
pub(crate) struct Parsed {
    pub der: Vec<u8>,
    pub cert: Certificate,
}

impl Parsed {
    fn new(der: &[u8]) -> Result<Self, CmsError> {
        let cert = Certificate::from_der(der).map_err(|e| CmsError::Certificate(e.to_string()))?;
        Ok(Self { der: der.to_vec(), cert })
    }
}

/// Trust anchors (roots) and intermediate CA certificates, parsed once and shared by every
/// verification.
pub struct TrustStore {
    anchors: Vec<(Parsed, TrustAnchor<'static>)>,
    pub(crate) intermediates: Vec<Parsed>,
}

impl TrustStore {
    /// `anchors`: DER of the trusted roots; `intermediates`: DER of CA certificates that may
    /// complete a path when a CMS does not carry them.
    pub fn new(anchors: &[Vec<u8>], intermediates: &[Vec<u8>]) -> Result<Self, CmsError> {
        let anchors = anchors
            .iter()
            .map(|der| {
                let parsed = Parsed::new(der)?;
                let anchor = webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
                    .map_err(|e| CmsError::Certificate(format!("trust anchor: {e}")))?
                    .to_owned();
                Ok((parsed, anchor))
            })
            .collect::<Result<_, CmsError>>()?;
        let intermediates = intermediates.iter().map(|der| Parsed::new(der)).collect::<Result<_, _>>()?;
        Ok(Self { anchors, intermediates })
    }

    pub(crate) fn all_certificates(&self) -> impl Iterator<Item = &Parsed> {
        self.anchors.iter().map(|(p, _)| p).chain(&self.intermediates)
    }
}

/// The result of validating one signer certificate.
pub(crate) struct PathOutcome {
    /// A path to a trust anchor exists (possibly with expired or not-yet-valid certificates).
    pub path_found: bool,
    /// Issuer first, trust anchor last; empty when no path was found.
    pub path: Vec<Certificate>,
    pub problems: Vec<(Reason, String)>,
}

struct AnyPurpose;

impl ExtendedKeyUsageValidator for AnyPurpose {
    fn validate(&self, mut iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        // Still refuse a malformed extension.
        iter.try_for_each(|purpose| purpose.map(|_| ()))
    }
}

fn unix(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.unix_timestamp().max(0) as u64))
}

pub(crate) fn to_offset(t: &x509_cert::time::Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn validity_problem(cert: &Certificate, at: OffsetDateTime, what: &str) -> Option<(Reason, String)> {
    let v = &cert.tbs_certificate.validity;
    let (from, to) = (to_offset(&v.not_before), to_offset(&v.not_after));
    let name = format_dn(&cert.tbs_certificate.subject);
    if at < from {
        Some((Reason::NotYetValid, format!("{what} {name} is valid only from {from}, checked at {at}")))
    } else if at > to {
        Some((Reason::Expired, format!("{what} {name} expired at {to}, checked at {at}")))
    } else {
        None
    }
}

impl TrustStore {
    /// Validate `leaf` at `at`, with `extra` (the CMS's certificates) as possible intermediates.
    pub(crate) fn validate(&self, leaf: &Parsed, extra: &[Parsed], at: OffsetDateTime) -> PathOutcome {
        let mut problems = Vec::new();
        if let Some(p) = validity_problem(&leaf.cert, at, "the signer certificate") {
            problems.push(p);
        }
        // webpki checks the leaf first and stops at an expired one; to tell "expired but
        // otherwise trusted" from "expired and untrusted", build the path at a time the leaf
        // was valid and report the leaf's validity separately.
        let v = &leaf.cert.tbs_certificate.validity;
        let path_time = match problems.first() {
            Some((Reason::Expired, _)) => to_offset(&v.not_after),
            Some(_) => to_offset(&v.not_before),
            None => at,
        };
        let leaf_der = CertificateDer::from(leaf.der.as_slice());
        let ee = match EndEntityCert::try_from(&leaf_der) {
            Ok(ee) => ee,
            Err(e) => {
                problems.push((Reason::Untrusted, format!("webpki cannot parse the signer certificate: {e}")));
                return PathOutcome { path_found: false, path: Vec::new(), problems };
            }
        };
        let intermediates: Vec<CertificateDer<'_>> = self
            .intermediates
            .iter()
            .chain(extra)
            .filter(|c| c.der != leaf.der)
            .map(|c| CertificateDer::from(c.der.as_slice()))
            .collect();
        let anchors: Vec<TrustAnchor<'_>> = self.anchors.iter().map(|(_, a)| a.clone()).collect();
        let verified =
            ee.verify_for_usage(ALGORITHMS, &anchors, &intermediates, unix(path_time), AnyPurpose, None, None);
        let path = match verified {
            Ok(path) => path,
            Err(e) => {
                let reason = match e {
                    webpki::Error::CertExpired { .. } => Reason::Expired,
                    webpki::Error::CertNotValidYet { .. } => Reason::NotYetValid,
                    _ => Reason::Untrusted,
                };
                let detail = match reason {
                    Reason::Untrusted => format!("no path to a trust anchor: {e}"),
                    _ => format!("a CA certificate in the path is not valid at {path_time}: {e}"),
                };
                problems.push((reason, detail));
                return PathOutcome { path_found: false, path: Vec::new(), problems };
            }
        };
        let mut chain = Vec::new();
        for cert in path.intermediate_certificates() {
            match Certificate::from_der(cert.der().as_ref()) {
                Ok(c) => chain.push(c),
                Err(e) => problems.push((Reason::Untrusted, format!("unreadable intermediate: {e}"))),
            }
        }
        let anchor = path.anchor();
        if let Some((parsed, _)) = self
            .anchors
            .iter()
            .find(|(_, a)| a.subject == anchor.subject && a.subject_public_key_info == anchor.subject_public_key_info)
        {
            chain.push(parsed.cert.clone());
        }
        // webpki does not check the anchor's validity, and checked the intermediates at
        // `path_time`, which differs from `at` when the leaf itself is out of its validity.
        for ca in &chain {
            if let Some(p) = validity_problem(ca, at, "CA certificate") {
                problems.push(p);
            }
            if !has_key_cert_sign(ca) {
                problems.push((
                    Reason::Untrusted,
                    format!("CA certificate {} lacks keyCertSign", format_dn(&ca.tbs_certificate.subject)),
                ));
            }
        }
        PathOutcome { path_found: true, path: chain, problems }
    }
}

/// keyUsage, when present, must allow certificate signing (RFC 5280 4.2.1.3).
fn has_key_cert_sign(cert: &Certificate) -> bool {
    use const_oid::AssociatedOid;
    let Some(ext) = cert.tbs_certificate.extensions.iter().flatten().find(|e| e.extn_id == KeyUsage::OID) else {
        return true;
    };
    KeyUsage::from_der(ext.extn_value.as_bytes()).map(|ku| ku.key_cert_sign()).unwrap_or(false)
}
