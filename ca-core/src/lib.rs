//! Domain of the national certification authority: identities (IIN/BIN and the subject DN),
//! certificate profiles, issuance, revocation and the storage authority.
#![forbid(unsafe_code)]

pub mod identity;
pub mod revocation;
pub mod serial;
pub mod signer;
pub mod store;
