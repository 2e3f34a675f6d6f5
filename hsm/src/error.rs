//! Errors of key custody. Messages name what went wrong but never carry key material,
//! passphrases or decrypted bytes.

use ca_core::signer::SignerError;

/// Why a key could not be generated, loaded, stored or exported.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The passphrase does not open the key (or the ciphertext was damaged, which looks the same).
    #[error("wrong passphrase for the CA key (or the key file is corrupt)")]
    WrongPassphrase,
    /// An empty passphrase was given for a key that must be encrypted.
    #[error("the passphrase must not be empty")]
    EmptyPassphrase,
    /// The input is not a well-formed key, PEM document, PKCS#8 or PKCS#12 structure.
    #[error("malformed key data: {0}")]
    Malformed(String),
    /// Well-formed, but uses an algorithm, curve, key size or protection scheme we do not accept.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The cryptographic library refused an operation (key generation, signing, encryption).
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
    /// The certificate given with a key carries a different public key.
    #[error("the certificate does not belong to the private key")]
    CertificateKeyMismatch,
    /// The key file already exists; a key file is never overwritten.
    #[error("refusing to overwrite existing key file {0}")]
    AlreadyExists(std::path::PathBuf),
    /// Reading or writing a key file failed.
    #[error("key file I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl KeyError {
    pub(crate) fn malformed(what: &str, err: impl std::fmt::Display) -> Self {
        Self::Malformed(format!("{what}: {err}"))
    }

    pub(crate) fn crypto(what: &str) -> Self {
        Self::Crypto(what.to_owned())
    }
}

impl From<KeyError> for SignerError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Io { .. } | KeyError::WrongPassphrase | KeyError::AlreadyExists(_) => {
                SignerError::KeyUnavailable(err.to_string())
            }
            KeyError::Unsupported(_) | KeyError::EmptyPassphrase => SignerError::Refused(err.to_string()),
            KeyError::Malformed(_) | KeyError::Crypto(_) | KeyError::CertificateKeyMismatch => {
                SignerError::Failed(err.to_string())
            }
        }
    }
}
