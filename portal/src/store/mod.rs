//! The portal's storage: accounts, the password-attempt counters, the journal of failed
//! logins, sessions, one-time passwords, single-use challenges and request ids, and the mail
//! outbox. The portal owns these tables in its own database; nothing here touches the CA's.
//!
//! [`PortalStore`] is the boundary, implemented by [`SqlitePortalStore`] (the embedded default)
//! and [`PgPortalStore`] (PostgreSQL, for several portal processes on one database); one
//! behavioural suite (`portal/tests/store_suite`) runs on both. Every method that decides
//! something under concurrency (the lockout gate, a one-time password check, a challenge, a
//! request id) does its read and its write in one transaction.

mod decide;
pub mod documents;
pub mod phone;
mod postgres;
mod sqlite;

pub use documents::DocumentStore;
pub use phone::PhoneStore;
pub use postgres::{PgPortalStore, PASSWORD_ENV, PASSWORD_FILE_ENV};
pub use sqlite::SqlitePortalStore;

use ca_core::store::{NonceStore, StoreError};
use time::OffsetDateTime;

use crate::account::{AccountKind, AccountState, CreatedBy};

/// Open the store `config` names: the SQLite file (created if new), or the PostgreSQL
/// database (its schema brought up to date).
pub fn open(config: &crate::config::StoreConfig) -> Result<std::sync::Arc<dyn PortalStore>, StoreError> {
    use crate::config::StoreConfig;
    Ok(match config {
        StoreConfig::Sqlite(path) => std::sync::Arc::new(SqlitePortalStore::open(path)?),
        StoreConfig::Postgres(pg) => std::sync::Arc::new(PgPortalStore::connect(&pg.url, pg.password()?.as_deref())?),
    })
}

/// When a store last purged the used request ids: logins purge at most every
/// [`PurgeSchedule::EVERY_MS`] (a batch instead of a row per login; an id kept a little longer
/// than it must be is refused as expired anyway). One per store, so per process.
#[derive(Debug)]
pub(crate) struct PurgeSchedule(std::sync::atomic::AtomicI64);

impl PurgeSchedule {
    pub(crate) const EVERY_MS: i64 = 1_000;

    pub(crate) fn new() -> Self {
        Self(std::sync::atomic::AtomicI64::new(i64::MIN))
    }

    /// Whether a purge is due at `now_ms`; `true` claims it (one caller of several).
    pub(crate) fn due(&self, now_ms: i64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let last = self.0.load(Relaxed);
        now_ms.saturating_sub(last) >= Self::EVERY_MS && self.0.compare_exchange(last, now_ms, Relaxed, Relaxed).is_ok()
    }
}

/// Unix milliseconds: the unit of every time column, in both backends.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_millis(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(format!("time {ms}: {e}")))
}

/// An account as stored. The password hash is a PHC string (Argon2id with its parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    /// The IIN (individual) or BIN (legal entity) the account logs in with.
    pub login: String,
    pub kind: AccountKind,
    /// The individual, or the person acting for the legal entity.
    pub iin: String,
    pub bin: Option<String>,
    pub email: String,
    pub password_hash: String,
    pub state: AccountState,
    pub created_by: CreatedBy,
    pub created_at: OffsetDateTime,
}

/// An account to create.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub login: String,
    pub kind: AccountKind,
    pub iin: String,
    pub bin: Option<String>,
    pub email: String,
    pub password_hash: String,
    pub state: AccountState,
    pub created_by: CreatedBy,
    pub at: OffsetDateTime,
}

/// A message to queue in the outbox.
#[derive(Clone, Debug)]
pub struct NewMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// A queued message.
#[derive(Clone, Debug)]
pub struct QueuedMail {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created_at: OffsetDateTime,
    pub attempts: u32,
}

/// A password change: the new hash and state, and what goes with it in the same transaction.
#[derive(Clone, Debug)]
pub struct PasswordChange {
    pub account_id: i64,
    pub password_hash: String,
    pub state: AccountState,
    pub at: OffsetDateTime,
    /// End every session of the account (a recovery: whoever held a session loses it).
    pub end_sessions: bool,
    /// Queued with the change (the generated password's notice), so neither exists alone.
    pub mail: Option<NewMail>,
}

/// What the password-login gate says before a password is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptGate {
    /// The attempt may go on; it is already counted as a failure (`failures` now), so
    /// concurrent attempts can never together exceed the limit. A success resets the count.
    Allowed { failures: u32 },
    /// The limit is reached: password login for this IIN/BIN is closed until `until`.
    Locked { until: OffsetDateTime },
}

/// One failed login attempt, journaled for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedAttempt {
    pub at: OffsetDateTime,
    /// The IIN/BIN given (or found in the signer's certificate); empty when there was none.
    pub login: String,
    /// `password`, `eds`, `otp`, `recovery-eds`.
    pub method: String,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// Machine-readable: `wrong-password`, `unknown-account`, `locked`, `signature-invalid` …
    pub reason: String,
}

/// What [`PortalStore::create_or_reset_account`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterOutcome {
    Created,
    Reset,
    /// The account exists and is blocked: left as it was.
    Blocked,
}

/// A session to open; the token itself is never stored, only its SHA-256.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub token_hash: [u8; 32],
    pub account_id: i64,
    pub method: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// A session as listed to its account.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    pub id: i64,
    #[serde(skip)]
    pub account_id: i64,
    pub method: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// A login as the account's journal shows it: a session that was opened, still open or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRecord {
    pub session: SessionInfo,
    /// When it was ended (logout, ended from the cabinet, a recovery, found expired); `None`
    /// while it has not been ended explicitly (it may still have expired or gone idle).
    pub ended_at: Option<OffsetDateTime>,
}

/// What looking up a session token found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionLookup {
    /// Valid; its last use is now `now`.
    Active(SessionInfo),
    /// Past its expiry or idle for longer than allowed (now ended).
    Expired,
    /// Logged out, or never issued.
    Unknown,
}

/// A one-time password to store (only a salted hash of the code).
#[derive(Clone, Debug)]
pub struct NewOtp {
    /// What it is for (`login`, later `phone-binding`, `consent`).
    pub purpose: String,
    /// Whom it was sent for (the login, or a phone number).
    pub subject: String,
    pub salt: [u8; 16],
    pub code_hash: [u8; 32],
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// What checking a one-time password found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpOutcome {
    /// The code matched and is now used up.
    Accepted,
    /// Wrong code; `attempts_left` more tries on this code.
    Wrong { attempts_left: u32 },
    /// Expired, used up, out of attempts, or never sent.
    NoValidCode,
}

/// The portal's storage.
pub trait PortalStore: NonceStore + DocumentStore + PhoneStore + Send + Sync {
    /// Create an account; `Ok(None)` if the login already has one (nothing changed).
    fn create_account(&self, account: &NewAccount) -> Result<Option<i64>, StoreError>;
    fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError>;
    fn account_by_id(&self, id: i64) -> Result<Option<Account>, StoreError>;
    /// Create the account, or give an existing one `account`'s password hash and state (the
    /// counter flow), in one transaction: `Created`, `Reset`, or `Blocked` when the existing
    /// account is blocked (then nothing changes: a new password does not lift a block).
    fn create_or_reset_account(&self, account: &NewAccount) -> Result<CounterOutcome, StoreError>;
    /// Change a password (see [`PasswordChange`]), atomically.
    fn change_password(&self, change: &PasswordChange) -> Result<(), StoreError>;

    /// Count a password attempt for `login` before the password is checked: the check of the
    /// limit and the increment are one transaction. A lock whose time is over is lifted
    /// (the count starts again).
    fn begin_password_attempt(
        &self,
        login: &str,
        now: OffsetDateTime,
        max_failures: u32,
        lock_for: time::Duration,
    ) -> Result<AttemptGate, StoreError>;
    /// The password was right: the count for `login` starts again.
    fn password_attempt_succeeded(&self, login: &str) -> Result<(), StoreError>;

    /// Append to the journal of failed attempts (append-only: the table refuses updates and
    /// deletes).
    fn journal_failure(&self, attempt: &FailedAttempt) -> Result<(), StoreError>;
    /// The journal, oldest first; for one login or all.
    fn failed_attempts(&self, login: Option<&str>, limit: u32) -> Result<Vec<FailedAttempt>, StoreError>;
    /// The last `limit` failed attempts for `login`, newest first (the cabinet's journal).
    fn recent_failed_attempts(&self, login: &str, limit: u32) -> Result<Vec<FailedAttempt>, StoreError>;

    fn create_session(&self, session: &NewSession) -> Result<i64, StoreError>;
    /// Use the single-use id `used` (a challenge) and open `session` in one transaction:
    /// `None` (and no session) when the id was already used. The id is remembered until
    /// `keep_until`. May be committed without an fsync of its own (durable against a crash of
    /// the process, not of the OS): see [`SqlitePortalStore`]'s module documentation.
    fn open_session_using(
        &self,
        used: &[u8; 32],
        keep_until: OffsetDateTime,
        session: &NewSession,
    ) -> Result<Option<i64>, StoreError>;
    /// The 32-byte key that authenticates the portal's challenges, made when the database was
    /// created (so every process on it, and a restart, accept the same challenges).
    fn challenge_key(&self) -> Result<[u8; 32], StoreError>;
    /// Find the session of a token hash and mark it used at `now`, unless it expired or was
    /// idle for longer than `idle`. May be committed without an fsync of its own, like
    /// [`open_session_using`](Self::open_session_using).
    fn touch_session(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
        idle: time::Duration,
    ) -> Result<SessionLookup, StoreError>;
    /// End the session `id` of account `account_id`; `false` if there was none to end.
    fn end_session(&self, account_id: i64, id: i64, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// The account's last `limit` logins (every session opened, ended or not), newest first.
    fn logins_of(&self, account_id: i64, limit: u32) -> Result<Vec<LoginRecord>, StoreError>;
    /// The account's open sessions (not ended, not expired, not idle past `idle`).
    fn sessions_of(
        &self,
        account_id: i64,
        now: OffsetDateTime,
        idle: time::Duration,
    ) -> Result<Vec<SessionInfo>, StoreError>;

    /// Store a one-time password; earlier unused ones of the same purpose and subject stop
    /// being valid.
    fn issue_otp(&self, otp: &NewOtp) -> Result<(), StoreError>;
    /// Check a code against the current one-time password of `purpose`/`subject`, counting
    /// the attempt, in one transaction. `matches(salt, code_hash)` says whether the code
    /// given hashes to `code_hash`.
    fn check_otp(
        &self,
        purpose: &str,
        subject: &str,
        now: OffsetDateTime,
        max_attempts: u32,
        matches: &dyn Fn(&[u8], &[u8]) -> bool,
    ) -> Result<OtpOutcome, StoreError>;

    /// Due messages (at most 100), leased until `now + lease`: another mailer (another process
    /// on the same database) skips them, and a mailer that dies leaves them due again when the
    /// lease ends. [`mail_sent`](Self::mail_sent) or [`mail_failed`](Self::mail_failed) ends it.
    fn claim_mail(&self, now: OffsetDateTime, lease: time::Duration) -> Result<Vec<QueuedMail>, StoreError>;
    /// Delivered: marked sent and its body (which may hold a generated password) erased.
    fn mail_sent(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Not delivered: try again at `next_attempt_at`.
    fn mail_failed(&self, id: i64, error: &str, next_attempt_at: OffsetDateTime) -> Result<(), StoreError>;
}
