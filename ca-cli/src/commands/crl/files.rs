//! The publication directory: one publisher at a time, public files written atomically, no
//! leftovers.
//!
//! `ca crl publish` holds an exclusive lock on `<dir>/.publish.lock` while it works, so a
//! daily full run and an hourly delta run that overlap take turns instead of interleaving
//! their renames. Holding the lock, any `.publishing-*` temporary file in the directory belongs
//! to a run that was killed mid-write and is removed. CRLs are public: they are written 0644
//! whatever the umask, fsynced, renamed into place and the directory entry is fsynced too.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Temporary files of earlier versions of the publisher.
const OLD_TEMP_PREFIX: &str = ".publishing-";
const LOCK_FILE: &str = ".publish.lock";

/// A locked publication directory; the lock is released when this is dropped.
pub struct PublicationDir {
    path: PathBuf,
    _lock: File,
}

impl PublicationDir {
    /// Create the directory if needed, wait for any other publisher to finish, and remove the
    /// temporary files of publishers that died.
    pub fn lock(path: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let dir = Self { path: path.to_owned(), _lock: lock };
        dir.remove_abandoned()?;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Under the lock, every temporary file is a dead publisher's.
    fn remove_abandoned(&self) -> anyhow::Result<()> {
        let entries = std::fs::read_dir(&self.path).with_context(|| format!("cannot list {}", self.path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", self.path.display()))?;
            if is_publication_temporary(&entry.file_name().to_string_lossy()) {
                let path = entry.path();
                std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
                tracing::info!(file = %path.display(), "removed the temporary file of an interrupted publication");
            }
        }
        Ok(())
    }

    /// Write `name` atomically and readable by all: readers see the old file or the new one,
    /// never a part ([`ca_core::fs`]).
    pub fn write(&self, name: &str, write: impl FnOnce(&mut File) -> anyhow::Result<()>) -> anyhow::Result<PathBuf> {
        let path = self.path.join(name);
        ca_core::fs::write_with(&path, ca_core::fs::AtomicWrite::PUBLIC, write)?;
        Ok(path)
    }

    /// Remove `name` if it is there (a PEM copy that would otherwise go stale).
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let path = self.path.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => self.sync(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove the stale {}", path.display())),
        }
    }

    /// The CRL number of the CRL published as `name`; `Ok(None)` when there is no such file,
    /// `Err` when the file is there but is not a CRL with a number.
    pub fn published_number(&self, name: &str) -> Result<Option<u64>, String> {
        let path = self.path.join(name);
        let der = match std::fs::read(&path) {
            Ok(der) => der,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let crl = crl::parse(&der).map_err(|e| format!("{}: {e}", path.display()))?;
        crl.crl_number.map(Some).ok_or_else(|| format!("{}: no CRL number", path.display()))
    }

    fn sync(&self) -> anyhow::Result<()> {
        File::open(&self.path)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync the directory {}", self.path.display()))
    }
}

/// A temporary file of a publisher: a CRL or its PEM copy being written ([`ca_core::fs`] names
/// them `.<name>.partial-…`). Other writers of this directory (audit checkpoints) are left alone:
/// they do not take the lock and may be writing right now.
fn is_publication_temporary(name: &str) -> bool {
    if name.starts_with(OLD_TEMP_PREFIX) {
        return true;
    }
    ca_core::fs::is_partial(name)
        && name.split(".partial-").next().is_some_and(|target| target.ends_with(".crl") || target.ends_with(".pem"))
}
