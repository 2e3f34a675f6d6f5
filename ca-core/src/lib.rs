//! Domain of the national certification authority: identities (IIN/BIN and the subject DN),
//! certificate profiles, issuance, revocation and the storage authority.
//!
//! ca-core never holds a private key: everything that signs goes through [`signer::Signer`],
//! implemented by the `hsm` crate (software keys, PKCS#11 tokens).
#![forbid(unsafe_code)]

pub mod api_tokens;
pub mod ca_dir;
pub mod card;
pub mod checkpoint;
pub mod clock;
pub mod cms;
pub mod config;
pub mod csr;
pub mod expiry;
pub mod failpoint;
pub mod fs;
pub mod identity;
pub mod issuer;
pub mod keys;
pub mod ocsp;
pub mod pem;
pub mod pkix;
pub mod profile;
pub mod ra;
pub mod revocation;
pub mod serial;
pub mod signer;
pub mod store;
pub mod tsa;
pub mod verify;
pub mod xml;
