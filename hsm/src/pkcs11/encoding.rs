//! Conversions between what PKCS#11 returns and the DER structures certificates carry: the
//! public key as a `SubjectPublicKeyInfo`, the raw ECDSA `r || s` as an `Ecdsa-Sig-Value`, and
//! the `DigestInfo` that tokens without CKM_SHA256_RSA_PKCS need.

use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, ID_SHA_256, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1};
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, BitString, Null, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned};

use super::error::TokenError;
use crate::software::KeyAlgorithm;

/// RFC 8017 `RSAPublicKey`.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// RFC 3279 `Ecdsa-Sig-Value`.
#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// RFC 8017 `DigestInfo`.
#[derive(Sequence)]
struct DigestInfo<'a> {
    digest_algorithm: AlgorithmIdentifierRef<'a>,
    digest: OctetStringRef<'a>,
}

/// The named curve of an EC key type, `None` for RSA.
pub(crate) fn curve_oid(algorithm: KeyAlgorithm) -> Option<ObjectIdentifier> {
    match algorithm {
        KeyAlgorithm::P256 => Some(SECP_256_R_1),
        KeyAlgorithm::P384 => Some(SECP_384_R_1),
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => None,
    }
}

/// Bytes of one coordinate (and of `r` and `s`) on an EC key type's curve.
pub(crate) fn field_len(algorithm: KeyAlgorithm) -> Option<usize> {
    match algorithm {
        KeyAlgorithm::P256 => Some(32),
        KeyAlgorithm::P384 => Some(48),
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => None,
    }
}

/// CKA_EC_PARAMS for a curve: the DER of its OID (the `namedCurve` choice).
pub(crate) fn ec_params(curve: ObjectIdentifier) -> Result<Vec<u8>, TokenError> {
    curve.to_der().map_err(|e| TokenError::malformed("curve OID", e))
}

/// The key type a CKA_EC_PARAMS value names; only P-256 and P-384 are accepted.
pub(crate) fn curve_from_ec_params(params: &[u8]) -> Result<KeyAlgorithm, TokenError> {
    let oid = ObjectIdentifier::from_der(params)
        .map_err(|_| TokenError::Unsupported("EC key without a named curve".into()))?;
    match oid {
        SECP_256_R_1 => Ok(KeyAlgorithm::P256),
        SECP_384_R_1 => Ok(KeyAlgorithm::P384),
        other => Err(TokenError::Unsupported(format!("EC curve {other}; only P-256 and P-384 are accepted"))),
    }
}

/// The SPKI of an RSA key from CKA_MODULUS and CKA_PUBLIC_EXPONENT (big-endian, unsigned).
pub(crate) fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<SubjectPublicKeyInfoOwned, TokenError> {
    let key = RsaPublicKey {
        modulus: UintRef::new(modulus).map_err(|e| TokenError::malformed("RSA modulus", e))?,
        public_exponent: UintRef::new(exponent).map_err(|e| TokenError::malformed("RSA exponent", e))?,
    };
    let der = key.to_der().map_err(|e| TokenError::malformed("RSA public key", e))?;
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: RSA_ENCRYPTION, parameters: Some(AnyRef::from(Null).into()) },
        subject_public_key: BitString::from_bytes(&der).map_err(|e| TokenError::malformed("RSA public key", e))?,
    })
}

/// The SPKI of an EC key from CKA_EC_POINT. PKCS#11 says the point is DER-wrapped in an OCTET
/// STRING; some modules return the bare point. An uncompressed point also starts with 0x04,
/// so the two are told apart by length.
pub(crate) fn ec_spki(algorithm: KeyAlgorithm, ec_point: &[u8]) -> Result<SubjectPublicKeyInfoOwned, TokenError> {
    let (Some(curve), Some(field)) = (curve_oid(algorithm), field_len(algorithm)) else {
        return Err(TokenError::Unsupported(format!("{algorithm} is not an EC key type")));
    };
    let point_len = 1 + 2 * field;
    let point = if ec_point.len() == point_len && ec_point[0] == 0x04 {
        ec_point
    } else {
        OctetStringRef::from_der(ec_point).map_err(|e| TokenError::malformed("CKA_EC_POINT", e))?.as_bytes()
    };
    if point.len() != point_len || point[0] != 0x04 {
        return Err(TokenError::Malformed(format!(
            "CKA_EC_POINT is not an uncompressed {algorithm} point ({} bytes)",
            point.len()
        )));
    }
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: ID_EC_PUBLIC_KEY, parameters: Some((&curve).into()) },
        subject_public_key: BitString::from_bytes(point).map_err(|e| TokenError::malformed("EC public key", e))?,
    })
}

/// The DER `Ecdsa-Sig-Value` for a CKM_ECDSA signature, which is `r || s`, each `field` bytes.
pub(crate) fn ecdsa_raw_to_der(raw: &[u8], field: usize) -> Result<Vec<u8>, TokenError> {
    if raw.len() != 2 * field {
        return Err(TokenError::Malformed(format!(
            "ECDSA signature of {} bytes from the token; expected {}",
            raw.len(),
            2 * field
        )));
    }
    let (r, s) = raw.split_at(field);
    let value = EcdsaSigValue {
        r: UintRef::new(r).map_err(|e| TokenError::malformed("ECDSA r", e))?,
        s: UintRef::new(s).map_err(|e| TokenError::malformed("ECDSA s", e))?,
    };
    value.to_der().map_err(|e| TokenError::malformed("ECDSA signature", e))
}

/// The DER `DigestInfo` for a SHA-256 digest, the input of CKM_RSA_PKCS.
pub(crate) fn sha256_digest_info(digest: &[u8]) -> Result<Vec<u8>, TokenError> {
    let info = DigestInfo {
        digest_algorithm: AlgorithmIdentifierRef { oid: ID_SHA_256, parameters: Some(AnyRef::from(Null)) },
        digest: OctetStringRef::new(digest).map_err(|e| TokenError::malformed("digest", e))?,
    };
    info.to_der().map_err(|e| TokenError::malformed("DigestInfo", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::software::SoftwareKey;
    use ca_core::signer::Signer;

    #[test]
    fn ec_point_is_accepted_wrapped_and_raw() {
        for alg in [KeyAlgorithm::P256, KeyAlgorithm::P384] {
            let key = SoftwareKey::generate(alg).unwrap();
            let raw = key.public_key().subject_public_key.raw_bytes();
            let wrapped = OctetStringRef::new(raw).unwrap().to_der().unwrap();
            assert_eq!(&ec_spki(alg, raw).unwrap(), key.public_key());
            assert_eq!(&ec_spki(alg, &wrapped).unwrap(), key.public_key());
            assert!(ec_spki(alg, &raw[1..]).is_err());
            assert!(ec_spki(alg, &wrapped[..wrapped.len() - 1]).is_err());
            assert!(ec_spki(alg, &[]).is_err());
        }
        assert!(ec_spki(KeyAlgorithm::Rsa2048, &[4; 65]).is_err());
    }

    #[test]
    fn rsa_spki_matches_aws_lc_encoding() {
        let key = SoftwareKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        let der = key.public_key().subject_public_key.raw_bytes();
        let parsed = RsaPublicKey::from_der(der).unwrap();
        let ours = rsa_spki(parsed.modulus.as_bytes(), parsed.public_exponent.as_bytes()).unwrap();
        assert_eq!(&ours, key.public_key());
        // Leading zero bytes, as some tokens return them, change nothing.
        let mut padded = vec![0u8];
        padded.extend_from_slice(parsed.modulus.as_bytes());
        assert_eq!(&rsa_spki(&padded, &[0, 1, 0, 1]).unwrap(), key.public_key());
    }

    #[test]
    fn ecdsa_signatures_convert_to_der_that_aws_lc_verifies() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{
            EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED_SIGNING,
        };
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let rng = SystemRandom::new();
        for _ in 0..32 {
            let raw = pair.sign(&rng, b"message").unwrap();
            let der = ecdsa_raw_to_der(raw.as_ref(), 32).unwrap();
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, pair.public_key().as_ref())
                .verify(b"message", &der)
                .unwrap();
        }
        assert!(ecdsa_raw_to_der(&[1; 63], 32).is_err());
        // Leading zeros in r and s are stripped, high bits get a zero byte.
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[32] = 0x80;
        assert_eq!(
            ecdsa_raw_to_der(&raw, 32).unwrap()[..7],
            [0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21][..],
            "r = 1 is one byte, s with its top bit set gains a zero byte"
        );
    }

    #[test]
    fn digest_info_has_the_rfc_8017_prefix() {
        let info = sha256_digest_info(&[0xab; 32]).unwrap();
        let prefix = hex::decode("3031300d060960864801650304020105000420").unwrap();
        assert_eq!(info[..19], prefix[..]);
        assert_eq!(info.len(), 51);
    }

    #[test]
    fn ec_params_round_trip_and_odd_curves_are_refused() {
        assert_eq!(curve_from_ec_params(&ec_params(SECP_256_R_1).unwrap()).unwrap(), KeyAlgorithm::P256);
        assert_eq!(curve_from_ec_params(&ec_params(SECP_384_R_1).unwrap()).unwrap(), KeyAlgorithm::P384);
        let k1 = ec_params(ObjectIdentifier::new_unwrap("1.3.132.0.10")).unwrap();
        assert!(matches!(curve_from_ec_params(&k1), Err(TokenError::Unsupported(_))));
        assert!(curve_from_ec_params(&[0x05, 0x00]).is_err());
    }
}
