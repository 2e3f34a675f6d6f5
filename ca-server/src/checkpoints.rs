//! Signed checkpoints of the audit journal at an interval (`[audit] checkpoint_minutes` in
//! ca.toml), while the server runs: every interval (and once at start) the journal is verified
//! from its first entry and, when its head moved since the last checkpoint, a checkpoint of the
//! head is signed with the audit key and published beside the CRLs
//! ([`ca_core::checkpoint`]). Signing nothing new would only refresh the time, and a checkpoint is
//! never journaled itself (that would move the head every time).
//!
//! The audit key is opened like the server's other keys: the encrypted file with the CA
//! passphrase, or on its token with the PIN. Without them the server runs without checkpoints
//! (and says so); `ca audit checkpoint` from a timer does the same job then.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ca_core::ca_dir::{CaConfig, CaDir, KeyLocation};
use ca_core::checkpoint::{self, Checkpoint, CheckpointError};
use ca_core::clock::Clock;
use ca_core::signer::Signer;
use ca_core::store::Store;
use time::OffsetDateTime;

use crate::StartError;

/// Signs checkpoints of one CA's journal with its audit key.
pub struct AuditCheckpoints {
    store: Arc<dyn Store>,
    key: Arc<dyn Signer>,
    ca: String,
    path: PathBuf,
    /// The head of the last checkpoint written (or found published at start).
    last: Mutex<Option<Checkpoint>>,
    /// How often [`AuditCheckpoints::tick`] runs under [`run`].
    pub interval: Duration,
}

impl AuditCheckpoints {
    /// `key` must be the audit key pinned as `pinned`; the checkpoint published at `path`, if it
    /// verifies with it, is taken as the last one (a restart does not sign the same head again).
    pub fn new(
        store: Arc<dyn Store>,
        key: Arc<dyn Signer>,
        pinned: (&x509_cert::spki::SubjectPublicKeyInfoOwned, &Path),
        ca: impl Into<String>,
        path: PathBuf,
        interval: Duration,
    ) -> Result<Self, CheckpointError> {
        checkpoint::check_pinned(key.as_ref(), pinned.0, pinned.1)?;
        let ca = ca.into();
        let last = std::fs::read(&path).ok().and_then(|file| Checkpoint::verify(&file, pinned.0, &ca).ok());
        Ok(Self { store, key, ca, path, last: Mutex::new(last), interval })
    }

    /// Verify the journal and, if its head moved since the last checkpoint, sign and publish a
    /// checkpoint of it. The new checkpoint, or `None` when the head did not move. A broken
    /// journal gets no checkpoint ([`CheckpointError::BrokenJournal`]).
    pub fn tick(&self, now: OffsetDateTime) -> Result<Option<Checkpoint>, CheckpointError> {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let cp = Checkpoint::of_store(self.store.as_ref(), &self.ca, now)?;
        if last.as_ref().is_some_and(|l| l.same_head(&cp)) {
            return Ok(None);
        }
        cp.sign_and_publish(self.key.as_ref(), &self.path)?;
        *last = Some(cp.clone());
        Ok(Some(cp))
    }
}

/// The checkpoints of the CA in `dir`, when they are configured (`checkpoint_minutes` > 0), an
/// audit key was made, and the server can open it; `open_key` opens a server key as the OCSP
/// and system keys are opened (`None`: no passphrase or PIN was given for it).
pub(crate) fn load(
    dir: &CaDir,
    config: &CaConfig,
    store: Arc<dyn Store>,
    open_key: impl FnOnce(Option<&KeyLocation>, &Path) -> Result<Option<Arc<dyn Signer>>, StartError>,
) -> Result<Option<AuditCheckpoints>, StartError> {
    let Some(interval) = config.audit.checkpoint_interval() else { return Ok(None) };
    let pinned_path = dir.audit_public_key();
    let Some(pinned) = checkpoint::read_pinned_key(&pinned_path)? else {
        tracing::warn!("no audit key (ca audit init-key): the server signs no audit checkpoints");
        return Ok(None);
    };
    let key = match open_key(config.server.audit_key.as_ref(), &dir.audit_key()) {
        Ok(Some(key)) => key,
        Ok(None) | Err(StartError::PinNeeded(_)) => {
            tracing::warn!(
                "the audit key cannot be opened without the CA passphrase or token PIN: no audit checkpoints \
                 (run `ca audit checkpoint` from a timer)"
            );
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let checkpoints = AuditCheckpoints::new(
        store,
        key,
        (&pinned, &pinned_path),
        config.issuing.name.clone(),
        dir.audit_checkpoint(),
        interval,
    )?;
    Ok(Some(checkpoints))
}

/// Tick every interval (the first at once) until the task is dropped. Failures are logged and
/// retried at the next tick.
pub async fn run(checkpoints: Arc<AuditCheckpoints>, clock: Arc<dyn Clock>) {
    let mut interval = tokio::time::interval(checkpoints.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let (cp, clock) = (checkpoints.clone(), clock.clone());
        match tokio::task::spawn_blocking(move || cp.tick(clock.now())).await {
            Ok(Ok(Some(cp))) => tracing::info!(seq = cp.seq, head = %cp.head, "audit checkpoint signed"),
            Ok(Ok(None)) => tracing::debug!("audit journal head unchanged: no new checkpoint"),
            Ok(Err(e)) => tracing::error!(error = %e, "audit checkpoint"),
            Err(e) => tracing::error!(error = %e, "audit checkpoint task"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ca_core::store::{AuditEvent, SqliteStore};
    use hsm::{KeyAlgorithm, SoftwareKey};

    fn at(minute: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_780_000_000 + minute * 60).unwrap()
    }

    fn checkpoints(store: &Arc<SqliteStore>, key: &Arc<SoftwareKey>, path: &Path) -> AuditCheckpoints {
        let pinned = key.public_key().clone();
        AuditCheckpoints::new(
            store.clone(),
            key.clone(),
            (&pinned, Path::new("audit.pub.pem")),
            "nca",
            path.to_owned(),
            Duration::from_secs(60),
        )
        .unwrap()
    }

    #[test]
    fn a_tick_signs_the_head_only_when_it_moved() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("audit-checkpoint.json");
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let key = Arc::new(SoftwareKey::generate(KeyAlgorithm::P256).unwrap());
        store.append_audit(&AuditEvent::new("test", "one")).unwrap();
        let cps = checkpoints(&store, &key, &path);

        let first = cps.tick(at(0)).unwrap().expect("a first checkpoint");
        assert_eq!(first.seq, 1);
        let file = std::fs::read(&path).unwrap();
        assert_eq!(Checkpoint::verify(&file, key.public_key(), "nca").unwrap(), first);

        assert_eq!(cps.tick(at(60)).unwrap(), None, "the head did not move");
        assert_eq!(std::fs::read(&path).unwrap(), file, "the published checkpoint stays");

        store.append_audit(&AuditEvent::new("test", "two")).unwrap();
        let second = cps.tick(at(120)).unwrap().expect("the head moved");
        assert_eq!((second.seq, second.at), (2, at(120)));

        // A restarted server takes the published checkpoint as its last one.
        let restarted = checkpoints(&store, &key, &path);
        assert_eq!(restarted.tick(at(180)).unwrap(), None);
    }

    #[test]
    fn another_key_than_the_pinned_one_is_refused() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let key = Arc::new(SoftwareKey::generate(KeyAlgorithm::P256).unwrap());
        let other = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let result = AuditCheckpoints::new(
            store,
            key,
            (other.public_key(), Path::new("audit.pub.pem")),
            "nca",
            PathBuf::from("unused.json"),
            Duration::from_secs(60),
        );
        assert!(matches!(result, Err(CheckpointError::NotPinnedKey(_))));
    }
}
