//! Durable, all-or-nothing file writes: the bytes go to a temporary file in the same directory,
//! which is synced and then renamed (or hard-linked, when an existing file must not be replaced)
//! onto the final name, and the directory is synced. A crash leaves the old file or no file, never
//! a short one — at worst a `.<name>.partial-…` file that nothing reads. Used for key stores,
//! certificates, CRLs and backups.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::failpoint;

/// What to do when the final file exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (readers see the old file or the new one).
    Replace,
    /// Refuse with [`io::ErrorKind::AlreadyExists`]; nothing is changed.
    Refuse,
}

/// How a file is written.
#[derive(Clone, Copy, Debug)]
pub struct AtomicWrite {
    pub existing: Existing,
    /// Unix permission bits of the new file (e.g. 0o600 for key material); `None`: the default.
    pub mode: Option<u32>,
}

impl AtomicWrite {
    /// A new file that must not exist yet, readable only by the owner (key stores).
    pub const PRIVATE_NEW: Self = Self { existing: Existing::Refuse, mode: Some(0o600) };
    /// A new file that must not exist yet, with default permissions (certificates).
    pub const NEW: Self = Self { existing: Existing::Refuse, mode: None };
    /// Replace whatever is there, with default permissions.
    pub const REPLACE: Self = Self { existing: Existing::Replace, mode: None };
    /// Replace whatever is there with a file anyone may read (CRLs, certificates, checkpoints,
    /// ca.toml).
    pub const PUBLIC: Self = Self { existing: Existing::Replace, mode: Some(0o644) };
    /// Replace whatever is there with a file only the owner may read (the token list).
    pub const PRIVATE: Self = Self { existing: Existing::Replace, mode: Some(0o600) };
}

/// Write `bytes` to `path` atomically and durably.
pub fn write_atomically(path: &Path, bytes: &[u8], how: AtomicWrite) -> io::Result<()> {
    write_with(path, how, |f| f.write_all(bytes))
}

/// Write `path` atomically and durably with `write` filling the temporary file.
pub fn write_with<E: From<io::Error>>(
    path: &Path,
    how: AtomicWrite,
    write: impl FnOnce(&mut File) -> Result<(), E>,
) -> Result<(), E> {
    let (dir, name) = split(path)?;
    if how.existing == Existing::Refuse && path.symlink_metadata().is_ok() {
        return Err(exists(path).into());
    }
    let (tmp_path, mut file) = create_temporary(&dir, &name, how.mode)?;
    let result = write(&mut file).and_then(|()| Ok(file.sync_all()?));
    drop(file);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(e);
    }
    failpoint::hit(failpoint::BEFORE_RENAME);
    let placed = match how.existing {
        Existing::Replace => std::fs::rename(&tmp_path, path),
        // A hard link fails if the name exists, so two writers cannot both win.
        Existing::Refuse => std::fs::hard_link(&tmp_path, path).and_then(|()| std::fs::remove_file(&tmp_path)),
    };
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(if e.kind() == io::ErrorKind::AlreadyExists { exists(path) } else { e }.into());
    }
    sync_dir(&dir)?;
    failpoint::hit(failpoint::RENAMED);
    Ok(())
}

/// Make a directory's entries (a rename, a new or removed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    let _ = dir;
    Ok(())
}

/// Remove a file durably; a file that is not there is no error.
pub fn remove_durably(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(&split(path)?.0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether `name` is a temporary file left by an interrupted [`write_with`].
pub fn is_partial(name: &str) -> bool {
    name.starts_with('.') && name.contains(".partial-")
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} names no file", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_owned()))
}

fn exists(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, format!("{} already exists; nothing was overwritten", path.display()))
}

fn create_temporary(dir: &Path, name: &str, mode: Option<u32>) -> io::Result<(PathBuf, File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.partial-{}-{n}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let _ = mode;
        match options.open(&tmp) {
            Ok(f) => {
                // The mode given at open is narrowed by the umask: a public file (a CRL) must be
                // readable by all whatever the umask, so set it exactly. A private file is
                // created private, so it is never readable by others even for a moment.
                #[cfg(unix)]
                if let Some(mode) = mode {
                    use std::os::unix::fs::PermissionsExt;
                    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
                }
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_are_complete_private_and_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("AUTH_RSA256_ab.p12");
        write_atomically(&path, b"first", AtomicWrite::PRIVATE_NEW).unwrap();
        let err = write_atomically(&path, b"second", AtomicWrite::PRIVATE_NEW).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        write_atomically(&path, b"third", AtomicWrite::REPLACE).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("AUTH_RSA256_ab.p12")]);
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.crl");
        let r: io::Result<()> = write_with(&path, AtomicWrite::REPLACE, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("the builder failed"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        assert!(is_partial(".x.crl.partial-1-0") && !is_partial("x.crl"));
    }
}
