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
use crate::store::NonceStore;

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
        request_id: signer.signed_attributes_digest,
        certificate_not_after: Some(certificate.not_after),
    })
}

/// The single-use id of a signed request: its signed attributes (which cover the content's digest
/// and the signingTime) and its signer. The signed attributes hold no signer, so two signers of
/// one statement in the same second have the same ones: the id names the signer too. `purpose`
/// keeps the ids of different kinds of request apart.
pub fn request_id(purpose: &[u8], signed_attributes_digest: &[u8; 32], signer_serial: &[u8]) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(purpose);
    context.update(b"\0");
    context.update(signed_attributes_digest);
    context.update(signer_serial);
    let mut id = [0u8; 32];
    id.copy_from_slice(context.finish().as_ref());
    id
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

/// A [`SignatureCheck`] that accepts each act of signing once: the id of a valid signature
/// (the digest of its signed attributes, [`SignerFacts::request_id`], and its signer's serial)
/// is recorded with
/// [`NonceStore::use_request_id`], and the same signature presented again — re-encoded or not —
/// is refused as [`SignatureProblem::Replayed`]. A signature over another statement fails the
/// inner check first and uses nothing up. The id is kept until the signer's certificate expires,
/// after which the signature is refused anyway.
///
/// For the steps where a second signature changes nothing (confirmations): a *new* signature on
/// a confirmed application is still answered "already confirmed".
pub struct SingleUse<'a> {
    pub inner: &'a dyn SignatureCheck,
    pub requests: &'a dyn NonceStore,
    pub clock: &'a dyn Clock,
}

impl SignatureCheck for SingleUse<'_> {
    fn check(&self, signed: &SignedPayload, expected: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        let facts = self.inner.check(signed, expected)?;
        let attributes = facts.request_id.ok_or_else(|| {
            SignatureProblem::Invalid("the signature has no signed attributes to tell it from a replay".into())
        })?;
        let id = request_id(b"ra-signature", &attributes, facts.serial.as_bytes());
        let now = self.clock.now();
        // A second's margin for the store's millisecond times.
        let keep_until =
            facts.certificate_not_after.unwrap_or(now + time::Duration::days(3650)) + time::Duration::seconds(1);
        match self.requests.use_request_id(&id, now, keep_until.max(now)) {
            Ok(true) => Ok(facts),
            Ok(false) => Err(SignatureProblem::Replayed),
            Err(e) => Err(SignatureProblem::Unavailable(format!("cannot record the signature's use: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::identity::KeyType;
    use crate::store::SqliteStore;

    /// Accepts any signature; its request id is the first byte of the CMS, repeated.
    struct AnySignature(OffsetDateTime);

    impl SignatureCheck for AnySignature {
        fn check(&self, signed: &SignedPayload, _: &Expectation) -> Result<SignerFacts, SignatureProblem> {
            Ok(SignerFacts {
                serial: "1000000000000000000000000000000000000001".parse().unwrap(),
                iin: None,
                bin: None,
                roles: vec![],
                key_type: Some(KeyType::Sign),
                signing_time: None,
                request_id: signed.cms.first().map(|b| [*b; 32]),
                certificate_not_after: Some(self.0),
            })
        }
    }

    #[test]
    fn a_signature_is_taken_once_until_its_certificate_expires() {
        let now = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
        let store = SqliteStore::open_in_memory().unwrap();
        let inner = AnySignature(now + time::Duration::days(30));
        let check = |cms: &[u8], at: OffsetDateTime| {
            let clock = FixedClock(at);
            let single = SingleUse { inner: &inner, requests: &store, clock: &clock };
            let expected =
                Expectation { iin: None, bin: None, any_role: vec![], key_type: KeyType::Sign, at: clock.now() };
            single.check(&SignedPayload { cms: cms.to_vec(), content: b"statement".to_vec() }, &expected)
        };
        assert!(check(b"A", now).is_ok());
        assert_eq!(check(b"A", now + time::Duration::days(29)), Err(SignatureProblem::Replayed));
        assert!(check(b"B", now).is_ok(), "another signature");
        assert!(matches!(check(b"", now), Err(SignatureProblem::Invalid(_))), "no signed attributes");
        // Past the certificate's end the id is forgotten: the RA refuses such a signature anyway.
        assert!(check(b"A", now + time::Duration::days(31)).is_ok());
    }
}
