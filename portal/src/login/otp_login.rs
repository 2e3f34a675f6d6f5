//! Login by a one-time password sent to the account's bound phone. Which phone is bound is
//! the phone-binding issue's business: it implements [`BoundPhones`]. Asking for a code
//! answers the same whether or not the IIN/BIN has an account or a phone (no enumeration);
//! password lockout does not apply here, the OTP service's own try limit does.

use super::parse_login;
use super::session::SessionGrant;
use crate::account::AccountState;
use crate::error::PortalError;
use crate::journal::method;
use crate::store::{Account, OtpOutcome};
use crate::{Client, Portal};

/// The OTP purpose of a login code.
pub const PURPOSE: &str = "login";

/// The phone number bound to an account, if any.
pub trait BoundPhones: Send + Sync {
    fn bound_phone(&self, account: &Account) -> Result<Option<String>, String>;
}

/// No phone is bound to any account (until phone binding exists).
pub struct NoBoundPhones;

impl BoundPhones for NoBoundPhones {
    fn bound_phone(&self, _account: &Account) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// What asking for a code answers, always.
pub const OTP_SENT: &str =
    "Если к учетной записи привязан номер мобильного телефона, на него отправлен одноразовый пароль";

impl Portal {
    /// Send a login code to the bound phone of `login`'s account, if there is one.
    pub fn request_login_otp(&self, login: &str) -> Result<&'static str, PortalError> {
        let login = parse_login(login)?;
        let Some(account) = self.store.account_by_login(&login)? else { return Ok(OTP_SENT) };
        if account.state == AccountState::Blocked {
            return Ok(OTP_SENT);
        }
        let Some(phone) = self.phones.bound_phone(&account).map_err(PortalError::Unavailable)? else {
            return Ok(OTP_SENT);
        };
        let sms = self.sms.as_ref().ok_or_else(|| PortalError::Unavailable("no SMS gateway is configured".into()))?;
        let code = self.otp.issue(PURPOSE, &login)?;
        let minutes = self.otp.ttl().whole_minutes();
        sms.send(&phone, &format!("Одноразовый пароль для входа на Портал: {} (действует {minutes} мин.)", *code))
            .map_err(PortalError::Unavailable)?;
        Ok(OTP_SENT)
    }

    pub fn login_otp(&self, login: &str, code: &str, client: &Client) -> Result<SessionGrant, PortalError> {
        let login = parse_login(login)?;
        let wrong = |reason: &str| {
            self.journal_failure(&login, method::OTP, client, reason);
            PortalError::unauthenticated("wrong-otp", "Неверный или просроченный одноразовый пароль")
        };
        match self.otp.check(PURPOSE, &login, code)? {
            OtpOutcome::Accepted => {}
            OtpOutcome::Wrong { .. } => return Err(wrong("wrong-otp")),
            OtpOutcome::NoValidCode => return Err(wrong("no-valid-otp")),
        }
        let account = self.store.account_by_login(&login)?.ok_or_else(|| wrong("unknown-account"))?;
        if account.state == AccountState::Blocked {
            return Err(wrong("account-blocked"));
        }
        self.open_session(&account, method::OTP, client)
    }
}
