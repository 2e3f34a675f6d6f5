//! Signature verification (aws-lc-rs; DSA through RustCrypto's `dsa`, which aws-lc-rs lacks)
//! and the algorithm and key policy: which keys are too weak and until when SHA-1 is accepted.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier;
use der::asn1::UintRef;
use der::{Decode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use time::OffsetDateTime;

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const SHA1_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const DSA_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.3");

/// Which keys and signature algorithms a validation accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlgorithmPolicy {
    /// Smallest RSA modulus accepted (bits).
    pub min_rsa_bits: usize,
    /// DSA keys (FIPS 186-5 withdrew DSA for new signatures): refused unless set.
    pub allow_dsa: bool,
    /// SHA-1 signatures are accepted only for a validation time before this instant
    /// (historical documents); `None` refuses them.
    pub sha1_accepted_before: Option<OffsetDateTime>,
}

impl Default for AlgorithmPolicy {
    fn default() -> Self {
        Self { min_rsa_bits: 2048, allow_dsa: false, sha1_accepted_before: None }
    }
}

/// Why a signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureProblem {
    /// The key or algorithm is refused by the policy, or not implemented.
    Refused(String),
    /// The signature does not verify.
    Invalid,
}

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    #[allow(dead_code)]
    public_exponent: UintRef<'a>,
}

/// Dss-Parms (RFC 3279 §2.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct DsaParameters<'a> {
    p: UintRef<'a>,
    q: UintRef<'a>,
    g: UintRef<'a>,
}

fn bits(n: &[u8]) -> usize {
    n.first().map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize)
}

/// What the key is ("RSA-2048", "P-256"), or why the policy refuses it.
pub fn describe_key(spki: &SubjectPublicKeyInfoOwned, policy: &AlgorithmPolicy) -> Result<String, String> {
    let key = spki.subject_public_key.raw_bytes();
    match spki.algorithm.oid {
        RSA => {
            let rsa = RsaPublicKey::from_der(key).map_err(|e| format!("unreadable RSA key: {e}"))?;
            let n = bits(rsa.modulus.as_bytes());
            if n < policy.min_rsa_bits {
                return Err(format!("RSA-{n} key is weaker than the {} bits required", policy.min_rsa_bits));
            }
            Ok(format!("RSA-{n}"))
        }
        EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or("EC key without a named curve")?;
            match curve {
                P256 => Ok("P-256".into()),
                P384 => Ok("P-384".into()),
                P521 => Ok("P-521".into()),
                other => Err(format!("EC key on curve {other}, which is not accepted (P-256, P-384, P-521 are)")),
            }
        }
        DSA if policy.allow_dsa => Ok("DSA".into()),
        DSA => Err("DSA key, which is not accepted".into()),
        other => Err(format!("public key algorithm {other} is not supported")),
    }
}

/// Verify `signature` over `message` with the key `spki` by `algorithm`, at validation time
/// `at`. `inherited` are DSA parameters from the issuer when the key has none (RFC 5280
/// §6.1.4(f)). Returns a note when the signature was accepted under an exception (SHA-1).
pub fn verify_signature(
    algorithm: &AlgorithmIdentifierOwned,
    spki: &SubjectPublicKeyInfoOwned,
    inherited: Option<&[u8]>,
    message: &[u8],
    signature: &[u8],
    at: OffsetDateTime,
    policy: &AlgorithmPolicy,
) -> Result<Option<String>, SignatureProblem> {
    let key_name = describe_key(spki, policy).map_err(SignatureProblem::Refused)?;
    let mut note = None;
    if matches!(algorithm.oid, SHA1_RSA | DSA_SHA1) {
        match policy.sha1_accepted_before {
            Some(until) if at < until => {
                note = Some(format!("SHA-1 signature accepted because the validation time is before {until}"));
            }
            Some(until) => {
                return Err(SignatureProblem::Refused(format!(
                    "SHA-1 signatures are accepted only for validation times before {until}"
                )))
            }
            None => return Err(SignatureProblem::Refused("SHA-1 signatures are not accepted".into())),
        }
    }
    let key = spki.subject_public_key.raw_bytes();
    let large = bits_of_rsa(spki) >= 2048;
    let alg: &dyn VerificationAlgorithm = match (spki.algorithm.oid, algorithm.oid) {
        (RSA, SHA1_RSA) if large => &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (RSA, SHA1_RSA) => &sig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (RSA, SHA256_RSA) if large => &sig::RSA_PKCS1_2048_8192_SHA256,
        (RSA, SHA256_RSA) => &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        (RSA, SHA384_RSA) if large => &sig::RSA_PKCS1_2048_8192_SHA384,
        (RSA, SHA512_RSA) if large => &sig::RSA_PKCS1_2048_8192_SHA512,
        (RSA, SHA512_RSA) => &sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        (EC, ECDSA_SHA256) if key_name == "P-256" => &sig::ECDSA_P256_SHA256_ASN1,
        (EC, ECDSA_SHA384) if key_name == "P-256" => &sig::ECDSA_P256_SHA384_ASN1,
        (EC, ECDSA_SHA256) if key_name == "P-384" => &sig::ECDSA_P384_SHA256_ASN1,
        (EC, ECDSA_SHA384) if key_name == "P-384" => &sig::ECDSA_P384_SHA384_ASN1,
        (EC, ECDSA_SHA512) if key_name == "P-521" => &sig::ECDSA_P521_SHA512_ASN1,
        (DSA, DSA_SHA1) => {
            return verify_dsa(spki, inherited, message, signature).map(|()| note);
        }
        // A known algorithm of another key family: this key did not make the signature (a
        // candidate issuer with the right name and the wrong key).
        (RSA, ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512 | DSA_SHA1)
        | (EC, SHA1_RSA | SHA256_RSA | SHA384_RSA | SHA512_RSA | DSA_SHA1)
        | (DSA, SHA1_RSA | SHA256_RSA | SHA384_RSA | SHA512_RSA | ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512) => {
            return Err(SignatureProblem::Invalid)
        }
        (_, other) => {
            return Err(SignatureProblem::Refused(format!(
                "signature algorithm {other} with a {key_name} key is not supported"
            )))
        }
    };
    UnparsedPublicKey::new(alg, key).verify(message, signature).map_err(|_| SignatureProblem::Invalid)?;
    Ok(note)
}

fn bits_of_rsa(spki: &SubjectPublicKeyInfoOwned) -> usize {
    RsaPublicKey::from_der(spki.subject_public_key.raw_bytes()).map_or(0, |k| bits(k.modulus.as_bytes()))
}

/// The DER of a key's own DSA parameters, if it has any (for parameter inheritance).
pub fn dsa_parameters(spki: &SubjectPublicKeyInfoOwned) -> Option<Vec<u8>> {
    use der::{Encode, Tagged};
    if spki.algorithm.oid != DSA {
        return None;
    }
    spki.algorithm.parameters.as_ref().filter(|p| p.tag() != der::Tag::Null).and_then(|p| p.to_der().ok())
}

/// Whether a DSA key lacks its own parameters and must inherit the issuer's.
pub fn needs_inherited_parameters(spki: &SubjectPublicKeyInfoOwned) -> bool {
    spki.algorithm.oid == DSA && dsa_parameters(spki).is_none()
}

fn verify_dsa(
    spki: &SubjectPublicKeyInfoOwned,
    inherited: Option<&[u8]>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureProblem> {
    use dsa::signature::DigestVerifier;
    use sha1::Digest;
    let refused = |what: &str| SignatureProblem::Refused(format!("DSA key: {what}"));
    let own = dsa_parameters(spki);
    let params_der = own.as_deref().or(inherited).ok_or_else(|| refused("no domain parameters"))?;
    let params = DsaParameters::from_der(params_der).map_err(|_| refused("unreadable domain parameters"))?;
    let y = UintRef::from_der(spki.subject_public_key.raw_bytes()).map_err(|_| refused("unreadable public value"))?;
    let big = |u: &UintRef<'_>| dsa::BigUint::from_bytes_be(u.as_bytes());
    let components = dsa::Components::from_components(big(&params.p), big(&params.q), big(&params.g))
        .map_err(|_| refused("invalid domain parameters"))?;
    let key = dsa::VerifyingKey::from_components(components, big(&y)).map_err(|_| refused("invalid public value"))?;
    let signature = dsa::Signature::from_der(signature).map_err(|_| SignatureProblem::Invalid)?;
    key.verify_digest(sha1::Sha1::new_with_prefix(message), &signature).map_err(|_| SignatureProblem::Invalid)
}
