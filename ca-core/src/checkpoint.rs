//! Signed checkpoints of the audit journal. The hash chain shows that no entry was edited,
//! deleted or reordered *relative to the others*, but whoever can write the database can delete
//! the newest entries, or all of them, or edit one and recompute every hash after it, and the
//! chain still holds. A checkpoint fixes the head: `{ca, seq, head, time}` signed by the CA's
//! audit key (which the database's owner does not hold) and published as a file beside the CRLs.
//! A journal that no longer has entry `seq` with hash `head` was truncated or rewritten.
//!
//! What it cannot show: anything about entries after the latest checkpoint (they can still be
//! removed without trace), so checkpoints are written at an interval and after what matters.
//!
//! The file is JSON: `{"checkpoint": "<canonical JSON>", "algorithm": "<signature OID>",
//! "signature": "<base64>"}`; the signature covers the bytes of `checkpoint` exactly, and the
//! audit key's public key is pinned in the CA directory (`certs/audit.pub.pem`).

use std::collections::BTreeMap;

use base64::Engine;
use spki::SubjectPublicKeyInfoOwned;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::signer::{SignatureAlgorithm, Signer};
use crate::store::{AuditVerification, Store, StoreError};

/// What went wrong with a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint file is not readable: {0}")]
    Malformed(String),
    #[error("the checkpoint's signature does not verify with the audit key: {0}")]
    BadSignature(String),
    #[error("the checkpoint is for CA {found:?}, this is {expected:?}")]
    OtherCa { found: String, expected: String },
    #[error("signing the checkpoint: {0}")]
    Signing(#[from] crate::signer::SignerError),
    #[error("reading the audit journal: {0}")]
    Store(#[from] StoreError),
    /// A broken journal gets no checkpoint: that would vouch for the damage.
    #[error("the audit journal has {0} problem(s); no checkpoint was signed (run `ca audit verify`)")]
    BrokenJournal(usize),
    #[error("the audit key is not the one pinned in {0}")]
    NotPinnedKey(String),
    #[error("cannot read or write {path}: {message}")]
    File { path: String, message: String },
}

/// The journal's head at one moment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Checkpoint {
    /// The issuing CA's name in this deployment.
    pub ca: String,
    /// Sequence number of the last entry covered.
    pub seq: i64,
    /// Hash of that entry (hex).
    pub head: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Checkpoint {
    /// The checkpoint of a verified journal.
    pub fn of(ca: &str, journal: &AuditVerification, at: OffsetDateTime) -> Self {
        Self { ca: ca.to_owned(), seq: journal.entries as i64, head: journal.head.clone(), at }
    }

    /// The checkpoint of the journal in `store` as it is now, verified from its first entry.
    pub fn of_store(store: &dyn Store, ca: &str, at: OffsetDateTime) -> Result<Self, CheckpointError> {
        let journal = store.verify_audit()?;
        if !journal.is_intact() {
            return Err(CheckpointError::BrokenJournal(journal.problems.len()));
        }
        Ok(Self::of(ca, &journal, at))
    }

    /// Sign with the audit key and publish the file at `path` ([`publish`]).
    pub fn sign_and_publish(&self, key: &dyn Signer, path: &std::path::Path) -> Result<(), CheckpointError> {
        let file = self.sign(key)?;
        publish(path, &file).map_err(|e| file_error(path, e))
    }

    /// Whether this checkpoint covers the same head as `other` (times aside).
    pub fn same_head(&self, other: &Checkpoint) -> bool {
        self.ca == other.ca && self.seq == other.seq && self.head == other.head
    }

    /// What is signed: UTF-8 JSON, keys sorted, no whitespace.
    pub fn canonical(&self) -> Vec<u8> {
        let mut map: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
        map.insert("ca", self.ca.clone().into());
        map.insert("head", self.head.clone().into());
        map.insert("seq", self.seq.into());
        map.insert("time", self.at.format(&Rfc3339).unwrap_or_default().into());
        map.insert("type", "ca-audit-checkpoint".into());
        map.insert("version", 1.into());
        serde_json::to_vec(&map).unwrap_or_default()
    }

    /// Sign with the audit key; the file's bytes.
    pub fn sign(&self, key: &dyn Signer) -> Result<Vec<u8>, CheckpointError> {
        let canonical = self.canonical();
        let signature = key.sign(&canonical)?;
        let file = serde_json::json!({
            "checkpoint": String::from_utf8_lossy(&canonical),
            "algorithm": key.algorithm().oid().to_string(),
            "signature": base64::engine::general_purpose::STANDARD.encode(signature),
        });
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Read a checkpoint file and check its signature with the pinned audit public key and that
    /// it is this CA's.
    pub fn verify(file: &[u8], audit_key: &SubjectPublicKeyInfoOwned, ca: &str) -> Result<Self, CheckpointError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            checkpoint: String,
            algorithm: String,
            signature: String,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Signed {
            ca: String,
            head: String,
            seq: i64,
            #[serde(with = "time::serde::rfc3339")]
            time: OffsetDateTime,
            #[serde(rename = "type")]
            kind: String,
            version: u32,
        }
        let malformed = |e: String| CheckpointError::Malformed(e);
        let file: File = serde_json::from_slice(file).map_err(|e| malformed(e.to_string()))?;
        let algorithm = file
            .algorithm
            .parse()
            .ok()
            .and_then(|oid| SignatureAlgorithm::from_oid(&oid))
            .ok_or_else(|| malformed(format!("unknown signature algorithm {:?}", file.algorithm)))?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&file.signature)
            .map_err(|e| malformed(format!("signature: {e}")))?;
        crate::verify::verify_signature(audit_key, &algorithm.oid(), file.checkpoint.as_bytes(), &signature)
            .map_err(|e| CheckpointError::BadSignature(e.to_string()))?;
        let signed: Signed = serde_json::from_str(&file.checkpoint).map_err(|e| malformed(e.to_string()))?;
        if signed.kind != "ca-audit-checkpoint" || signed.version != 1 {
            return Err(malformed(format!("not a version 1 audit checkpoint ({} v{})", signed.kind, signed.version)));
        }
        if signed.ca != ca {
            return Err(CheckpointError::OtherCa { found: signed.ca, expected: ca.to_owned() });
        }
        Ok(Self { ca: signed.ca, seq: signed.seq, head: signed.head, at: signed.time })
    }

    /// Whether `journal` (verified from the start) still holds this checkpoint: `entry_hash` is
    /// the stored hash of entry `seq`, `None` if there is no such entry. The reason when not.
    pub fn problem_with(&self, journal: &AuditVerification, entry_hash: Option<&str>) -> Option<String> {
        if self.seq == 0 {
            return None;
        }
        match entry_hash {
            None => Some(format!(
                "entry {} of the signed checkpoint of {} is missing: the journal ({} entries) was truncated",
                self.seq,
                self.at.format(&Rfc3339).unwrap_or_default(),
                journal.entries
            )),
            Some(hash) if hash != self.head => Some(format!(
                "entry {} does not have the hash of the signed checkpoint of {}: the journal was rewritten",
                self.seq,
                self.at.format(&Rfc3339).unwrap_or_default()
            )),
            Some(_) => None,
        }
    }
}

fn file_error(path: &std::path::Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::File { path: path.display().to_string(), message: e.to_string() }
}

/// The audit key's pinned public key (`certs/audit.pub.pem`, SPKI in PEM); `None` when no audit
/// key was made.
pub fn read_pinned_key(path: &std::path::Path) -> Result<Option<SubjectPublicKeyInfoOwned>, CheckpointError> {
    use der::Decode as _;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path, e)),
    };
    let (label, der) = der::pem::decode_vec(text.as_bytes()).map_err(|e| file_error(path, format!("not PEM: {e}")))?;
    if label != "PUBLIC KEY" {
        return Err(file_error(path, format!("PEM label {label:?}, expected PUBLIC KEY")));
    }
    SubjectPublicKeyInfoOwned::from_der(&der).map(Some).map_err(|e| file_error(path, e))
}

/// Refuse an audit key that is not the pinned one: its checkpoints would never verify.
pub fn check_pinned(
    key: &dyn Signer,
    pinned: &SubjectPublicKeyInfoOwned,
    pinned_path: &std::path::Path,
) -> Result<(), CheckpointError> {
    if key.public_key() != pinned {
        return Err(CheckpointError::NotPinnedKey(pinned_path.display().to_string()));
    }
    Ok(())
}

/// Write a checkpoint file: a temporary file beside it, fsync, rename over it, fsync the
/// directory, so that a reader (or a crash) sees the previous checkpoint or the new one, whole.
/// Readable by all (0644): it is public, like the CRLs.
pub fn publish(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    crate::fs::write_atomically(path, bytes, crate::fs::AtomicWrite::PUBLIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cms::tests::TestKey as P256;

    fn journal(entries: u64, head: &str) -> AuditVerification {
        AuditVerification { entries, head: head.into(), problems: vec![] }
    }

    #[test]
    fn a_checkpoint_verifies_and_any_change_to_it_does_not() {
        let key = P256::new();
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let cp = Checkpoint::of("nca", &journal(7, &"ab".repeat(32)), at);
        let file = cp.sign(&key).unwrap();
        assert_eq!(Checkpoint::verify(&file, key.public_key(), "nca").unwrap(), cp);
        assert!(matches!(Checkpoint::verify(&file, key.public_key(), "other"), Err(CheckpointError::OtherCa { .. })));
        let forged = String::from_utf8(file.clone()).unwrap().replace(r#"\"seq\":7"#, r#"\"seq\":3"#);
        assert_ne!(forged.as_bytes(), file.as_slice());
        assert!(matches!(
            Checkpoint::verify(forged.as_bytes(), key.public_key(), "nca"),
            Err(CheckpointError::BadSignature(_))
        ));
        let other = P256::new();
        assert!(matches!(Checkpoint::verify(&file, other.public_key(), "nca"), Err(CheckpointError::BadSignature(_))));
        assert!(matches!(Checkpoint::verify(b"{}", key.public_key(), "nca"), Err(CheckpointError::Malformed(_))));
    }

    #[test]
    fn the_journal_must_still_hold_the_checkpoint() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let head = "cd".repeat(32);
        let cp = Checkpoint::of("nca", &journal(5, &head), at);
        assert_eq!(cp.problem_with(&journal(9, "ff"), Some(&head)), None, "entries after it are fine");
        assert!(cp.problem_with(&journal(4, "ff"), None).unwrap().contains("truncated"));
        assert!(cp.problem_with(&journal(0, "00"), None).unwrap().contains("missing"));
        assert!(cp.problem_with(&journal(9, "ff"), Some(&"ee".repeat(32))).unwrap().contains("rewritten"));
    }
}
