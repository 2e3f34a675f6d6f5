//! Logging in: by IIN/BIN and password (with the lockout), by signature over a challenge, by
//! a one-time password sent to the bound phone; and the sessions all of them end in.

pub mod challenge;
pub mod eds;
pub mod otp_login;
pub mod password;
pub mod session;

use std::str::FromStr;

use ca_core::identity::{Bin, Iin};

use crate::error::PortalError;

/// A login: a 12-digit IIN or BIN with a valid check digit (the two share one namespace of
/// accounts, and some numbers are well-formed as both). Anything else is malformed input (400),
/// which reveals nothing about accounts.
pub fn parse_login(text: &str) -> Result<String, PortalError> {
    let text = text.trim();
    if text.len() == 12 && (Iin::from_str(text).is_ok() || Bin::from_str(text).is_ok()) {
        Ok(text.to_owned())
    } else {
        Err(PortalError::invalid("invalid-login", "ИИН/БИН должен состоять из 12 цифр с верным контрольным разрядом"))
    }
}
