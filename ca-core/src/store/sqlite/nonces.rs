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

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    #[test]
    fn a_nonce_is_consumed_once_and_expires() {
        let store = SqliteStore::open_in_memory().unwrap();
        let now = OffsetDateTime::now_utc();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        store.issue_nonce(&a, now, now + Duration::minutes(5), now - Duration::hours(1)).unwrap();
        store.issue_nonce(&b, now, now + Duration::minutes(5), now - Duration::hours(1)).unwrap();
        assert_eq!(store.consume_nonce(&a, now).unwrap(), NonceOutcome::Consumed);
        assert_eq!(store.consume_nonce(&a, now).unwrap(), NonceOutcome::AlreadyUsed);
        assert_eq!(store.consume_nonce(&b, now + Duration::minutes(6)).unwrap(), NonceOutcome::Expired);
        assert_eq!(store.consume_nonce(&[3u8; 32], now).unwrap(), NonceOutcome::Unknown);
        // Long expired nonces are purged when new ones are issued.
        let later = now + Duration::hours(2);
        store.issue_nonce(&[4u8; 32], later, later + Duration::minutes(5), later - Duration::hours(1)).unwrap();
        assert_eq!(store.consume_nonce(&b, later).unwrap(), NonceOutcome::Unknown);
    }

    #[test]
    fn a_request_id_is_used_once_and_forgotten_after_it_expires() {
        let store = SqliteStore::open_in_memory().unwrap();
        let now = OffsetDateTime::now_utc();
        let keep = now + Duration::minutes(15);
        assert!(store.use_request_id(&[1u8; 32], now, keep).unwrap());
        assert!(!store.use_request_id(&[1u8; 32], now + Duration::minutes(14), keep).unwrap(), "a replay");
        assert!(store.use_request_id(&[2u8; 32], now, keep).unwrap(), "another request");
        // Past keep_until the id is purged (the request itself is refused as too old by then).
        let later = now + Duration::minutes(16);
        assert!(store.use_request_id(&[1u8; 32], later, later + Duration::minutes(15)).unwrap());
    }

    #[test]
    fn concurrent_consumers_of_one_nonce_see_one_success() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nonces.db");
        let now = OffsetDateTime::now_utc();
        let nonce = [7u8; 32];
        SqliteStore::open(&path).unwrap().issue_nonce(&nonce, now, now + Duration::minutes(5), now).unwrap();
        // Separate connections, as separate server processes would have.
        let stores: Vec<SqliteStore> = (0..8).map(|_| SqliteStore::open(&path).unwrap()).collect();
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> =
                stores.iter().map(|st| s.spawn(move || st.consume_nonce(&nonce, now).unwrap())).collect();
            handles.into_iter().map(|h| (h.join().unwrap() == NonceOutcome::Consumed) as usize).sum()
        });
        assert_eq!(wins, 1);
    }
}
