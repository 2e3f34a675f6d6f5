//! Login nonces and single-use request ids in SQLite. Each decision is one statement, which
//! SQLite runs under the write lock: a conditional UPDATE consumes once, `ON CONFLICT DO NOTHING`
//! inserts once, across connections and processes. [`NonceTables`] is the whole behaviour over
//! a pair of tables, so that another store on SQLite (the portal's) implements [`NonceStore`]
//! on its own tables with the same code (as `postgres::nonces::NonceTables` does there).

use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;

use super::{Context, SqliteStore};
use crate::store::{NonceOutcome, NonceStore, StoreError};

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The tables of one nonce store: `nonces (nonce, issued_at, expires_at, consumed_at)` and
/// `request_ids (id, used_at, keep_until)`, times in unix milliseconds. The names are constants
/// of the store, never input.
#[derive(Clone, Copy, Debug)]
pub struct NonceTables {
    pub nonces: &'static str,
    pub request_ids: &'static str,
}

impl NonceTables {
    /// [`NonceStore::issue_nonce`] on these tables.
    pub fn issue(
        &self,
        conn: &Connection,
        nonce: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let nonces = self.nonces;
        conn.prepare_cached(&format!("DELETE FROM {nonces} WHERE expires_at < ?1"))
            .and_then(|mut s| s.execute(params![millis(purge_before)]))
            .context("purging old nonces")?;
        conn.prepare_cached(&format!("INSERT INTO {nonces} (nonce, issued_at, expires_at) VALUES (?1, ?2, ?3)"))
            .and_then(|mut s| s.execute(params![nonce, millis(now), millis(expires_at)]))
            .context("recording a nonce")?;
        Ok(())
    }

    /// [`NonceStore::consume_nonce`] on these tables.
    pub fn consume(&self, conn: &Connection, nonce: &[u8], now: OffsetDateTime) -> Result<NonceOutcome, StoreError> {
        let nonces = self.nonces;
        // One statement: SQLite runs it under the write lock, so the condition and the update
        // cannot be split by another consumer (in this process or another one).
        let consumed = conn
            .prepare_cached(&format!(
                "UPDATE {nonces} SET consumed_at = ?2 WHERE nonce = ?1 AND consumed_at IS NULL AND expires_at > ?2"
            ))
            .and_then(|mut s| s.execute(params![nonce, millis(now)]))
            .context("consuming a nonce")?;
        if consumed == 1 {
            return Ok(NonceOutcome::Consumed);
        }
        let row: Option<Option<i64>> = conn
            .prepare_cached(&format!("SELECT consumed_at FROM {nonces} WHERE nonce = ?1"))
            .and_then(|mut s| s.query_row(params![nonce], |r| r.get(0)).optional())
            .context("reading a nonce")?;
        Ok(match row {
            None => NonceOutcome::Unknown,
            Some(Some(_)) => NonceOutcome::AlreadyUsed,
            Some(None) => NonceOutcome::Expired,
        })
    }

    /// [`NonceStore::use_request_id`] on these tables.
    pub fn use_request_id(
        &self,
        conn: &Connection,
        id: &[u8; 32],
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.purge_request_ids(conn, now)?;
        self.record_request_id(conn, id, now, keep_until)
    }

    /// Forget the request ids kept until before `now`.
    pub fn purge_request_ids(&self, conn: &Connection, now: OffsetDateTime) -> Result<(), StoreError> {
        let request_ids = self.request_ids;
        conn.prepare_cached(&format!("DELETE FROM {request_ids} WHERE keep_until < ?1"))
            .and_then(|mut s| s.execute(params![millis(now)]))
            .context("purging old request ids")?;
        Ok(())
    }

    /// Record the use of `id`: `false` if it was used before (one statement: of two concurrent
    /// uses only one inserts).
    pub fn record_request_id(
        &self,
        conn: &Connection,
        id: &[u8; 32],
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let request_ids = self.request_ids;
        let inserted = conn
            .prepare_cached(&format!(
                "INSERT INTO {request_ids} (id, used_at, keep_until) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO NOTHING"
            ))
            .and_then(|mut s| s.execute(params![&id[..], millis(now), millis(keep_until)]))
            .context("recording a request id")?;
        Ok(inserted == 1)
    }
}

/// The CA's: login nonces and the admin API's request ids.
const CA_TABLES: NonceTables = NonceTables { nonces: "auth_nonces", request_ids: "admin_requests" };

impl NonceStore for SqliteStore {
    fn issue_nonce(
        &self,
        nonce: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        CA_TABLES.issue(&self.lock(), nonce, now, expires_at, purge_before)
    }

    fn consume_nonce(&self, nonce: &[u8], now: OffsetDateTime) -> Result<NonceOutcome, StoreError> {
        CA_TABLES.consume(&self.lock(), nonce, now)
    }

    fn use_request_id(
        &self,
        id: &[u8; 32],
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        CA_TABLES.use_request_id(&self.lock(), id, now, keep_until)
    }
}
