//! Revocation sources that fetch: the CRLs named by a certificate's CRL distribution points (and
//! FreshestCRL), and the OCSP responses of the responder named by its Authority Information
//! Access, both over plain HTTP with bounded sizes, timeouts and caches. They decide nothing: what
//! they fetch goes to the RFC 5280 §6.3 / RFC 6960 processing of [`crate::cms`], and with
//! revocation required (the default [`PathOptions`](super::PathOptions)) a certificate whose
//! status none of them could give is not valid.
//!
//! Every relying party of the workspace uses these: `ca-server` for foreign CAs (its own
//! certificates' status comes from its store) and the portal for all of them.

mod crl;
mod ocsp;

pub use crl::CrlRevocationSource;
pub use ocsp::OcspRevocationSource;
