//! Key policy for subject public keys: RSA of at least 2048 bits with an odd public exponent of
//! at least 65537, or ECDSA on P-256 / P-384. Everything else is refused with a message that
//! says why. This is the one key policy: CSRs, keys generated here or on tokens, the lint
//! before signing and signature verification all apply it.

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::UintRef;
use der::{Decode, Sequence};
use spki::SubjectPublicKeyInfoOwned;

/// Minimum RSA modulus size.
pub const MIN_RSA_BITS: usize = 2048;
/// Maximum RSA modulus size the verifier supports.
pub const MAX_RSA_BITS: usize = 8192;
/// Smallest RSA public exponent accepted (F4, 2^16 + 1): small exponents such as 3 make
/// low-exponent attacks on badly padded messages practical, and no current key generator
/// (OpenSSL, aws-lc, PKCS#11 tokens) makes them unless asked to.
pub const MIN_RSA_EXPONENT: u32 = 65_537;
/// Largest RSA public exponent, in bits (CA/Browser Forum: below 2^256).
const MAX_RSA_EXPONENT_BITS: usize = 256;

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
    #[error("RSA public exponent {exponent} is refused: it must be odd, at least {MIN_RSA_EXPONENT} and below 2^256 (generate the key with the default exponent 65537)")]
    RsaExponent { exponent: String },
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

/// The public exponent (big-endian magnitude) must be odd, at least [`MIN_RSA_EXPONENT`] and
/// below 2^256.
fn check_rsa_exponent(e: &[u8]) -> Result<(), KeyPolicyError> {
    let bits = bit_len(e);
    let small = (bits <= 32).then(|| e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)));
    let odd = e.last().is_some_and(|b| b & 1 == 1);
    let too_small = small.is_some_and(|v| v < u64::from(MIN_RSA_EXPONENT));
    if !odd || too_small || bits > MAX_RSA_EXPONENT_BITS {
        let exponent = match small {
            Some(v) => v.to_string(),
            None => format!("of {bits} bits"),
        };
        return Err(KeyPolicyError::RsaExponent { exponent });
    }
    Ok(())
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
        check_rsa_exponent(key.public_exponent.as_bytes())?;
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

    use der::asn1::BitString;
    use der::Encode;
    use spki::AlgorithmIdentifierOwned;

    fn rsa_spki(exponent: &[u8]) -> SubjectPublicKeyInfoOwned {
        // The policy reads sizes only, so any 2048-bit odd modulus will do.
        let mut modulus = vec![0xC5; 256];
        modulus[255] |= 1;
        let key =
            RsaPublicKey { modulus: UintRef::new(&modulus).unwrap(), public_exponent: UintRef::new(exponent).unwrap() };
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: rfc5912::RSA_ENCRYPTION,
                parameters: Some(der::asn1::Null.into()),
            },
            subject_public_key: BitString::from_bytes(&key.to_der().unwrap()).unwrap(),
        }
    }

    #[test]
    fn rsa_exponent_must_be_odd_and_at_least_65537() {
        assert_eq!(check_key_policy(&rsa_spki(&[0x01, 0x00, 0x01])), Ok(PublicKeyKind::Rsa { bits: 2048 }));
        // Larger odd exponents below 2^256 are allowed (CA/Browser Forum baseline).
        assert!(check_key_policy(&rsa_spki(&[0x01, 0x00, 0x00, 0x00, 0x01])).is_ok());
        for (e, shown) in [
            (&[0x03][..], "3"),
            (&[0x11][..], "17"),
            (&[0x01, 0x01][..], "257"),
            (&[0xFF, 0xFF][..], "65535"),
            (&[0x01, 0x00, 0x00][..], "65536"),
            (&[0x01, 0x00, 0x02][..], "65538"),
        ] {
            match check_key_policy(&rsa_spki(e)) {
                Err(KeyPolicyError::RsaExponent { exponent }) => assert_eq!(exponent, shown),
                other => panic!("exponent {shown} accepted: {other:?}"),
            }
        }
        let mut huge = vec![0x01];
        huge.extend_from_slice(&[0; 32]);
        *huge.last_mut().unwrap() = 1;
        let e = check_key_policy(&rsa_spki(&huge)).unwrap_err();
        assert_eq!(e.to_string(), "RSA public exponent of 257 bits is refused: it must be odd, at least 65537 and below 2^256 (generate the key with the default exponent 65537)");
    }

    #[test]
    fn bit_length() {
        assert_eq!(bit_len(&[0x00, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0x01]), 1);
        assert_eq!(bit_len(&[]), 0);
    }
}
