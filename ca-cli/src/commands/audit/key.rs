//! Making the audit key, shared by `ca audit init-key` and `ca init` (one key policy: encrypted
//! under the CA passphrase in `private/audit.key.pem`, or generated on a PKCS#11 token and never
//! extractable), pinning its public key and writing the first checkpoint.

use std::path::Path;

use anyhow::Context as _;
use ca_core::ca_dir::{CaDir, KeyLocation};
use ca_core::checkpoint::{self, Checkpoint};
use ca_core::signer::Signer;
use ca_core::store::{AuditEvent, Store};
use der::Encode;
use hsm::pkcs11::Token;
use hsm::{KeyAlgorithm, SoftwareKey};

use crate::failure::Failure;

/// Where a new audit key is made.
pub enum AuditKeyPlace<'a> {
    /// An encrypted file under the CA passphrase.
    File { passphrase: &'a [u8] },
    /// A token (already logged in) of `module`, labelled `label`.
    Token { module: &'a Path, label: &'a str, token: &'a Token },
}

/// A new audit key, its public key pinned in the CA directory.
pub struct NewAuditKey {
    pub signer: Box<dyn Signer>,
    pub algorithm: KeyAlgorithm,
    /// Where it lives when on a token: to be recorded as `[server] audit_key` in ca.toml.
    pub location: Option<KeyLocation>,
    /// For the operator: where the key is.
    pub place: String,
    /// SHA-256 (hex) of the pinned SubjectPublicKeyInfo, to be recorded away from the machine.
    pub fingerprint: String,
}

/// Make the audit key in `dir` and pin its public key (`certs/audit.pub.pem`).
pub fn make(dir: &CaDir, algorithm: KeyAlgorithm, place: AuditKeyPlace<'_>) -> Result<NewAuditKey, Failure> {
    let (signer, location, place): (Box<dyn Signer>, _, _) = match place {
        AuditKeyPlace::Token { module, label, token } => {
            let key = token.generate_key_pair(algorithm, "audit checkpoint key")?;
            let id = hex::encode(key.id());
            let place = format!("token {label:?}, CKA_ID {id} (ca.toml [server] audit_key)");
            let location = KeyLocation::Pkcs11 { module: module.to_owned(), token: label.to_owned(), id };
            (Box::new(key), Some(location), place)
        }
        AuditKeyPlace::File { passphrase } => {
            let key = SoftwareKey::generate(algorithm)?;
            hsm::write_encrypted_key_file(&dir.audit_key(), &key.to_encrypted_pem(passphrase)?)?;
            (Box::new(key), None, format!("{} (encrypted under the CA passphrase)", dir.audit_key().display()))
        }
    };
    let der = signer.public_key().to_der().map_err(|e| Failure::Internal(e.into()))?;
    let public = dir.audit_public_key();
    std::fs::create_dir_all(dir.certs()).map_err(|e| Failure::Internal(e.into()))?;
    checkpoint::publish(&public, crate::pem::encode("PUBLIC KEY", &der)?.as_bytes())
        .with_context(|| format!("cannot write {}", public.display()))?;
    let fingerprint = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&der));
    Ok(NewAuditKey { signer, algorithm, location, place, fingerprint })
}

/// Journal the new key and sign the first checkpoint, which covers that entry.
pub fn first_checkpoint(
    store: &dyn Store,
    dir: &CaDir,
    ca: &str,
    key: &NewAuditKey,
    actor: &str,
    now: time::OffsetDateTime,
) -> Result<Checkpoint, Failure> {
    store.append_audit(&AuditEvent::new(actor, "audit.key.created").details(serde_json::json!({
        "algorithm": key.algorithm.to_string(), "public_key_sha256": key.fingerprint,
    })))?;
    let cp = Checkpoint::of_store(store, ca, now)?;
    cp.sign_and_publish(key.signer.as_ref(), &dir.audit_checkpoint())?;
    Ok(cp)
}
