//! Single-use challenges for everything signed at the portal (registration, login and
//! recovery by signature). A challenge is 32 bytes: 16 random bytes from the OS CSPRNG, its
//! expiry (unix milliseconds) and a MAC of both (HMAC-SHA-256, 8 bytes) under a key kept in the
//! portal's database. Issuing one writes nothing; every process on the database and a restart
//! accept it until it expires. Its use is recorded in the store (with the session it opens, for
//! a login), so it is accepted once: a replay is refused, before and after a restart.
//!
//! A challenge issued before this process started is refused: a login records the use without
//! an fsync of its own (see [`crate::store::SqlitePortalStore`]), so after an OS crash the
//! record may be gone, and every process has restarted since. The price is that a client who
//! asked for a challenge just before a restart asks again.

use aws_lc_rs::hmac;
use base64::Engine;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::error::PortalError;
use crate::Portal;

pub const CHALLENGE_LEN: usize = 32;
/// Used challenges are remembered this long after they expire (then a replay is refused as
/// expired anyway).
pub const KEEP_AFTER_EXPIRY: time::Duration = time::Duration::hours(1);

/// An issued challenge.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Challenge {
    /// base64 of the 32 bytes.
    pub challenge: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A challenge that the portal issued and that has not expired (its use is not yet checked).
#[derive(Clone, Copy, Debug)]
pub struct ValidChallenge {
    /// What the store records when it is used.
    pub id: [u8; 32],
    /// Remember the use until then.
    pub keep_until: OffsetDateTime,
}

/// The bytes of a base64 challenge; malformed input is a 400.
pub fn decode_challenge(text: &str) -> Result<[u8; CHALLENGE_LEN], PortalError> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; CHALLENGE_LEN]>::try_from(b).ok())
        .ok_or_else(|| PortalError::invalid("invalid-challenge", "the challenge is not 32 bytes in base64"))
}

fn mac(key: &hmac::Key, body: &[u8]) -> [u8; 8] {
    let tag = hmac::sign(key, body);
    let mut out = [0u8; 8];
    out.copy_from_slice(&tag.as_ref()[..8]);
    out
}

fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Portal {
    pub fn issue_challenge(&self) -> Result<Challenge, PortalError> {
        let mut nonce = [0u8; CHALLENGE_LEN];
        OsRng.try_fill_bytes(&mut nonce[..16]).map_err(|e| PortalError::internal(format!("random: {e}")))?;
        let expires_at = self.clock.now() + self.policy.challenge();
        nonce[16..24].copy_from_slice(&unix_millis(expires_at).to_be_bytes());
        let tag = mac(&self.challenge_key, &nonce[..24]);
        nonce[24..].copy_from_slice(&tag);
        Ok(Challenge { challenge: base64::engine::general_purpose::STANDARD.encode(nonce), expires_at })
    }

    /// Whether `nonce` is a challenge this portal issued and that is still valid.
    pub fn check_challenge(&self, nonce: &[u8]) -> Result<ValidChallenge, PortalError> {
        let unknown = || PortalError::unauthenticated("challenge-unknown", "the portal did not issue this challenge");
        if nonce.len() != CHALLENGE_LEN {
            return Err(unknown());
        }
        if !bool::from(mac(&self.challenge_key, &nonce[..24]).ct_eq(&nonce[24..])) {
            return Err(unknown());
        }
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&nonce[16..24]);
        let expires_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(i64::from_be_bytes(expiry)) * 1_000_000)
            .map_err(|_| unknown())?;
        if expires_at <= self.clock.now() {
            return Err(PortalError::unauthenticated("challenge-expired", "this challenge has expired"));
        }
        // Its issue time, by the current lifetime (a lifetime changed at the restart moves it).
        if expires_at - self.policy.challenge() < self.started_at {
            return Err(PortalError::unauthenticated(
                "challenge-expired",
                "this challenge was issued before the portal restarted: ask for a new one",
            ));
        }
        let mut h = Sha256::new();
        h.update(b"portal challenge\0");
        h.update(nonce);
        Ok(ValidChallenge { id: h.finalize().into(), keep_until: expires_at + KEEP_AFTER_EXPIRY })
    }

    /// Use a challenge up; a replayed, expired or unknown one is refused.
    pub fn consume_challenge(&self, nonce: &[u8]) -> Result<(), PortalError> {
        let valid = self.check_challenge(nonce)?;
        if self.store.use_request_id(&valid.id, self.clock.now(), valid.keep_until)? {
            Ok(())
        } else {
            Err(replayed())
        }
    }
}

pub(crate) fn replayed() -> PortalError {
    PortalError::unauthenticated("challenge-replayed", "this challenge was already used")
}
