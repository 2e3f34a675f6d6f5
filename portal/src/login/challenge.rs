//! Single-use challenges for everything signed at the portal (registration, login and
//! recovery by signature): 32 random bytes, valid for `[login] challenge_seconds`, kept in the
//! portal's store so a restart neither forgets them nor allows a replay.

use base64::Engine;
use ca_core::store::NonceOutcome;
use rand_core::{OsRng, RngCore};
use time::OffsetDateTime;

use crate::error::PortalError;
use crate::Portal;

pub const CHALLENGE_LEN: usize = 32;
/// Used and expired challenges are remembered this long (to tell a replay from a stranger).
const KEEP_AFTER_EXPIRY: time::Duration = time::Duration::hours(1);

/// An issued challenge.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Challenge {
    /// base64 of the 32 bytes.
    pub challenge: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// The bytes of a base64 challenge; malformed input is a 400.
pub fn decode_challenge(text: &str) -> Result<[u8; CHALLENGE_LEN], PortalError> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; CHALLENGE_LEN]>::try_from(b).ok())
        .ok_or_else(|| PortalError::invalid("invalid-challenge", "the challenge is not 32 bytes in base64"))
}

impl Portal {
    pub fn issue_challenge(&self) -> Result<Challenge, PortalError> {
        let mut nonce = [0u8; CHALLENGE_LEN];
        OsRng.try_fill_bytes(&mut nonce).map_err(|e| PortalError::internal(format!("random: {e}")))?;
        let now = self.clock.now();
        let expires_at = now + self.policy.challenge();
        self.store.issue_nonce(&nonce, now, expires_at, now - KEEP_AFTER_EXPIRY)?;
        Ok(Challenge { challenge: base64::engine::general_purpose::STANDARD.encode(nonce), expires_at })
    }

    /// Use a challenge up; a replayed, expired or unknown one is refused.
    pub fn consume_challenge(&self, nonce: &[u8]) -> Result<(), PortalError> {
        match self.store.consume_nonce(nonce, self.clock.now())? {
            NonceOutcome::Consumed => Ok(()),
            NonceOutcome::AlreadyUsed => {
                Err(PortalError::unauthenticated("challenge-replayed", "this challenge was already used"))
            }
            NonceOutcome::Expired => {
                Err(PortalError::unauthenticated("challenge-expired", "this challenge has expired"))
            }
            NonceOutcome::Unknown => {
                Err(PortalError::unauthenticated("challenge-unknown", "the portal did not issue this challenge"))
            }
        }
    }
}
