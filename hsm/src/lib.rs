//! Key custody for the national CA.
//!
//! This crate is the only place that holds private keys. Everything else signs through the
//! [`ca_core::signer::Signer`] trait and never sees key material. Today the keys are software
//! keys ([`software::SoftwareKey`], held by aws-lc-rs) stored at rest as encrypted PKCS#8 PEM
//! (PBES2 with scrypt and AES-256-CBC) and handed to subscribers as password-protected PKCS#12
//! files. Keys on PKCS#11 tokens, smart cards and HSMs ([`pkcs11::TokenKey`]) implement the
//! same `Signer` trait.
//!
//! Nothing in this crate logs, prints or puts into an error message a private key, a
//! passphrase or decrypted bytes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod pkcs11;
pub mod software;

pub use error::KeyError;
pub use software::{
    build_pkcs12, read_pkcs12, replace_encrypted_key_file, write_encrypted_key_file, KeyAlgorithm, SoftwareKey,
    UnknownKeyAlgorithm,
};
