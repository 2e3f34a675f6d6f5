//! Checking signatures made by others (CSRs now; certificates, CRLs and CMS later) with
//! aws-lc-rs. Only verification lives here: ca-core never holds a private key.

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use spki::SubjectPublicKeyInfoOwned;

use crate::keys::{check_key_policy, PublicKeyKind};

/// A signature did not verify or cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature algorithm {0} is not supported")]
    UnsupportedAlgorithm(String),
    #[error("signature algorithm {algorithm} does not match a {key} key")]
    AlgorithmKeyMismatch { algorithm: String, key: String },
    #[error("the signature does not match the public key")]
    Invalid,
    #[error(transparent)]
    KeyPolicy(#[from] crate::keys::KeyPolicyError),
}

fn algorithm_name(oid: &ObjectIdentifier) -> String {
    const_oid::db::DB.by_oid(oid).map(|n| format!("{n} ({oid})")).unwrap_or_else(|| oid.to_string())
}

/// Verify `signature` over `message` by the key in `spki`, with the algorithm named by
/// `signature_algorithm` (RSA PKCS#1 v1.5 with SHA-256/384/512, ECDSA with SHA-256/384).
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    signature_algorithm: &ObjectIdentifier,
    message: &[u8],
    signature: &[u8],
) -> Result<PublicKeyKind, SignatureError> {
    use aws_lc_rs::signature as sig;
    let kind = check_key_policy(spki)?;
    let mismatch = || SignatureError::AlgorithmKeyMismatch {
        algorithm: algorithm_name(signature_algorithm),
        key: kind.to_string(),
    };
    let alg: &'static dyn sig::VerificationAlgorithm = match kind {
        PublicKeyKind::Rsa { .. } => match *signature_algorithm {
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION => &sig::RSA_PKCS1_2048_8192_SHA256,
            rfc5912::SHA_384_WITH_RSA_ENCRYPTION => &sig::RSA_PKCS1_2048_8192_SHA384,
            rfc5912::SHA_512_WITH_RSA_ENCRYPTION => &sig::RSA_PKCS1_2048_8192_SHA512,
            rfc5912::ECDSA_WITH_SHA_256 | rfc5912::ECDSA_WITH_SHA_384 => return Err(mismatch()),
            _ => return Err(SignatureError::UnsupportedAlgorithm(algorithm_name(signature_algorithm))),
        },
        PublicKeyKind::EcP256 => match *signature_algorithm {
            rfc5912::ECDSA_WITH_SHA_256 => &sig::ECDSA_P256_SHA256_ASN1,
            rfc5912::ECDSA_WITH_SHA_384 => &sig::ECDSA_P256_SHA384_ASN1,
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION | rfc5912::SHA_384_WITH_RSA_ENCRYPTION => return Err(mismatch()),
            _ => return Err(SignatureError::UnsupportedAlgorithm(algorithm_name(signature_algorithm))),
        },
        PublicKeyKind::EcP384 => match *signature_algorithm {
            rfc5912::ECDSA_WITH_SHA_384 => &sig::ECDSA_P384_SHA384_ASN1,
            rfc5912::ECDSA_WITH_SHA_256 => &sig::ECDSA_P384_SHA256_ASN1,
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION | rfc5912::SHA_384_WITH_RSA_ENCRYPTION => return Err(mismatch()),
            _ => return Err(SignatureError::UnsupportedAlgorithm(algorithm_name(signature_algorithm))),
        },
    };
    let key_bytes = spki.subject_public_key.raw_bytes();
    sig::UnparsedPublicKey::new(alg, key_bytes).verify(message, signature).map_err(|_| SignatureError::Invalid)?;
    Ok(kind)
}
