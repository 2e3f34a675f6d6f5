//! Single-use login challenges and request ids (ca-core's `NonceStore`) on the portal's tables,
//! through ca-core's [`NonceTables`] (one statement per decision, one winner across processes).

use ca_core::store::postgres::nonces::NonceTables;
use ca_core::store::{NonceOutcome, NonceStore, StoreError};
use time::OffsetDateTime;

use super::PgPortalStore;

const TABLES: NonceTables = NonceTables { nonces: "challenges", request_ids: "request_ids" };

impl NonceStore for PgPortalStore {
    fn issue_nonce(
        &self,
        nonce: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        TABLES.issue(&mut self.conn()?, nonce, now, expires_at, purge_before)
    }

    fn consume_nonce(&self, nonce: &[u8], now: OffsetDateTime) -> Result<NonceOutcome, StoreError> {
        TABLES.consume(&mut self.conn()?, nonce, now)
    }

    fn use_request_id(
        &self,
        id: &[u8; 32],
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        TABLES.use_request_id(&mut self.conn()?, id, now, keep_until)
    }
}
