//! WAL checkpoints off the write path. SQLite's automatic checkpoint runs in the connection
//! whose commit takes the WAL past `wal_autocheckpoint` pages (1,000 by default): inside an
//! issuance, a revocation or a login, with two fsyncs and every page the WAL holds written back
//! into the database file. At national scale each certificate changes a random leaf page of
//! three indexes, so that happened every few batches. A store in a file has a thread of its own
//! instead that checkpoints every [`EVERY`] on a connection of its own, `PASSIVE` (it never
//! waits for, nor blocks, a writer or a reader); the automatic checkpoint stays as a backstop
//! at [`AUTOCHECKPOINT_PAGES`] for when the thread falls behind.

use std::path::Path;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::{Context, BUSY_TIMEOUT};
use crate::store::StoreError;

/// How often the thread checkpoints.
pub const EVERY: Duration = Duration::from_secs(1);
/// The writer's automatic checkpoint (~40 MiB of WAL), if the thread falls behind.
pub const AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// The checkpoint thread of one database file; stopped (and joined) when dropped.
pub struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Set `writer`'s automatic checkpoint to the backstop and start checkpointing `path`
    /// every [`EVERY`]; `name` names the thread.
    pub fn start(writer: &Connection, path: &Path, name: &str) -> Result<Self, StoreError> {
        writer.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES).context("setting wal_autocheckpoint")?;
        let location = path.display().to_string();
        let conn = Connection::open(path).with_context(|| format!("opening {location} for checkpoints"))?;
        conn.busy_timeout(BUSY_TIMEOUT).context("setting the busy timeout")?;
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, database = %location, "WAL checkpoint failed");
                    }
                }
            })
            .map_err(|e| StoreError::Database(format!("starting the checkpoint thread: {e}")))?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // It wakes at once (the channel is closed) or after the checkpoint in progress.
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use time::OffsetDateTime;

    use crate::store::{NonceStore, SqliteStore};

    /// Whether request id `id` is in the database file itself, not only in its WAL (a copy of
    /// the file without its `-wal` is the state of the last checkpoint).
    fn in_the_main_file(dir: &std::path::Path, id: &[u8; 32]) -> bool {
        let copy = dir.join("copy.db");
        std::fs::copy(dir.join("ca.db"), &copy).unwrap();
        let conn = rusqlite::Connection::open(&copy).unwrap();
        let n: i64 =
            conn.query_row("SELECT count(*) FROM admin_requests WHERE id = ?1", [&id[..]], |r| r.get(0)).unwrap_or(0);
        drop(conn);
        std::fs::remove_file(&copy).unwrap();
        n == 1
    }

    #[test]
    fn the_stores_thread_checkpoints_what_a_commit_leaves_in_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ca.db")).unwrap();
        let pages: i64 = store.lock().query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).unwrap();
        assert_eq!(pages, i64::from(super::AUTOCHECKPOINT_PAGES), "the commit's own checkpoint is only a backstop");
        let now = OffsetDateTime::now_utc();
        assert!(store.use_request_id(&[7; 32], now, now + time::Duration::hours(1)).unwrap());
        // Far below any automatic checkpoint: only the store's thread moves it into the file.
        let deadline = Instant::now() + super::EVERY * 10;
        while !in_the_main_file(dir.path(), &[7; 32]) {
            assert!(Instant::now() < deadline, "not checkpointed within {:?}", super::EVERY * 10);
            std::thread::sleep(super::EVERY / 10);
        }
    }
}
