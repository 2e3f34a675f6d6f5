//! Single-use login challenges and request ids (ca-core's `NonceStore`) on the portal's tables.

use ca_core::store::postgres::pool::Cached;
use ca_core::store::{NonceOutcome, NonceStore, StoreError};
use time::OffsetDateTime;

use super::{col, Context, PgPortalStore};
use crate::store::millis;

/// Each operation one statement: a conditional `UPDATE` re-checks its condition on the row it
/// waited for, and `ON CONFLICT DO NOTHING` inserts once, so concurrent consumers in any
/// process see one winner.
impl NonceStore for PgPortalStore {
    fn issue_nonce(
        &self,
        nonce: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.execute_cached("DELETE FROM challenges WHERE expires_at < $1", &[&millis(purge_before)])
            .context("purging old challenges")?;
        conn.execute_cached(
            "INSERT INTO challenges (nonce, issued_at, expires_at) VALUES ($1, $2, $3)",
            &[&nonce, &millis(now), &millis(expires_at)],
        )
        .context("recording a challenge")?;
        Ok(())
    }

    fn consume_nonce(&self, nonce: &[u8], now: OffsetDateTime) -> Result<NonceOutcome, StoreError> {
        let mut conn = self.conn()?;
        let consumed = conn
            .execute_cached(
                "UPDATE challenges SET consumed_at = $2 WHERE nonce = $1 AND consumed_at IS NULL AND expires_at > $2",
                &[&nonce, &millis(now)],
            )
            .context("consuming a challenge")?;
        if consumed == 1 {
            return Ok(NonceOutcome::Consumed);
        }
        let row = conn
            .query_opt_cached("SELECT consumed_at FROM challenges WHERE nonce = $1", &[&nonce])
            .context("reading a challenge")?;
        Ok(match row {
            None => NonceOutcome::Unknown,
            Some(r) => match col::<Option<i64>>(&r, 0)? {
                Some(_) => NonceOutcome::AlreadyUsed,
                None => NonceOutcome::Expired,
            },
        })
    }

    fn use_request_id(
        &self,
        id: &[u8; 32],
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        conn.execute_cached("DELETE FROM request_ids WHERE keep_until < $1", &[&millis(now)])
            .context("purging request ids")?;
        let inserted = conn
            .execute_cached(
                "INSERT INTO request_ids (id, used_at, keep_until) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                &[&&id[..], &millis(now), &millis(keep_until)],
            )
            .context("recording a request id")?;
        Ok(inserted == 1)
    }
}
