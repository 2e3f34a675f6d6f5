//! X.509 v2 CRL and delta-CRL building and parsing (RFC 5280 section 5).
//!
//! Not written yet: the revocation issue fills this crate (full and delta CRLs, partitions,
//! streaming encoding). Revocation status already lives in `ca-core`'s store.
#![forbid(unsafe_code)]
