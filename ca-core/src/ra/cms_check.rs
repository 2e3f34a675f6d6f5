//! The RA's [`SignatureCheck`] over [`crate::cms`]: the SignedData is verified against the trust
//! store, with the signer's chain and revocation status (from our store) at the step's time, and
//! its content must be exactly the statement's canonical bytes.

use crate::clock::Clock;
use time::OffsetDateTime;

use crate::cms::{
    verify, CmsVerification, PathOptions, Reason, Requirements, SignerReport, StoreRevocationSource, TrustStore,
    VerifyContext,
};
use crate::pkix::RevocationPolicy;
use crate::serial::SerialNumber;

use super::signature::{Expectation, SignatureCheck, SignatureProblem, SignedPayload, SignerFacts};

/// Verifies signed RA steps with the CMS verifier.
pub struct CmsSignatureCheck<'a> {
    pub trust: &'a TrustStore,
    pub revocation: StoreRevocationSource<'a>,
    pub clock: &'a dyn Clock,
}

impl SignatureCheck for CmsSignatureCheck<'_> {
    fn check(&self, signed: &SignedPayload, expected: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        let ctx = VerifyContext {
            trust: self.trust,
            revocation: vec![&self.revocation],
            now: self.clock.now(),
            validation_time: Some(expected.at),
            // The RA matches person, organisation, role and key type itself, with its own words.
            requirements: Requirements::default(),
            // Revocation required for every certificate of the path: the operators are this
            // CA's, so the store has their status (and a store that cannot answer refuses).
            options: PathOptions { revocation: RevocationPolicy::Require, ..PathOptions::default() },
        };
        let v = verify(&signed.cms, Some(&signed.content), &ctx)
            .map_err(|e| SignatureProblem::Invalid(format!("not a CMS signature: {e}")))?;
        facts_from_verification(&v, &signed.content)
    }
}

/// Who signed, from a CMS verification of a signed step whose content must be `content`; a
/// signature that is not valid becomes the matching [`SignatureProblem`].
pub fn facts_from_verification(v: &CmsVerification, content: &[u8]) -> Result<SignerFacts, SignatureProblem> {
    if v.content.as_deref() != Some(content) {
        return Err(SignatureProblem::ContentMismatch);
    }
    let [signer] = v.signers.as_slice() else {
        return Err(SignatureProblem::Invalid(format!("expected one signer, found {}", v.signers.len())));
    };
    let certificate = signer
        .certificate
        .as_ref()
        .ok_or_else(|| SignatureProblem::Invalid("the signer's certificate is not in the signature".into()))?;
    let serial: SerialNumber =
        certificate.serial.parse().map_err(|e| SignatureProblem::Invalid(format!("signer serial: {e}")))?;
    if !signer.valid || !v.valid {
        let fatal = signer.findings.iter().chain(v.findings.iter()).find(|f| f.fatal);
        return Err(match fatal.map(|f| f.reason) {
            Some(Reason::Expired | Reason::NotYetValid) => SignatureProblem::Expired(serial),
            Some(Reason::Revoked) => SignatureProblem::Revoked(serial),
            Some(Reason::Untrusted | Reason::CertificateNotFound) => {
                SignatureProblem::Untrusted(fatal.map(|f| f.message.clone()).unwrap_or_default())
            }
            Some(Reason::RevocationUnavailable) => {
                SignatureProblem::Unavailable(fatal.map(|f| f.message.clone()).unwrap_or_default())
            }
            Some(Reason::DigestMismatch) => SignatureProblem::ContentMismatch,
            _ => SignatureProblem::Invalid(
                fatal.map(|f| f.message.clone()).unwrap_or_else(|| "the signature is not valid".into()),
            ),
        });
    }
    require_signed_attributes(signer).map_err(SignatureProblem::Invalid)?;
    let id = &certificate.identity;
    Ok(SignerFacts {
        serial,
        iin: id.iin,
        bin: id.bin,
        roles: id.roles.clone(),
        key_type: id.key_type,
        signing_time: signer.signing_time,
    })
}

/// A signed request must carry signed attributes — contentType and messageDigest (checked by the
/// verifier whenever they are present) and signingTime — so that the signature covers a time and
/// a replay can be told from a new request. Without them (`openssl cms -sign -noattr`) the
/// signature covers the bare content, which says nothing about when it was made. Returns the
/// signingTime.
pub fn require_signed_attributes(signer: &SignerReport) -> Result<OffsetDateTime, String> {
    if signer.signed_attributes_digest.is_none() || signer.digest_valid != Some(true) {
        return Err(
            "the signature has no signed attributes (contentType, messageDigest and signingTime are required)".into()
        );
    }
    signer.signing_time.ok_or_else(|| "the signature has no signingTime signed attribute".into())
}
