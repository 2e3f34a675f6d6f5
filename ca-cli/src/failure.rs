//! What went wrong, classified so that the exit code means something to scripts.

use std::process::ExitCode;

/// Exit codes of `ca` (documented in README.md).
pub mod code {
    pub const INTERNAL: u8 = 1;
    pub const INPUT: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const AUTH: u8 = 5;
    pub const ALREADY: u8 = 6;
    pub const INTEGRITY: u8 = 7;
    pub const REFUSED: u8 = 8;
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The input is wrong (CSR, IIN, profile, key …); nothing was changed.
    #[error("{0}")]
    Input(String),
    /// What was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A passphrase or password is wrong.
    #[error("{0}")]
    Auth(String),
    /// Already in the requested state; nothing was changed.
    #[error("{0}")]
    Already(String),
    /// An integrity check failed (audit journal).
    #[error("{0}")]
    Integrity(String),
    /// The application was refused (registry check, operator, signature); the refusal is stored.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Input(_) => code::INPUT,
            Failure::NotFound(_) => code::NOT_FOUND,
            Failure::Auth(_) => code::AUTH,
            Failure::Already(_) => code::ALREADY,
            Failure::Integrity(_) => code::INTEGRITY,
            Failure::Refused(_) => code::REFUSED,
            Failure::Internal(_) => code::INTERNAL,
        })
    }
}

impl From<ca_core::issuer::IssueError> for Failure {
    fn from(e: ca_core::issuer::IssueError) -> Self {
        use ca_core::issuer::IssueError as E;
        match e {
            E::Subject(_) | E::Roles(_) | E::KeyPolicy(_) | E::SubjectKind { .. } | E::ProfileNotIssuable(_) => {
                Failure::Input(e.to_string())
            }
            E::IssuerRevoked { .. } | E::IssuerNotValid { .. } => Failure::Refused(e.to_string()),
            other => Failure::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<ca_core::store::StoreError> for Failure {
    fn from(e: ca_core::store::StoreError) -> Self {
        use ca_core::store::StoreError as E;
        match e {
            E::UnknownSerial(_) => Failure::NotFound(e.to_string()),
            E::WrongStatus { .. } | E::Configuration(_) => Failure::Input(e.to_string()),
            other => Failure::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<hsm::KeyError> for Failure {
    fn from(e: hsm::KeyError) -> Self {
        match e {
            hsm::KeyError::WrongPassphrase => Failure::Auth(e.to_string()),
            other => Failure::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<ca_core::ca_dir::ConfigError> for Failure {
    fn from(e: ca_core::ca_dir::ConfigError) -> Self {
        use ca_core::ca_dir::ConfigError as E;
        match e {
            E::NoCa(_) => Failure::NotFound(e.to_string()),
            E::Invalid { .. } => Failure::Input(e.to_string()),
            other => Failure::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<ca_core::checkpoint::CheckpointError> for Failure {
    fn from(e: ca_core::checkpoint::CheckpointError) -> Self {
        use ca_core::checkpoint::CheckpointError as E;
        match e {
            E::BrokenJournal(_) | E::NotPinnedKey(_) => Failure::Integrity(e.to_string()),
            E::Store(s) => Failure::from(s),
            other => Failure::Internal(anyhow::Error::new(other)),
        }
    }
}
