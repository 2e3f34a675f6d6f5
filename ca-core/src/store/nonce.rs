//! Single-use login challenges ("login by signature"): the server issues a random nonce that
//! expires, the client signs it with its AUTH key, and the login consumes it. Kept in the store
//! so that a restart does not forget issued nonces (or let a consumed one be replayed), and so
//! that several server processes on one store share them.
//!
//! Signed administration requests are single use by the same mechanism: the first use of a
//! request id records it, any later use finds it.

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

    /// Use a signed request's 32-byte id once, atomically: `true` the first time, `false` for a
    /// replay (in this process or another on the same store). The id is remembered until
    /// `keep_until` — when the request would be refused as too old anyway — and purged after.
    fn use_request_id(
        &self,
        id: &[u8; 32],
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
