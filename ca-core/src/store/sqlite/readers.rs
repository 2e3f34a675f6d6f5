//! Read-only connections for the hot reads: OCSP and verification status look-ups, listings and
//! CRL snapshots. In WAL mode a reader works beside the writer, so these reads no longer queue
//! behind the store's one read-write connection — behind an issuance's transaction and its
//! fsync, or a CRL's snapshot of a million rows — nor behind each other.
//!
//! Each read is its own transaction on a connection of its own, so it sees everything committed
//! before it started: a revocation that returned `Ok` is answered by the next status look-up.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::{Context, BUSY_TIMEOUT, STATEMENT_CACHE_CAPACITY};
use crate::store::StoreError;

/// Idle readers kept for reuse; more may be open at once under load, the surplus is closed.
const MAX_IDLE: usize = 8;

/// The idle read-only connections of one store file.
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path, idle: Mutex::new(Vec::new()) }
    }

    /// An idle reader, or a new one.
    pub(super) fn get(&self) -> Result<Reader<'_>, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        Ok(Reader { readers: self, conn: Some(conn) })
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
pub(in crate::store) struct Reader<'a> {
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
            return;
        }
        let mut idle = self.readers.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}
