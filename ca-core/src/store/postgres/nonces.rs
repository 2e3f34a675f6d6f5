//! Login nonces and single-use request ids in PostgreSQL. Each operation is one statement: a
//! conditional UPDATE re-checks its condition on the row it waited for, and
//! `ON CONFLICT DO NOTHING` inserts once, so concurrent consumers in any process see one winner.
//! [`NonceTables`] is the whole behaviour over a pair of tables, so that another store on
//! PostgreSQL (the portal's) implements [`NonceStore`] on its own tables with the same code.

use time::OffsetDateTime;

use super::pool::{Cached, Conn};
use super::{Context, PostgresStore};
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
        conn: &mut Conn<'_>,
        nonce: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let nonces = self.nonces;
        conn.execute_cached(&format!("DELETE FROM {nonces} WHERE expires_at < $1"), &[&millis(purge_before)])
            .context("purging old nonces")?;
        conn.execute_cached(
            &format!("INSERT INTO {nonces} (nonce, issued_at, expires_at) VALUES ($1, $2, $3)"),
            &[&nonce, &millis(now), &millis(expires_at)],
        )
        .context("recording a nonce")?;
        Ok(())
    }

    /// [`NonceStore::consume_nonce`] on these tables.
    pub fn consume(&self, conn: &mut Conn<'_>, nonce: &[u8], now: OffsetDateTime) -> Result<NonceOutcome, StoreError> {
        let nonces = self.nonces;
        let consumed = conn
            .execute_cached(
                &format!(
                    "UPDATE {nonces} SET consumed_at = $2 WHERE nonce = $1 AND consumed_at IS NULL AND expires_at > $2"
                ),
                &[&nonce, &millis(now)],
            )
            .context("consuming a nonce")?;
        if consumed == 1 {
            return Ok(NonceOutcome::Consumed);
        }
        let row = conn
            .query_opt_cached(&format!("SELECT consumed_at FROM {nonces} WHERE nonce = $1"), &[&nonce])
            .context("reading a nonce")?;
        Ok(match row {
            None => NonceOutcome::Unknown,
            Some(r) => match r.try_get::<_, Option<i64>>(0).context("reading a nonce")? {
                Some(_) => NonceOutcome::AlreadyUsed,
                None => NonceOutcome::Expired,
            },
        })
    }

    /// [`NonceStore::use_request_id`] on these tables.
    pub fn use_request_id(
        &self,
        conn: &mut Conn<'_>,
        id: &[u8; 32],
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let requests = self.request_ids;
        conn.execute_cached(&format!("DELETE FROM {requests} WHERE keep_until < $1"), &[&millis(now)])
            .context("purging old request ids")?;
        let inserted = conn
            .execute_cached(
                &format!(
                    "INSERT INTO {requests} (id, used_at, keep_until) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING"
                ),
                &[&&id[..], &millis(now), &millis(keep_until)],
            )
            .context("recording a request id")?;
        Ok(inserted == 1)
    }
}

/// The CA's: login nonces and the admin API's request ids.
const CA_TABLES: NonceTables = NonceTables { nonces: "auth_nonces", request_ids: "admin_requests" };

impl NonceStore for PostgresStore {
    fn issue_nonce(
        &self,
        nonce: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        CA_TABLES.issue(&mut self.primary.get()?, nonce, now, expires_at, purge_before)
    }

    fn consume_nonce(&self, nonce: &[u8], now: OffsetDateTime) -> Result<NonceOutcome, StoreError> {
        CA_TABLES.consume(&mut self.primary.get()?, nonce, now)
    }

    fn use_request_id(
        &self,
        id: &[u8; 32],
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        CA_TABLES.use_request_id(&mut self.primary.get()?, id, now, keep_until)
    }
}
