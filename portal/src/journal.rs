//! The journal of failed login attempts: every failure, with when, the IIN/BIN, the method,
//! the client's address and user agent, and why. Append-only in the store (the table refuses
//! updates and deletes). Passwords and codes are never written to it.

use crate::store::FailedAttempt;
use crate::{Client, Portal};

/// Login methods as the journal and the metrics name them.
pub mod method {
    pub const PASSWORD: &str = "password";
    pub const EDS: &str = "eds";
    pub const OTP: &str = "otp";
    pub const RECOVERY_EDS: &str = "recovery-eds";
}

impl Portal {
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
