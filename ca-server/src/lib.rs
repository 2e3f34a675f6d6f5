//! HTTP services of the CA: the verification API for portals, OCSP, CRL and CA certificate
//! distribution.
//!
//! Not written yet: its own issue fills this crate. Until then the `ca` command is the only
//! interface.
#![forbid(unsafe_code)]
