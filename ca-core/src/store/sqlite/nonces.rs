//! Login nonces and single-use admin request ids in SQLite.

use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;

use super::{Context, SqliteStore};
use crate::store::{NonceOutcome, NonceStore, StoreError};

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl NonceStore for SqliteStore {
    fn issue_nonce(
        &self,
        nonce: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.prepare_cached("DELETE FROM auth_nonces WHERE expires_at < ?1")
            .and_then(|mut s| s.execute(params![millis(purge_before)]))
            .context("purging old login nonces")?;
        conn.prepare_cached("INSERT INTO auth_nonces (nonce, issued_at, expires_at) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![nonce, millis(now), millis(expires_at)]))
            .context("recording a login nonce")?;
        Ok(())
    }

    fn consume_nonce(&self, nonce: &[u8], now: OffsetDateTime) -> Result<NonceOutcome, StoreError> {
        let conn = self.lock();
        // One statement: SQLite runs it under the write lock, so the condition and the update
        // cannot be split by another consumer (in this process or another one).
        let consumed = conn
            .prepare_cached(
                "UPDATE auth_nonces SET consumed_at = ?2
                 WHERE nonce = ?1 AND consumed_at IS NULL AND expires_at > ?2",
            )
            .and_then(|mut s| s.execute(params![nonce, millis(now)]))
            .context("consuming a login nonce")?;
        if consumed == 1 {
            return Ok(NonceOutcome::Consumed);
        }
        let row: Option<Option<i64>> = conn
            .prepare_cached("SELECT consumed_at FROM auth_nonces WHERE nonce = ?1")
            .and_then(|mut s| s.query_row(params![nonce], |r| r.get(0)).optional())
            .context("reading a login nonce")?;
        Ok(match row {
            None => NonceOutcome::Unknown,
            Some(Some(_)) => NonceOutcome::AlreadyUsed,
            Some(None) => NonceOutcome::Expired,
        })
    }

    fn use_request_id(
        &self,
        id: &[u8; 32],
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let conn = self.lock();
        conn.prepare_cached("DELETE FROM admin_requests WHERE keep_until < ?1")
            .and_then(|mut s| s.execute(params![millis(now)]))
            .context("purging old admin request ids")?;
        // One statement: of two concurrent uses only one inserts.
        let inserted = conn
            .prepare_cached(
                "INSERT INTO admin_requests (id, used_at, keep_until) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![&id[..], millis(now), millis(keep_until)]))
            .context("recording an admin request id")?;
        Ok(inserted == 1)
    }
}
