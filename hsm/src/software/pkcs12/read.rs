//! Reading back the PKCS#12 files we write: MAC check, PBES2 decryption, bag extraction.

use ::pkcs12::mac_data::MacData;
use ::pkcs12::pfx::Pfx;
use ::pkcs12::safe_bag::SafeContents;
use ::pkcs12::{PKCS_12_CERT_BAG_OID, PKCS_12_KEY_BAG_OID, PKCS_12_PKCS8_KEY_BAG_OID};
use aws_lc_rs::hmac;
use ca_core::signer::Signer;
use cms::content_info::ContentInfo;
use cms::encrypted_data::EncryptedData;
use const_oid::db::rfc5911::{ID_DATA, ID_ENCRYPTED_DATA};
use const_oid::db::rfc5912::ID_SHA_256;
use der::asn1::{Any, AnyRef, ContextSpecific, OctetString};
use der::{Decode, Encode, TagNumber};
use pkcs5::pbes2;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::{mac_key, MAX_ITERATIONS};
use crate::error::KeyError;
use crate::software::encrypted::{decode_encrypted_private_key_info, decrypt_pbes2, unsupported_encryption};
use crate::software::SoftwareKey;

fn malformed(what: &'static str) -> impl Fn(der::Error) -> KeyError {
    move |e| KeyError::malformed(what, e)
}

/// Open a PKCS#12 file written by [`super::build_pkcs12`] (or any PFX that uses only PBES2
/// with AES-CBC and an HMAC-SHA-256 MAC, as OpenSSL 3 writes by default).
///
/// Returns the private key and the certificates; the certificate that belongs to the key
/// comes first, the others keep their order. A wrong password gives
/// [`KeyError::WrongPassphrase`]; legacy PKCS#12 encryption (3DES, RC2) and SHA-1 MACs give
/// [`KeyError::Unsupported`].
pub fn read_pkcs12(der: &[u8], password: &str) -> Result<(SoftwareKey, Vec<Vec<u8>>), KeyError> {
    let pfx = Pfx::from_der(der).map_err(malformed("PFX"))?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(KeyError::Unsupported(format!(
            "PFX protected by {} rather than a password MAC",
            pfx.auth_safe.content_type
        )));
    }
    let auth_safe: OctetString = pfx.auth_safe.content.decode_as().map_err(malformed("PFX authSafe"))?;
    let mac = pfx.mac_data.as_ref().ok_or_else(|| KeyError::Unsupported("PFX without a password MAC".into()))?;
    verify_mac(mac, password, auth_safe.as_bytes())?;

    let contents = Vec::<ContentInfo>::from_der(auth_safe.as_bytes()).map_err(malformed("AuthenticatedSafe"))?;
    let mut key = None;
    let mut certs = Vec::new();
    for info in &contents {
        let bags_der = safe_contents_der(info, password)?;
        let bags = SafeContents::from_der(&bags_der).map_err(malformed("SafeContents"))?;
        for bag in &bags {
            match bag.bag_id {
                PKCS_12_CERT_BAG_OID => certs.push(cert_from_bag(&bag.bag_value)?),
                PKCS_12_PKCS8_KEY_BAG_OID => {
                    if key.is_some() {
                        return Err(KeyError::Unsupported("PKCS#12 file with more than one private key".into()));
                    }
                    key = Some(key_from_bag(&bag.bag_value, password)?);
                }
                PKCS_12_KEY_BAG_OID => {
                    return Err(KeyError::Unsupported("PKCS#12 file with an unencrypted private key".into()))
                }
                // CRL, secret and nested bags are not ours to interpret.
                _ => {}
            }
        }
    }
    let key = key.ok_or_else(|| KeyError::Malformed("no private key in the PKCS#12 file".into()))?;
    order_certificates(&key, &mut certs)?;
    Ok((key, certs))
}

fn verify_mac(mac: &MacData, password: &str, auth_safe: &[u8]) -> Result<(), KeyError> {
    if mac.mac.algorithm.oid != ID_SHA_256 {
        return Err(KeyError::Unsupported(format!(
            "PKCS#12 MAC with digest {}; only SHA-256 is supported",
            mac.mac.algorithm.oid
        )));
    }
    if mac.iterations < 1 || mac.iterations.unsigned_abs() > MAX_ITERATIONS {
        return Err(KeyError::Unsupported(format!("PKCS#12 MAC iteration count {} is out of range", mac.iterations)));
    }
    let key = mac_key(password, mac.mac_salt.as_bytes(), mac.iterations)?;
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &key), auth_safe, mac.mac.digest.as_bytes())
        .map_err(|_| KeyError::WrongPassphrase)
}

/// The DER `SafeContents` inside one `ContentInfo` of the authenticated safe, decrypted if
/// it is `encryptedData`.
fn safe_contents_der(info: &ContentInfo, password: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match info.content_type {
        ID_DATA => {
            let octets: OctetString = info.content.decode_as().map_err(malformed("data"))?;
            Ok(Zeroizing::new(octets.into_bytes()))
        }
        ID_ENCRYPTED_DATA => {
            let data: EncryptedData = info.content.decode_as().map_err(malformed("EncryptedData"))?;
            let enc = &data.enc_content_info;
            if enc.content_enc_alg.oid != pbes2::PBES2_OID {
                return Err(unsupported_encryption(enc.content_enc_alg.oid));
            }
            let params_any: &Any = enc
                .content_enc_alg
                .parameters
                .as_ref()
                .ok_or_else(|| KeyError::Malformed("PBES2 without parameters".into()))?;
            let params = pbes2::Parameters::try_from(AnyRef::from(params_any))
                .map_err(|_| unsupported_encryption(enc.content_enc_alg.oid))?;
            let ciphertext = enc
                .encrypted_content
                .as_ref()
                .ok_or_else(|| KeyError::Malformed("EncryptedData without content".into()))?;
            decrypt_pbes2(&params, password.as_bytes(), ciphertext.as_bytes())
        }
        other => Err(KeyError::Unsupported(format!("PKCS#12 safe of content type {other}"))),
    }
}

/// The value of a `SafeBag` as the pkcs12 crate decodes it: still wrapped in `[0] EXPLICIT`.
fn bag_content(bag_value: &[u8]) -> Result<Vec<u8>, KeyError> {
    let tagged = ContextSpecific::<AnyRef<'_>>::from_der(bag_value).map_err(malformed("SafeBag"))?;
    if tagged.tag_number != TagNumber::N0 {
        return Err(KeyError::Malformed("SafeBag value is not tagged [0]".into()));
    }
    tagged.value.to_der().map_err(malformed("SafeBag"))
}

fn cert_from_bag(bag_value: &[u8]) -> Result<Vec<u8>, KeyError> {
    let content = bag_content(bag_value)?;
    let bag = ::pkcs12::cert_type::CertBag::from_der(&content).map_err(malformed("CertBag"))?;
    if bag.cert_id != ::pkcs12::PKCS_12_X509_CERT_OID {
        return Err(KeyError::Unsupported(format!("certificate bag of type {}", bag.cert_id)));
    }
    let der = bag.cert_value.into_bytes();
    Certificate::from_der(&der).map_err(malformed("certificate in PKCS#12"))?;
    Ok(der)
}

fn key_from_bag(bag_value: &[u8], password: &str) -> Result<SoftwareKey, KeyError> {
    let content = Zeroizing::new(bag_content(bag_value)?);
    let info = decode_encrypted_private_key_info(&content)?;
    let params =
        info.encryption_algorithm.pbes2().ok_or_else(|| unsupported_encryption(info.encryption_algorithm.oid()))?;
    let plain = decrypt_pbes2(params, password.as_bytes(), info.encrypted_data)?;
    SoftwareKey::from_decrypted_pkcs8(&plain)
}

/// Move the certificate that carries the key's public key to the front.
fn order_certificates(key: &SoftwareKey, certs: &mut Vec<Vec<u8>>) -> Result<(), KeyError> {
    let mut own = None;
    for (i, der) in certs.iter().enumerate() {
        let cert = Certificate::from_der(der).map_err(malformed("certificate in PKCS#12"))?;
        if &cert.tbs_certificate.subject_public_key_info == key.public_key() {
            own = Some(i);
            break;
        }
    }
    if let Some(i) = own {
        let cert = certs.remove(i);
        certs.insert(0, cert);
    }
    Ok(())
}
