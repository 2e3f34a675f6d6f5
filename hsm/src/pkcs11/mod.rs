//! Keys on PKCS#11 tokens: smart cards and SIM cards at the registration counter, HSMs for the
//! CA's own keys, SoftHSM2 in tests.
//!
//! Everything goes through the `cryptoki` crate and the module's standard PKCS#11 interface,
//! so a vendor's module works unchanged:
//!
//! 1. [`Pkcs11Module::load`] loads a module once per process and lists its slots and tokens;
//! 2. [`Pkcs11Module::open_token`] opens a token by label or serial number, and
//!    [`Token::login`] logs in with a PIN that the caller read from a prompt, a file or the
//!    environment (a [`SecretPin`], zeroized when dropped; never logged, never in an error);
//! 3. [`Token::generate_key_pair`] makes a signing-only, non-extractable key pair on the token
//!    whose CKA_ID is the subject key identifier, and [`Token::find_key`] finds one again;
//! 4. a [`TokenKey`] is a [`ca_core::signer::Signer`] (RSA PKCS#1 v1.5 with SHA-256, ECDSA with
//!    the hash computed in software and `r || s` converted to DER) that signs from several
//!    threads over a small pool of sessions;
//! 5. [`Token::write_certificate`], [`Token::list_objects`] and [`Token::delete_objects_by_id`]
//!    manage certificates and clean up after an interrupted personalization.
//!
//! Calls block for as long as the device needs (seconds for RSA key generation on a card);
//! async callers move them onto a blocking thread.

mod card;
mod encoding;
mod error;
mod key;
mod module;
mod objects;
mod token;

pub use error::{PinTries, TokenError};
pub use key::{KeySelector, TokenKey};
pub use module::{ModuleInfo, PinState, Pkcs11Module, SlotDescription, TokenDescription, TokenSelector};
pub use objects::{CertificateCategory, PrivateKeyFlags, TokenKeyType, TokenObject, TokenObjectClass};
pub use token::{Token, DEFAULT_MAX_SESSIONS};

/// A PIN as the caller obtained it (prompt, file or environment, never the command line).
/// Zeroized on drop; `Debug` does not show it; this crate copies it only into cryptoki's own
/// zeroizing buffer for the duration of `C_Login`.
pub struct SecretPin(zeroize::Zeroizing<String>);

impl SecretPin {
    /// Take ownership of a PIN.
    pub fn new(pin: zeroize::Zeroizing<String>) -> Self {
        Self(pin)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl From<zeroize::Zeroizing<String>> for SecretPin {
    fn from(pin: zeroize::Zeroizing<String>) -> Self {
        Self(pin)
    }
}

impl From<String> for SecretPin {
    fn from(pin: String) -> Self {
        Self(zeroize::Zeroizing::new(pin))
    }
}

impl std::fmt::Debug for SecretPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretPin(..)")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_does_not_show_the_pin() {
        let pin = super::SecretPin::from("123456".to_owned());
        assert_eq!(format!("{pin:?}"), "SecretPin(..)");
        assert_eq!(pin.expose(), "123456");
    }
}
