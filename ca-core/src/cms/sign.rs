//! Making a CMS SignedData with one signer: CAdES-BES signed attributes (contentType,
//! signingTime, messageDigest, signingCertificateV2), signature through a [`Signer`].

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Reader, Sequence, Tagged};
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
/// certificates to include (issuing CA, optionally the root). The certificates are carried as
/// the DER given (each must be one DER SEQUENCE), not decoded and encoded again. The digest is SHA-256, or SHA-384
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
    sign_encapsulated(
        &Encapsulated {
            content_type: ID_DATA,
            content,
            detached,
            signing_time: Some(signing_time),
            include_certificates: true,
        },
        signer,
        certificate_der,
        chain,
    )
}

/// What one SignedData encapsulates, and which optional parts it carries.
pub(crate) struct Encapsulated<'a> {
    /// eContentType (id-data, id-ct-TSTInfo …), also the contentType signed attribute.
    pub content_type: ObjectIdentifier,
    /// The eContent (DER of the structure for a typed content, the bytes for id-data).
    pub content: &'a [u8],
    pub detached: bool,
    /// The signingTime signed attribute, when wanted (a time stamp carries genTime instead).
    pub signing_time: Option<OffsetDateTime>,
    /// Whether the signer's certificate and `chain` go into `certificates` (a time stamp
    /// carries them only when the request asked, RFC 3161 2.4.1 certReq).
    pub include_certificates: bool,
}

/// The one SignedData builder: one SignerInfo (issuerAndSerialNumber) with the signed
/// attributes contentType, [signingTime,] messageDigest and signingCertificateV2 (RFC 5035,
/// which CAdES-BES and RFC 5816 time stamps require).
pub(crate) fn sign_encapsulated(
    encapsulated: &Encapsulated<'_>,
    signer: &dyn Signer,
    certificate_der: &[u8],
    chain: &[Vec<u8>],
) -> Result<Vec<u8>, CmsError> {
    let certificate = SignerCertificate::from_der(certificate_der).map_err(|e| CmsError::Certificate(e.to_string()))?;
    if certificate.public_key != *signer.public_key() {
        return Err(CmsError::Certificate("the certificate is not for the signer's key".into()));
    }
    let digest = match signer.algorithm() {
        SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::EcdsaP256Sha256 => Digest::Sha256,
        SignatureAlgorithm::EcdsaP384Sha384 => Digest::Sha384,
    };
    let digest_algorithm = AlgorithmIdentifierOwned { oid: digest.oid(), parameters: None };

    let tbs = &certificate;
    let cert_id = EssCertIdV2 {
        hash_algorithm: None,
        cert_hash: OctetString::new(Digest::Sha256.digest(certificate_der))?,
        issuer_serial: Some(IssuerSerial {
            issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
            serial_number: tbs.serial_number.clone(),
        }),
    };
    let mut attributes = vec![attribute(ATTR_CONTENT_TYPE, Any::encode_from(&encapsulated.content_type)?)?];
    if let Some(at) = encapsulated.signing_time {
        attributes.push(attribute(ATTR_SIGNING_TIME, Any::encode_from(&crate::issuer::to_x509_time(at)?)?)?);
    }
    attributes.push(attribute(
        ATTR_MESSAGE_DIGEST,
        Any::encode_from(&OctetString::new(digest.digest(encapsulated.content))?)?,
    )?);
    attributes.push(attribute(
        SIGNING_CERTIFICATE_V2,
        Any::encode_from(&SigningCertificateV2 { certs: vec![cert_id], policies: None })?,
    )?);
    let signed_attrs: SetOfVec<Attribute> = SetOfVec::try_from(attributes)?;
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
    let certificates = if encapsulated.include_certificates {
        let carried = std::iter::once(certificate_der).chain(chain.iter().map(Vec::as_slice));
        Some(SetOfVec::try_from(carried.map(carried_certificate).collect::<Result<Vec<_>, _>>()?)?)
    } else {
        None
    };
    // eContent is an OCTET STRING of the content (of its DER for a typed content, RFC 5652 5.2).
    let content = Any::new(der::Tag::OctetString, encapsulated.content)?;
    let signed_data = SignedDataOut {
        // RFC 5652 5.1: version 3 when the content is not id-data, else 1.
        version: if encapsulated.content_type == ID_DATA { CmsVersion::V1 } else { CmsVersion::V3 },
        digest_algorithms: SetOfVec::try_from(vec![digest_algorithm])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: encapsulated.content_type,
            econtent: if encapsulated.detached { None } else { Some(content) },
        },
        certificates,
        signer_infos: SignerInfos::try_from(vec![signer_info])?,
    };
    Ok(ContentInfoOut { content_type: ID_SIGNED_DATA, content: signed_data }.to_der()?)
}

/// What a signature takes from its signer's certificate (RFC 5280 4.1): the issuer and serial
/// number that name it, and the key it must be for. Read without decoding the subject, the
/// validity or the extensions, which a signature does not use (a client signs with the same
/// certificate again and again; the verifier reads all of it).
pub(super) struct SignerCertificate {
    pub(super) serial_number: x509_cert::serial_number::SerialNumber,
    pub(super) issuer: x509_cert::name::Name,
    pub(super) public_key: spki::SubjectPublicKeyInfoOwned,
}

impl<'a> Decode<'a> for SignerCertificate {
    fn decode<R: Reader<'a>>(reader: &mut R) -> der::Result<Self> {
        reader.sequence(|certificate| {
            let head = certificate.sequence(|tbs| {
                let _version = der::asn1::ContextSpecific::<AnyRef<'_>>::decode_explicit(tbs, der::TagNumber::N0)?;
                let serial_number = Decode::decode(tbs)?;
                let _signature = AnyRef::decode(tbs)?;
                let issuer = Decode::decode(tbs)?;
                let _validity = AnyRef::decode(tbs)?;
                let _subject = AnyRef::decode(tbs)?;
                let public_key = Decode::decode(tbs)?;
                // The unique identifiers and extensions.
                tbs.read_slice(tbs.remaining_len())?;
                Ok(SignerCertificate { serial_number, issuer, public_key })
            })?;
            let _signature_algorithm = AnyRef::decode(certificate)?;
            let _signature = AnyRef::decode(certificate)?;
            Ok(head)
        })
    }
}

/// `ContentInfo` (RFC 5652 §3) with the SignedData written in place (no intermediate `Any`).
#[derive(Sequence)]
struct ContentInfoOut<'a> {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    content: SignedDataOut<'a>,
}

/// `SignedData` (RFC 5652 §5.1) as this builder writes it: the certificates are carried as the
/// DER they were handed over in (`CertificateChoices` of the `certificate` alternative), not
/// decoded and encoded again; no `crls` field (revocation data is not embedded here). The
/// `cms` crate's `SignedData` reads what this writes.
#[derive(Sequence)]
struct SignedDataOut<'a> {
    version: CmsVersion,
    digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<SetOfVec<AnyRef<'a>>>,
    signer_infos: SignerInfos,
}

/// A certificate to carry as it is: one DER SEQUENCE with nothing after it. Its content is
/// the caller's (the signer's own certificate was decoded above; the chain comes from the
/// same key store), and a verifier reads every certificate it uses.
fn carried_certificate(der: &[u8]) -> Result<AnyRef<'_>, CmsError> {
    let any = AnyRef::from_der(der).map_err(|e| CmsError::Certificate(format!("chain: {e}")))?;
    if any.tag() != der::Tag::Sequence {
        return Err(CmsError::Certificate(format!("chain: a certificate is a SEQUENCE, not {}", any.tag())));
    }
    Ok(any)
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
