//! The portal's own EDS: a system certificate and its key (encrypted PKCS#8, as
//! `ca system init` writes it), used to sign the answers to counter workstations.

use std::sync::Arc;

use ca_core::signer::Signer;
use der::Decode;
use time::OffsetDateTime;

use crate::config::SigningConfig;
use crate::trust::read_pem_certificates;

pub struct PortalSigner {
    pub signer: Arc<dyn Signer>,
    pub certificate: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
}

impl PortalSigner {
    /// Load as configured; the passphrase comes from the configured environment variable.
    pub fn load(config: &SigningConfig) -> Result<Self, String> {
        let certificate = read_pem_certificates(&config.certificate)
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{}: no certificate", config.certificate.display()))?;
        let passphrase = zeroize::Zeroizing::new(match &config.passphrase_file {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| format!("{}: {e}", file.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            None => std::env::var(&config.passphrase_env)
                .map_err(|_| format!("the key passphrase is read from {}, which is not set", config.passphrase_env))?,
        });
        let pem = zeroize::Zeroizing::new(
            std::fs::read_to_string(&config.key).map_err(|e| format!("{}: {e}", config.key.display()))?,
        );
        let key = hsm::SoftwareKey::from_encrypted_pem(&pem, passphrase.as_bytes())
            .map_err(|e| format!("{}: {e}", config.key.display()))?;
        let mut chain = Vec::new();
        for path in &config.chain {
            chain.extend(read_pem_certificates(path).map_err(|e| e.to_string())?);
        }
        Self::new(Arc::new(key), certificate, chain)
    }

    /// A signer with its certificate; refused when they do not belong together.
    pub fn new(signer: Arc<dyn Signer>, certificate: Vec<u8>, chain: Vec<Vec<u8>>) -> Result<Self, String> {
        let cert = x509_cert::Certificate::from_der(&certificate).map_err(|e| format!("system certificate: {e}"))?;
        if cert.tbs_certificate.subject_public_key_info != *signer.public_key() {
            return Err("the signing key does not belong to the system certificate".into());
        }
        Ok(Self { signer, certificate, chain })
    }

    /// An attached CMS SignedData of `content`, signed now.
    pub fn sign(&self, content: &[u8], now: OffsetDateTime) -> Result<Vec<u8>, ca_core::cms::CmsError> {
        ca_core::cms::sign(content, false, self.signer.as_ref(), &self.certificate, &self.chain, now)
    }
}
