//! Read-only connections for the hot reads: OCSP and verification status look-ups, listings and
//! CRL snapshots. In WAL mode a reader works beside the writer, so these reads no longer queue
//! behind the store's one read-write connection — behind an issuance's transaction and its
//! fsync, or a CRL's snapshot of a million rows — nor behind each other.
//!
//! Each read is its own transaction on a connection of its own, so it sees everything committed
//! before it started: a revocation that returned `Ok` is answered by the next status look-up.
//!
//! Public so that another store on SQLite (the portal's) reads the same way.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

use super::{Context, BUSY_TIMEOUT, STATEMENT_CACHE_CAPACITY};
use crate::store::StoreError;

/// Readers open at once: beyond a few per core they only add memory (each has its page cache)
/// — `ca-server` reads on a blocking pool of hundreds of threads; callers beyond wait for one.
const MAX_OPEN: usize = 16;

/// The read-only connections of one store file.
pub struct Readers {
    path: PathBuf,
    state: Mutex<State>,
    /// Signalled when a reader comes back or a slot frees up.
    returned: Condvar,
}

#[derive(Default)]
struct State {
    idle: Vec<Connection>,
    /// Readers open: idle, lent out or being opened.
    open: usize,
}

impl Readers {
    /// Readers of the database file at `path` (opened on first use, read-only).
    pub fn new(path: PathBuf) -> Self {
        Self { path, state: Mutex::default(), returned: Condvar::new() }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An idle reader, or a new one while fewer than [`MAX_OPEN`] are open, or else the first
    /// one returned.
    pub fn get(&self) -> Result<Reader<'_>, StoreError> {
        let mut state = self.state();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Reader { readers: self, conn: Some(conn) });
            }
            if state.open < MAX_OPEN {
                state.open += 1;
                break;
            }
            state = self.returned.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(state);
        match self.open() {
            Ok(conn) => Ok(Reader { readers: self, conn: Some(conn) }),
            Err(e) => {
                self.closed();
                Err(e)
            }
        }
    }

    /// Readers open and idle now.
    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize) {
        let state = self.state();
        (state.open, state.idle.len())
    }

    /// A reader was closed or never opened: another may be.
    fn closed(&self) {
        self.state().open -= 1;
        self.returned.notify_one();
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let location = self.path.display();
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .with_context(|| format!("opening {location} for reading"))?;
        conn.busy_timeout(BUSY_TIMEOUT).context("setting the busy timeout")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        Ok(conn)
    }
}

/// A reader in use; back to the idle set when dropped.
pub struct Reader<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
}

impl Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A read left open (an unwinding panic mid-transaction) would pin the WAL: close it.
        if !conn.is_autocommit() {
            drop(conn);
            self.readers.closed();
            return;
        }
        self.readers.state().idle.push(conn);
        self.readers.returned.notify_one();
    }
}
