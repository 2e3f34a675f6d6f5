//! Switching to renewed keys and certificates without a restart.
//!
//! `ca ocsp renew` and `ca system renew` replace the responder's or the system's certificate
//! and key (each file atomically, or a new key on the token named in ca.toml). The server
//! notices by the files' identity (inode, size, modification time) of ca.toml, both
//! certificates and both key files: it looks every `[server] reload_seconds` (default 60) and
//! at once on SIGHUP. A change builds the new responder and signer completely — key opened,
//! checked against its certificate — before it replaces the old one; until then, and if
//! building fails (e.g. the key is renamed and the certificate not yet), the old one keeps
//! answering, the failure is logged and counted (`ca_reload_failures_total`), and the next
//! look tries again.
//!
//! The bearer-token list is looked at on every `/api/v1/cms/sign` request (one `stat`), so a
//! revoked token is refused from the next request on. A list that no longer parses refuses
//! every token until it is fixed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// A value the server may replace while requests read it.
pub struct Live<T>(RwLock<T>);

impl<T: Clone> Live<T> {
    pub fn new(value: T) -> Self {
        Self(RwLock::new(value))
    }

    /// The current value (a cheap clone: an `Arc` or an `Option<Arc>`).
    pub fn get(&self) -> T {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

impl<T: Clone + Default> Default for Live<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

/// What identifies one version of a file: a rename gives a new inode even within the same
/// second; absent files are part of the state too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileState(Option<(u64, u64, std::time::SystemTime)>);

impl FileState {
    pub(crate) fn of(path: &Path) -> Self {
        let Ok(meta) = std::fs::metadata(path) else { return Self(None) };
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Self(Some((inode, meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH))))
    }
}

/// The files whose change means "load the server's keys again", and what they were when last
/// loaded.
pub(crate) struct Watched {
    paths: Vec<PathBuf>,
    seen: Mutex<Vec<FileState>>,
}

impl Watched {
    pub(crate) fn new(paths: Vec<PathBuf>) -> Self {
        let seen = paths.iter().map(|p| FileState::of(p)).collect();
        Self { paths, seen: Mutex::new(seen) }
    }

    /// The files' state now, when it differs from the last one loaded.
    pub(crate) fn changed(&self) -> Option<Vec<FileState>> {
        let now: Vec<FileState> = self.paths.iter().map(|p| FileState::of(p)).collect();
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        (*seen != now).then_some(now)
    }

    /// Record what was loaded.
    pub(crate) fn loaded(&self, state: Vec<FileState>) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }
}

/// The token list file, read again when it changes.
pub(crate) struct TokenFile {
    pub(crate) path: PathBuf,
    pub(crate) seen: Mutex<FileState>,
}

impl crate::Services {
    /// The bearer tokens allowed now: read again from the list when the file has changed since.
    pub fn current_api_tokens(&self) -> Arc<crate::ApiTokens> {
        let Some(file) = &self.token_file else { return self.api_tokens.get() };
        let mut seen = file.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = FileState::of(&file.path);
        if *seen != now {
            let tokens = match std::fs::read_to_string(&file.path) {
                Ok(text) => crate::ApiTokens::parse(&text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(crate::ApiTokens::default()),
                Err(e) => Err(e.to_string()),
            };
            let tokens = tokens.unwrap_or_else(|message| {
                // Fail closed: a list we cannot read allows nobody.
                tracing::error!(path = %file.path.display(), message, "token list unreadable: refusing every token");
                crate::ApiTokens::default()
            });
            self.api_tokens.set(Arc::new(tokens));
            *seen = now;
        }
        self.api_tokens.get()
    }

    /// Load the OCSP responder and the system signer again if their files changed; `Ok(true)`
    /// when something was replaced. On an error the running ones stay.
    pub fn reload(&self) -> Result<bool, crate::StartError> {
        let Some(source) = &self.reload_source else { return Ok(false) };
        let Some(state) = source.watched.changed() else { return Ok(false) };
        let result = (|| {
            let config = source.dir.load_config()?;
            let store = self
                .store
                .clone()
                .ok_or_else(|| crate::StartError::Read { path: source.dir.store(), message: "no store".into() })?;
            crate::ServerKeys::load(&source.dir, &config, source.secrets(), store)
        })();
        match result {
            Ok(keys) => {
                let ocsp_serial =
                    keys.ocsp.as_ref().map(|r| hex::encode(r.certificate().tbs_certificate.serial_number.as_bytes()));
                self.install(keys);
                source.watched.loaded(state);
                tracing::info!(ocsp = ?ocsp_serial, "server keys and certificates reloaded");
                Ok(true)
            }
            Err(e) => {
                self.metrics.reload_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

/// Look for renewed keys every `interval` (if any) and on SIGHUP, until the process ends.
pub(crate) async fn reload_loop(services: Arc<crate::Services>, interval: Option<std::time::Duration>) {
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut ticker = interval.map(|every| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        let tick = async {
            match ticker.as_mut() {
                Some(t) => _ = t.tick().await,
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(h) => _ = h.recv().await,
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();
        let why = tokio::select! { _ = tick => "timer", _ = hup => "SIGHUP" };
        let s = services.clone();
        // Opening a key decrypts it (scrypt) or talks to a token: not on the async workers.
        match tokio::task::spawn_blocking(move || s.reload()).await {
            Ok(Ok(true)) => tracing::info!(why, "switched to the renewed keys"),
            Ok(Ok(false)) => tracing::debug!(why, "no renewed keys"),
            Ok(Err(e)) => tracing::error!(why, error = %e, "reload failed; the running keys stay"),
            Err(e) => tracing::error!(why, error = %e, "reload worker failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ca_core::api_tokens::ApiToken;

    fn services_with_tokens(path: &Path) -> crate::Services {
        let mut services = crate::Services::new(None, None, "nca", PathBuf::new(), PathBuf::new());
        services.token_file = Some(TokenFile { path: path.to_owned(), seen: Mutex::new(FileState(None)) });
        services
    }

    #[test]
    fn the_token_list_is_read_again_when_it_changes_and_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-tokens");
        let services = services_with_tokens(&path);
        assert!(!services.current_api_tokens().allows(b"a"), "no list, no token");
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let a = ApiToken::new(b"a", "portal", at).unwrap();
        ca_core::api_tokens::add(&path, &a).unwrap();
        ca_core::api_tokens::add(&path, &ApiToken::new(b"b", "counter", at).unwrap()).unwrap();
        assert!(services.current_api_tokens().allows(b"a"));
        ca_core::api_tokens::revoke(&path, &a.id(), at).unwrap();
        let now = services.current_api_tokens();
        assert!(!now.allows(b"a"), "revoked: refused at once");
        assert!(now.allows(b"b"));
        // A list that does not parse allows nobody, rather than the last good one.
        std::fs::write(&path, "not a digest\n").unwrap();
        assert!(!services.current_api_tokens().allows(b"b"));
    }

    #[test]
    fn a_watched_file_counts_as_changed_when_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ocsp.pem");
        std::fs::write(&path, "one").unwrap();
        let watched = Watched::new(vec![path.clone(), dir.path().join("absent")]);
        assert!(watched.changed().is_none());
        // Same size, same second: the rename still gives a new inode.
        ca_core::fs::write_atomically(&path, b"two", ca_core::fs::AtomicWrite::PUBLIC).unwrap();
        let state = watched.changed().expect("replaced");
        watched.loaded(state);
        assert!(watched.changed().is_none());
        std::fs::write(dir.path().join("absent"), "now here").unwrap();
        assert!(watched.changed().is_some());
    }
}
