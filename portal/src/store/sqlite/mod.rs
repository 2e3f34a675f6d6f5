//! The portal store in a SQLite file: one read-write connection behind a mutex, WAL with
//! `synchronous=FULL`, every write one `BEGIN IMMEDIATE` transaction. The file holds personal
//! data and password hashes, so it is created readable by its owner only. The reads of every
//! login and every authenticated request (an account by login or id) use the writer when it is
//! free (its page cache is current) and otherwise one of the read-only connections beside it
//! (ca-core's [`Readers`]), so they never queue behind a commit.
//!
//! [`Readers`]: ca_core::store::sqlite::readers::Readers
//!
//! Two writes are committed with `synchronous=NORMAL` instead (no fsync of their own; the WAL
//! is synced by the next FULL commit or checkpoint): opening a session after a signature login
//! (with the challenge's use) and touching a session. The connection stays at NORMAL after one
//! of them until a write that needs FULL takes it (every other access sets FULL first), so a
//! run of logins changes the setting once, not twice per login (SQLite compiles a `PRAGMA`
//! again on every run). They survive a crash or restart of the
//! process; only an OS crash or power cut can lose the last ones, and what is lost then costs
//! nothing but a new login: a session that is gone, or a `last_seen_at` that is older (stricter).
//! A lost challenge use cannot be replayed: the portal refuses challenges issued before it
//! started ([`crate::login::challenge`]). Everything that ends a session, changes a password,
//! counts a failed attempt or creates an account stays FULL.
//!
//! WAL checkpoints (two fsyncs each, every ~100 logins with SQLite's default of 1,000 pages)
//! are taken off the request path by ca-core's [`Checkpointer`], as for the CA's store: a thread
//! of the store checkpoints every second on a connection of its own (PASSIVE: it never waits
//! for, nor blocks, a writer); the automatic checkpoint stays as a backstop.
//!
//! [`Checkpointer`]: ca_core::store::sqlite::checkpointer::Checkpointer

mod auth;
mod documents;
mod migrations;
mod phone;
#[cfg(test)]
mod tests;

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ca_core::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use super::{Account, NewAccount, PasswordChange, PortalStore};
use crate::account::{AccountKind, AccountState, CreatedBy};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The portal's store in SQLite.
pub struct SqlitePortalStore {
    writer: Mutex<Writer>,
    /// Read-only connections for the hot reads (accounts by login or id), beside the writer
    /// (file stores only; an in-memory store reads on its writer).
    readers: Option<ca_core::store::sqlite::readers::Readers>,
    purges: super::PurgeSchedule,
    /// Checkpoints the WAL off the write path (file stores only); stops when dropped.
    _checkpointer: Option<ca_core::store::sqlite::checkpointer::Checkpointer>,
}

trait Context<T> {
    fn context(self, what: &str) -> Result<T, StoreError>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn context(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Database(format!("{what}: {e}")))
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Database(format!("{}: {e}", what())))
    }
}

pub(crate) use super::{from_millis, millis};

impl SqlitePortalStore {
    /// Open (or create, mode 0600) the store at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        create_private(path).map_err(|e| StoreError::Database(format!("{location}: {e}")))?;
        let conn = Connection::open(path).with_context(|| format!("opening {location}"))?;
        conn.busy_timeout(BUSY_TIMEOUT).context("setting the busy timeout")?;
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).context("switching to WAL")?;
        let checkpointer =
            ca_core::store::sqlite::checkpointer::Checkpointer::start(&conn, path, "portal-db-checkpoint")?;
        let mut store = Self::finish_open(conn, &location)?;
        store._checkpointer = Some(checkpointer);
        store.readers = Some(ca_core::store::sqlite::readers::Readers::new(path.to_path_buf()));
        Ok(store)
    }

    /// A private store in memory, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().context("opening an in-memory database")?;
        Self::finish_open(conn, ":memory:")
    }

    fn finish_open(mut conn: Connection, location: &str) -> Result<Self, StoreError> {
        conn.pragma_update(None, "synchronous", "FULL").context("setting synchronous=FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON").context("enabling foreign keys")?;
        migrations::migrate(&mut conn, location, millis(OffsetDateTime::now_utc()))?;
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, key.as_mut())
            .map_err(|e| StoreError::Database(format!("random: {e}")))?;
        // The first process to open a new database makes the key; the others keep it.
        conn.execute(
            "INSERT INTO secrets (name, value) VALUES ('challenge-key', ?1) ON CONFLICT (name) DO NOTHING",
            [&key[..]],
        )
        .context("making the challenge key")?;
        Ok(Self {
            writer: Mutex::new(Writer { conn, relaxed: false }),
            readers: None,
            purges: super::PurgeSchedule::new(),
            _checkpointer: None,
        })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        migrations::current_version(&*self.lock()?)
    }

    /// The writer at `synchronous=FULL`: every access but the two relaxed writes.
    fn lock(&self) -> Result<WriterGuard<'_>, StoreError> {
        self.writer_at(false)
    }

    /// The writer at `synchronous=NORMAL`, for the writes the module documentation names.
    fn lock_relaxed(&self) -> Result<WriterGuard<'_>, StoreError> {
        self.writer_at(true)
    }

    fn writer_at(&self, relaxed: bool) -> Result<WriterGuard<'_>, StoreError> {
        let mut writer = self.writer.lock().unwrap_or_else(|poisoned| {
            let mut writer = poisoned.into_inner();
            if !writer.conn.is_autocommit() {
                let _ = writer.conn.execute_batch("ROLLBACK");
            }
            // Unknown after a panic: set again below.
            writer.relaxed = !relaxed;
            self.writer.clear_poison();
            writer
        });
        if writer.relaxed != relaxed {
            let pragma = if relaxed { "PRAGMA synchronous = NORMAL" } else { "PRAGMA synchronous = FULL" };
            // A PRAGMA is compiled again on each run whether cached or not; cached, it is
            // at least not parsed from scratch.
            writer
                .conn
                .prepare_cached(pragma)
                .and_then(|mut st| st.execute([]).map(drop))
                .with_context(|| format!("setting {pragma}"))?;
            writer.relaxed = relaxed;
        }
        Ok(WriterGuard(writer))
    }

    /// A read-only connection for a hot read (the writer for an in-memory store).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        // The writer when it is free: its page cache is current, where a reader's is emptied by
        // every commit since its last read.
        if let Ok(writer) = self.writer.try_lock() {
            return f(&writer.conn);
        }
        match &self.readers {
            Some(readers) => f(&*readers.get()?),
            None => f(&*self.lock()?),
        }
    }
}

/// A `BEGIN IMMEDIATE` transaction on statements prepared once per connection (rusqlite's
/// `Transaction` parses `BEGIN` and `COMMIT` again each time, a tenth of a login's commit);
/// rolled back unless committed. For the writes of every login.
struct Immediate<'c> {
    conn: &'c Connection,
    committed: bool,
}

impl<'c> Immediate<'c> {
    fn begin(conn: &'c Connection) -> Result<Self, StoreError> {
        run_cached(conn, "BEGIN IMMEDIATE").context("starting a transaction")?;
        Ok(Self { conn, committed: false })
    }

    fn commit(mut self) -> Result<(), StoreError> {
        run_cached(self.conn, "COMMIT").context("committing")?;
        self.committed = true;
        Ok(())
    }
}

impl Deref for Immediate<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        if !self.committed && !self.conn.is_autocommit() {
            if let Err(e) = run_cached(self.conn, "ROLLBACK") {
                tracing::warn!(error = %e, "rolling back a transaction failed");
            }
        }
    }
}

fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql).and_then(|mut st| st.execute([]).map(drop))
}

/// The store's one read-write connection, and whether it was left at `synchronous=NORMAL`.
struct Writer {
    conn: Connection,
    relaxed: bool,
}

/// The writer, taken at the durability its user asked for.
struct WriterGuard<'a>(MutexGuard<'a, Writer>);

impl Deref for WriterGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

impl DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0.conn
    }
}

/// Create the file readable and writable by its owner only (an existing one is narrowed).
fn create_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

const ACCOUNT_COLUMNS: &str = "id, login, kind, iin, bin, email, password_hash, state, created_by, created_at";

fn account_row(r: &Row<'_>) -> rusqlite::Result<(Account, i64)> {
    let kind: String = r.get(2)?;
    let state: String = r.get(7)?;
    let created_by: String = r.get(8)?;
    let bad = |what: &str, v: &str| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("{what} {v:?}").into())
    };
    Ok((
        Account {
            id: r.get(0)?,
            login: r.get(1)?,
            kind: AccountKind::from_name(&kind).ok_or_else(|| bad("account kind", &kind))?,
            iin: r.get(3)?,
            bin: r.get(4)?,
            email: r.get(5)?,
            password_hash: r.get(6)?,
            state: AccountState::from_name(&state).ok_or_else(|| bad("account state", &state))?,
            created_by: CreatedBy::from_name(&created_by).ok_or_else(|| bad("created by", &created_by))?,
            created_at: OffsetDateTime::UNIX_EPOCH,
        },
        r.get(9)?,
    ))
}

impl SqlitePortalStore {
    fn account_where(&self, condition: &str, value: &dyn rusqlite::ToSql) -> Result<Option<Account>, StoreError> {
        let row = self.read(|conn| {
            conn.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {condition}"))
                .and_then(|mut s| s.query_row([value], account_row).optional())
                .context("reading an account")
        })?;
        row.map(|(mut a, created)| {
            a.created_at = from_millis(created)?;
            Ok(a)
        })
        .transpose()
    }
}

fn insert_account(conn: &Connection, a: &NewAccount) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO accounts (login, kind, iin, bin, email, password_hash, state, created_by, created_at, password_changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )?
    .execute(params![
        a.login,
        a.kind.name(),
        a.iin,
        a.bin,
        a.email,
        a.password_hash,
        a.state.name(),
        a.created_by.name(),
        millis(a.at)
    ])?;
    Ok(conn.last_insert_rowid())
}

impl PortalStore for SqlitePortalStore {
    fn create_account(&self, account: &NewAccount) -> Result<Option<i64>, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let exists: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM accounts WHERE login = ?1)", [&account.login], |r| r.get(0))
            .context("looking for an account")?;
        if exists {
            return Ok(None);
        }
        let id = insert_account(&tx, account).context("creating an account")?;
        tx.commit().context("committing an account")?;
        Ok(Some(id))
    }

    fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError> {
        self.account_where("login = ?1", &login)
    }

    fn account_by_id(&self, id: i64) -> Result<Option<Account>, StoreError> {
        self.account_where("id = ?1", &id)
    }

    fn create_or_reset_account(&self, account: &NewAccount) -> Result<super::CounterOutcome, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let state: Option<String> = tx
            .query_row("SELECT state FROM accounts WHERE login = ?1", [&account.login], |r| r.get(0))
            .optional()
            .context("reading an account's state")?;
        let outcome = match state.as_deref() {
            Some(s) if s == AccountState::Blocked.name() => super::CounterOutcome::Blocked,
            Some(_) => {
                tx.execute(
                    "UPDATE accounts SET password_hash = ?2, state = ?3, password_changed_at = ?4 WHERE login = ?1",
                    params![account.login, account.password_hash, account.state.name(), millis(account.at)],
                )
                .context("resetting an account's password")?;
                super::CounterOutcome::Reset
            }
            None => {
                insert_account(&tx, account).context("creating an account")?;
                super::CounterOutcome::Created
            }
        };
        tx.commit().context("committing an account")?;
        Ok(outcome)
    }

    fn change_password(&self, change: &PasswordChange) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let at = millis(change.at);
        let n = tx
            .execute(
                "UPDATE accounts SET password_hash = ?2, state = ?3, password_changed_at = ?4 WHERE id = ?1",
                params![change.account_id, change.password_hash, change.state.name(), at],
            )
            .context("changing a password")?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!("no account {}", change.account_id)));
        }
        if change.end_sessions {
            tx.execute(
                "UPDATE sessions SET ended_at = ?2 WHERE account_id = ?1 AND ended_at IS NULL",
                params![change.account_id, at],
            )
            .context("ending the account's sessions")?;
        }
        if let Some(mail) = &change.mail {
            tx.execute(
                "INSERT INTO outbox (recipient, subject, body, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![mail.to, mail.subject, mail.body, at],
            )
            .context("queueing a message")?;
        }
        tx.commit().context("committing a password change")
    }

    fn begin_password_attempt(
        &self,
        login: &str,
        now: OffsetDateTime,
        max_failures: u32,
        lock_for: time::Duration,
    ) -> Result<super::AttemptGate, StoreError> {
        auth::begin_password_attempt(&mut *self.lock()?, login, now, max_failures, lock_for)
    }

    fn password_attempt_succeeded(&self, login: &str) -> Result<(), StoreError> {
        self.lock()?
            .execute("DELETE FROM password_attempts WHERE login = ?1", [login])
            .context("resetting the password attempts")?;
        Ok(())
    }

    fn journal_failure(&self, a: &super::FailedAttempt) -> Result<(), StoreError> {
        auth::journal_failure(&*self.lock()?, a)
    }

    fn failed_attempts(&self, login: Option<&str>, limit: u32) -> Result<Vec<super::FailedAttempt>, StoreError> {
        auth::failed_attempts(&*self.lock()?, login, limit)
    }

    fn recent_failed_attempts(&self, login: &str, limit: u32) -> Result<Vec<super::FailedAttempt>, StoreError> {
        auth::recent_failed_attempts(&*self.lock()?, login, limit)
    }

    fn create_session(&self, s: &super::NewSession) -> Result<i64, StoreError> {
        auth::create_session(&*self.lock()?, s)
    }

    fn open_session_using(
        &self,
        used: &[u8; 32],
        keep_until: OffsetDateTime,
        session: &super::NewSession,
    ) -> Result<Option<i64>, StoreError> {
        let conn = self.lock_relaxed()?;
        let tx = Immediate::begin(&conn)?;
        let now = session.created_at;
        if self.purges.due(millis(now)) {
            NONCE_TABLES.purge_request_ids(&tx, now)?;
        }
        if !NONCE_TABLES.record_request_id(&tx, used, now, keep_until)? {
            return Ok(None);
        }
        let id = auth::create_session(&tx, session)?;
        tx.commit()?;
        Ok(Some(id))
    }

    fn challenge_key(&self) -> Result<[u8; 32], StoreError> {
        let conn = self.lock()?;
        let key: Vec<u8> = conn
            .query_row("SELECT value FROM secrets WHERE name = 'challenge-key'", [], |r| r.get(0))
            .context("reading the challenge key")?;
        key.try_into().map_err(|_| StoreError::Corrupt("the challenge key is not 32 bytes".into()))
    }

    fn touch_session(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
        idle: time::Duration,
    ) -> Result<super::SessionLookup, StoreError> {
        auth::touch_session(&mut *self.lock_relaxed()?, token_hash, now, idle)
    }

    fn end_session(&self, account_id: i64, id: i64, now: OffsetDateTime) -> Result<bool, StoreError> {
        let n = self
            .lock()?
            .execute(
                "UPDATE sessions SET ended_at = ?3 WHERE id = ?2 AND account_id = ?1 AND ended_at IS NULL",
                params![account_id, id, millis(now)],
            )
            .context("ending a session")?;
        Ok(n == 1)
    }

    fn logins_of(&self, account_id: i64, limit: u32) -> Result<Vec<super::LoginRecord>, StoreError> {
        auth::logins_of(&*self.lock()?, account_id, limit)
    }

    fn sessions_of(
        &self,
        account_id: i64,
        now: OffsetDateTime,
        idle: time::Duration,
    ) -> Result<Vec<super::SessionInfo>, StoreError> {
        auth::sessions_of(&*self.lock()?, account_id, now, idle)
    }

    fn issue_otp(&self, otp: &super::NewOtp) -> Result<(), StoreError> {
        auth::issue_otp(&mut *self.lock()?, otp)
    }

    fn check_otp(
        &self,
        purpose: &str,
        subject: &str,
        now: OffsetDateTime,
        max_attempts: u32,
        matches: &dyn Fn(&[u8], &[u8]) -> bool,
    ) -> Result<super::OtpOutcome, StoreError> {
        auth::check_otp(&mut *self.lock()?, purpose, subject, now, max_attempts, matches)
    }

    fn claim_mail(&self, now: OffsetDateTime, lease: time::Duration) -> Result<Vec<super::QueuedMail>, StoreError> {
        auth::claim_mail(&mut *self.lock()?, now, lease)
    }

    fn mail_sent(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "UPDATE outbox SET sent_at = ?2, body = '', attempts = attempts + 1 WHERE id = ?1",
                params![id, millis(now)],
            )
            .context("marking a message sent")?;
        Ok(())
    }

    fn mail_failed(&self, id: i64, error: &str, next_attempt_at: OffsetDateTime) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                params![id, error, millis(next_attempt_at)],
            )
            .context("recording a failed delivery")?;
        Ok(())
    }
}

/// The portal's challenges and request ids, through ca-core's SQLite [`NonceTables`] (one
/// statement per decision, one winner across connections).
///
/// [`NonceTables`]: ca_core::store::sqlite::nonces::NonceTables
const NONCE_TABLES: ca_core::store::sqlite::nonces::NonceTables =
    ca_core::store::sqlite::nonces::NonceTables { nonces: "challenges", request_ids: "request_ids" };

impl ca_core::store::NonceStore for SqlitePortalStore {
    fn issue_nonce(
        &self,
        nonce: &[u8],
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        purge_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        NONCE_TABLES.issue(&*self.lock()?, nonce, now, expires_at, purge_before)
    }

    fn consume_nonce(&self, nonce: &[u8], now: OffsetDateTime) -> Result<ca_core::store::NonceOutcome, StoreError> {
        NONCE_TABLES.consume(&*self.lock()?, nonce, now)
    }

    fn use_request_id(
        &self,
        id: &[u8; 32],
        now: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        NONCE_TABLES.use_request_id(&*self.lock()?, id, now, keep_until)
    }
}
