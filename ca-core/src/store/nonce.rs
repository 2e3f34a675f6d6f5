//! Single-use login challenges ("login by signature"): the server issues a random nonce that
//! expires, the client signs it with its AUTH key, and the login consumes it. Kept in the store
//! so that a restart does not forget issued nonces (or let a consumed one be replayed), and so
//! that several server processes on one store share them.

use time::OffsetDateTime;

use super::StoreError;

/// What consuming a nonce found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceOutcome {
    /// Issued, unexpired and unused: now consumed.
    Consumed,
    /// Issued, but already consumed (a replay).
    AlreadyUsed,
    /// Issued, unused, but past its expiry.
    Expired,
    /// Never issued here (or so long expired that it was purged).
    Unknown,
}

/// Issue and consume login nonces.
pub trait NonceStore: Send + Sync {
    /// Record a fresh nonce valid until `expires_at`; also purges nonces expired before
    /// `purge_before`.
    fn issue_nonce(
        &self,
        nonce: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Consume `nonce` at `now`, atomically: of two concurrent calls with the same nonce at
    /// most one returns [`NonceOutcome::Consumed`].
    fn consume_nonce(&self, nonce: &[u8], now: OffsetDateTime) -> Result<NonceOutcome, StoreError>;
}
