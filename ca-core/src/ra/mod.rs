//! The registration authority: the person registry, applications and their state machine, the
//! regulation's time budgets, signed steps, refusals and notices (service regulation 004).
//!
//! The RA decides *whether* to issue or revoke; it hands the CA ([`crate::issuer::Issuer`])
//! public keys only, never private keys, and calls [`crate::revocation::revoke`] to revoke.
//! Signatures are verified by a [`signature::SignatureCheck`] (the CMS verifier) and then
//! matched against what the step needs.

pub mod application;
pub mod budget;
pub mod cms_check;
pub mod counter;
pub mod csr_keys;
pub mod csv;
mod execute;
pub mod install;
pub mod notices;
pub mod outbox;
pub mod receipt;
mod recover;
pub mod refusal;
pub mod registry;
pub mod regulation;
pub mod roles;
mod service;
pub mod signature;
pub mod state_corporation;
pub mod store;
pub mod worker;

pub use application::{
    ActorRole, Application, ApplicationEvent, ApplicationKind, ApplicationNumber, ApplicationState, Channel, Step,
    StoredRefusal,
};
pub use csr_keys::ApplicantCsrs;
pub use execute::Executed;
pub use recover::{ApplicantHoldsKeys, KeyStoreDelivery, NothingDelivered, Recovered};
pub use refusal::Refusal;
pub use registry::{LegalEntityRecord, PersonRecord, PersonRegistry, RegistryError, StoreRegistry};
pub use service::{confirmer_role, Confirmed, Registered, RegistrationAuthority, Submission};
pub use signature::{Expectation, SignatureCheck, SignatureProblem, SignedPayload, SignerFacts, Statement};
pub use store::{RaStore, Submitted};

use crate::store::StoreError;

/// Why a step was not done. A [`Refusal`] of a step leaves the application as it was (a bad
/// signature on a confirmation must not let anyone refuse someone else's application), except
/// the operator's own failed confirmation ("process 10"), which refuses the application; a
/// refused *submission* is stored as a refused application instead.
#[derive(Debug, thiserror::Error)]
pub enum RaError {
    #[error("{0}")]
    Refused(Refusal),
    #[error("no application {0}")]
    NotFound(ApplicationNumber),
    #[error("application {number} is {state}: {what}")]
    WrongState { number: ApplicationNumber, state: ApplicationState, what: String },
    #[error("application {} is already {}", .0.number, .0.state)]
    AlreadyDone(Box<Application>),
    #[error("application {0} is being carried out by another worker")]
    InProgress(ApplicationNumber),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotSupported(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("issuance failed, the application is confirmed again and can be retried: {0}")]
    Issue(#[from] crate::issuer::IssueError),
    #[error("revocation failed, the application is confirmed again and can be retried: {0}")]
    Revoke(#[from] crate::revocation::RevokeError),
    #[error("{0}; the certificates were revoked and the application is confirmed again")]
    Delivery(String),
    #[error("card personalization did not complete, the application is confirmed again and can be resumed with the same card: {0}")]
    Card(String),
}
