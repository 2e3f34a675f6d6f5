//! The one-time password service that login, phone binding and document consent share.
//!
//! A code is 6 decimal digits drawn uniformly from the operating system's CSPRNG. Only a
//! salted SHA-256 of it is stored (with its purpose and subject, so a code sent for one thing
//! is worth nothing for another). It is valid for at most 5 minutes, for one use (the first
//! right answer closes it, so it opens one session), and for a limited number of tries; a new
//! code for the same purpose and subject replaces the previous one. A million codes, five
//! tries and five minutes are what bounds guessing online; the hash keeps a leaked database
//! from handing out live codes directly.

use std::sync::Arc;

use ca_core::clock::Clock;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::PortalError;
use crate::store::{NewOtp, OtpOutcome, PortalStore};

/// The longest a code may be valid.
pub const MAX_TTL: time::Duration = time::Duration::minutes(5);
/// Tries per code by default.
pub const DEFAULT_ATTEMPTS: u32 = 5;

#[derive(Clone)]
pub struct OtpService {
    store: Arc<dyn PortalStore>,
    clock: Arc<dyn Clock>,
    ttl: time::Duration,
    max_attempts: u32,
}

fn code_hash(salt: &[u8], purpose: &str, subject: &str, code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    for part in [purpose, subject, code] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// A uniformly random 6-digit code.
fn random_code() -> Result<Zeroizing<String>, PortalError> {
    loop {
        let mut bytes = [0u8; 4];
        OsRng.try_fill_bytes(&mut bytes).map_err(|e| PortalError::internal(format!("random: {e}")))?;
        let n = u32::from_be_bytes(bytes);
        // Reject the top of the range so every code is equally likely.
        if n < u32::MAX - u32::MAX % 1_000_000 {
            return Ok(Zeroizing::new(format!("{:06}", n % 1_000_000)));
        }
    }
}

impl OtpService {
    /// `ttl` is capped at [`MAX_TTL`]; `max_attempts` at least 1.
    pub fn new(store: Arc<dyn PortalStore>, clock: Arc<dyn Clock>, ttl: time::Duration, max_attempts: u32) -> Self {
        Self { store, clock, ttl: ttl.min(MAX_TTL), max_attempts: max_attempts.max(1) }
    }

    /// How long a code lives.
    pub fn ttl(&self) -> time::Duration {
        self.ttl
    }

    /// A new code for `purpose`/`subject` (the previous one stops working). The caller sends
    /// it; it is never stored or logged in clear.
    pub fn issue(&self, purpose: &str, subject: &str) -> Result<Zeroizing<String>, PortalError> {
        let (code, otp) = self.prepare(purpose, subject)?;
        self.store.issue_otp(&otp)?;
        Ok(code)
    }

    /// A new code and what to store of it, for a caller that stores it in a transaction of
    /// its own (with the SMS that carries it).
    pub fn prepare(&self, purpose: &str, subject: &str) -> Result<(Zeroizing<String>, NewOtp), PortalError> {
        let code = random_code()?;
        let mut salt = [0u8; 16];
        OsRng.try_fill_bytes(&mut salt).map_err(|e| PortalError::internal(format!("random: {e}")))?;
        let now = self.clock.now();
        let otp = NewOtp {
            purpose: purpose.into(),
            subject: subject.into(),
            salt,
            code_hash: code_hash(&salt, purpose, subject, &code),
            created_at: now,
            expires_at: now + self.ttl,
        };
        Ok((code, otp))
    }

    /// Check `code` for `purpose`/`subject`: the attempt counts whatever the answer.
    pub fn check(&self, purpose: &str, subject: &str, code: &str) -> Result<OtpOutcome, PortalError> {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PortalError::invalid("invalid-otp", "Одноразовый пароль состоит из 6 цифр"));
        }
        let matches =
            |salt: &[u8], stored: &[u8]| -> bool { code_hash(salt, purpose, subject, code).ct_eq(stored).into() };
        Ok(self.store.check_otp(purpose, subject, self.clock.now(), self.max_attempts, &matches)?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::SqlitePortalStore;

    struct TestClock(Mutex<time::OffsetDateTime>);
    impl Clock for TestClock {
        fn now(&self) -> time::OffsetDateTime {
            *self.0.lock().unwrap()
        }
    }

    fn service(max_attempts: u32) -> (OtpService, Arc<TestClock>) {
        let clock = Arc::new(TestClock(Mutex::new(time::OffsetDateTime::now_utc())));
        let store = Arc::new(SqlitePortalStore::open_in_memory().unwrap());
        (OtpService::new(store, clock.clone(), time::Duration::minutes(10), max_attempts), clock)
    }

    fn wrong(code: &str) -> String {
        format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
    }

    #[test]
    fn a_code_is_six_digits_used_once_and_capped_at_five_minutes() {
        let (otp, clock) = service(5);
        assert_eq!(otp.ttl(), MAX_TTL, "a longer lifetime is capped");
        let code = otp.issue("login", "900101300017").unwrap();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(otp.check("consent", "900101300017", &code).unwrap(), OtpOutcome::NoValidCode, "other purpose");
        assert_eq!(otp.check("login", "900101300017", &code).unwrap(), OtpOutcome::Accepted);
        assert_eq!(otp.check("login", "900101300017", &code).unwrap(), OtpOutcome::NoValidCode, "used once");
        let code = otp.issue("login", "900101300017").unwrap();
        *clock.0.lock().unwrap() += time::Duration::minutes(5);
        assert_eq!(otp.check("login", "900101300017", &code).unwrap(), OtpOutcome::NoValidCode, "expired");
    }

    #[test]
    fn tries_are_limited_and_a_new_code_replaces_the_old() {
        let (otp, _) = service(3);
        let code = otp.issue("login", "x").unwrap();
        assert_eq!(otp.check("login", "x", &wrong(&code)).unwrap(), OtpOutcome::Wrong { attempts_left: 2 });
        assert_eq!(otp.check("login", "x", &wrong(&code)).unwrap(), OtpOutcome::Wrong { attempts_left: 1 });
        assert_eq!(otp.check("login", "x", &wrong(&code)).unwrap(), OtpOutcome::Wrong { attempts_left: 0 });
        assert_eq!(otp.check("login", "x", &code).unwrap(), OtpOutcome::NoValidCode, "out of tries");
        let first = otp.issue("login", "x").unwrap();
        let second = otp.issue("login", "x").unwrap();
        if *first != *second {
            assert_eq!(otp.check("login", "x", &first).unwrap(), OtpOutcome::Wrong { attempts_left: 2 });
        }
        assert_eq!(otp.check("login", "x", &second).unwrap(), OtpOutcome::Accepted);
        assert!(otp.check("login", "x", "12345").is_err(), "not six digits");
    }
}
