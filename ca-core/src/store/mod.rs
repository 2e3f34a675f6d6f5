//! The storage authority: the only code that talks to the database.
//!
//! [`Store`] is written in domain types only, so the embedded SQLite implementation and the
//! PostgreSQL one for deployments are interchangeable. Every state change and its audit entries are
//! written in one transaction.

pub mod audit;
mod chain;
pub mod copy;
mod nonce;
pub mod open;
pub mod postgres;
pub mod sqlite;

use time::OffsetDateTime;

use crate::identity::{Bin, Iin};
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;

pub use audit::{AuditEntry, AuditEvent, AuditProblem, AuditQuery, AuditSink, AuditVerification};
pub use nonce::{NonceOutcome, NonceStore};
pub use open::{CaStore, StoreSection};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Life cycle of a serial number in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateStatus {
    /// Serial reserved before signing; no certificate was handed out for it (yet).
    Reserved,
    /// Certificate signed and recorded.
    Issued,
    /// Certificate revoked (including certificateHold).
    Revoked,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Issued => "issued",
            Self::Revoked => "revoked",
        }
    }
}

/// What is known about the subject of a certificate when its serial is reserved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub serial: SerialNumber,
    /// Name of the issuing CA in this deployment (e.g. `issuing`, `root`).
    pub issuer: String,
    /// Profile identifier (e.g. `individual-sign`).
    pub profile: String,
    /// The subject DN in RFC 4514 form, for display and search.
    pub subject_dn: String,
    pub iin: Option<Iin>,
    pub bin: Option<Bin>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The CRL partition the certificate's distribution point names, when the CA's CRL is
    /// partitioned; fixed at issuance.
    pub crl_partition: Option<u32>,
}

/// A signed certificate to be recorded against its reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub serial: SerialNumber,
    pub der: Vec<u8>,
}

/// A revocation as it is recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Revocation {
    pub reason: RevocationReason,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    /// When the key is known or suspected to have been compromised (RFC 5280 invalidityDate).
    #[serde(with = "time::serde::rfc3339::option")]
    pub invalidity_date: Option<OffsetDateTime>,
}

/// One row of the certificate table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CertificateRecord {
    pub serial: SerialNumber,
    pub issuer: String,
    pub status: CertificateStatus,
    pub profile: String,
    pub subject_dn: String,
    pub iin: Option<Iin>,
    pub bin: Option<Bin>,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub reserved_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub issued_at: Option<OffsetDateTime>,
    pub revocation: Option<Revocation>,
    pub crl_partition: Option<u32>,
    /// The number of the first published CRL (full or delta) that listed this revocation.
    pub first_crl_number: Option<u64>,
    #[serde(skip)]
    pub der: Option<Vec<u8>>,
}

/// What OCSP and signature verification ask of the store: who issued a certificate and
/// whether it stands, without its DER or identity columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateState {
    pub issuer: String,
    pub status: CertificateStatus,
    pub revocation: Option<Revocation>,
}

impl From<CertificateRecord> for CertificateState {
    fn from(r: CertificateRecord) -> Self {
        Self { issuer: r.issuer, status: r.status, revocation: r.revocation }
    }
}

/// Which certificates to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateQuery {
    pub iin: Option<Iin>,
    pub bin: Option<Bin>,
    pub status: Option<CertificateStatus>,
    pub issuer: Option<String>,
    /// Maximum number of rows, newest first; `None` for all.
    pub limit: Option<u32>,
}

/// The result of a revocation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The certificate was issued (or on hold, and is now revoked for good).
    Revoked(CertificateRecord),
    /// The certificate was already revoked; nothing changed.
    AlreadyRevoked(CertificateRecord),
}

/// The result of releasing a certificateHold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The hold is lifted; the certificate is valid again.
    Released(CertificateRecord),
    /// The certificate is not on hold (valid, or revoked for good); nothing changed.
    NotOnHold(CertificateRecord),
}

/// Full or delta CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CrlKind {
    Full,
    Delta,
}

impl CrlKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Delta => "delta",
        }
    }
}

/// A published CRL, as the store remembers it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CrlRecord {
    pub issuer: String,
    pub partition: Option<u32>,
    pub kind: CrlKind,
    pub number: u64,
    /// For a delta: the number of the full CRL it builds on.
    pub base_number: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// Revocation changes up to this point are covered by the CRL.
    pub event_seq: i64,
}

/// One entry of a CRL as the store streams it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    pub serial: SerialNumber,
    pub revoked_at: OffsetDateTime,
    /// `RemoveFromCrl` for a released hold in a delta CRL.
    pub reason: RevocationReason,
    pub invalidity_date: Option<OffsetDateTime>,
}

/// Receives streamed CRL entries; an error stops the stream.
pub type EntrySink<'a> = dyn FnMut(RevokedEntry) -> Result<(), StoreError> + 'a;

/// Storage failures. Messages are meant for operators.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("serial {0} is already in the store")]
    DuplicateSerial(SerialNumber),
    #[error("no certificate with serial {0} in the store")]
    UnknownSerial(SerialNumber),
    #[error("serial {serial} is {}, expected {}", status.as_str(), expected.as_str())]
    WrongStatus { serial: SerialNumber, status: CertificateStatus, expected: CertificateStatus },
    #[error("the store at {path} is from a newer version (schema {found}, this program knows {known})")]
    SchemaTooNew { path: String, found: i64, known: i64 },
    #[error("corrupt row in the store: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
    /// The store's configuration is unusable (a URL that does not parse or carries a password).
    #[error("store configuration: {0}")]
    Configuration(String),
    /// The read replica is further behind than `[store] max_replica_lag_secs` and the
    /// configuration says to refuse rather than read the primary.
    #[error("the read replica is {lag_secs} s behind the primary (at most {max_secs} s allowed)")]
    ReplicaBehind { lag_secs: u64, max_secs: u64 },
}

/// How current a status answer is ([`Store::states_as_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusAsOf {
    /// Read from the primary copy: current when read.
    Current,
    /// Read from a replica that holds every change committed before this time (whole seconds,
    /// rounded down), and maybe some after it.
    Replica(time::OffsetDateTime),
}

/// The storage authority interface.
pub trait Store: Send + Sync {
    /// Reserve serials before signing, with their audit entries, atomically. Fails as a whole
    /// if any serial already exists.
    fn reserve(&self, reservations: &[Reservation], audit: &[AuditEvent]) -> Result<(), StoreError>;

    /// Record signed certificates against their reservations, with their audit entries,
    /// atomically. Every serial must be `Reserved`.
    fn record_issued(&self, issued: &[Issued], audit: &[AuditEvent]) -> Result<(), StoreError>;

    /// Revoke an issued certificate. Revoking a revoked certificate changes nothing and says so.
    fn revoke(
        &self,
        serial: &SerialNumber,
        revocation: &Revocation,
        audit: &AuditEvent,
    ) -> Result<RevokeOutcome, StoreError>;

    /// One certificate by serial.
    fn certificate(&self, serial: &SerialNumber) -> Result<Option<CertificateRecord>, StoreError>;

    /// The issuer and status of one certificate: the hot path of OCSP and verification, which
    /// a store can answer more cheaply than [`Store::certificate`].
    fn state(&self, serial: &SerialNumber) -> Result<Option<CertificateState>, StoreError> {
        Ok(self.certificate(serial)?.map(CertificateState::from))
    }

    /// [`Store::state`] of several certificates (a signer and its CAs) in one consistent read.
    fn states(&self, serials: &[SerialNumber]) -> Result<Vec<Option<CertificateState>>, StoreError> {
        serials.iter().map(|s| self.state(s)).collect()
    }

    /// [`Store::states`], with how current the answer is: what OCSP puts in `thisUpdate`.
    fn states_as_of(
        &self,
        serials: &[SerialNumber],
    ) -> Result<(Vec<Option<CertificateState>>, StatusAsOf), StoreError> {
        Ok((self.states(serials)?, StatusAsOf::Current))
    }

    /// Certificates matching a query, newest reservation first.
    fn find(&self, query: &CertificateQuery) -> Result<Vec<CertificateRecord>, StoreError>;

    /// Append one entry to the audit journal on its own.
    fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry, StoreError>;

    /// Walk the whole journal and check its hash chain.
    fn verify_audit(&self) -> Result<AuditVerification, StoreError>;

    /// Stream the journal entries matching `query`, in sequence order (not verified: that is
    /// [`Store::verify_audit`]).
    fn audit_entries(&self, query: &AuditQuery, sink: &mut AuditSink<'_>) -> Result<(), StoreError>;

    /// The stored hash of entry `seq`, `None` if there is no such entry (for checkpoints).
    fn audit_hash(&self, seq: i64) -> Result<Option<[u8; 32]>, StoreError>;

    /// Lift a certificateHold: the certificate becomes valid again and the next delta CRL lists
    /// it with removeFromCRL.
    fn release_hold(&self, serial: &SerialNumber, audit: &AuditEvent) -> Result<ReleaseOutcome, StoreError>;

    /// The next CRL number of `issuer`: one sequence per CA, shared by full, delta and partition
    /// CRLs, so numbers only ever increase.
    fn allocate_crl_number(&self, issuer: &str) -> Result<u64, StoreError>;

    /// Stream every currently revoked certificate of `issuer` (of one partition, if given), in
    /// one consistent snapshot; returns the revocation-event position the snapshot covers.
    fn revoked_snapshot(
        &self,
        issuer: &str,
        partition: Option<u32>,
        sink: &mut EntrySink<'_>,
    ) -> Result<i64, StoreError>;

    /// Stream what changed after event position `after` (revocations, hold changes, releases as
    /// removeFromCRL), one entry per certificate with its current state; returns the position
    /// covered.
    fn revocation_changes(
        &self,
        issuer: &str,
        partition: Option<u32>,
        after: i64,
        sink: &mut EntrySink<'_>,
    ) -> Result<i64, StoreError>;

    /// Remember a published CRL and mark the revocations it lists for the first time.
    fn record_crl(&self, crl: &CrlRecord, audit: &AuditEvent) -> Result<(), StoreError>;

    /// The latest published CRL of a kind for `issuer` and partition.
    fn last_crl(&self, issuer: &str, partition: Option<u32>, kind: CrlKind) -> Result<Option<CrlRecord>, StoreError>;

    /// The latest notAfter of the certificates `issuer` issued or reserved: until then its CRLs
    /// must be published (see `ca rollover`). `None` when it issued nothing.
    fn latest_not_after(&self, issuer: &str) -> Result<Option<time::OffsetDateTime>, StoreError> {
        let query = CertificateQuery { issuer: Some(issuer.to_owned()), ..Default::default() };
        Ok(self.find(&query)?.iter().map(|r| r.not_after).max())
    }
}
