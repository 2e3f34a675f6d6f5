//! Key policy for subject public keys: RSA of at least 2048 bits with a sane exponent, or
//! ECDSA on P-256 / P-384. Everything else is refused with a message that says why.

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::UintRef;
use der::{Decode, Sequence};
use spki::SubjectPublicKeyInfoOwned;

/// Minimum RSA modulus size.
pub const MIN_RSA_BITS: usize = 2048;
/// Maximum RSA modulus size the verifier supports.
pub const MAX_RSA_BITS: usize = 8192;

/// A public key that passed the key policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum PublicKeyKind {
    Rsa { bits: usize },
    EcP256,
    EcP384,
}

impl std::fmt::Display for PublicKeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::EcP256 => f.write_str("ECDSA P-256"),
            Self::EcP384 => f.write_str("ECDSA P-384"),
        }
    }
}

/// Why a key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyPolicyError {
    #[error("RSA key of {bits} bits is too weak: at least {MIN_RSA_BITS} bits are required")]
    RsaTooShort { bits: usize },
    #[error("RSA key of {bits} bits is too long: at most {MAX_RSA_BITS} bits are supported")]
    RsaTooLong { bits: usize },
    #[error("RSA public exponent must be odd and at least 3 (and at most 2^256)")]
    RsaExponent,
    #[error("elliptic curve {0} is not accepted: use P-256 or P-384")]
    UnsupportedCurve(String),
    #[error("public key algorithm {0} is not accepted: use RSA (2048 bits or more) or ECDSA P-256/P-384")]
    UnsupportedAlgorithm(String),
    #[error("malformed public key: {0}")]
    Malformed(String),
}

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

fn bit_len(magnitude: &[u8]) -> usize {
    match magnitude.iter().position(|b| *b != 0) {
        Some(i) => (magnitude.len() - i - 1) * 8 + (8 - magnitude[i].leading_zeros() as usize),
        None => 0,
    }
}

/// Apply the key policy.
pub fn check_key_policy(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKeyKind, KeyPolicyError> {
    let oid = spki.algorithm.oid;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| KeyPolicyError::Malformed("public key BIT STRING has unused bits".into()))?;
    if oid == rfc5912::RSA_ENCRYPTION {
        let key = RsaPublicKey::from_der(key_bytes).map_err(|e| KeyPolicyError::Malformed(format!("RSA key: {e}")))?;
        let bits = bit_len(key.modulus.as_bytes());
        if bits < MIN_RSA_BITS {
            return Err(KeyPolicyError::RsaTooShort { bits });
        }
        if bits > MAX_RSA_BITS {
            return Err(KeyPolicyError::RsaTooLong { bits });
        }
        let e = key.public_exponent.as_bytes();
        let e_bits = bit_len(e);
        if e.last().is_none_or(|b| b & 1 == 0) || !(2..=256).contains(&e_bits) {
            return Err(KeyPolicyError::RsaExponent);
        }
        return Ok(PublicKeyKind::Rsa { bits });
    }
    if oid == rfc5912::ID_EC_PUBLIC_KEY {
        let curve: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| KeyPolicyError::Malformed("EC key without curve parameters".into()))?
            .decode_as()
            .map_err(|_| KeyPolicyError::UnsupportedCurve("given by explicit parameters".into()))?;
        let (kind, len) = if curve == rfc5912::SECP_256_R_1 {
            (PublicKeyKind::EcP256, 65)
        } else if curve == rfc5912::SECP_384_R_1 {
            (PublicKeyKind::EcP384, 97)
        } else {
            return Err(KeyPolicyError::UnsupportedCurve(curve.to_string()));
        };
        if key_bytes.len() != len || key_bytes[0] != 0x04 {
            return Err(KeyPolicyError::Malformed("EC point must be uncompressed and of the curve's size".into()));
        }
        return Ok(kind);
    }
    let name = const_oid::db::DB.by_oid(&oid).map(|n| format!("{n} ({oid})")).unwrap_or_else(|| oid.to_string());
    Err(KeyPolicyError::UnsupportedAlgorithm(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length() {
        assert_eq!(bit_len(&[0x00, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0x01]), 1);
        assert_eq!(bit_len(&[]), 0);
    }
}
