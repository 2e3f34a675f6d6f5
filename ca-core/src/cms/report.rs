//! What a CMS verification reports: per signer, what was checked and what failed, with
//! machine-readable reasons a portal can act on and messages a person can read.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::identity::{Bin, CertificateIdentity, Iin, KeyType};
use crate::profile::Role;
use crate::revocation::RevocationReason;

/// Why a signature or signer is not (fully) acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Reason {
    /// A structure inside the SignedData is wrong (missing contentType/messageDigest, content
    /// supplied that differs from the attached one, unreadable attribute).
    Malformed,
    /// The SignedData has no SignerInfo.
    NoSigner,
    /// Neither the CMS nor the configured certificates hold the signer's certificate.
    CertificateNotFound,
    /// Digest or signature algorithm (or key) this verifier does not accept.
    UnsupportedAlgorithm,
    /// Detached signature and no content supplied.
    ContentMissing,
    /// messageDigest does not match the content.
    DigestMismatch,
    /// The signature does not verify with the signer's key.
    SignatureInvalid,
    /// signingCertificateV2 names a different certificate than the one found.
    SigningCertificateMismatch,
    /// signingTime lies in the future of the verifier's clock.
    SigningTimeInFuture,
    /// No valid path from the signer certificate to a trust anchor.
    Untrusted,
    /// A certificate of the path was expired at the validation time.
    Expired,
    /// A certificate of the path was not yet valid at the validation time.
    NotYetValid,
    /// Revoked (or on hold) at the validation time.
    Revoked,
    /// Revoked after the validation time: the signature was made while the certificate was valid.
    RevokedAfterSigning,
    /// Revoked for a key compromise after the time the signature claims, and nothing but the
    /// signer's own signingTime says when it was made: whoever holds a compromised key can
    /// write any signingTime, so the signature is not accepted.
    SigningTimeUnproven,
    /// The signature timestamp is not valid (wrong imprint, untrusted or revoked TSA, not a
    /// TSA certificate…): it is ignored, and the signing time stays the signer's claim.
    TimestampInvalid,
    /// A certificate of our own CA that the store does not know.
    UnknownToStore,
    /// No usable revocation status for a certificate of the path, and the relying party
    /// requires one (revocation `require`, the default): the responsible source failed, no
    /// CRL or other source covers it, or the CRLs at hand are stale or out of scope.
    RevocationUnavailable,
    /// No status could be had for a certificate of the path and the relying party said
    /// revocation `prefer` (with `require`, the default, this is `RevocationUnavailable`).
    RevocationNotChecked,
    /// A certificate of the path breaks an obligation RFC 5280 puts on its issuing CA, and the
    /// relying party asked for `strict` validation (otherwise it is only listed in
    /// `profile_findings`).
    ProfileViolation,
    /// The relying party requires the other key type (AUTH vs SIGN).
    WrongKeyType,
    /// The relying party requires a role the certificate does not carry.
    MissingRole,
    /// The certificate belongs to another person (IIN).
    WrongPerson,
    /// The certificate belongs to another organisation (BIN), or to none.
    WrongOrganisation,
    /// XML signature: the signature does not cover the element the relying party relies on
    /// (the document element, or the element with the ID it names), or that element cannot be
    /// found exactly once: what signature wrapping attacks exploit.
    NotCovered,
    /// XML signature: a reference or transform outside the accepted profile (an external or
    /// non-ID URI, XPath/XSLT or other transforms, several references, a signature that is not
    /// enveloped in the element it covers).
    ReferenceRefused,
}

impl Reason {
    /// Whether the reason makes the signature unacceptable; the others are notes.
    pub fn is_fatal(self) -> bool {
        !matches!(self, Reason::RevokedAfterSigning | Reason::RevocationNotChecked | Reason::TimestampInvalid)
    }
}

/// One finding: a reason and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub reason: Reason,
    pub fatal: bool,
    pub message: String,
}

impl Finding {
    pub(crate) fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self { reason, fatal: reason.is_fatal(), message: message.into() }
    }
}

/// What a relying party demands of the signer beyond a valid signature.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Requirements {
    /// AUTH for login by signature, SIGN for signed requests.
    pub key_type: Option<KeyType>,
    /// Every one of these roles must be in the certificate.
    pub roles: Vec<Role>,
    pub iin: Option<Iin>,
    pub bin: Option<Bin>,
}

/// The signer certificate, as found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CertificateReport {
    /// Serial number in hex.
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub identity: CertificateIdentity,
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// One certificate of a validated path, as the answer names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PathCertificate {
    pub subject: String,
    /// Serial number in hex.
    pub serial: String,
    /// SHA-256 of the DER, hex.
    pub sha256: String,
}

impl PathCertificate {
    pub(crate) fn of(cert: &crate::pkix::PkixCert) -> Self {
        Self {
            subject: cert.subject_text(),
            serial: hex::encode(cert.cert.tbs_certificate.serial_number.as_bytes()),
            sha256: hex::encode(cert.fingerprint),
        }
    }
}

/// A validated path as an answer names it (target first, trust anchor last), serialised as one
/// list: the target's entry, and the CA part shared by every certificate the same CAs issued
/// (a remembered path keeps one entry of its own, not a copy of its CAs').
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathReport {
    target: Option<Arc<PathCertificate>>,
    cas: Arc<[PathCertificate]>,
}

impl PathReport {
    pub(crate) fn new(target: Arc<PathCertificate>, cas: Arc<[PathCertificate]>) -> Self {
        Self { target: Some(target), cas }
    }

    pub fn len(&self) -> usize {
        usize::from(self.target.is_some()) + self.cas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The certificates, target first.
    pub fn iter(&self) -> impl Iterator<Item = &PathCertificate> {
        self.target.as_deref().into_iter().chain(self.cas.iter())
    }
}

impl serde::Serialize for PathReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// Revocation status of the signer certificate at the validation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationState {
    Good,
    Revoked,
    /// Revoked, but only after the validation (signing) time.
    RevokedLater,
    /// The responsible source does not know the certificate.
    Unknown,
    /// The responsible source failed.
    Unavailable,
    /// No source covers the issuer, or no path was found to ask about.
    NotChecked,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RevocationReport {
    pub state: RevocationState,
    /// The source that answered.
    pub source: Option<String>,
    pub reason: Option<RevocationReason>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// How fresh the status is: the time up to which the source's data is complete — the
    /// verification's own time for a store read on the primary, a replica's replay point
    /// (`states_as_of`), a CRL's thisUpdate (the delta's when one applied), an OCSP response's
    /// thisUpdate. `None` when no status was had.
    #[serde(with = "time::serde::rfc3339::option")]
    pub as_of: Option<OffsetDateTime>,
    /// Seconds from `as_of` to the verification's time (`now`, not the validation time).
    pub age_secs: Option<u64>,
}

impl RevocationReport {
    /// Nothing checked yet.
    pub(crate) fn not_checked() -> Self {
        Self {
            state: RevocationState::NotChecked,
            source: None,
            reason: None,
            revoked_at: None,
            as_of: None,
            age_secs: None,
        }
    }
}

/// Where a signer's validation time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeSource {
    /// The relying party's `validation_time`.
    RelyingParty,
    /// A valid signature timestamp's genTime.
    Timestamp,
    /// The signer's own signingTime attribute (a claim).
    SigningTime,
    /// No time given anywhere: the verifier's clock.
    Now,
}

/// A signature timestamp (RFC 3161 token) found on a signer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TimestampReport {
    /// The token verifies and proves that the signature existed at `time`.
    pub valid: bool,
    /// genTime, when the token could be read that far.
    #[serde(with = "time::serde::rfc3339::option")]
    pub time: Option<OffsetDateTime>,
    /// The time-stamping authority (subject), when valid.
    pub tsa: Option<String>,
    /// Why the token does not count.
    pub problem: Option<String>,
}

/// Everything checked for one SignerInfo.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignerReport {
    pub valid: bool,
    pub findings: Vec<Finding>,
    /// How the SignerInfo names its certificate.
    pub signer_id: String,
    pub digest_algorithm: String,
    pub signature_algorithm: String,
    pub signature_valid: bool,
    /// `None` without signed attributes (the signature then covers the content directly) or
    /// without content.
    pub digest_valid: Option<bool>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub signing_time: Option<OffsetDateTime>,
    /// A signature timestamp, if the signer carries one.
    pub timestamp: Option<TimestampReport>,
    /// The time the certificates were validated at: the relying party's `validation_time`,
    /// else a valid timestamp's time, else the signer's signingTime, else now.
    #[serde(with = "time::serde::rfc3339")]
    pub validation_time: OffsetDateTime,
    /// Where `validation_time` comes from: only `relying-party` and `timestamp` are more than
    /// the signer's word.
    pub validation_time_source: TimeSource,
    /// Shared with every report on the same certificate while it is remembered.
    pub certificate: Option<Arc<CertificateReport>>,
    /// Subjects of the path from the signer's issuer to the trust anchor.
    pub chain: Arc<[String]>,
    pub chain_trusted: bool,
    /// The validated path, signer certificate first, trust anchor last (empty without one).
    pub path: PathReport,
    /// RFC 5280 §6.1.6's user-constrained policy set of that path (dotted OIDs;
    /// `2.5.29.32.0`, anyPolicy, when any policy is acceptable; empty when none is).
    pub user_constrained_policy_set: Arc<[String]>,
    /// Obligations RFC 5280 puts on the issuing CA that certificates of the path break
    /// (non-fatal unless `strict`).
    pub profile_findings: Arc<[crate::pkix::ProfileFinding]>,
    pub revocation: RevocationReport,
    /// SHA-256 of the DER signed attributes the signature covers; `None` without signed
    /// attributes. They hold the content's digest and the signingTime, so this names one act of
    /// signing: the same signature sent again, however re-encoded (and an ECDSA signature made
    /// over into its other valid form), has the same value. What single-use requests remember.
    #[serde(skip)]
    pub signed_attributes_digest: Option<[u8; 32]>,
}

impl SignerReport {
    /// A report on a signer before anything was checked: not valid, validated at `now`.
    pub(crate) fn unchecked(
        signer_id: String,
        digest_algorithm: String,
        signature_algorithm: String,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            valid: false,
            findings: Vec::new(),
            signer_id,
            digest_algorithm,
            signature_algorithm,
            signature_valid: false,
            digest_valid: None,
            signing_time: None,
            timestamp: None,
            validation_time: now,
            validation_time_source: TimeSource::Now,
            certificate: None,
            chain: Arc::default(),
            chain_trusted: false,
            path: PathReport::default(),
            user_constrained_policy_set: Arc::default(),
            profile_findings: Arc::default(),
            revocation: RevocationReport::not_checked(),
            signed_attributes_digest: None,
        }
    }

    /// Whether a finding with `reason` was made.
    pub fn has(&self, reason: Reason) -> bool {
        self.findings.iter().any(|f| f.reason == reason)
    }

    /// The identity of the signer, when its certificate was found.
    pub fn identity(&self) -> Option<&CertificateIdentity> {
        self.certificate.as_ref().map(|c| &c.identity)
    }
}

/// The verdict on a whole SignedData.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CmsVerification {
    /// Every signer is valid and there is at least one.
    pub valid: bool,
    /// Findings about the SignedData as a whole (e.g. `NoSigner`, `ContentMissing`).
    pub findings: Vec<Finding>,
    /// eContentType.
    pub content_type: String,
    pub detached: bool,
    pub signers: Vec<SignerReport>,
    /// The signed content (attached, or the supplied detached content).
    #[serde(skip)]
    pub content: Option<Vec<u8>>,
}

impl CmsVerification {
    /// Every reason found, globally or for any signer.
    pub fn reasons(&self) -> Vec<Reason> {
        let mut all = Vec::new();
        for f in self.findings.iter().chain(self.signers.iter().flat_map(|s| &s.findings)) {
            if !all.contains(&f.reason) {
                all.push(f.reason);
            }
        }
        all
    }

    pub fn has(&self, reason: Reason) -> bool {
        self.reasons().contains(&reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_report_is_one_list_target_first() {
        let entry = |subject: &str| PathCertificate { subject: subject.into(), ..Default::default() };
        let cas: Arc<[PathCertificate]> = vec![entry("CN=CA"), entry("CN=Root")].into();
        let path = PathReport::new(Arc::new(entry("CN=Leaf")), cas);
        let json = serde_json::to_value(&path).unwrap();
        let subjects: Vec<&str> = json.as_array().unwrap().iter().map(|c| c["subject"].as_str().unwrap()).collect();
        assert_eq!(subjects, ["CN=Leaf", "CN=CA", "CN=Root"]);
        assert_eq!((path.len(), path.iter().count()), (3, 3));
        assert_eq!(serde_json::to_string(&PathReport::default()).unwrap(), "[]");
        assert!(PathReport::default().is_empty());
    }
}
