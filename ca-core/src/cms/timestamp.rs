//! Signature timestamps (RFC 3161 tokens in the unsigned attribute
//! id-aa-signatureTimeStampToken, RFC 3161 appendix A, CAdES-T): a trusted time-stamping
//! authority's statement that the signature value existed at `genTime`. It is what makes a
//! signing time proven rather than claimed.
//!
//! A token counts when it is a valid CMS SignedData from one signer whose certificate chains to
//! a trust anchor, is valid and unrevoked at `genTime`, and carries the extended key usage
//! id-kp-timeStamping; whose content is a TSTInfo; and whose messageImprint is the hash of this
//! signer's signature value. Anything less is reported and the token ignored: the signing time
//! then stays the signer's claim. Tokens inside a token are not looked at.

use std::sync::Arc;

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::Certificate;
use x509_tsp::TstInfo;

use super::report::{CertificateReport, Requirements, TimestampReport};
use super::verify::{Nesting, SignedCms};
use super::{CmsError, Digest, VerifyContext};

/// id-aa-signatureTimeStampToken
pub const SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
/// id-ct-TSTInfo
pub const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// id-kp-timeStamping
pub const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// Check a signature timestamp token (the attribute value, a ContentInfo) over `signature`.
pub(crate) fn check_token(token: &der::Any, signature: &[u8], ctx: &VerifyContext<'_>) -> TimestampReport {
    match check(token, signature, ctx) {
        Ok((time, tsa)) => TimestampReport { valid: true, time: Some(time), tsa: Some(tsa), problem: None },
        Err((time, problem)) => TimestampReport { valid: false, time, tsa: None, problem: Some(problem) },
    }
}

/// Why a token does not count, with its genTime when it could be read that far.
pub(crate) type Problem = (Option<OffsetDateTime>, String);

fn check(token: &der::Any, signature: &[u8], ctx: &VerifyContext<'_>) -> Result<(OffsetDateTime, String), Problem> {
    let der = token.to_der().map_err(|e| (None, format!("unreadable token: {e}")))?;
    let (signed, info, time) = read_token(&der)?;
    let imprint = &info.message_imprint;
    let digest = Digest::from_oid(&imprint.hash_algorithm.oid)
        .ok_or_else(|| (Some(time), format!("messageImprint hash {} is not supported", imprint.hash_algorithm.oid)))?;
    if digest.digest(signature) != imprint.hashed_message.as_bytes() {
        return Err((Some(time), "the token is for another signature (messageImprint differs)".into()));
    }
    let tsa = check_authority(&signed, time, ctx)?;
    Ok((time, tsa.subject.clone()))
}

/// A time-stamp token (DER ContentInfo) read as far as its TSTInfo and genTime; nothing checked.
pub(crate) fn read_token(der: &[u8]) -> Result<(SignedCms, TstInfo, OffsetDateTime), Problem> {
    let fail = |m: String| (None, m);
    let signed = SignedCms::parse(der).map_err(|e| fail(format!("the token is not a SignedData: {e}")))?;
    let content = signed.encapsulated().map_err(|e| fail(format!("unreadable token: {e}")))?;
    if content.0 != ID_CT_TST_INFO {
        return Err(fail(format!("the token's content is {}, not a TSTInfo", content.0)));
    }
    let info = content
        .1
        .as_deref()
        .ok_or_else(|| fail("the token carries no TSTInfo".into()))
        .and_then(|bytes| TstInfo::from_der(bytes).map_err(|e| fail(format!("unreadable TSTInfo: {e}"))))?;
    let time = OffsetDateTime::from_unix_timestamp(info.gen_time.to_unix_duration().as_secs() as i64)
        .map_err(|e| fail(format!("genTime: {e}")))?;
    Ok((signed, info, time))
}

/// The token's one signer is a time-stamping authority that the verifier trusts at `time`
/// (genTime): its signature, path and revocation, and id-kp-timeStamping. Returns its subject.
pub(crate) fn check_authority(
    signed: &SignedCms,
    time: OffsetDateTime,
    ctx: &VerifyContext<'_>,
) -> Result<Arc<CertificateReport>, Problem> {
    let fail = |m: String| (Some(time), m);
    if signed.signer_count() != 1 {
        return Err(fail(format!("the token has {} signers, not one", signed.signer_count())));
    }
    if time > ctx.now + time::Duration::minutes(5) {
        return Err(fail(format!("genTime {time} is in the future")));
    }
    // The TSA's signature, path and revocation, checked at the time it vouches for.
    let tsa_ctx = VerifyContext {
        trust: ctx.trust,
        revocation: ctx.revocation.clone(),
        now: ctx.now,
        validation_time: Some(time),
        requirements: Requirements::default(),
        options: ctx.options.for_other_certificates(),
    };
    let report = signed
        .verify_nested(None, &tsa_ctx, Nesting::Timestamp)
        .map_err(|e| fail(format!("the token does not verify: {e}")))?;
    let tsa = &report.signers[0];
    if !report.valid {
        let reasons: Vec<String> = tsa.findings.iter().filter(|f| f.fatal).map(|f| f.message.clone()).collect();
        return Err(fail(format!("the time-stamping authority's signature fails: {}", reasons.join("; "))));
    }
    let certificate = tsa.certificate.as_ref().ok_or_else(|| fail("no TSA certificate".into()))?;
    if !has_time_stamping(&certificate.der) {
        return Err(fail(format!("{} is not a time-stamping authority (no id-kp-timeStamping)", certificate.subject)));
    }
    Ok(certificate.clone())
}

/// The signature values of a SignedData's signers, in order: what a signature time stamp's
/// messageImprint covers (RFC 3161 appendix A).
pub fn signature_values(cms: &[u8]) -> Result<Vec<Vec<u8>>, CmsError> {
    let signed_data = read_signed_data(cms)?;
    Ok(signed_data.signer_infos.0.iter().map(|s| s.signature.as_bytes().to_vec()).collect())
}

/// Add `token` (a TimeStampToken, DER ContentInfo) to the signer at `signer` as the unsigned
/// attribute id-aa-signatureTimeStampToken, as a client upgrading a signature to CAdES-T does:
/// the signature itself is untouched. Returns the SignedData as DER.
pub fn add_signature_timestamp(cms: &[u8], signer: usize, token: &[u8]) -> Result<Vec<u8>, CmsError> {
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignerInfos;
    use der::asn1::SetOfVec;
    use x509_cert::attr::Attribute;
    let mut signed_data = read_signed_data(cms)?;
    let value = der::Any::from_der(token).map_err(|e| CmsError::Malformed(format!("time-stamp token: {e}")))?;
    let mut signers: Vec<_> = signed_data.signer_infos.0.into_vec();
    let count = signers.len();
    let target = signers
        .get_mut(signer)
        .ok_or_else(|| CmsError::Malformed(format!("no signer {signer}: the SignedData has {count}")))?;
    let mut attributes = target.unsigned_attrs.take().map(SetOfVec::into_vec).unwrap_or_default();
    attributes.push(Attribute { oid: SIGNATURE_TIME_STAMP_TOKEN, values: SetOfVec::try_from(vec![value])? });
    target.unsigned_attrs = Some(SetOfVec::try_from(attributes)?);
    signed_data.signer_infos = SignerInfos(SetOfVec::try_from(signers)?);
    let info = ContentInfo { content_type: super::ID_SIGNED_DATA, content: der::Any::encode_from(&signed_data)? };
    Ok(info.to_der()?)
}

/// Any accepted form of a CMS SignedData (DER, BER, base64, PEM), decoded.
fn read_signed_data(cms: &[u8]) -> Result<cms::signed_data::SignedData, CmsError> {
    let der = super::decode_input(cms)?;
    let info = cms::content_info::ContentInfo::from_der(&der).map_err(|e| CmsError::Malformed(e.to_string()))?;
    if info.content_type != super::ID_SIGNED_DATA {
        return Err(CmsError::NotSignedData(info.content_type));
    }
    info.content.decode_as().map_err(|e| CmsError::Malformed(e.to_string()))
}

/// extendedKeyUsage contains id-kp-timeStamping (RFC 3161 2.3).
pub fn has_time_stamping(der: &[u8]) -> bool {
    use const_oid::AssociatedOid;
    let Ok(cert) = Certificate::from_der(der) else { return false };
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == ExtendedKeyUsage::OID)
        .filter_map(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok())
        .any(|eku| eku.0.contains(&ID_KP_TIME_STAMPING))
}
