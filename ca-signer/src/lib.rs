//! `ca-signer`: an open signing client for the national PKI's portals. It speaks the desktop
//! signing client's protocol (module `kz.gov.pki.knca.commonUtils` over a local WebSocket:
//! `getActiveTokens`, `getKeyInfo`, `createCAdESFromBase64` attached and detached, `signXml`)
//! with keys from PKCS#12 key stores and PKCS#11 tokens (through the `hsm` crate), and signs
//! through `ca_core::cms` and `ca_core::xml`. It never touches a CA store.
//!
//! Safety of a local signer: it listens on loopback only ([`server::check_loopback`]), accepts
//! a WebSocket only from an allowed `Origin`, and asks for confirmation of every signature
//! (origin, key, what is signed) through a [`confirm::Confirmer`]: the terminal, or a
//! non-interactive policy that says so loudly in the log for every signature. Passwords and PINs
//! go only to the key store or token and are zeroised.
#![forbid(unsafe_code)]

pub mod confirm;
pub mod keys;
pub mod protocol;
pub mod server;

pub use confirm::{Confirmation, Confirmer, Policy, TerminalConfirmer};
pub use keys::{KeyEntry, KeyLoadError};
pub use protocol::Service;
