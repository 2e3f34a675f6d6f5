//! X.509 v2 CRL and delta-CRL building and parsing (RFC 5280 section 5).
//!
//! [`CrlBuilder`] streams entries into the final DER so a CRL of a million entries needs about
//! its own size in memory; signing goes through [`ca_core::signer::Signer`]. [`parse`] reads
//! any v1/v2 CRL without copying its entries, [`verify`] checks its signature.
//!
//! Not here: deciding what goes into a CRL (the store), CRL numbers (publication), files.
#![forbid(unsafe_code)]

mod builder;
mod entry;
mod error;
mod extensions;
mod parse;
mod time_codec;

pub use builder::{build_crl, write_crl, CrlBuilder, CrlParams, CrlSummary};
pub use entry::{CrlEntry, ParsedEntry};
pub use error::{BuildError, ParseError, VerifyError};
pub use extensions::{IssuingDistributionPoint, ParsedIssuingDistributionPoint};
pub use parse::{parse, parse_and_verify, verify, Entries, ParsedCrl};

#[cfg(test)]
mod tests;
