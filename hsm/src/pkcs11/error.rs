//! Errors of token access. A message says what went wrong with the module, the token, the PIN
//! or the key, in words an operator at a counter can act on; it never carries the PIN.

use std::path::PathBuf;

use ca_core::signer::SignerError;
use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};

/// What the token said about the user PIN's retry counter after a wrong PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinTries {
    /// The token does not report a low retry counter.
    NotReported,
    /// CKF_USER_PIN_COUNT_LOW: at least one wrong PIN was entered and few tries remain.
    FewLeft,
    /// CKF_USER_PIN_FINAL_TRY: one more wrong PIN locks the PIN.
    FinalTry,
}

impl PinTries {
    fn hint(self) -> &'static str {
        match self {
            Self::NotReported => "",
            Self::FewLeft => "; few tries left before the PIN locks",
            Self::FinalTry => "; this is the final try: one more wrong PIN locks the token",
        }
    }
}

/// Why a PKCS#11 module, token or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No file at the module path.
    #[error("PKCS#11 module not found at {0}")]
    ModuleNotFound(PathBuf),
    /// The file exists but is not a loadable PKCS#11 library.
    #[error("{path} is not a usable PKCS#11 module: {reason}")]
    NotAModule {
        /// The module path given.
        path: PathBuf,
        /// What the loader or `C_Initialize` said.
        reason: String,
    },
    /// No present token matches the label or serial number.
    #[error("no token {0} is present (is the card in the reader?)")]
    TokenAbsent(String),
    /// The PIN was refused (CKR_PIN_INCORRECT).
    #[error("wrong PIN{}", .tries.hint())]
    WrongPin {
        /// The retry-counter flags the token reported after the refusal.
        tries: PinTries,
    },
    /// The user PIN is locked (CKR_PIN_LOCKED or CKF_USER_PIN_LOCKED); only the security officer
    /// can unblock it.
    #[error("the PIN is locked; the token's security officer must unblock it")]
    PinLocked,
    /// The PIN has a length or characters the token does not accept.
    #[error("the PIN does not meet the token's length or character rules")]
    PinRejected,
    /// The operation needs a logged-in user and there is none (never logged in, or the login
    /// was lost when the token was reinserted).
    #[error("not logged in to the token")]
    NotLoggedIn,
    /// The token has no room for another object (CKR_DEVICE_MEMORY / CKR_HOST_MEMORY on
    /// creation).
    #[error("the token is full: no room for another key or certificate")]
    TokenFull,
    /// The token went away during the operation (removed, session closed, device error).
    #[error("the token was removed or stopped responding during {0}")]
    TokenRemoved(&'static str),
    /// An object handle we held is no longer valid: the object was deleted, or the token was
    /// removed and reinserted (handles do not survive that), or its storage went away.
    #[error("the key or object used for {0} is no longer on the token (was the token removed or the object deleted?)")]
    ObjectGone(&'static str),
    /// No key with this identifier or label on the token.
    #[error("no key {0} on the token")]
    KeyNotFound(String),
    /// More than one key matches a label, so the choice would be a guess.
    #[error("{0} keys match label {1:?}; select the key by its ID")]
    AmbiguousKey(usize, String),
    /// The token lacks a mechanism, curve or key size we need, or the key is of a type we do
    /// not sign with.
    #[error("unsupported by the token or key: {0}")]
    Unsupported(String),
    /// The key refuses the operation (usage not permitted).
    #[error("the key does not permit {0}")]
    NotPermitted(&'static str),
    /// Data read from the token (public key, certificate) or given to us is malformed.
    #[error("malformed {0}")]
    Malformed(String),
    /// Any other PKCS#11 failure, named by the function and return value.
    #[error("PKCS#11 {operation} failed: {detail}")]
    Pkcs11 {
        /// What we were doing.
        operation: &'static str,
        /// The cryptoki error (function name and CKR_ code).
        detail: String,
    },
}

impl TokenError {
    pub(crate) fn malformed(what: &str, err: impl std::fmt::Display) -> Self {
        Self::Malformed(format!("{what}: {err}"))
    }

    /// Map a cryptoki error from `operation`. Memory errors count as "token full" only when an
    /// object was being created; elsewhere they are ordinary failures.
    pub(crate) fn from_cryptoki(operation: &'static str, err: CkError) -> Self {
        let CkError::Pkcs11(rv, function) = err else {
            return Self::Pkcs11 { operation, detail: err.to_string() };
        };
        let creates = matches!(
            function,
            Function::CreateObject
                | Function::CopyObject
                | Function::GenerateKeyPair
                | Function::GenerateKey
                | Function::SetAttributeValue
        );
        match rv {
            RvError::PinIncorrect => Self::WrongPin { tries: PinTries::NotReported },
            RvError::PinLocked => Self::PinLocked,
            RvError::PinLenRange | RvError::PinInvalid => Self::PinRejected,
            RvError::UserNotLoggedIn => Self::NotLoggedIn,
            RvError::DeviceMemory | RvError::HostMemory if creates => Self::TokenFull,
            RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::DeviceError => Self::TokenRemoved(operation),
            RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid => Self::ObjectGone(operation),
            RvError::MechanismInvalid | RvError::CurveNotSupported | RvError::KeySizeRange => {
                Self::Unsupported(format!("{operation}: {function}: {rv:?}"))
            }
            RvError::KeyFunctionNotPermitted => Self::NotPermitted(operation),
            other => Self::Pkcs11 { operation, detail: format!("{function}: CKR {other:?}") },
        }
    }

    /// Whether the session the error came from is dead and must not go back to the pool.
    pub(crate) fn session_is_dead(&self) -> bool {
        matches!(self, Self::TokenRemoved(_) | Self::NotLoggedIn)
    }
}

/// Shorthand used at every cryptoki call: `.map_err(ck("signing"))`.
pub(crate) fn ck(operation: &'static str) -> impl FnOnce(CkError) -> TokenError {
    move |err| TokenError::from_cryptoki(operation, err)
}

impl From<TokenError> for SignerError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::ModuleNotFound(_)
            | TokenError::NotAModule { .. }
            | TokenError::TokenAbsent(_)
            | TokenError::WrongPin { .. }
            | TokenError::PinLocked
            | TokenError::PinRejected
            | TokenError::NotLoggedIn
            | TokenError::TokenRemoved(_)
            | TokenError::ObjectGone(_)
            | TokenError::KeyNotFound(_)
            | TokenError::AmbiguousKey(..) => SignerError::KeyUnavailable(err.to_string()),
            TokenError::Unsupported(_) | TokenError::NotPermitted(_) => SignerError::Refused(err.to_string()),
            TokenError::TokenFull | TokenError::Malformed(_) | TokenError::Pkcs11 { .. } => {
                SignerError::Failed(err.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(rv: RvError, function: Function) -> CkError {
        CkError::Pkcs11(rv, function)
    }

    #[test]
    fn return_values_map_to_the_variants_operators_act_on() {
        let map = |r, f| TokenError::from_cryptoki("test", rv(r, f));
        assert!(matches!(map(RvError::PinIncorrect, Function::Login), TokenError::WrongPin { .. }));
        assert!(matches!(map(RvError::PinLocked, Function::Login), TokenError::PinLocked));
        assert!(matches!(map(RvError::DeviceMemory, Function::CreateObject), TokenError::TokenFull));
        assert!(matches!(map(RvError::HostMemory, Function::GenerateKeyPair), TokenError::TokenFull));
        assert!(matches!(map(RvError::HostMemory, Function::Sign), TokenError::Pkcs11 { .. }));
        for removed in [
            RvError::DeviceRemoved,
            RvError::TokenNotPresent,
            RvError::SessionHandleInvalid,
            RvError::SessionClosed,
            RvError::DeviceError,
        ] {
            let err = map(removed, Function::Sign);
            assert!(matches!(err, TokenError::TokenRemoved("test")));
            assert!(err.session_is_dead());
            assert!(matches!(SignerError::from(err), SignerError::KeyUnavailable(_)));
        }
        assert!(matches!(map(RvError::ObjectHandleInvalid, Function::SignInit), TokenError::ObjectGone("test")));
        assert!(matches!(map(RvError::KeyFunctionNotPermitted, Function::Sign), TokenError::NotPermitted(_)));
    }

    #[test]
    fn pin_messages_say_how_many_tries_are_left() {
        assert_eq!(TokenError::WrongPin { tries: PinTries::NotReported }.to_string(), "wrong PIN");
        assert!(TokenError::WrongPin { tries: PinTries::FewLeft }.to_string().contains("few tries left"));
        assert!(TokenError::WrongPin { tries: PinTries::FinalTry }.to_string().contains("final try"));
        assert!(TokenError::PinLocked.to_string().contains("locked"));
    }
}
