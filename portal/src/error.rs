//! What the portal's operations answer when they do not succeed. Each variant says how the
//! HTTP layer answers (status) and carries a machine-readable kind and the message shown to
//! the user (word for word from the document where it gives one). Nothing has changed when one
//! of these is returned, except where a variant says so.

use ca_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// Malformed input: JSON, CMS, IIN/BIN, email, a password rule (400).
    #[error("{message}")]
    Invalid { kind: &'static str, message: String },
    /// A login or signature that does not authenticate (401).
    #[error("{message}")]
    Unauthenticated { kind: &'static str, message: String },
    /// Refused by policy: the registry, an unauthorised workstation, a blocked account (403).
    #[error("{message}")]
    Refused { kind: &'static str, message: String },
    /// The IIN/BIN already has an account (409).
    #[error("{0}")]
    Duplicate(String),
    /// Password login is locked for the IIN/BIN until `until`, `retry_after` seconds from the
    /// portal's clock (429).
    #[error("{message}")]
    Locked { message: String, until: time::OffsetDateTime, retry_after: i64 },
    /// Nothing of that name the caller may see: a document, an access grant (404).
    #[error("{message}")]
    NotFound { kind: &'static str, message: String },
    /// Too many tries (short-code guessing): refused for `retry_after` seconds (429).
    #[error("{message}")]
    Limited { kind: &'static str, message: String, retry_after: i64 },
    /// Asked again too soon (a code resent within the send limits): nothing changed; the
    /// next try may come at `until`, `retry_after` seconds from now (429).
    #[error("{message}")]
    TooSoon { message: String, until: time::OffsetDateTime, retry_after: i64 },
    /// A part the request needs is not configured or not reachable (503).
    #[error("{0}")]
    Unavailable(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl PortalError {
    pub fn invalid(kind: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { kind, message: message.into() }
    }
    pub fn unauthenticated(kind: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthenticated { kind, message: message.into() }
    }
    pub fn refused(kind: &'static str, message: impl Into<String>) -> Self {
        Self::Refused { kind, message: message.into() }
    }
    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound { kind, message: message.into() }
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::Internal(message.to_string())
    }

    /// The machine-readable kind of the error.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invalid { kind, .. }
            | Self::Unauthenticated { kind, .. }
            | Self::Refused { kind, .. }
            | Self::NotFound { kind, .. }
            | Self::Limited { kind, .. } => kind,
            Self::Duplicate(_) => "account-exists",
            Self::Locked { .. } => "password-login-locked",
            Self::TooSoon { .. } => "too-soon",
            Self::Unavailable(_) => "unavailable",
            Self::Store(_) | Self::Internal(_) => "internal",
        }
    }
}

impl From<crate::account::password::PasswordRule> for PortalError {
    fn from(rule: crate::account::password::PasswordRule) -> Self {
        Self::invalid(rule.kind(), rule.to_string())
    }
}

impl From<crate::account::password::PasswordError> for PortalError {
    fn from(e: crate::account::password::PasswordError) -> Self {
        Self::internal(e)
    }
}
