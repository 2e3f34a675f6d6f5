//! Certificate path validation for CMS signers.
//!
//! Path building and the RFC 5280 §6.1 algorithm are [`crate::pkix`]'s (policies, name
//! constraints for every name form, key rollover, §7.1 name comparison, the algorithm and key
//! policy). No extendedKeyUsage is demanded here, because our end-entity certificates carry
//! role OIDs next to clientAuth/emailProtection and whether an AUTH or a SIGN key was used is
//! a relying-party requirement reported with its own reason, not a path failure. Revocation of
//! the path's links is asked afterwards from the verifier's revocation sources. On top of the
//! engine, this module checks the trust anchor's own validity.

use std::sync::{Arc, OnceLock};

use time::OffsetDateTime;
use x509_cert::Certificate;

use super::options::PathOptions;
use super::path_cache::{
    fingerprint, BoundedCache, CaPath, Fingerprint, PathCache, PathCacheStats, PathFacts, VerifiedPath,
};
use super::report::{CertificateReport, PathCertificate, Reason};
use super::CmsError;
use crate::identity::{format_dn, CertificateIdentity};
use crate::pkix::{self, AlgorithmPolicy, FailureKind, PkixCert, RevocationPolicy};

/// A certificate kept both parsed and as DER.
#[derive(Clone, Debug)]
pub(crate) struct Parsed {
    pub der: Vec<u8>,
    pub cert: Certificate,
}

impl Parsed {
    fn new(der: &[u8]) -> Result<Self, CmsError> {
        // UTCTime years 1950-1969 (RFC 5280 §4.1.2.5.1) are read as 1970, which `der` can hold.
        let cert = pkix::decode_certificate(der).map_err(|e| CmsError::Certificate(e.to_string()))?;
        Ok(Self { der: der.to_vec(), cert })
    }
}

/// A certificate parsed once, with what a report says about it: shared by every request that
/// presents the same certificate while it is remembered.
#[derive(Debug)]
pub(crate) struct KnownCertificate {
    pub parsed: Parsed,
    /// [`fingerprint`] of the DER: the key of both caches.
    pub fingerprint: Fingerprint,
    /// Shared by every report on the certificate.
    pub report: Arc<CertificateReport>,
    /// The certificate as the path engine reads it, made on first use (revocation by CRLs or
    /// OCSP reads the path through the engine): a remembered signer is not parsed again per
    /// request. `None`: the engine cannot read it.
    engine: OnceLock<Option<Arc<PkixCert>>>,
}

impl KnownCertificate {
    pub fn parse(der: &[u8]) -> Result<Self, CmsError> {
        let parsed = Parsed::new(der)?;
        let tbs = &parsed.cert.tbs_certificate;
        let report = Arc::new(CertificateReport {
            serial: hex::encode(tbs.serial_number.as_bytes()),
            subject: format_dn(&tbs.subject),
            issuer: format_dn(&tbs.issuer),
            not_before: to_offset(&tbs.validity.not_before),
            not_after: to_offset(&tbs.validity.not_after),
            identity: CertificateIdentity::from_certificate(&parsed.cert),
            der: der.to_vec(),
        });
        Ok(Self { fingerprint: fingerprint(&[der]), parsed, report, engine: OnceLock::new() })
    }

    /// The certificate as the path engine reads it (parsed once per [`KnownCertificate`]).
    pub fn engine(&self) -> Option<Arc<PkixCert>> {
        self.engine.get_or_init(|| PkixCert::from_der(&self.parsed.der).ok().map(Arc::new)).clone()
    }
}

/// Trust anchors (roots) and intermediate CA certificates, parsed once and shared by every
/// verification; and what earlier verifications established about the certificates they saw.
pub struct TrustStore {
    anchors: Vec<Arc<PkixCert>>,
    /// The intermediates as the path engine reads them.
    pool: Vec<Arc<PkixCert>>,
    /// The anchors and intermediates, for finding a signer among them.
    trusted: Vec<Arc<KnownCertificate>>,
    path_cache: PathCache,
    /// Parsed signer certificates with a validated path, by fingerprint: a request presenting
    /// one of them neither parses it nor re-reads its identity.
    certificates: BoundedCache<Arc<KnownCertificate>>,
    algorithms: AlgorithmPolicy,
}

/// Leaf certificates whose validated paths are remembered by default (about 500 bytes each,
/// the leaf's entry in an answer's `path` included; the CA part is shared).
pub const DEFAULT_PATH_CACHE: usize = 100_000;
/// Parsed signer certificates remembered by default (about 6 KiB each).
pub const DEFAULT_CERTIFICATE_CACHE: usize = 10_000;

impl TrustStore {
    /// `anchors`: DER of the trusted roots; `intermediates`: DER of CA certificates that may
    /// complete a path when a CMS does not carry them.
    pub fn new(anchors: &[Vec<u8>], intermediates: &[Vec<u8>]) -> Result<Self, CmsError> {
        let anchors: Vec<Arc<PkixCert>> = anchors
            .iter()
            .map(|der| {
                PkixCert::from_der(der).map(Arc::new).map_err(|e| CmsError::Certificate(format!("trust anchor: {e}")))
            })
            .collect::<Result<_, CmsError>>()?;
        let intermediates: Vec<Parsed> = intermediates.iter().map(|der| Parsed::new(der)).collect::<Result<_, _>>()?;
        let pool = intermediates
            .iter()
            .map(|p| PkixCert::from_der(&p.der).map(Arc::new).map_err(|e| CmsError::Certificate(e.to_string())))
            .collect::<Result<_, _>>()?;
        let trusted = anchors
            .iter()
            .map(|a| a.der.as_slice())
            .chain(intermediates.iter().map(|p| p.der.as_slice()))
            .map(|der| KnownCertificate::parse(der).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            anchors,
            pool,
            trusted,
            path_cache: PathCache::new(DEFAULT_PATH_CACHE),
            certificates: BoundedCache::new(DEFAULT_CERTIFICATE_CACHE),
            algorithms: AlgorithmPolicy::default(),
        })
    }

    /// Accept keys and signature algorithms by `algorithms` (default: RSA from 2048 bits,
    /// P-256 and up, no DSA, no SHA-1).
    pub fn with_algorithms(mut self, algorithms: AlgorithmPolicy) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// The algorithm and key policy of every validation.
    pub fn algorithms(&self) -> &AlgorithmPolicy {
        &self.algorithms
    }

    /// The trust anchors and configured intermediates, as the path engine reads them.
    pub(crate) fn environment(&self) -> (Vec<Arc<PkixCert>>, Vec<Arc<PkixCert>>) {
        (self.anchors.clone(), self.pool.clone())
    }

    /// Remember at most `capacity` validated paths, and parsed certificates up to
    /// [`DEFAULT_CERTIFICATE_CACHE`] of them (0: validate every path from scratch).
    pub fn with_path_cache(mut self, capacity: usize) -> Self {
        self.path_cache = PathCache::new(capacity);
        self.certificates = BoundedCache::new(capacity.min(DEFAULT_CERTIFICATE_CACHE));
        self
    }

    /// The anchors and intermediates, parsed.
    pub(crate) fn trusted_certificates(&self) -> impl Iterator<Item = &Arc<KnownCertificate>> {
        self.trusted.iter()
    }

    /// `der` parsed: one of the trust store's own certificates (a CMS usually carries the
    /// issuing CA's), remembered from an earlier verification, or parsed now.
    pub(crate) fn certificate(&self, der: &[u8]) -> Result<Arc<KnownCertificate>, CmsError> {
        let key = fingerprint(&[der]);
        if let Some(known) = self.trusted.iter().find(|c| c.fingerprint == key) {
            return Ok(known.clone());
        }
        match self.certificates.get(&key) {
            Some(known) => Ok(known),
            None => KnownCertificate::parse(der).map(Arc::new),
        }
    }

    /// Remember a certificate whose path was validated.
    pub(crate) fn remember(&self, certificate: &Arc<KnownCertificate>) {
        self.certificates.insert(certificate.fingerprint, certificate.clone());
    }
}

/// The result of validating one signer certificate.
pub(crate) struct PathOutcome {
    /// A path to a trust anchor (possibly with expired or not-yet-valid certificates), or none.
    pub path: Option<VerifiedPath>,
    pub problems: Vec<(Reason, String)>,
}

pub(crate) fn to_offset(t: &x509_cert::time::Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn validity_problem(cert: &Certificate, at: OffsetDateTime, what: &str) -> Option<(Reason, String)> {
    let v = &cert.tbs_certificate.validity;
    let (from, to) = (to_offset(&v.not_before), to_offset(&v.not_after));
    let name = || format_dn(&cert.tbs_certificate.subject);
    if at < from {
        Some((Reason::NotYetValid, format!("{what} {} is valid only from {from}, checked at {at}", name())))
    } else if at > to {
        Some((Reason::Expired, format!("{what} {} expired at {to}, checked at {at}", name())))
    } else {
        None
    }
}

impl TrustStore {
    /// Validate `leaf` at `at`, with `extra` (the CMS's certificates) and the options'
    /// intermediates as possible intermediates, under the relying party's `options` (a
    /// remembered path answers only when they cannot change the path).
    pub(crate) fn validate(
        &self,
        leaf: &KnownCertificate,
        extra: &[&[u8]],
        at: OffsetDateTime,
        options: &PathOptions,
    ) -> PathOutcome {
        let (leaf_key, leaf) = (leaf.fingerprint, &leaf.parsed);
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
        let remembered = if options.constrain_path() { None } else { self.path_cache.get(&leaf_key, path_time) };
        let path = match remembered {
            Some(path) => path,
            None => match self.build_path(leaf, leaf_key, extra, path_time, options) {
                Ok(path) => path,
                Err(problem) => {
                    problems.push(problem);
                    return PathOutcome { path: None, problems };
                }
            },
        };
        problems.extend(path.ca.static_problems.iter().cloned());
        // webpki does not check the anchor's validity, and checked the intermediates at
        // `path_time`, which differs from `at` when the leaf itself is out of its validity.
        for ca in &path.ca.certificates {
            if let Some(p) = validity_problem(&ca.cert, at, "CA certificate") {
                problems.push(p);
            }
        }
        PathOutcome { path: Some(path), problems }
    }

    /// Build and check a path with the RFC 5280 engine at `path_time`, and remember it when
    /// the options do not constrain it.
    fn build_path(
        &self,
        leaf: &Parsed,
        leaf_key: [u8; 32],
        extra: &[&[u8]],
        path_time: OffsetDateTime,
        options: &PathOptions,
    ) -> Result<VerifiedPath, (Reason, String)> {
        let target = PkixCert::from_der(&leaf.der)
            .map(Arc::new)
            .map_err(|e| (Reason::Untrusted, format!("the certificate cannot be read for path validation: {e}")))?;
        let mut certificates = self.pool.clone();
        certificates.extend(options.intermediates.iter().cloned());
        // Unreadable extra certificates simply offer no path.
        certificates.extend(
            extra.iter().filter(|der| **der != leaf.der).filter_map(|der| PkixCert::from_der(der).ok().map(Arc::new)),
        );
        let env =
            pkix::Environment { anchors: self.anchors.clone(), certificates, crls: Vec::new(), status: Vec::new() };
        let mut settings = options.settings(path_time, &self.algorithms);
        // Revocation of every link is asked afterwards (see `check_certificate`): a remembered
        // path must not remember a status.
        settings.revocation = RevocationPolicy::None;
        let path = pkix::validate_path(&target, &env, &settings).map_err(|f| {
            let reason = match f.kind {
                FailureKind::Expired => Reason::Expired,
                FailureKind::NotYetValid => Reason::NotYetValid,
                FailureKind::Algorithm => Reason::UnsupportedAlgorithm,
                FailureKind::Profile => Reason::ProfileViolation,
                _ => Reason::Untrusted,
            };
            let detail = match reason {
                Reason::Untrusted => format!("no valid path to a trust anchor: {f}"),
                Reason::UnsupportedAlgorithm => format!("refused by the algorithm policy: {f}"),
                Reason::ProfileViolation => format!("strict validation: {f}"),
                _ => format!("a CA certificate in the path is not valid at {path_time}: {f}"),
            };
            (reason, detail)
        })?;
        let cas = &path.certificates[1..];
        let certificates: Vec<Arc<PkixCert>> = cas.to_vec();
        // The window in which the validity checks hold: the leaf and every intermediate.
        let mut valid_from = to_offset(&leaf.cert.tbs_certificate.validity.not_before);
        let mut valid_until = to_offset(&leaf.cert.tbs_certificate.validity.not_after);
        for c in &certificates[..certificates.len().saturating_sub(1)] {
            valid_from = valid_from.max(to_offset(&c.cert.tbs_certificate.validity.not_before));
            valid_until = valid_until.min(to_offset(&c.cert.tbs_certificate.validity.not_after));
        }
        let subjects = certificates.iter().map(|c| format_dn(&c.cert.tbs_certificate.subject)).collect();
        let facts = PathFacts {
            target: Arc::new(PathCertificate::of(&path.certificates[0])),
            policies: path.user_constrained_policy_set.iter().map(|p| p.to_string()).collect(),
            findings: path.findings.into(),
        };
        let ca_key = fingerprint(&cas.iter().map(|c| c.der.as_slice()).collect::<Vec<_>>());
        let described = certificates.iter().map(|c| PathCertificate::of(c)).collect();
        let ca = CaPath { certificates, subjects, described, static_problems: Vec::new() };
        if ca.certificates.is_empty() || options.constrain_path() {
            // The target is itself an anchor (not worth remembering), or the path was found
            // under the relying party's own constraints.
            return Ok(VerifiedPath { ca: Arc::new(ca), facts: Arc::new(facts), valid_from, valid_until });
        }
        Ok(self.path_cache.insert(leaf_key, ca_key, ca, facts, valid_from, valid_until))
    }

    /// Hits, misses and size of the validated-path cache.
    pub fn path_cache_stats(&self) -> PathCacheStats {
        self.path_cache.stats()
    }
}
