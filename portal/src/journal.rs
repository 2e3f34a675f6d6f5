//! The journal of failed login attempts: every failure, with when, the IIN/BIN, the method,
//! the client's address and user agent, and why. Append-only in the store (the table refuses
//! updates and deletes). Passwords and codes are never written to it.
//!
//! The cabinet shows a person his own part of it beside his logins ([`Portal::login_journal`]).

use crate::error::PortalError;
use crate::login::session::Authenticated;
use crate::store::{FailedAttempt, LoginRecord};
use crate::{Client, Portal};

/// The cabinet's journal of an account: its logins and the failed attempts on its IIN/BIN,
/// newest first.
#[derive(Clone, Debug)]
pub struct LoginJournal {
    pub logins: Vec<LoginRecord>,
    pub failures: Vec<FailedAttempt>,
}

/// Login methods as the journal and the metrics name them.
pub mod method {
    pub const PASSWORD: &str = "password";
    pub const EDS: &str = "eds";
    pub const OTP: &str = "otp";
    pub const RECOVERY_EDS: &str = "recovery-eds";
}

impl Portal {
    /// The last `limit` (1–500) logins of the caller's account and failed attempts on its login.
    pub fn login_journal(&self, auth: &Authenticated, limit: u32) -> Result<LoginJournal, PortalError> {
        let limit = limit.clamp(1, 500);
        Ok(LoginJournal {
            logins: self.store.logins_of(auth.account.id, limit)?,
            failures: self.store.recent_failed_attempts(&auth.account.login, limit)?,
        })
    }

    /// Journal a failed attempt. A journal that cannot be written is logged (the attempt has
    /// failed anyway; the caller's answer does not change).
    pub fn journal_failure(&self, login: &str, method: &str, client: &Client, reason: &str) {
        let attempt = FailedAttempt {
            at: self.clock.now(),
            login: login.to_owned(),
            method: method.to_owned(),
            client_address: client.address.clone(),
            user_agent: client.user_agent.as_ref().map(|ua| ua.chars().take(512).collect()),
            reason: reason.to_owned(),
        };
        if let Err(e) = self.store.journal_failure(&attempt) {
            tracing::error!(error = %e, method, reason, "the failed-login journal could not be written");
        }
        self.metrics.login(method, reason);
    }
}
