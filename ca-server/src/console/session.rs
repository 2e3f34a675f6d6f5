//! Console sessions: who logged in by signature, until when, and a one-shot message for the
//! next page. Kept in memory (a restart logs the operators out): a session only lets an
//! operator *read* the console; every action is a request signed with his SIGN key, checked by
//! the administration API as if it came from any other client.
//!
//! The cookie carries 32 random bytes; the server keeps only their SHA-256, so a memory dump
//! does not hand out live sessions.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// The session cookie's name.
pub const COOKIE: &str = "nca_console";
/// A session ends this long after the operator's last page …
pub const IDLE: Duration = Duration::minutes(30);
/// … and at the latest this long after the login.
pub const ABSOLUTE: Duration = Duration::hours(8);
/// At most this many live sessions; a login beyond it drops the oldest.
const MAX_SESSIONS: usize = 1000;

/// The operator a session belongs to, from the certificate he logged in with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    /// The AUTH certificate's serial (hex).
    pub serial: String,
    pub iin: Option<String>,
}

/// A message shown once on the next page (the outcome of an action).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub operator: Operator,
    pub created: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    pub flash: Option<Flash>,
}

impl Session {
    pub fn expires(&self) -> OffsetDateTime {
        (self.last_seen + IDLE).min(self.created + ABSOLUTE)
    }
}

/// The live sessions.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 32 random bytes, base64url without padding.
pub fn random_token() -> Result<String, rand_core::Error> {
    let mut bytes = [0u8; 32];
    OsRng.try_fill_bytes(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock leaves the map consistent (every change is one call).
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open a session for `operator`; the cookie value to hand out.
    pub fn open(&self, operator: Operator, now: OffsetDateTime) -> Result<String, rand_core::Error> {
        let token = random_token()?;
        let session = Session { operator, created: now, last_seen: now, flash: None };
        let mut live = self.lock();
        live.retain(|_, s| s.expires() > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k) {
                live.remove(&oldest);
            }
        }
        live.insert(key(&token), session);
        Ok(token)
    }

    /// The live session of `token`, touched; its flash message is taken (shown once).
    pub fn touch(&self, token: &str, now: OffsetDateTime) -> Option<Session> {
        let mut live = self.lock();
        let k = key(token);
        let session = live.get_mut(&k)?;
        if session.expires() <= now {
            live.remove(&k);
            return None;
        }
        session.last_seen = now;
        let seen = session.clone();
        session.flash = None;
        Some(seen)
    }

    /// Leave a message for the next page of the session.
    pub fn flash(&self, token: &str, flash: Flash) {
        if let Some(session) = self.lock().get_mut(&key(token)) {
            session.flash = Some(flash);
        }
    }

    pub fn close(&self, token: &str) {
        self.lock().remove(&key(token));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator() -> Operator {
        Operator { name: "ОПЕРАТОР".into(), serial: "01".into(), iin: None }
    }

    #[test]
    fn a_session_expires_when_idle_and_at_the_absolute_limit_and_shows_a_flash_once() {
        let sessions = Sessions::default();
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20000);
        let token = sessions.open(operator(), t0).unwrap();
        assert!(sessions.touch("not-a-token", t0).is_none());
        sessions.flash(&token, Flash { ok: true, text: "done".into() });
        assert_eq!(sessions.touch(&token, t0).unwrap().flash.unwrap().text, "done");
        assert!(sessions.touch(&token, t0).unwrap().flash.is_none(), "shown once");
        // Kept alive by use up to the absolute limit, never past it.
        let mut t = t0;
        while t + IDLE - Duration::minutes(1) < t0 + ABSOLUTE {
            t += IDLE - Duration::minutes(1);
            assert!(sessions.touch(&token, t).is_some(), "alive at {t}");
        }
        assert!(sessions.touch(&token, t0 + ABSOLUTE).is_none());
        let idle = sessions.open(operator(), t0).unwrap();
        assert!(sessions.touch(&idle, t0 + IDLE).is_none(), "idle too long");
        let closed = sessions.open(operator(), t0).unwrap();
        sessions.close(&closed);
        assert!(sessions.touch(&closed, t0).is_none());
    }
}
