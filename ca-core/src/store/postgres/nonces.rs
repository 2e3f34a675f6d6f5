//! Login nonces and single-use admin request ids in PostgreSQL. Each operation is one
//! statement: a conditional UPDATE re-checks its condition on the row it waited for, and
//! `ON CONFLICT DO NOTHING` inserts once, so concurrent consumers in any process see one winner.

use time::OffsetDateTime;

use super::{Context, PostgresStore};
use crate::store::{NonceOutcome, NonceStore, StoreError};

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl NonceStore for PostgresStore {
    fn issue_nonce(
        &self,
        nonce: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut client = self.primary.get()?;
        client
            .execute("DELETE FROM auth_nonces WHERE expires_at < $1", &[&millis(purge_before)])
            .context("purging old login nonces")?;
        client
            .execute(
                "INSERT INTO auth_nonces (nonce, issued_at, expires_at) VALUES ($1, $2, $3)",
                &[&nonce, &millis(now), &millis(expires_at)],
            )
            .context("recording a login nonce")?;
        Ok(())
    }

    fn consume_nonce(&self, nonce: &[u8], now: OffsetDateTime) -> Result<NonceOutcome, StoreError> {
        let mut client = self.primary.get()?;
        let consumed = client
            .execute(
                "UPDATE auth_nonces SET consumed_at = $2 WHERE nonce = $1 AND consumed_at IS NULL AND expires_at > $2",
                &[&nonce, &millis(now)],
            )
            .context("consuming a login nonce")?;
        if consumed == 1 {
            return Ok(NonceOutcome::Consumed);
        }
        let row = client
            .query_opt("SELECT consumed_at FROM auth_nonces WHERE nonce = $1", &[&nonce])
            .context("reading a login nonce")?;
        Ok(match row {
            None => NonceOutcome::Unknown,
            Some(r) => match r.try_get::<_, Option<i64>>(0).context("reading a login nonce")? {
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
        let mut client = self.primary.get()?;
        client
            .execute("DELETE FROM admin_requests WHERE keep_until < $1", &[&millis(now)])
            .context("purging old admin request ids")?;
        let inserted = client
            .execute(
                "INSERT INTO admin_requests (id, used_at, keep_until) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                &[&&id[..], &millis(now), &millis(keep_until)],
            )
            .context("recording an admin request id")?;
        Ok(inserted == 1)
    }
}
