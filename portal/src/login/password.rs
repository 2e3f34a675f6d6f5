//! Login by IIN/BIN and password. After `max_failures` (10) failed attempts, password login
//! for that IIN/BIN is closed for `lockout_minutes` (15); login by signature and by one-time
//! password stay open. The limit is enforced before the password is checked: each attempt is
//! counted in the same store transaction that checks the limit, so no number of concurrent
//! guesses gets more than the limit checked. A right password resets the count.
//!
//! No enumeration: an unknown IIN/BIN and a wrong password get the same answer, cost the same
//! Argon2id verification (against a dummy hash), and are counted and locked the same way.

use zeroize::Zeroizing;

use super::parse_login;
use super::session::SessionGrant;
use crate::account::AccountState;
use crate::error::PortalError;
use crate::journal::method;
use crate::messages;
use crate::store::AttemptGate;
use crate::{Client, Portal};

impl Portal {
    pub fn login_password(&self, login: &str, password: &str, client: &Client) -> Result<SessionGrant, PortalError> {
        let login = parse_login(login)?;
        let password = Zeroizing::new(password.to_owned());
        let now = self.clock.now();
        let gate = self.store.begin_password_attempt(&login, now, self.policy.max_failures, self.policy.lockout())?;
        let failures = match gate {
            AttemptGate::Locked { until } => {
                self.journal_failure(&login, method::PASSWORD, client, "locked");
                let retry_after = (until - now).whole_seconds().max(1);
                return Err(PortalError::Locked { message: messages::LOCKED.into(), until, retry_after });
            }
            AttemptGate::Allowed { failures } => failures,
        };
        let wrong = |reason: &str| {
            self.journal_failure(&login, method::PASSWORD, client, reason);
            if failures >= self.policy.max_failures {
                self.metrics.lockout();
                tracing::warn!(login = %login, "password login locked after {failures} failures");
            }
            PortalError::unauthenticated("wrong-login-or-password", messages::WRONG_LOGIN)
        };
        let Some(account) = self.store.account_by_login(&login)? else {
            self.passwords.verify_dummy(&password);
            return Err(wrong("unknown-account"));
        };
        if !self.passwords.verify(&password, &account.password_hash) {
            return Err(wrong("wrong-password"));
        }
        if account.state == AccountState::Blocked {
            self.journal_failure(&login, method::PASSWORD, client, "account-blocked");
            return Err(PortalError::refused("account-blocked", "the account is blocked"));
        }
        self.store.password_attempt_succeeded(&login)?;
        self.open_session(&account, method::PASSWORD, client)
    }

    /// Change the password of the logged-in account (the only thing a must-change session
    /// may do besides logging out).
    pub fn change_password(
        &self,
        auth: &super::session::Authenticated,
        current: &str,
        new: &str,
        repeat: &str,
    ) -> Result<(), PortalError> {
        let account = &auth.account;
        if !self.passwords.verify(current, &account.password_hash) {
            return Err(PortalError::unauthenticated("wrong-password", "Текущий пароль введен неверно"));
        }
        crate::account::password::check_new_password(new, repeat, &account.login)?;
        if new == current {
            return Err(PortalError::invalid("password-unchanged", "Новый пароль должен отличаться от текущего"));
        }
        let hash = self.passwords.hash(new)?;
        self.store.change_password(&crate::store::PasswordChange {
            account_id: account.id,
            password_hash: hash,
            state: AccountState::Active,
            at: self.clock.now(),
            end_sessions: false,
            mail: None,
        })?;
        Ok(())
    }
}
