//! The e-government portal that relies on the national CA (document 002): accounts created by
//! signature or at a State Corporation counter, login by password (with the 10-failure /
//! 15-minute lockout), by signature and by one-time password, sessions, password recovery by
//! signature or email, binding a mobile phone number (documents 000, 001: [`phone`]), and the
//! HTTP API of `portal-server`.
//!
//! The portal is a relying party with its own trust boundary: it verifies signatures with
//! `ca-core` against the CA's published certificates and CRLs, asks the person registry, and
//! keeps its own accounts and journals in its own database. The CA crates never depend on it.
//!
//! Layout: [`account`] (registration, passwords, recovery, counter), [`login`] (password,
//! signature, one-time password; sessions), [`otp`] (the one OTP service), [`notify`] (mail
//! outbox, the SMS outbox and its transports), [`phone`] (numbers, the binding channels),
//! [`documents`] (authority-signed documents, open access, consent), [`journal`], [`store`]
//! (the only code that touches SQL), [`http`] (handlers
//! that only translate), [`web`] (the pages).

#![forbid(unsafe_code)]

pub mod account;
pub mod config;
pub mod documents;
pub mod error;
pub mod http;
pub mod journal;
pub mod login;
pub mod messages;
pub mod notify;
pub mod otp;
pub mod phone;
pub mod registry;
pub mod setup;
pub mod signing;
pub mod store;
pub mod trust;
pub mod web;

use std::sync::Arc;

use ca_core::clock::Clock;
use ca_core::ra::registry::PersonRegistry;

use crate::account::password::PasswordHasherConfig;
use crate::config::{CounterConfig, LoginPolicy};
use crate::http::metrics::Metrics;
use crate::login::otp_login::BoundPhones;
use crate::notify::{Mailer, SmsSender};
use crate::otp::OtpService;
use crate::signing::PortalSigner;
use crate::store::PortalStore;
use crate::trust::PortalTrust;

pub use error::PortalError;

/// Who is asking (for the journal and the session list).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// Everything the portal's operations need, built once at start.
pub struct Portal {
    pub store: Arc<dyn PortalStore>,
    pub clock: Arc<dyn Clock>,
    pub trust: Arc<PortalTrust>,
    pub registry: Arc<dyn PersonRegistry>,
    pub passwords: PasswordHasherConfig,
    pub policy: LoginPolicy,
    pub otp: OtpService,
    /// The phone bound to an account (the phone-binding issue implements it).
    pub phones: Arc<dyn BoundPhones>,
    pub sms: Option<Arc<dyn SmsSender>>,
    pub mailer: Option<Mailer>,
    /// The portal's own EDS, for signed answers to counter workstations.
    pub signer: Option<PortalSigner>,
    pub counter: CounterConfig,
    pub metrics: Metrics,
    /// Phone binding: its settings, OTP service and SMS sender.
    pub phone: crate::phone::PhoneService,
    /// Authenticates the challenges the portal issues (see [`login::challenge`]).
    pub challenge_key: aws_lc_rs::hmac::Key,
    /// Digital documents: authorities, integrated systems, open-access policy.
    pub documents: documents::config::DocumentsConfig,
    /// Time stamps for stored documents (none: documents cannot be accepted).
    pub stamper: Option<Arc<dyn documents::timestamp::TimeStamper>>,
    /// Legal representatives' links (a minor's documents are shown to them).
    pub representatives: Arc<dyn registry::Representatives>,
    /// When this process started (its clock): challenges issued before are refused, since the
    /// record of their use may have been lost with an OS crash (see [`store::SqlitePortalStore`]).
    pub started_at: time::OffsetDateTime,
    /// The pages' settings (`[pages]`).
    pub pages: web::PagesConfig,
}
