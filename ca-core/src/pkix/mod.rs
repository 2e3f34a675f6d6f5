//! RFC 5280 §6 certification path validation for relying parties: path building over trust
//! anchors and a pool of candidate certificates (cross-certificates, self-issued key-rollover
//! certificates, several candidate paths), the full §6.1 algorithm and CRL processing by §6.3.
//!
//! Why an engine of our own and not a crate:
//! - `certval` (RFC 5280 + RFC 5937, tested on PKITS) is only published as 0.2.0-rc.1, built
//!   on der 0.8 / x509-cert 0.3 (this workspace is on der 0.7 / x509-cert 0.2.5, the only
//!   generation `x509-ocsp` exists for), requires Rust 1.88 (ours: 1.85) and verifies with
//!   the RustCrypto `rsa` crate; wrapping it means two generations of every format crate and
//!   re-encoding every certificate at the boundary.
//! - `pkix-path` 0.3 / `pkix-revocation` 0.3 are on our generation and take a pluggable
//!   verifier, but do no path building (`pkix-path-builder` 0.1 is "not yet implemented"), do
//!   not expose the valid_policy_tree, and are a few months old with one maintainer.
//!
//! Signatures go through aws-lc-rs (DSA, which aws-lc-rs lacks, through RustCrypto's `dsa`,
//! verification only); every structure is decoded with RustCrypto's x509-cert types.
//! Conformance: all 249 entries of NIST PKITS (`tests/pkits.rs`, data in `fixtures/pkits`).

mod algorithm;
mod build;
mod cert;
mod constraints;
mod crl;
mod findings;
mod name;
mod ocsp;
mod policy;
mod validate;

use std::sync::Arc;

use const_oid::ObjectIdentifier;
use time::OffsetDateTime;

pub use algorithm::{describe_key, AlgorithmPolicy};
pub(crate) use cert::decode_certificate;
pub use cert::PkixCert;
pub use crl::PkixCrl;
pub use findings::{profile_findings, ProfileFinding};
pub use name::names_equal;
pub use ocsp::{OcspResponse, OcspResponses};
pub use policy::ANY_POLICY;

/// SHA-256 of a DER encoding: how certificates are told apart.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Input that cannot be read at all (a certificate or CRL that is not DER of its type).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PkixError {
    #[error("malformed {0}")]
    Malformed(String),
}

/// What the relying party demands of revocation status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationPolicy {
    /// Every certificate of the path must have a current status; without one the path fails.
    #[default]
    Require,
    /// Check what can be had; a missing status is a note.
    Prefer,
    /// Do not check.
    None,
}

/// The RFC 5280 §6.1.1 inputs a relying party chooses, and this engine's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationSettings {
    pub time: OffsetDateTime,
    /// user-initial-policy-set; `[ANY_POLICY]` accepts any.
    pub initial_policy_set: Vec<ObjectIdentifier>,
    pub initial_explicit_policy: bool,
    pub initial_policy_mapping_inhibit: bool,
    pub initial_inhibit_any_policy: bool,
    /// Most intermediate certificates (self-issued ones included) a path may have.
    pub max_intermediates: Option<usize>,
    pub revocation: RevocationPolicy,
    pub algorithms: AlgorithmPolicy,
    /// Purposes the target's extendedKeyUsage must allow (anyExtendedKeyUsage allows all;
    /// no extension allows all).
    pub required_eku: Vec<ObjectIdentifier>,
    /// CA-side obligations broken anywhere in the path ([`profile_findings`]) fail it
    /// ([`FailureKind::Profile`]) instead of being reported.
    pub strict: bool,
}

impl ValidationSettings {
    pub fn at(time: OffsetDateTime) -> Self {
        Self {
            time,
            initial_policy_set: vec![ANY_POLICY],
            initial_explicit_policy: false,
            initial_policy_mapping_inhibit: false,
            initial_inhibit_any_policy: false,
            max_intermediates: None,
            revocation: RevocationPolicy::Require,
            algorithms: AlgorithmPolicy::default(),
            required_eku: Vec::new(),
            strict: false,
        }
    }
}

/// A status another source (our store, an OCSP response) gives for one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalStatus {
    /// `as_of`: the time the status is known to be current at (an OCSP response's thisUpdate).
    Good {
        as_of: Option<OffsetDateTime>,
    },
    Revoked {
        revoked_at: OffsetDateTime,
        reason: Option<String>,
        as_of: Option<OffsetDateTime>,
    },
    /// The source is responsible for the certificate but does not know it.
    Unknown,
}

/// The status, by the CRLs at hand (§6.3, the CRL issuer's path ending in the same anchor),
/// of another certificate of the issuer a [`StatusSource`] is asked about: how a delegated OCSP
/// responder's own certificate is checked (RFC 6960 §4.2.2.2.1). `Ok` when a current CRL in
/// scope does not list it; `Err` says why it is revoked or has no status.
pub type IssuedStatus<'a> = &'a dyn Fn(&Arc<PkixCert>) -> Result<(), String>;

/// Revocation sources beside CRLs, asked first for every certificate of a path.
pub trait StatusSource: Send + Sync {
    /// `None`: this source knows nothing of the certificate; `Some(Err)`: it is responsible
    /// but could not answer. `issued_status` checks another certificate `issuer` issued.
    fn status(
        &self,
        cert: &PkixCert,
        issuer: &PkixCert,
        at: OffsetDateTime,
        issued_status: IssuedStatus<'_>,
    ) -> Option<Result<(String, ExternalStatus), String>>;
}

/// Trust anchors, candidate certificates, CRLs and other status sources for one validation.
#[derive(Clone, Default)]
pub struct Environment<'a> {
    pub anchors: Vec<Arc<PkixCert>>,
    pub certificates: Vec<Arc<PkixCert>>,
    pub crls: Vec<Arc<PkixCrl>>,
    pub status: Vec<&'a dyn StatusSource>,
}

/// Why a path (or every candidate path) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No chain of names and keys leads to a trust anchor.
    NoPath,
    Malformed,
    Signature,
    /// A key or signature algorithm the algorithm policy refuses.
    Algorithm,
    Expired,
    NotYetValid,
    BasicConstraints,
    PathLength,
    KeyUsage,
    ExtendedKeyUsage,
    Policy,
    NameConstraints,
    UnknownCriticalExtension,
    /// A CA-side obligation broken, made fatal by `strict`.
    Profile,
    Revoked,
    RevocationUnavailable,
}

/// A failure, naming the certificate it concerns.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PathFailure {
    pub kind: FailureKind,
    /// Subject DN of the certificate concerned, when there is one.
    pub certificate: Option<String>,
    pub message: String,
}

impl PathFailure {
    pub(crate) fn new(kind: FailureKind, cert: Option<&PkixCert>, message: impl Into<String>) -> Self {
        Self { kind, certificate: cert.map(PkixCert::subject_text), message: message.into() }
    }
}

impl std::fmt::Display for PathFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.certificate {
            Some(c) => write!(f, "{}: {}", c, self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The status established for one certificate of a validated path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CertificateStatus {
    Good {
        source: String,
        /// How fresh the status is: the thisUpdate of the OCSP response, or of the CRLs that
        /// decided (the oldest of them; a delta CRL's when one was applied).
        #[serde(with = "time::serde::rfc3339::option")]
        as_of: Option<OffsetDateTime>,
    },
    /// Revoked after the validation time.
    RevokedLater {
        source: String,
        #[serde(with = "time::serde::rfc3339")]
        revoked_at: OffsetDateTime,
        /// The CRL's reasonCode (`KeyCompromise`, `Superseded` …) or the source's reason.
        reason: Option<String>,
        #[serde(with = "time::serde::rfc3339::option")]
        as_of: Option<OffsetDateTime>,
    },
    /// No status could be had (revocation policy `prefer`), or none was asked (`none`).
    NotChecked { why: String },
}

/// A path that validated.
#[derive(Clone, Debug)]
pub struct ValidatedPath {
    /// Target first, trust anchor last.
    pub certificates: Vec<Arc<PkixCert>>,
    /// §6.1.5(g) output as policies of the relying party's domain: for every leaf of the
    /// valid_policy_tree, the policy its branch was first asserted under (before mappings);
    /// `[ANY_POLICY]` when the tree allows any; empty when the tree is NULL.
    pub user_constrained_policy_set: Vec<ObjectIdentifier>,
    /// Revocation status of every certificate but the anchor, in path order.
    pub statuses: Vec<CertificateStatus>,
    /// Things accepted under an exception (a SHA-1 signature before the configured date).
    pub notes: Vec<String>,
    /// CA-side obligations broken by certificates of the path (non-fatal unless `strict`).
    pub findings: Vec<ProfileFinding>,
}

/// Validate `target` against the environment: the first candidate path that passes, or the
/// failure of the most plausible candidate.
pub fn validate_path(
    target: &Arc<PkixCert>,
    env: &Environment<'_>,
    settings: &ValidationSettings,
) -> Result<ValidatedPath, PathFailure> {
    validate::Validator::new(env, settings).validate(target, None)
}

/// The revocation status of `path[k]` (path: target first, trust anchor last, as a
/// [`ValidatedPath`] has it) by §6.3 over the environment's CRLs and its other status sources:
/// for a path that passed §6.1 earlier (a remembered one) whose status is asked now. A CRL
/// issuer's own path is validated against `env` with `settings` and must end in the path's
/// anchor.
pub fn certificate_status(
    path: &[Arc<PkixCert>],
    k: usize,
    env: &Environment<'_>,
    settings: &ValidationSettings,
) -> Result<CertificateStatus, PathFailure> {
    if k + 1 >= path.len() {
        return Err(PathFailure::new(
            FailureKind::NoPath,
            path.get(k).map(|c| c.as_ref()),
            "the certificate has no issuer in the path",
        ));
    }
    let checked = validate::CheckedPath {
        certificates: path.to_vec(),
        key_parameters: validate::inherited_key_parameters(path),
        user_constrained_policy_set: Vec::new(),
        notes: Vec::new(),
    };
    validate::Validator::new(env, settings).status_of(&checked, k, 0)
}
