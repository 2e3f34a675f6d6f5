//! Accounts: what they are, registration by signature, passwords, recovery and the counter
//! flow.

pub mod counter;
pub mod password;
pub mod recovery;
pub mod registration;
pub mod workstation;

use serde::{Deserialize, Serialize};

/// Whose account it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountKind {
    /// Logs in with the IIN.
    Individual,
    /// Logs in with the BIN; the IIN of the person acting is kept.
    LegalEntity,
}

/// Whether and how the account may log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountState {
    Active,
    /// A generated password (recovery by email, counter): it must be changed at the next
    /// login before anything else.
    MustChangePassword,
    Blocked,
}

/// Who created the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CreatedBy {
    /// The user, by signature.
    #[serde(rename = "self")]
    SelfService,
    /// A State Corporation counter.
    Counter,
}

macro_rules! names {
    ($t:ty { $($v:ident => $n:literal),* $(,)? }) => {
        impl $t {
            pub fn name(self) -> &'static str {
                match self { $(Self::$v => $n),* }
            }
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($n => Some(Self::$v),)* _ => None }
            }
        }
    };
}

names!(AccountKind { Individual => "individual", LegalEntity => "legal-entity" });
names!(AccountState { Active => "active", MustChangePassword => "must-change-password", Blocked => "blocked" });
names!(CreatedBy { SelfService => "self", Counter => "counter" });

/// A plausible email address: one `@`, a non-empty local part, a dotted domain, no spaces or
/// control characters, at most 254 characters. (Whether it receives mail only delivery shows.)
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && email.chars().all(|c| c.is_ascii_graphic() || (!c.is_ascii() && !c.is_control()))
        && !email.contains(['<', '>', '"', ',', ';', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.kz", "person1@example.kz", "a.b+c@mail.gov.kz"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in
            ["", "a", "a@b", "@b.kz", "a@@b.kz", "a b@c.kz", "a@.kz", "a@b..kz", "a@b.kz\r\nBcc: x@y.kz", "<a@b.kz>"]
        {
            assert!(!valid_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in [AccountState::Active, AccountState::MustChangePassword, AccountState::Blocked] {
            assert_eq!(AccountState::from_name(s.name()), Some(s));
        }
        assert_eq!(CreatedBy::from_name("self"), Some(CreatedBy::SelfService));
        assert_eq!(AccountKind::from_name("legal-entity"), Some(AccountKind::LegalEntity));
    }
}
