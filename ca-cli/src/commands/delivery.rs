//! Handing server-generated keys over as PKCS#12 files: written whole or not at all (temporary
//! file, fsync, hard link onto the final name, directory fsync; see [`ca_core::fs`]), mode 0600,
//! never over an existing file. Used by `ca application issue` and its recovery.

use std::path::{Path, PathBuf};

use ca_core::fs::{remove_durably, write_atomically, AtomicWrite};
use ca_core::issuer::IssuedCertificate;
use ca_core::profile::ProfileId;
use ca_core::ra::KeyStoreDelivery;
use hsm::SoftwareKey;
use spki::SubjectPublicKeyInfoOwned;

/// rsaEncryption: key stores of RSA keys are `…RSA256_…`, all others `…ECDSA256_…`.
const RSA_ENCRYPTION: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// `AUTH_RSA256_<ski>.p12` / `RSA256_<ski>.p12` (EC keys: `AUTH_ECDSA256_…` / `ECDSA256_…`), from
/// the certificate's public key.
pub fn key_store_name(profile: ProfileId, spki: &SubjectPublicKeyInfoOwned) -> String {
    let ski = hex::encode(ca_core::profile::key_identifier(spki));
    super::issue::pkcs12_file_name(profile, spki.algorithm.oid == RSA_ENCRYPTION, &ski)
}

/// PKCS#12 files in one directory. Without keys (recovery) it can only tell what was
/// delivered and take it back.
pub struct Pkcs12Files<'a> {
    pub dir: PathBuf,
    pub keys: Vec<&'a SoftwareKey>,
    pub password: &'a str,
    /// The issuing CA's chain, issuing certificate first.
    pub chain: Vec<Vec<u8>>,
}

impl Pkcs12Files<'_> {
    pub fn path(&self, certificate: &IssuedCertificate) -> PathBuf {
        self.dir
            .join(key_store_name(certificate.profile, &certificate.certificate.tbs_certificate.subject_public_key_info))
    }
}

impl KeyStoreDelivery for Pkcs12Files<'_> {
    fn deliver(&self, certificates: &[IssuedCertificate]) -> Result<(), String> {
        for cert in certificates {
            let spki = &cert.certificate.tbs_certificate.subject_public_key_info;
            let key = self
                .keys
                .iter()
                .find(|k| ca_core::signer::Signer::public_key(**k) == spki)
                .ok_or_else(|| format!("no key for certificate {}", cert.serial))?;
            let p12 = hsm::build_pkcs12(key, &cert.der, &self.chain, self.password, &cert.ski_hex())
                .map_err(|e| format!("building the key store of {}: {e}", cert.serial))?;
            let path = self.path(cert);
            write_atomically(&path, &p12, AtomicWrite::PRIVATE_NEW)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        Ok(())
    }

    fn delivered(&self, certificate: &IssuedCertificate) -> Result<bool, String> {
        // Only a complete file ever gets the final name, so being there with content is enough.
        let path = self.path(certificate);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(m.is_file() && m.len() > 0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    fn location(&self) -> String {
        // Absolute, so that a relative --p12-dir from another working directory still matches.
        std::path::absolute(&self.dir).unwrap_or_else(|_| self.dir.clone()).display().to_string()
    }

    fn withdraw(&self, certificate: &IssuedCertificate) -> Result<(), String> {
        let path = self.path(certificate);
        remove_partials(&path);
        remove_durably(&path).map_err(|e| format!("removing {}: {e}", path.display()))
    }
}

/// Remove temporary files an interrupted write of `path` left behind.
pub fn remove_partials(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else { return };
    let prefix = format!(".{name}.partial-");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
