//! The ESS signingCertificateV2 attribute of RFC 5035, which binds a signature to the signer's
//! certificate (CAdES-BES requires it): without it a signer could swap in another certificate
//! for the same key.

use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::Sequence;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::name::GeneralNames;
use x509_cert::serial_number::SerialNumber;

/// id-aa-signingCertificateV2
pub const SIGNING_CERTIFICATE_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// `SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies ... OPTIONAL }`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    pub policies: Option<Vec<der::Any>>,
}

/// `ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT id-sha256, certHash, issuerSerial OPTIONAL }`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct EssCertIdV2 {
    /// `None` is the DEFAULT, SHA-256 (`der` 0.7's `default` attribute needs a `Copy` type, so
    /// the DEFAULT is modelled as OPTIONAL; never write `Some(sha256)`, DER omits it).
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// `IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct IssuerSerial {
    pub issuer: GeneralNames,
    pub serial_number: SerialNumber,
}

impl EssCertIdV2 {
    /// The hash algorithm of `cert_hash`, with the DEFAULT applied.
    pub fn hash_algorithm_oid(&self) -> ObjectIdentifier {
        self.hash_algorithm.as_ref().map(|a| a.oid).unwrap_or(const_oid::db::rfc5912::ID_SHA_256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn default_sha256_is_omitted_and_read_back() {
        let id = EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(vec![1u8; 32]).unwrap(),
            issuer_serial: None,
        };
        let der = SigningCertificateV2 { certs: vec![id.clone()], policies: None }.to_der().unwrap();
        // SEQUENCE { SEQUENCE { SEQUENCE { OCTET STRING (32) } } }: no AlgorithmIdentifier.
        assert_eq!(&der[..8], &[0x30, 0x26, 0x30, 0x24, 0x30, 0x22, 0x04, 0x20]);
        let back = SigningCertificateV2::from_der(&der).unwrap();
        assert_eq!(back.certs, vec![id]);
        assert_eq!(back.certs[0].hash_algorithm_oid(), const_oid::db::rfc5912::ID_SHA_256);
    }
}
