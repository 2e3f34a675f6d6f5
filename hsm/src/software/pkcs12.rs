//! Password-protected PKCS#12 (PFX) files for subscribers, in the modern form OpenSSL 3 and
//! current Java write by default:
//!
//! - the private key in a `pkcs8ShroudedKeyBag`, PBES2 with PBKDF2-HMAC-SHA-256 and AES-256-CBC;
//! - the certificates in `certBag`s inside a PBES2 (same algorithms) `EncryptedData`;
//! - an HMAC-SHA-256 MAC over the whole, keyed with the RFC 7292 Appendix B KDF (SHA-256).
//!
//! The end-entity certificate bag and the key bag carry `friendlyName` (a BMPString, which Java
//! also shows as the alias) and `localKeyId` = SHA-1 of the end-entity certificate's DER, as
//! OpenSSL computes it. Chain certificates get neither attribute.

mod read;

use ::pkcs12::cert_type::CertBag;
use ::pkcs12::digest_info::DigestInfo;
use ::pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
use ::pkcs12::mac_data::MacData;
use ::pkcs12::pfx::{Pfx, Version};
use ::pkcs12::safe_bag::SafeBag;
use ::pkcs12::{PKCS_12_CERT_BAG_OID, PKCS_12_PKCS8_KEY_BAG_OID, PKCS_12_X509_CERT_OID};
use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};
use aws_lc_rs::hmac;
use ca_core::signer::Signer;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::encrypted_data::EncryptedData;
use cms::enveloped_data::EncryptedContentInfo;
use const_oid::db::rfc5911::{ID_DATA, ID_ENCRYPTED_DATA};
use const_oid::db::rfc5912::ID_SHA_256;
use const_oid::ObjectIdentifier;
use der::asn1::{Any, BmpString, OctetString, SetOfVec};
use der::{Decode, Encode};
use pkcs5::pbes2;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::encrypted::encrypt_pkcs8;
use super::SoftwareKey;
use crate::error::KeyError;

pub use self::read::read_pkcs12;

/// PBKDF2 iterations for the key and certificate encryption, and PKCS#12 KDF iterations for
/// the MAC. Both must be equally expensive, because an attacker can test password guesses
/// against either. OpenSSL 3.0 uses 2048 for both; Java's `keytool` (since 8u301) uses 10000,
/// which we follow.
pub const PKCS12_ITERATIONS: u32 = 10_000;

/// Highest iteration count the reader accepts, so a doctored file cannot keep us busy forever.
pub(crate) const MAX_ITERATIONS: u32 = 10_000_000;

/// PKCS#9 `friendlyName` (RFC 2985).
pub const FRIENDLY_NAME_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
/// PKCS#9 `localKeyId` (RFC 2985).
pub const LOCAL_KEY_ID_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");

const SALT_LEN: usize = 16;
const MAC_KEY_LEN: usize = 32;

fn encoding_error(what: &str) -> impl Fn(der::Error) -> KeyError + '_ {
    move |e| KeyError::Crypto(format!("encoding {what}: {e}"))
}

/// Build a password-protected PKCS#12 file holding `key`, its certificate `cert_der` and the
/// CA certificates in `chain` (issuer first, root last, by convention).
///
/// `friendly_name` goes into the key bag and the end-entity certificate bag; the national
/// profile wants the subject key identifier in hex there. The certificate must belong to the
/// key, and the password must not be empty.
pub fn build_pkcs12(
    key: &SoftwareKey,
    cert_der: &[u8],
    chain: &[Vec<u8>],
    password: &str,
    friendly_name: &str,
) -> Result<Vec<u8>, KeyError> {
    if password.is_empty() {
        return Err(KeyError::EmptyPassphrase);
    }
    let cert = Certificate::from_der(cert_der).map_err(|e| KeyError::malformed("end-entity certificate", e))?;
    if &cert.tbs_certificate.subject_public_key_info != key.public_key() {
        return Err(KeyError::CertificateKeyMismatch);
    }
    for (i, ca) in chain.iter().enumerate() {
        Certificate::from_der(ca).map_err(|e| KeyError::malformed(&format!("chain certificate {}", i + 1), e))?;
    }

    let local_key_id = digest(&SHA1_FOR_LEGACY_USE_ONLY, cert_der);
    let attributes = bag_attributes(friendly_name, local_key_id.as_ref())?;

    let mut cert_bags = vec![cert_bag(cert_der, Some(attributes.clone()))?];
    for ca in chain {
        cert_bags.push(cert_bag(ca, None)?);
    }
    let certs_plain = cert_bags.to_der().map_err(encoding_error("certificates"))?;
    let certs_info = encrypted_data(password, &certs_plain)?;

    let key_bag = shrouded_key_bag(key, password, attributes)?;
    let keys_plain = vec![key_bag].to_der().map_err(encoding_error("key bag"))?;
    let keys_info = data(&keys_plain)?;

    let auth_safe = vec![certs_info, keys_info].to_der().map_err(encoding_error("AuthenticatedSafe"))?;
    let mac_data = mac_data(password, &auth_safe)?;
    Pfx { version: Version::V3, auth_safe: data(&auth_safe)?, mac_data: Some(mac_data) }
        .to_der()
        .map_err(encoding_error("PFX"))
}

fn random_salt() -> Result<[u8; SALT_LEN], KeyError> {
    let mut salt = [0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| KeyError::crypto("random generator failed"))?;
    Ok(salt)
}

fn bag_attributes(friendly_name: &str, local_key_id: &[u8]) -> Result<Attributes, KeyError> {
    let name = BmpString::from_utf8(friendly_name)
        .map_err(|_| KeyError::Malformed("friendly name is not valid for a BMPString".into()))?;
    let attribute = |oid, value: Any| -> Result<Attribute, KeyError> {
        Ok(Attribute { oid, values: SetOfVec::try_from(vec![value]).map_err(encoding_error("attribute"))? })
    };
    let name = Any::encode_from(&name).map_err(encoding_error("friendlyName"))?;
    let key_id = Any::encode_from(&OctetString::new(local_key_id).map_err(encoding_error("localKeyId"))?)
        .map_err(encoding_error("localKeyId"))?;
    SetOfVec::try_from(vec![attribute(FRIENDLY_NAME_OID, name)?, attribute(LOCAL_KEY_ID_OID, key_id)?])
        .map_err(encoding_error("bag attributes"))
}

/// `SafeBag.bag_value` holds the DER of the value *inside* `[0] EXPLICIT` when encoding (the
/// pkcs12 crate adds the tag), but the tagged value when decoding.
fn cert_bag(cert_der: &[u8], attributes: Option<Attributes>) -> Result<SafeBag, KeyError> {
    let bag = CertBag {
        cert_id: PKCS_12_X509_CERT_OID,
        cert_value: OctetString::new(cert_der).map_err(encoding_error("certificate"))?,
    };
    Ok(SafeBag {
        bag_id: PKCS_12_CERT_BAG_OID,
        bag_value: bag.to_der().map_err(encoding_error("CertBag"))?,
        bag_attributes: attributes,
    })
}

fn shrouded_key_bag(key: &SoftwareKey, password: &str, attributes: Attributes) -> Result<SafeBag, KeyError> {
    let salt = random_salt()?;
    let iv = random_salt()?;
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(PKCS12_ITERATIONS, &salt, &iv)
        .map_err(|e| KeyError::Crypto(format!("PBES2 parameters: {e}")))?;
    let encrypted = encrypt_pkcs8(&params, password.as_bytes(), &key.to_pkcs8_der()?)?;
    let info = pkcs8::EncryptedPrivateKeyInfo { encryption_algorithm: params.into(), encrypted_data: &encrypted };
    Ok(SafeBag {
        bag_id: PKCS_12_PKCS8_KEY_BAG_OID,
        bag_value: info.to_der().map_err(encoding_error("shrouded key bag"))?,
        bag_attributes: Some(attributes),
    })
}

/// `ContentInfo` of type `data` around `content`.
fn data(content: &[u8]) -> Result<ContentInfo, KeyError> {
    let octets = OctetString::new(content).map_err(encoding_error("data"))?;
    Ok(ContentInfo { content_type: ID_DATA, content: Any::encode_from(&octets).map_err(encoding_error("data"))? })
}

/// `ContentInfo` of type `encryptedData`: `plain` encrypted with PBES2 (PBKDF2-HMAC-SHA-256,
/// AES-256-CBC). The password goes into PBKDF2 as its UTF-8 bytes, as OpenSSL does.
fn encrypted_data(password: &str, plain: &[u8]) -> Result<ContentInfo, KeyError> {
    let salt = random_salt()?;
    let iv = random_salt()?;
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(PKCS12_ITERATIONS, &salt, &iv)
        .map_err(|e| KeyError::Crypto(format!("PBES2 parameters: {e}")))?;
    let ciphertext = encrypt_pkcs8(&params, password.as_bytes(), plain)?;
    let enc_data = EncryptedData {
        version: CmsVersion::V0,
        enc_content_info: EncryptedContentInfo {
            content_type: ID_DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: pbes2::PBES2_OID,
                parameters: Some(Any::encode_from(&params).map_err(encoding_error("PBES2"))?),
            },
            encrypted_content: Some(OctetString::new(ciphertext).map_err(encoding_error("encrypted content"))?),
        },
        unprotected_attrs: None,
    };
    Ok(ContentInfo {
        content_type: ID_ENCRYPTED_DATA,
        content: Any::encode_from(&enc_data).map_err(encoding_error("EncryptedData"))?,
    })
}

/// The PKCS#12 MAC key: RFC 7292 Appendix B with SHA-256, over the password as a
/// NUL-terminated BMPString.
pub(crate) fn mac_key(password: &str, salt: &[u8], iterations: i32) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    derive_key_utf8::<sha2::Sha256>(password, salt, Pkcs12KeyType::Mac, iterations, MAC_KEY_LEN)
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Malformed("password is not valid for a BMPString".into()))
}

fn mac_data(password: &str, auth_safe: &[u8]) -> Result<MacData, KeyError> {
    let salt = random_salt()?;
    let iterations = i32::try_from(PKCS12_ITERATIONS).map_err(|_| KeyError::crypto("iteration count out of range"))?;
    let key = mac_key(password, &salt, iterations)?;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), auth_safe);
    Ok(MacData {
        mac: DigestInfo {
            algorithm: AlgorithmIdentifierOwned { oid: ID_SHA_256, parameters: Some(Any::null()) },
            digest: OctetString::new(tag.as_ref()).map_err(encoding_error("MAC"))?,
        },
        mac_salt: OctetString::new(salt.to_vec()).map_err(encoding_error("MAC salt"))?,
        iterations,
    })
}

#[cfg(test)]
mod tests;
