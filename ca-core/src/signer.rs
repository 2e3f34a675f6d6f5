//! The one signing abstraction. Certificates, CSRs, and later CRLs, OCSP responses and time
//! stamps are all signed through [`Signer`], whether the key is a software key or lives on a
//! PKCS#11 token. Implementations may block, may be slow (a smart card) and may fail (a token
//! pulled out of its reader), so every call returns a `Result` and callers that run on an async
//! executor must move signing onto a blocking thread.

use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, Null};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// Signature algorithms the CA produces. The hash is fixed by the algorithm so that a token
/// that only offers raw `CKM_ECDSA` can be driven by hashing in software.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureAlgorithm {
    /// sha256WithRSAEncryption (RSASSA-PKCS1-v1_5 with SHA-256).
    RsaPkcs1Sha256,
    /// ecdsa-with-SHA256 on P-256.
    EcdsaP256Sha256,
    /// ecdsa-with-SHA384 on P-384.
    EcdsaP384Sha384,
}

/// sha256WithRSAEncryption
pub const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// ecdsa-with-SHA256
pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384
pub const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

impl SignatureAlgorithm {
    /// The object identifier of the algorithm as written in `signatureAlgorithm`.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::RsaPkcs1Sha256 => SHA256_WITH_RSA,
            Self::EcdsaP256Sha256 => ECDSA_WITH_SHA256,
            Self::EcdsaP384Sha384 => ECDSA_WITH_SHA384,
        }
    }

    /// The `AlgorithmIdentifier` as RFC 4055 / RFC 5758 require it: an explicit NULL parameter
    /// for RSA, absent parameters for ECDSA.
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        let parameters = match self {
            Self::RsaPkcs1Sha256 => Some(AnyRef::from(Null).into()),
            Self::EcdsaP256Sha256 | Self::EcdsaP384Sha384 => None,
        };
        AlgorithmIdentifierOwned { oid: self.oid(), parameters }
    }

    /// Recognise a signature algorithm identifier from a certificate, CSR or CRL.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [Self::RsaPkcs1Sha256, Self::EcdsaP256Sha256, Self::EcdsaP384Sha384].into_iter().find(|alg| alg.oid() == *oid)
    }

    /// Short human name, also used in file names and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::RsaPkcs1Sha256 => "sha256WithRSAEncryption",
            Self::EcdsaP256Sha256 => "ecdsa-with-SHA256",
            Self::EcdsaP384Sha384 => "ecdsa-with-SHA384",
        }
    }
}

/// Why a signature could not be made. Messages never contain key material or PINs.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The key is not available (token removed, session closed, file unreadable).
    #[error("signing key unavailable: {0}")]
    KeyUnavailable(String),
    /// The key refused the operation (wrong mechanism, usage not permitted).
    #[error("signing refused by the key: {0}")]
    Refused(String),
    /// Any other failure reported by the key's implementation.
    #[error("signing failed: {0}")]
    Failed(String),
}

/// Something that holds a private key and signs with it.
///
/// `sign` receives the full message (the DER of a TBSCertificate, a CertificationRequestInfo, a
/// TBSCertList …) and returns the bytes that go into the BIT STRING of the signed structure:
/// the PKCS#1 v1.5 signature for RSA, the DER `Ecdsa-Sig-Value` for ECDSA.
pub trait Signer: Send + Sync {
    /// The algorithm this key signs with.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// The public half of the key, as it goes into a certificate or CSR.
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned;
    /// Sign `message`. May block for as long as the key's device needs.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

impl<T: Signer + ?Sized> Signer for std::sync::Arc<T> {
    fn algorithm(&self) -> SignatureAlgorithm {
        (**self).algorithm()
    }
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        (**self).public_key()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        (**self).sign(message)
    }
}

impl<T: Signer + ?Sized> Signer for Box<T> {
    fn algorithm(&self) -> SignatureAlgorithm {
        (**self).algorithm()
    }
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        (**self).public_key()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        (**self).sign(message)
    }
}
