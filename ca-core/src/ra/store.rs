//! The RA's storage interface, kept apart from [`crate::store::Store`] so the certificate store
//! stays small. [`crate::store::SqliteStore`] implements both on one database, so a transition,
//! its audit entry and its notice are one transaction.

use time::OffsetDateTime;

use super::application::{
    ActorRole, Application, ApplicationEvent, ApplicationKind, ApplicationNumber, ApplicationState, Step, StoredRefusal,
};
use super::csv::RegistryImport;
use super::registry::{ImportCounts, LegalEntityRecord, PersonRecord};
use crate::identity::{Bin, Iin, KeyType};
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;
use crate::store::StoreError;

/// A submission as the RA registers it.
#[derive(Clone, Debug)]
pub struct NewApplication {
    pub kind: ApplicationKind,
    pub channel: super::application::Channel,
    /// A State Corporation counter's consent, representative and documents; the store sets
    /// the number of the receipt it issues.
    pub paperwork: Option<super::state_corporation::Paperwork>,
    /// The receipt of acceptance to number and store with a new application (and email to
    /// its address).
    pub receipt: Option<super::receipt::ReceiptDetails>,
    pub iin: Iin,
    pub bin: Option<Bin>,
    pub email: Option<String>,
    pub serials: Vec<SerialNumber>,
    pub revocation_reason: Option<RevocationReason>,
    /// Legal-entity roles asked for (employees' applications).
    pub roles: Vec<crate::profile::Role>,
    pub dedup_key: String,
    /// The state after registration (`Refused` with `refusal` when the registry check failed).
    pub state: ApplicationState,
    pub refusal: Option<StoredRefusal>,
    /// The applicant's own public keys (from his CSRs), stored with the application.
    pub keys: Vec<ApplicantKey>,
    /// Tokens handed to the applicant with the application (his status look-up).
    pub tokens: Vec<NewToken>,
    /// The notice of the registration, queued in the same transaction; `{number}` in its
    /// subject and body becomes the number the store allocates.
    pub notice: Option<NewMessage>,
    /// Steps done at the counter before the registration (arrival, identification, forms),
    /// recorded before it, oldest first.
    pub earlier: Vec<NewEvent>,
}

/// A public key of the applicant's own, taken from his CSR (the private key never comes here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicantKey {
    pub key_type: KeyType,
    /// The SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
}

/// What an application token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Download the issued certificates once (the install link of the issuance notice).
    Install,
    /// Read the application's state and events (given at registration).
    Status,
}

impl TokenPurpose {
    pub fn name(self) -> &'static str {
        match self {
            Self::Install => "install",
            Self::Status => "status",
        }
    }
}

/// A token to store: only its SHA-256 is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    pub purpose: TokenPurpose,
    pub sha256: [u8; 32],
    pub expires_at: OffsetDateTime,
}

/// What presenting a token found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenUse {
    /// The token is this application's and valid; when it was to be consumed, it now is.
    Accepted,
    /// No such token for this application (wrong token, or another application's).
    Unknown,
    Expired,
    /// A single-use token that was used already.
    Used,
}

/// One transition as the RA asks for it; the store adds the budget, deadline and breach.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub step: Step,
    pub actor_role: ActorRole,
    pub actor: String,
    pub signer_serial: Option<SerialNumber>,
    pub at: OffsetDateTime,
    pub details: serde_json::Value,
}

/// A notice to send, queued in the same transaction as the transition that causes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NewMessage {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// A state change, applied only if the application is in one of `from`.
#[derive(Clone, Debug)]
pub struct Transition {
    pub from: Vec<ApplicationState>,
    pub to: ApplicationState,
    pub event: NewEvent,
    /// Replace the application's serials (the certificates issued).
    pub serials: Option<Vec<SerialNumber>>,
    pub refusal: Option<StoredRefusal>,
    pub notice: Option<NewMessage>,
    /// A token to store (replacing one of the same purpose), e.g. the install link's.
    pub token: Option<NewToken>,
}

/// The result of a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    New(Application),
    /// An open application with the same dedup key exists; nothing was written.
    Existing(Application),
}

impl Submitted {
    pub fn application(&self) -> &Application {
        match self {
            Self::New(a) | Self::Existing(a) => a,
        }
    }
}

/// The result of a conditional transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transitioned {
    Applied(Application),
    /// The application was not in an expected state (someone else moved it); nothing changed.
    NotApplicable(Application),
}

/// Which applications to list.
#[derive(Clone, Debug, Default)]
pub struct ApplicationQuery {
    pub state: Option<ApplicationState>,
    pub kind: Option<ApplicationKind>,
    pub iin: Option<Iin>,
    pub limit: Option<u32>,
}

/// A queued notice.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub application: Option<ApplicationNumber>,
    pub to: String,
    pub subject: String,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// Storage of the registration authority.
pub trait RaStore: Send + Sync {
    /// Insert or update every record of an import in one transaction, with one audit entry.
    fn import_registry(&self, import: &RegistryImport, actor: &str) -> Result<ImportCounts, StoreError>;
    fn registry_person(&self, iin: &Iin) -> Result<Option<PersonRecord>, StoreError>;
    fn registry_entity(&self, bin: &Bin) -> Result<Option<LegalEntityRecord>, StoreError>;

    /// Register an application with a new number and its first event, or return the open
    /// application with the same dedup key.
    fn submit(&self, application: &NewApplication, event: &NewEvent) -> Result<Submitted, StoreError>;

    /// Apply a transition if the application is in one of `transition.from`: state, event,
    /// audit entry and notice in one `BEGIN IMMEDIATE` transaction.
    fn transition(&self, number: &ApplicationNumber, transition: &Transition) -> Result<Transitioned, StoreError>;

    fn application(&self, number: &ApplicationNumber) -> Result<Option<Application>, StoreError>;
    /// Newest first.
    fn applications(&self, query: &ApplicationQuery) -> Result<Vec<Application>, StoreError>;
    /// Events of one application, or of all (oldest first).
    fn application_events(&self, number: Option<&ApplicationNumber>) -> Result<Vec<ApplicationEvent>, StoreError>;

    /// The applicant's own public keys stored with an application.
    fn application_keys(&self, number: &ApplicationNumber) -> Result<Vec<ApplicantKey>, StoreError>;
    /// What already holds the public key whose SubjectPublicKeyInfo has this SHA-256: a
    /// certificate that is not revoked, or an open or issued application other than `except`.
    fn key_in_use(
        &self,
        spki_sha256: &[u8; 32],
        except: Option<&ApplicationNumber>,
    ) -> Result<Option<String>, StoreError>;
    /// Check a token of `number`; with `consume`, an accepted token is marked used in the same
    /// transaction (a second use answers [`TokenUse::Used`]).
    fn use_token(
        &self,
        number: &ApplicationNumber,
        purpose: TokenPurpose,
        sha256: &[u8; 32],
        now: OffsetDateTime,
        consume: bool,
    ) -> Result<TokenUse, StoreError>;

    /// Store a receipt of refusal of an incomplete package with the next receipt number of its
    /// year (no application is registered), audited, and queue it to its address.
    fn refuse_package(&self, receipt: &super::receipt::ReceiptDetails) -> Result<super::receipt::Receipt, StoreError>;
    /// A receipt by number.
    fn receipt(&self, number: &super::receipt::ReceiptNumber) -> Result<Option<super::receipt::Receipt>, StoreError>;

    /// Unsent messages due at `now`, oldest first.
    fn due_messages(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Every message, newest first.
    fn outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Take a due message for delivery: it is not due again before `lease_until`, so a second
    /// worker does not deliver it too; `false` if it is not due (taken, sent) any more. A
    /// sender that dies holding it leaves it to be delivered after the lease.
    fn claim_message(&self, id: i64, now: OffsetDateTime, lease_until: OffsetDateTime) -> Result<bool, StoreError>;
    /// Mark a message delivered; `false` if it already was.
    fn mark_sent(&self, id: i64, at: OffsetDateTime) -> Result<bool, StoreError>;
    /// Record a failed attempt and when to try again.
    fn mark_failed(&self, id: i64, error: &str, retry_at: OffsetDateTime) -> Result<(), StoreError>;
}
