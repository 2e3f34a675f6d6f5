//! The keys the signer offers: from PKCS#12 key stores (the national `AUTH_RSA256_….p12` and
//! `RSA256_….p12` files) and from PKCS#11 tokens (ID cards, Kaztoken). A key is AUTH or SIGN by
//! its certificate (the national profile's key usage and policy), which is what a request's
//! `AUTHENTICATION` / `SIGNATURE` key type selects.

use std::path::Path;
use std::sync::Arc;

use ca_core::identity::{CertificateIdentity, KeyType};
use ca_core::signer::Signer;
use der::{Decode, Encode};
use hsm::pkcs11::{KeySelector, Pkcs11Module, SecretPin, TokenObjectClass, TokenSelector};
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// The storage name of PKCS#12 files in the protocol.
pub const PKCS12_STORAGE: &str = "PKCS12";
/// The storage name of the national ID card in the protocol; also the default for tokens.
pub const ID_CARD_STORAGE: &str = "AKKaztokenStore";

/// A key could not be offered.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    KeyStore(#[from] hsm::KeyError),
    #[error("{0}")]
    Token(#[from] hsm::pkcs11::TokenError),
    #[error("certificate: {0}")]
    Certificate(String),
}

/// One key and its certificate, as the protocol offers it.
#[derive(Clone)]
pub struct KeyEntry {
    /// The protocol's storage name (`PKCS12`, `AKKaztokenStore`, …).
    pub storage: String,
    pub key_type: KeyType,
    pub signer: Arc<dyn Signer>,
    pub certificate: Vec<u8>,
    /// Further certificates put into a CMS (the issuing CA), never the key's own.
    pub chain: Vec<Vec<u8>>,
    /// The alias (the subject key identifier in hex, as the national key stores name keys).
    pub alias: String,
}

impl KeyEntry {
    /// An entry for `signer` with `certificate`: the key type comes from the certificate, which
    /// must be the key's.
    pub fn new(
        storage: &str,
        signer: Arc<dyn Signer>,
        certificate: Vec<u8>,
        chain: Vec<Vec<u8>>,
    ) -> Result<Self, KeyLoadError> {
        let cert = Certificate::from_der(&certificate).map_err(|e| KeyLoadError::Certificate(e.to_string()))?;
        if cert.tbs_certificate.subject_public_key_info != *signer.public_key() {
            return Err(KeyLoadError::Certificate("the certificate is not for this key".into()));
        }
        let key_type = CertificateIdentity::from_certificate(&cert).key_type.ok_or_else(|| {
            KeyLoadError::Certificate("neither an AUTH nor a SIGN certificate of the national profile".into())
        })?;
        let alias = hex::encode(ca_core::profile::key_identifier(&cert.tbs_certificate.subject_public_key_info));
        Ok(Self { storage: storage.to_string(), key_type, signer, certificate, chain, alias })
    }

    /// What `getKeyInfo` answers: the key and its certificate, never key material.
    pub fn info(&self) -> serde_json::Value {
        let Ok(cert) = Certificate::from_der(&self.certificate) else { return serde_json::Value::Null };
        let tbs = &cert.tbs_certificate;
        let identity = CertificateIdentity::from_certificate(&cert);
        let issuer_cn = ca_core::identity::name_attribute(&tbs.issuer, const_oid::db::rfc4519::CN);
        let time = |t: &x509_cert::time::Time| {
            time::OffsetDateTime::from(t.to_system_time())
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let pem =
            der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.certificate).unwrap_or_default();
        serde_json::json!({
            "alias": self.alias,
            "keyId": self.alias,
            "algorithm": self.signer.algorithm().name(),
            "keyType": match self.key_type { KeyType::Auth => "AUTHENTICATION", KeyType::Sign => "SIGNATURE" },
            "subjectCn": identity.common_name,
            "subjectDn": ca_core::identity::format_dn(&tbs.subject),
            "issuerCn": issuer_cn,
            "issuerDn": ca_core::identity::format_dn(&tbs.issuer),
            "serialNumber": hex::encode(tbs.serial_number.as_bytes()),
            "certNotBefore": time(&tbs.validity.not_before),
            "certNotAfter": time(&tbs.validity.not_after),
            "iin": identity.iin.map(|i| i.to_string()),
            "bin": identity.bin.map(|b| b.to_string()),
            "pem": pem,
        })
    }
}

/// The key of a PKCS#12 key store, opened with `password` (zeroised by the caller's
/// `Zeroizing`); the other certificates in the file become the chain.
pub fn from_pkcs12(path: &Path, password: &Zeroizing<String>) -> Result<KeyEntry, KeyLoadError> {
    let file = |message: String| KeyLoadError::File { path: path.display().to_string(), message };
    let bytes = std::fs::read(path).map_err(|e| file(e.to_string()))?;
    let (key, certificates) = hsm::read_pkcs12(&bytes, password)?;
    let own = certificates
        .iter()
        .position(|der| {
            Certificate::from_der(der).is_ok_and(|c| c.tbs_certificate.subject_public_key_info == *key.public_key())
        })
        .ok_or_else(|| file("no certificate for the key in the key store".into()))?;
    let mut chain = certificates;
    let certificate = chain.remove(own);
    KeyEntry::new(PKCS12_STORAGE, Arc::new(key), certificate, chain)
}

/// Every key with a certificate (same CKA_ID) on the token labelled `label`, after logging in
/// with `pin`. `storage` names the token in the protocol.
pub fn from_token(module: &Path, label: &str, pin: &SecretPin, storage: &str) -> Result<Vec<KeyEntry>, KeyLoadError> {
    let module = Pkcs11Module::load(module)?;
    let token = module.open_token(&TokenSelector::Label(label.to_string()))?;
    token.login(pin)?;
    let objects = token.list_objects()?;
    let authorities: Vec<Vec<u8>> = objects
        .iter()
        .filter(|o| o.class == TokenObjectClass::Certificate)
        .filter_map(|o| o.certificate_der.clone())
        .filter(|der| {
            Certificate::from_der(der).is_ok_and(|c| {
                c.tbs_certificate.subject.to_der().ok() != c.tbs_certificate.issuer.to_der().ok()
                    && CertificateIdentity::from_certificate(&c).key_type.is_none()
            })
        })
        .collect();
    let mut entries = Vec::new();
    for object in objects.iter().filter(|o| o.class == TokenObjectClass::Certificate) {
        let Some(der) = &object.certificate_der else { continue };
        let Ok(key) = token.find_key(&KeySelector::Id(object.id.clone())) else { continue };
        match KeyEntry::new(storage, Arc::new(key), der.clone(), authorities.clone()) {
            Ok(entry) => entries.push(entry),
            Err(e) => tracing::info!(id = %object.id_hex(), "token certificate not offered: {e}"),
        }
    }
    Ok(entries)
}
