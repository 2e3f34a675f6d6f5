//! Verifying a CMS SignedData: every SignerInfo is checked on its own (certificate, digest,
//! signature, signingTime, path, revocation at the signing time, relying-party requirements);
//! the SignedData is valid when it has signers and all of them are.
//!
//! signingTime is asserted by the signer. A relying party that must not trust it (a login
//! nonce, for instance) sets [`VerifyContext::validation_time`] to its own clock.

use std::cell::OnceCell;
use std::sync::Arc;

use cms::signed_data::{SignerIdentifier, SignerInfo};
use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Any, Decode, Encode};
use time::{Duration, OffsetDateTime};
use x509_cert::Certificate;

use super::certificate::check_certificate;
use super::chain::{to_offset, KnownCertificate, TrustStore};
use super::ess::{SigningCertificateV2, SIGNING_CERTIFICATE_V2};
use super::options::PathOptions;
use super::parts::{read_signer_info, SignedDataParts};
use super::report::{CmsVerification, Finding, Reason, Requirements, SignerReport, TimeSource, TimestampReport};
use super::revocation::RevocationSource;
use super::timestamp::{check_token, SIGNATURE_TIME_STAMP_TOKEN};
use super::{decode_input, CmsError, Digest, ATTR_CONTENT_TYPE, ATTR_MESSAGE_DIGEST, ATTR_SIGNING_TIME};
use crate::identity::format_dn;
use crate::pkix::{PkixCrl, RevocationPolicy};

/// How far a signingTime may lie ahead of the verifier's clock (clients' clocks drift).
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Everything a verification needs besides the CMS itself.
pub struct VerifyContext<'a> {
    pub trust: &'a TrustStore,
    /// Asked in order; the first that covers a certificate's issuer answers.
    pub revocation: Vec<&'a dyn RevocationSource>,
    /// The verifier's clock.
    pub now: OffsetDateTime,
    /// Validate certificates at this time instead of the signingTime (or `now` when a
    /// signer has no signingTime).
    pub validation_time: Option<OffsetDateTime>,
    pub requirements: Requirements,
    /// Revocation demand, extra certificates and CRLs, RFC 5280 inputs.
    pub options: PathOptions,
}

/// Verify a CMS SignedData (DER, BER, base64 or PEM). `detached_content` is the signed data
/// when the CMS does not carry it.
pub fn verify(
    cms: &[u8],
    detached_content: Option<&[u8]>,
    ctx: &VerifyContext<'_>,
) -> Result<CmsVerification, CmsError> {
    SignedCms::parse(cms)?.verify(detached_content, ctx)
}

/// A CMS SignedData whose structure has been read (cheap, linear in its size) but nothing
/// checked yet: lets a server look at what a verification will cost (how many signers)
/// before deciding where to run it.
#[derive(Clone, Debug)]
pub struct SignedCms {
    der: Vec<u8>,
    signers: usize,
    certificates: usize,
}

impl SignedCms {
    /// Read any accepted form (DER, BER, base64, PEM) of a CMS SignedData.
    pub fn parse(cms: &[u8]) -> Result<Self, CmsError> {
        let der = decode_input(cms)?;
        let parts = SignedDataParts::of(&der)?;
        let (signers, certificates) = (parts.signer_infos.len(), parts.certificates.len());
        Ok(Self { der, signers, certificates })
    }

    /// How many SignerInfos it has: each costs at least one signature check.
    pub fn signer_count(&self) -> usize {
        self.signers
    }

    /// How many certificates it carries: each is a candidate intermediate when a signer's
    /// path must be built, which can cost a signature check per candidate.
    pub fn certificate_count(&self) -> usize {
        self.certificates
    }

    /// Check every signer; see [`verify`].
    pub fn verify(
        &self,
        detached_content: Option<&[u8]>,
        ctx: &VerifyContext<'_>,
    ) -> Result<CmsVerification, CmsError> {
        self.verify_nested(detached_content, ctx, Nesting::Top)
    }

    pub(crate) fn verify_nested(
        &self,
        detached_content: Option<&[u8]>,
        ctx: &VerifyContext<'_>,
        nesting: Nesting,
    ) -> Result<CmsVerification, CmsError> {
        verify_parts(SignedDataParts::of(&self.der)?, detached_content, ctx, nesting)
    }

    /// eContentType and the encapsulated content, if attached.
    pub(crate) fn encapsulated(&self) -> Result<(ObjectIdentifier, Option<Vec<u8>>), CmsError> {
        let encap = SignedDataParts::of(&self.der)?.encap_content_info;
        Ok((encap.econtent_type, encap.econtent.map(|any| any.value().to_vec())))
    }
}

/// Whether a SignedData is a signature of its own or a timestamp token inside one (whose own
/// timestamps are not looked at, so nesting stops there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nesting {
    Top,
    Timestamp,
}

fn verify_parts(
    parts: SignedDataParts<'_>,
    detached_content: Option<&[u8]>,
    ctx: &VerifyContext<'_>,
    nesting: Nesting,
) -> Result<CmsVerification, CmsError> {
    // Parsed only when looked at: with a remembered path, the CA certificates a CMS carries
    // are never needed.
    let cms_certificates: Vec<CmsCertificate<'_>> =
        parts.certificates.iter().map(|der| CmsCertificate { der, parsed: OnceCell::new() }).collect();
    // CRLs the signer sent along (RevocationInfoChoices): evidence like CRLs sent with the
    // request; one that cannot be read is no evidence.
    let carried_crls: Vec<Arc<PkixCrl>> = match ctx.options.revocation {
        RevocationPolicy::None => Vec::new(),
        _ => parts.crls.iter().filter_map(|der| PkixCrl::from_der(der).ok().map(Arc::new)).collect(),
    };
    let signer_infos = parts
        .signer_infos
        .iter()
        .map(|raw| read_signer_info(raw))
        .collect::<der::Result<Vec<_>>>()
        .map_err(|e| CmsError::Malformed(format!("signerInfos: {e}")))?;

    let mut findings = Vec::new();
    let encap = parts.encap_content_info;
    let attached = encap.econtent.as_ref().map(|any| any.value().to_vec());
    let content = match (attached, detached_content) {
        (Some(attached), Some(supplied)) if attached != supplied => {
            findings.push(Finding::new(Reason::Malformed, "the supplied content differs from the attached content"));
            Some(attached)
        }
        (Some(attached), _) => Some(attached),
        (None, Some(supplied)) => Some(supplied.to_vec()),
        (None, None) => {
            findings.push(Finding::new(Reason::ContentMissing, "detached signature and no content supplied"));
            None
        }
    };
    let detached = encap.econtent.is_none();
    if signer_infos.is_empty() {
        findings.push(Finding::new(Reason::NoSigner, "the SignedData has no signer"));
    }
    let econtent_type = encap.econtent_type;
    let signers: Vec<SignerReport> = signer_infos
        .iter()
        .map(|(info, attrs)| {
            Signer {
                info,
                signed_attrs: attrs.as_deref(),
                content: content.as_deref(),
                econtent_type,
                cms_certificates: &cms_certificates,
                carried_crls: &carried_crls,
                ctx,
                nesting,
            }
            .check()
        })
        .collect();
    let valid = !signers.is_empty() && signers.iter().all(|s| s.valid) && findings.iter().all(|f| !f.fatal);
    Ok(CmsVerification { valid, findings, content_type: econtent_type.to_string(), detached, signers, content })
}

/// A certificate carried in the CMS, parsed on first use (or found among those remembered).
struct CmsCertificate<'a> {
    der: &'a [u8],
    /// `None` inside: it does not parse, and is ignored like any other useless certificate.
    parsed: OnceCell<Option<Arc<KnownCertificate>>>,
}

impl CmsCertificate<'_> {
    fn parsed(&self, trust: &TrustStore) -> Option<&Arc<KnownCertificate>> {
        self.parsed.get_or_init(|| trust.certificate(self.der).ok()).as_ref()
    }
}

struct Signer<'a> {
    info: &'a SignerInfo,
    signed_attrs: Option<&'a [u8]>,
    content: Option<&'a [u8]>,
    econtent_type: ObjectIdentifier,
    cms_certificates: &'a [CmsCertificate<'a>],
    carried_crls: &'a [Arc<PkixCrl>],
    ctx: &'a VerifyContext<'a>,
    nesting: Nesting,
}

impl<'a> Signer<'a> {
    fn check(&self) -> SignerReport {
        let info = self.info;
        let mut report = SignerReport::unchecked(
            describe_sid(&info.sid),
            info.digest_alg.oid.to_string(),
            info.signature_algorithm.oid.to_string(),
            self.ctx.now,
        );
        let mut add = |reason, message: String| report.findings.push(Finding::new(reason, message));
        let leaf = self.find_certificate();
        if leaf.is_none() {
            add(Reason::CertificateNotFound, format!("no certificate for signer {}", describe_sid(&info.sid)));
        }
        let digest = Digest::from_oid(&info.digest_alg.oid);
        if digest.is_none() {
            add(Reason::UnsupportedAlgorithm, format!("digest algorithm {} is not supported", info.digest_alg.oid));
        }

        // Signed attributes: what the signature covers, and what it says about the content.
        let message = match (self.signed_attrs, &info.signed_attrs) {
            (Some(raw), Some(attrs)) => {
                let mut sha256 = [0u8; 32];
                sha256.copy_from_slice(&Digest::Sha256.digest(raw));
                report.signed_attributes_digest = Some(sha256);
                let values = |oid| attrs.iter().filter(move |a| a.oid == oid).flat_map(|a| a.values.iter());
                match values(ATTR_CONTENT_TYPE).next().map(|v| v.decode_as::<ObjectIdentifier>()) {
                    Some(Ok(ct)) if ct == self.econtent_type => {}
                    Some(Ok(ct)) => {
                        add(Reason::Malformed, format!("contentType attribute {ct} differs from eContentType"))
                    }
                    _ => add(Reason::Malformed, "the contentType signed attribute is missing or unreadable".into()),
                }
                let digests: Vec<_> = values(ATTR_MESSAGE_DIGEST).map(|v| v.decode_as::<OctetString>()).collect();
                match (digests.as_slice(), self.content, digest) {
                    ([Ok(expected)], Some(content), Some(d)) => {
                        let ok = d.digest(content) == expected.as_bytes();
                        report.digest_valid = Some(ok);
                        if !ok {
                            add(Reason::DigestMismatch, "messageDigest does not match the content".into());
                        }
                    }
                    ([Ok(_)], _, _) => {}
                    _ => add(Reason::Malformed, "exactly one readable messageDigest attribute is required".into()),
                }
                if let Some(t) = values(ATTR_SIGNING_TIME).next() {
                    match t.to_der().and_then(|der| x509_cert::time::Time::from_der(&der)) {
                        Ok(t) => report.signing_time = Some(to_offset(&t)),
                        Err(e) => add(Reason::Malformed, format!("unreadable signingTime: {e}")),
                    }
                }
                if let (Some(v), Some(leaf)) = (values(SIGNING_CERTIFICATE_V2).next(), &leaf) {
                    if let Some(problem) = check_signing_certificate(v, leaf) {
                        add(Reason::SigningCertificateMismatch, problem);
                    }
                }
                Some(raw)
            }
            _ => self.content,
        };

        if let (Some(leaf), Some(message), Some(digest)) = (&leaf, message, digest) {
            let spki = &leaf.parsed.cert.tbs_certificate.subject_public_key_info;
            match signature_oid(&info.signature_algorithm.oid, digest) {
                Some(oid) => match crate::verify::verify_signature(spki, &oid, message, info.signature.as_bytes()) {
                    Ok(_) => report.signature_valid = true,
                    Err(crate::verify::SignatureError::Invalid) => {
                        add(Reason::SignatureInvalid, "the signature does not match the signer's key".into())
                    }
                    Err(e) => add(Reason::UnsupportedAlgorithm, e.to_string()),
                },
                None => add(
                    Reason::UnsupportedAlgorithm,
                    format!("signature algorithm {} is not supported", info.signature_algorithm.oid),
                ),
            }
        } else if message.is_none() {
            add(Reason::ContentMissing, "no content to check the signature against".into());
        }

        if let Some(signed_at) = report.signing_time {
            if signed_at > self.ctx.now + CLOCK_SKEW {
                add(Reason::SigningTimeInFuture, format!("signingTime {signed_at} is after now ({})", self.ctx.now));
            }
        }
        if self.nesting == Nesting::Top {
            report.timestamp = self.timestamp();
            if let Some(problem) = report.timestamp.as_ref().and_then(|t| t.problem.clone()) {
                report
                    .findings
                    .push(Finding::new(Reason::TimestampInvalid, format!("signature timestamp ignored: {problem}")));
            }
        }
        let proven = report.timestamp.as_ref().filter(|t| t.valid).and_then(|t| t.time);
        let (at, source) = match (self.ctx.validation_time, proven, report.signing_time) {
            (Some(t), _, _) => (t, TimeSource::RelyingParty),
            (None, Some(t), _) => (t, TimeSource::Timestamp),
            (None, None, Some(t)) => (t, TimeSource::SigningTime),
            (None, None, None) => (self.ctx.now, TimeSource::Now),
        };
        report.validation_time = at;
        report.validation_time_source = source;

        if let Some(leaf) = leaf {
            let extra: Vec<&[u8]> = self.cms_certificates.iter().map(|c| c.der).collect();
            let at_is_claimed = self.ctx.validation_time.is_none() && proven.is_none() && report.signing_time.is_some();
            check_certificate(leaf, &extra, self.carried_crls, at, at_is_claimed, self.ctx).record_in(&mut report);
        }
        report.valid = report.signature_valid && report.findings.iter().all(|f| !f.fatal);
        report
    }

    /// The first signature timestamp among the unsigned attributes, checked.
    fn timestamp(&self) -> Option<TimestampReport> {
        let token = self
            .info
            .unsigned_attrs
            .iter()
            .flat_map(|attrs| attrs.iter())
            .filter(|a| a.oid == SIGNATURE_TIME_STAMP_TOKEN)
            .flat_map(|a| a.values.iter())
            .next()?;
        Some(check_token(token, self.info.signature.as_bytes(), self.ctx))
    }

    fn find_certificate(&self) -> Option<&'a Arc<KnownCertificate>> {
        let trust = self.ctx.trust;
        let mut pool = self.cms_certificates.iter().filter_map(|c| c.parsed(trust)).chain(trust.trusted_certificates());
        match &self.info.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => pool.find(|c| {
                let tbs = &c.parsed.cert.tbs_certificate;
                tbs.issuer == ias.issuer && tbs.serial_number == ias.serial_number
            }),
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                pool.find(|c| subject_key_id(&c.parsed.cert).as_deref() == Some(ski.0.as_bytes()))
            }
        }
    }
}

fn describe_sid(sid: &SignerIdentifier) -> String {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            format!("issuer {} serial {}", format_dn(&ias.issuer), hex::encode(ias.serial_number.as_bytes()))
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            format!("subjectKeyIdentifier {}", hex::encode(ski.0.as_bytes()))
        }
    }
}

fn subject_key_id(cert: &Certificate) -> Option<Vec<u8>> {
    use const_oid::AssociatedOid;
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    match cert.tbs_certificate.extensions.iter().flatten().find(|e| e.extn_id == SubjectKeyIdentifier::OID) {
        Some(ext) => SubjectKeyIdentifier::from_der(ext.extn_value.as_bytes()).ok().map(|s| s.0.as_bytes().to_vec()),
        None => Some(crate::profile::key_identifier(&cert.tbs_certificate.subject_public_key_info)),
    }
}

/// The signature algorithm to verify with: SignerInfo often names only the key algorithm
/// (rsaEncryption, id-ecPublicKey) and leaves the hash to digestAlgorithm.
fn signature_oid(oid: &ObjectIdentifier, digest: Digest) -> Option<ObjectIdentifier> {
    match *oid {
        rfc5912::RSA_ENCRYPTION => Some(match digest {
            Digest::Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            Digest::Sha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            Digest::Sha512 => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
        }),
        rfc5912::ID_EC_PUBLIC_KEY => match digest {
            Digest::Sha256 => Some(rfc5912::ECDSA_WITH_SHA_256),
            Digest::Sha384 => Some(rfc5912::ECDSA_WITH_SHA_384),
            Digest::Sha512 => None,
        },
        other => Some(other),
    }
}

fn check_signing_certificate(value: &Any, leaf: &KnownCertificate) -> Option<String> {
    let attr = match value.decode_as::<SigningCertificateV2>() {
        Ok(a) => a,
        Err(e) => return Some(format!("unreadable signingCertificateV2: {e}")),
    };
    let first = attr.certs.first()?;
    let hash = match Digest::from_oid(&first.hash_algorithm_oid()) {
        Some(Digest::Sha256) => leaf.fingerprint.to_vec(),
        Some(other) => other.digest(&leaf.parsed.der),
        None => return Some(format!("signingCertificateV2 hash {} is not supported", first.hash_algorithm_oid())),
    };
    (hash != first.cert_hash.as_bytes())
        .then(|| "signingCertificateV2 names another certificate than the signer's".to_string())
}
