//! The store's files: created and kept readable by the owner only, copied online for backups,
//! and checked without being changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::{migrations, Context, SqliteStore};
use crate::store::{AuditVerification, Store, StoreError};

impl SqliteStore {
    /// Copy the whole database to a new file at `dest` with SQLite's online backup API: one
    /// consistent snapshot (a read transaction; in WAL mode writers go on meanwhile), in a file
    /// readable by the owner only, in rollback-journal mode (one self-contained file). `dest`
    /// must not exist. Returns the verification of the copy's audit journal, whose head
    /// identifies the snapshot.
    pub fn backup_to(&self, dest: &Path) -> Result<AuditVerification, StoreError> {
        let location = dest.display().to_string();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(dest).map_err(|e| StoreError::Database(format!("creating {location}: {e}")))?;
        let mut target = Connection::open(dest).with_context(|| format!("opening {location}"))?;
        {
            let conn = self.lock();
            let backup = rusqlite::backup::Backup::new(&conn, &mut target).context("starting the backup")?;
            // All pages in one step: the copy is one snapshot, never restarted by a writer.
            let deadline = std::time::Instant::now() + super::BUSY_TIMEOUT;
            loop {
                use rusqlite::backup::StepResult;
                match backup.step(-1).context("copying the database")? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    StepResult::Busy | StepResult::Locked if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => return Err(StoreError::Database(format!("copying into {location}: the store stayed busy"))),
                }
            }
        }
        // Leave one self-contained file: no WAL beside the copy.
        target.pragma_update(None, "journal_mode", "DELETE").context("finishing the copy")?;
        let copy = SqliteStore {
            conn: std::sync::Mutex::new(target),
            path: Some(dest.to_owned()),
            // Verified on the one connection that made it.
            readers: None,
            timing: Default::default(),
            _checkpointer: None,
        };
        let audit = copy.verify_audit()?;
        let target = copy.conn.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        target.close().map_err(|(_, e)| StoreError::Database(format!("closing {location}: {e}")))?;
        Ok(audit)
    }

    /// Check a database file without changing it (a backup): SQLite's integrity check, and the
    /// schema version it carries.
    pub fn check_file(path: &Path) -> Result<i64, StoreError> {
        let location = path.display().to_string();
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {location}"))?;
        let result: String =
            conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).context("running the integrity check")?;
        if result != "ok" {
            return Err(StoreError::Database(format!("{location} is damaged: {result}")));
        }
        migrations::current_version(&conn)
    }
}

/// Create the database file 0600, or narrow an existing one (and its WAL and index) to 0600.
pub(super) fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if let Err(e) = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            match std::fs::metadata(&file) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    // Another user's file (a shared group setup) is left alone, with a warning.
                    if let Err(e) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                        tracing::warn!(file = %file.display(), error = %e, "the store is readable by others");
                    }
                }
                _ => {}
            }
        }
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditEvent;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn the_database_and_its_wal_are_readable_by_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ca.db");
        let store = SqliteStore::open(&path).unwrap();
        store.append_audit(&AuditEvent::new("tester", "test.write")).unwrap();
        for name in ["ca.db", "ca.db-wal", "ca.db-shm"] {
            assert_eq!(mode(&tmp.path().join(name)), 0o600, "{name}");
        }
        drop(store);
        // A store made world-readable (an older version, a careless copy) is narrowed on open.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        store.append_audit(&AuditEvent::new("tester", "test.write")).unwrap();
        for name in ["ca.db", "ca.db-wal", "ca.db-shm"] {
            assert_eq!(mode(&tmp.path().join(name)), 0o600, "{name}");
        }
    }

    #[test]
    fn an_online_backup_is_one_consistent_private_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&tmp.path().join("ca.db")).unwrap();
        for i in 0..3 {
            store.append_audit(&AuditEvent::new("tester", "test.write").target(format!("{i}"))).unwrap();
        }
        let copy = tmp.path().join("copy.db");
        let snapshot = store.backup_to(&copy).unwrap();
        assert!(snapshot.is_intact());
        // Written after the backup: not in it.
        store.append_audit(&AuditEvent::new("tester", "test.later")).unwrap();
        assert!(store.backup_to(&copy).is_err(), "an existing file is not overwritten");
        assert!(!tmp.path().join("copy.db-wal").exists());
        #[cfg(unix)]
        assert_eq!(mode(&copy), 0o600);
        assert_eq!(SqliteStore::check_file(&copy).unwrap(), migrations::LATEST);
        let restored = SqliteStore::open(&copy).unwrap();
        let verification = restored.verify_audit().unwrap();
        assert!(verification.is_intact(), "{:?}", verification.problems);
        assert_eq!(verification.entries, store.verify_audit().unwrap().entries - 1);
        assert_eq!((verification.entries, verification.head), (snapshot.entries, snapshot.head));

        let damaged = tmp.path().join("damaged.db");
        let mut bytes = std::fs::read(&copy).unwrap();
        let len = bytes.len();
        bytes.truncate(len / 2);
        std::fs::write(&damaged, bytes).unwrap();
        assert!(SqliteStore::check_file(&damaged).is_err());
    }
}
