//! Making a CMS SignedData with one signer: CAdES-BES signed attributes (contentType,
//! signingTime, messageDigest, signingCertificateV2), signature through a [`Signer`].

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::Certificate;

use super::ess::{EssCertIdV2, IssuerSerial, SigningCertificateV2, SIGNING_CERTIFICATE_V2};
use super::{CmsError, Digest, ATTR_CONTENT_TYPE, ATTR_MESSAGE_DIGEST, ATTR_SIGNING_TIME, ID_DATA, ID_SIGNED_DATA};
use crate::signer::{SignatureAlgorithm, Signer};

/// Sign `content` (id-data) as a DER ContentInfo/SignedData with one SignerInfo.
///
/// `certificate_der` is the signer's certificate, whose key `signer` holds; `chain` are further
/// certificates to include (issuing CA, optionally the root). The digest is SHA-256, or SHA-384
/// for a P-384 key, matching the hash inside the signature algorithm. With `detached`, the
/// content is left out and the verifier must be given it.
pub fn sign(
    content: &[u8],
    detached: bool,
    signer: &dyn Signer,
    certificate_der: &[u8],
    chain: &[Vec<u8>],
    signing_time: OffsetDateTime,
) -> Result<Vec<u8>, CmsError> {
    let certificate = Certificate::from_der(certificate_der).map_err(|e| CmsError::Certificate(e.to_string()))?;
    if certificate.tbs_certificate.subject_public_key_info != *signer.public_key() {
        return Err(CmsError::Certificate("the certificate is not for the signer's key".into()));
    }
    let digest = match signer.algorithm() {
        SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::EcdsaP256Sha256 => Digest::Sha256,
        SignatureAlgorithm::EcdsaP384Sha384 => Digest::Sha384,
    };
    let digest_algorithm = AlgorithmIdentifierOwned { oid: digest.oid(), parameters: None };

    let tbs = &certificate.tbs_certificate;
    let cert_id = EssCertIdV2 {
        hash_algorithm: None,
        cert_hash: OctetString::new(Digest::Sha256.digest(certificate_der))?,
        issuer_serial: Some(IssuerSerial {
            issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
            serial_number: tbs.serial_number.clone(),
        }),
    };
    let signed_attrs: SetOfVec<Attribute> = SetOfVec::try_from(vec![
        attribute(ATTR_CONTENT_TYPE, Any::encode_from(&ID_DATA)?)?,
        attribute(ATTR_SIGNING_TIME, Any::encode_from(&crate::issuer::to_x509_time(signing_time)?)?)?,
        attribute(ATTR_MESSAGE_DIGEST, Any::encode_from(&OctetString::new(digest.digest(content))?)?)?,
        attribute(
            SIGNING_CERTIFICATE_V2,
            Any::encode_from(&SigningCertificateV2 { certs: vec![cert_id], policies: None })?,
        )?,
    ])?;
    // The signature covers the DER of the SET OF, not of the [0] IMPLICIT field.
    let signature = signer.sign(&signed_attrs.to_der()?)?;

    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        }),
        digest_alg: digest_algorithm.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: signer.algorithm().algorithm_identifier(),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let mut certificates = vec![CertificateChoices::Certificate(certificate.clone())];
    for der in chain {
        let cert = Certificate::from_der(der).map_err(|e| CmsError::Certificate(format!("chain: {e}")))?;
        certificates.push(CertificateChoices::Certificate(cert));
    }
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![digest_algorithm])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: if detached { None } else { Some(Any::encode_from(&OctetString::new(content)?)?) },
        },
        certificates: Some(CertificateSet::try_from(certificates)?),
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer_info])?,
    };
    let info = ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&signed_data)? };
    Ok(info.to_der()?)
}

fn attribute(oid: const_oid::ObjectIdentifier, value: Any) -> der::Result<Attribute> {
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![value])? })
}

/// A "certs-only" PKCS#7 / CMS bundle (RFC 5652 §5, the degenerate SignedData of RFC 8551
/// §3.6.2: no signers, no content): how a set of certificates is handed over in one DER file
/// (`.p7c`), e.g. an applicant's certificates with the CA chain.
pub fn certs_only(certificates_der: &[Vec<u8>]) -> Result<Vec<u8>, CmsError> {
    let mut certificates = Vec::with_capacity(certificates_der.len());
    for der in certificates_der {
        let cert = Certificate::from_der(der).map_err(|e| CmsError::Certificate(e.to_string()))?;
        certificates.push(CertificateChoices::Certificate(cert));
    }
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo { econtent_type: ID_DATA, econtent: None },
        certificates: Some(CertificateSet::try_from(certificates)?),
        crls: None,
        signer_infos: SignerInfos::try_from(Vec::new())?,
    };
    let info = ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&signed_data)? };
    Ok(info.to_der()?)
}
