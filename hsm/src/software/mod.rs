//! Software keys: a private key held in process memory by aws-lc-rs.
//!
//! A [`SoftwareKey`] is created by [`SoftwareKey::generate`], loaded from an encrypted PKCS#8
//! PEM file ([`SoftwareKey::from_encrypted_pem`]) or from a PKCS#12 file ([`read_pkcs12`]).
//! The unencrypted PKCS#8 encoding never leaves this crate: it exists only on the way into the
//! encrypted PEM and PKCS#12 writers, always inside [`Zeroizing`].

mod algorithm;
mod encrypted;
mod pkcs12;
#[cfg(test)]
pub(crate) mod test_support;

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING,
    ECDSA_P384_SHA384_ASN1_SIGNING, RSA_PKCS1_SHA256,
};
use ca_core::signer::{SignatureAlgorithm, Signer, SignerError};
use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1};
use der::asn1::{AnyRef, BitString, Null};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::error::KeyError;

pub use self::algorithm::{KeyAlgorithm, UnknownKeyAlgorithm};
pub use self::encrypted::{replace_encrypted_key_file, write_encrypted_key_file, SCRYPT_LOG_N, SCRYPT_P, SCRYPT_R};
pub use self::pkcs12::{build_pkcs12, read_pkcs12, FRIENDLY_NAME_OID, LOCAL_KEY_ID_OID, PKCS12_ITERATIONS};

/// The private half, as aws-lc-rs holds it.
enum KeyPairInner {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// A private key in memory that signs with aws-lc-rs.
///
/// `Debug` shows the algorithm only; the key material cannot be printed.
pub struct SoftwareKey {
    algorithm: KeyAlgorithm,
    pair: KeyPairInner,
    public_key: SubjectPublicKeyInfoOwned,
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

fn ecdsa_signing_algorithm(alg: KeyAlgorithm) -> Option<&'static EcdsaSigningAlgorithm> {
    match alg {
        KeyAlgorithm::P256 => Some(&ECDSA_P256_SHA256_ASN1_SIGNING),
        KeyAlgorithm::P384 => Some(&ECDSA_P384_SHA384_ASN1_SIGNING),
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => None,
    }
}

impl SoftwareKey {
    /// Generate a fresh key of the given type with aws-lc-rs.
    ///
    /// RSA-4096 generation takes around a second.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        use aws_lc_rs::rsa::KeySize;
        let rsa = |size| {
            RsaKeyPair::generate(size).map(KeyPairInner::Rsa).map_err(|_| KeyError::crypto("RSA key generation failed"))
        };
        let ecdsa = |curve| {
            EcdsaKeyPair::generate(curve)
                .map(KeyPairInner::Ecdsa)
                .map_err(|_| KeyError::crypto("EC key generation failed"))
        };
        let pair = match algorithm {
            KeyAlgorithm::Rsa2048 => rsa(KeySize::Rsa2048)?,
            KeyAlgorithm::Rsa3072 => rsa(KeySize::Rsa3072)?,
            KeyAlgorithm::Rsa4096 => rsa(KeySize::Rsa4096)?,
            KeyAlgorithm::P256 => ecdsa(&ECDSA_P256_SHA256_ASN1_SIGNING)?,
            KeyAlgorithm::P384 => ecdsa(&ECDSA_P384_SHA384_ASN1_SIGNING)?,
        };
        Self::from_pair(algorithm, pair)
    }

    /// Load an unencrypted PKCS#8 `PrivateKeyInfo`. The key type (RSA or EC, and the curve) is
    /// taken from its `privateKeyAlgorithm`; RSA moduli other than 2048, 3072 and 4096 bits and
    /// curves other than P-256 and P-384 are refused.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| KeyError::malformed("PKCS#8 PrivateKeyInfo", e))?;
        let oid = info.algorithm.oid;
        if oid == RSA_ENCRYPTION {
            let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| KeyError::malformed("RSA private key rejected", e))?;
            let algorithm = KeyAlgorithm::rsa_from_modulus_len(pair.public_modulus_len()).ok_or_else(|| {
                KeyError::Unsupported(format!(
                    "RSA key of {} bits; only 2048, 3072 and 4096 are accepted",
                    pair.public_modulus_len() * 8
                ))
            })?;
            Self::from_pair(algorithm, KeyPairInner::Rsa(pair))
        } else if oid == ID_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| KeyError::Unsupported("EC key without a named curve".into()))?;
            let algorithm = match curve {
                SECP_256_R_1 => KeyAlgorithm::P256,
                SECP_384_R_1 => KeyAlgorithm::P384,
                other => {
                    return Err(KeyError::Unsupported(format!("EC curve {other}; only P-256 and P-384 are accepted")))
                }
            };
            let signing = ecdsa_signing_algorithm(algorithm)
                .ok_or_else(|| KeyError::crypto("no ECDSA algorithm for key type"))?;
            let pair = EcdsaKeyPair::from_pkcs8(signing, der)
                .map_err(|e| KeyError::malformed("EC private key rejected", e))?;
            Self::from_pair(algorithm, KeyPairInner::Ecdsa(pair))
        } else {
            Err(KeyError::Unsupported(format!("private key algorithm {oid}; only RSA and EC keys are accepted")))
        }
    }

    /// The key's type and size.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The unencrypted PKCS#8 v1 `PrivateKeyInfo` DER. Only for the encrypted PEM and PKCS#12
    /// writers of this crate, which is why it is not public.
    pub(crate) fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let export_failed = |_| KeyError::crypto("exporting the private key as PKCS#8 failed");
        let der = match &self.pair {
            KeyPairInner::Rsa(pair) => {
                let doc = pair.as_der().map_err(export_failed)?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
            KeyPairInner::Ecdsa(pair) => {
                let doc = pair.to_pkcs8v1().map_err(export_failed)?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
        };
        Ok(der)
    }

    fn from_pair(algorithm: KeyAlgorithm, pair: KeyPairInner) -> Result<Self, KeyError> {
        let public_key = match &pair {
            KeyPairInner::Rsa(pair) => {
                // `RSAPublicKey` (RFC 8017) DER, which is what the BIT STRING carries.
                rsa_spki(pair.public_key().as_ref())?
            }
            KeyPairInner::Ecdsa(pair) => {
                let curve = match algorithm {
                    KeyAlgorithm::P256 => SECP_256_R_1,
                    KeyAlgorithm::P384 => SECP_384_R_1,
                    KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                        return Err(KeyError::crypto("EC key pair labelled as RSA"))
                    }
                };
                // The uncompressed point, which is what the BIT STRING carries.
                ec_spki(curve, pair.public_key().as_ref())?
            }
        };
        Ok(Self { algorithm, pair, public_key })
    }
}

fn rsa_spki(rsa_public_key: &[u8]) -> Result<SubjectPublicKeyInfoOwned, KeyError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: RSA_ENCRYPTION, parameters: Some(AnyRef::from(Null).into()) },
        subject_public_key: BitString::from_bytes(rsa_public_key)
            .map_err(|e| KeyError::malformed("RSA public key", e))?,
    })
}

fn ec_spki(curve: const_oid::ObjectIdentifier, point: &[u8]) -> Result<SubjectPublicKeyInfoOwned, KeyError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: ID_EC_PUBLIC_KEY, parameters: Some((&curve).into()) },
        subject_public_key: BitString::from_bytes(point).map_err(|e| KeyError::malformed("EC public key", e))?,
    })
}

impl Signer for SoftwareKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm.signature_algorithm()
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.public_key
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let rng = SystemRandom::new();
        match &self.pair {
            KeyPairInner::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| SignerError::Failed("RSA signing failed".into()))?;
                Ok(signature)
            }
            KeyPairInner::Ecdsa(pair) => pair
                .sign(&rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| SignerError::Failed("ECDSA signing failed".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{
        UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1,
        RSA_PKCS1_2048_8192_SHA256,
    };
    use der::{Decode, Encode};

    fn verification(alg: SignatureAlgorithm) -> &'static dyn VerificationAlgorithm {
        match alg {
            SignatureAlgorithm::RsaPkcs1Sha256 => &RSA_PKCS1_2048_8192_SHA256,
            SignatureAlgorithm::EcdsaP256Sha256 => &ECDSA_P256_SHA256_ASN1,
            SignatureAlgorithm::EcdsaP384Sha384 => &ECDSA_P384_SHA384_ASN1,
        }
    }

    pub(crate) fn assert_signs_and_verifies(key: &SoftwareKey) {
        let message = b"TBSCertificate stand-in";
        let signature = key.sign(message).unwrap();
        let spki = key.public_key();
        let raw = spki.subject_public_key.as_bytes().unwrap();
        let public = UnparsedPublicKey::new(verification(key.algorithm()), raw);
        public.verify(message, &signature).unwrap();
        assert!(public.verify(b"another message", &signature).is_err());
    }

    #[test]
    fn sign_verify_every_fast_algorithm() {
        for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa3072, KeyAlgorithm::P256, KeyAlgorithm::P384] {
            let key = SoftwareKey::generate(alg).unwrap();
            assert_eq!(key.key_algorithm(), alg);
            assert_eq!(key.algorithm(), alg.signature_algorithm());
            assert_signs_and_verifies(&key);
        }
    }

    #[test]
    fn rsa4096_generates_and_signs() {
        let key = SoftwareKey::generate(KeyAlgorithm::Rsa4096).unwrap();
        assert_eq!(key.sign(b"m").unwrap().len(), 512);
        assert_signs_and_verifies(&key);
    }

    #[test]
    fn openssl_verifies_our_signatures() {
        let dir = tempfile::tempdir().unwrap();
        let message = dir.path().join("message");
        std::fs::write(&message, b"to be signed").unwrap();
        for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256, KeyAlgorithm::P384] {
            let key = SoftwareKey::generate(alg).unwrap();
            let public = dir.path().join(format!("{alg}.pub.der"));
            std::fs::write(&public, key.public_key().to_der().unwrap()).unwrap();
            let signature = dir.path().join(format!("{alg}.sig"));
            std::fs::write(&signature, key.sign(b"to be signed").unwrap()).unwrap();
            let digest = if alg == KeyAlgorithm::P384 { "-sha384" } else { "-sha256" };
            let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
            test_support::openssl_ok(&[
                "dgst",
                digest,
                "-verify",
                &path(&public),
                "-keyform",
                "DER",
                "-signature",
                &path(&signature),
                &path(&message),
            ]);
        }
    }

    #[test]
    fn ecdsa_signatures_are_der_sequences() {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let signature = key.sign(b"m").unwrap();
        assert_eq!(signature[0], 0x30, "Ecdsa-Sig-Value is a SEQUENCE");
    }

    #[test]
    fn spki_has_the_expected_algorithm_identifiers() {
        let rsa = SoftwareKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        let spki = rsa.public_key();
        assert_eq!(spki.algorithm.oid, RSA_ENCRYPTION);
        let params = spki.algorithm.parameters.as_ref().unwrap();
        assert_eq!(params.to_der().unwrap(), [0x05, 0x00]);

        for (alg, curve) in [(KeyAlgorithm::P256, SECP_256_R_1), (KeyAlgorithm::P384, SECP_384_R_1)] {
            let key = SoftwareKey::generate(alg).unwrap();
            let spki = key.public_key();
            assert_eq!(spki.algorithm.oid, ID_EC_PUBLIC_KEY);
            let params = spki.algorithm.parameters.as_ref().unwrap();
            assert_eq!(params.decode_as::<const_oid::ObjectIdentifier>().unwrap(), curve);
        }
    }

    #[test]
    fn spki_matches_aws_lc_encoding() {
        let key = SoftwareKey::generate(KeyAlgorithm::P384).unwrap();
        let KeyPairInner::Ecdsa(pair) = &key.pair else { panic!("expected an EC key") };
        let theirs = pair.public_key().as_der().unwrap();
        let parsed = SubjectPublicKeyInfoOwned::from_der(theirs.as_ref()).unwrap();
        assert_eq!(&parsed, key.public_key());
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256, KeyAlgorithm::P384] {
            let key = SoftwareKey::generate(alg).unwrap();
            let der = key.to_pkcs8_der().unwrap();
            let loaded = SoftwareKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(loaded.key_algorithm(), alg);
            assert_eq!(loaded.public_key(), key.public_key());
            assert_signs_and_verifies(&loaded);
        }
    }

    #[test]
    fn malformed_pkcs8_is_an_error_not_a_panic() {
        assert!(matches!(SoftwareKey::from_pkcs8_der(b""), Err(KeyError::Malformed(_))));
        assert!(matches!(SoftwareKey::from_pkcs8_der(&[0x30, 0x03, 0x02, 0x01, 0x00]), Err(KeyError::Malformed(_))));
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        for cut in [1, der.len() / 2, der.len() - 1] {
            assert!(SoftwareKey::from_pkcs8_der(&der[..cut]).is_err());
        }
        let mut flipped = der.to_vec();
        let last = flipped.len() - 5;
        flipped[last] ^= 0xff;
        assert!(SoftwareKey::from_pkcs8_der(&flipped).is_err());
    }

    #[test]
    fn openssl_keys_load_and_odd_sizes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ok =
            test_support::openssl_genpkey(dir.path(), &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]);
        let key = SoftwareKey::from_pkcs8_der(&ok).unwrap();
        assert_eq!(key.key_algorithm(), KeyAlgorithm::P384);
        assert_signs_and_verifies(&key);

        let k1 =
            test_support::openssl_genpkey(dir.path(), &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"]);
        assert!(matches!(SoftwareKey::from_pkcs8_der(&k1), Err(KeyError::Unsupported(_))));

        let ed = test_support::openssl_genpkey(dir.path(), &["-algorithm", "ED25519"]);
        assert!(matches!(SoftwareKey::from_pkcs8_der(&ed), Err(KeyError::Unsupported(_))));

        let odd = test_support::openssl_genpkey(dir.path(), &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2560"]);
        assert!(matches!(SoftwareKey::from_pkcs8_der(&odd), Err(KeyError::Unsupported(_))));
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let debug = format!("{key:?}");
        assert_eq!(debug, "SoftwareKey { algorithm: P256, .. }");
    }

    #[test]
    fn software_key_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SoftwareKey>();
        let _: Box<dyn Signer> = Box::new(SoftwareKey::generate(KeyAlgorithm::P256).unwrap());
    }
}
