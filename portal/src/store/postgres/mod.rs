//! The portal store in PostgreSQL, for deployments where several `portal-server` processes (and
//! the SMS sender) share one database. The embedded default stays [`super::SqlitePortalStore`];
//! the two pass one behavioural suite (`portal/tests/store_suite`).
//!
//! **Client.** The store traits are synchronous and called from blocking code, so this store
//! uses ca-core's pool of synchronous `postgres` clients ([`ca_core::store::postgres::pool`]):
//! the same statement cache (every statement one round trip after its first use on a
//! connection) and the same transactions that take their first advisory lock in the round trip
//! that opens them. Sharing it rather than pulling in `deadpool`/`r2d2` keeps one pooling and
//! one connection-failure policy for both products, and the portal gets the CA store's fixes.
//!
//! **Serialisation.** SQLite serialises every write with `BEGIN IMMEDIATE`; here each decision
//! takes a transaction-scoped advisory lock on exactly what it decides about, as the first
//! statement of its transaction, so two processes decide one after the other while unrelated
//! decisions run in parallel:
//! - the lockout gate and a successful password: the login ([`keyed`]`("password", login)`),
//!   so no number of concurrent wrong passwords counts past the limit;
//! - a one-time password (issue and check): its purpose and subject, and the code's row is
//!   read `FOR UPDATE`;
//! - the counter's create-or-reset and a password change: the account;
//! - phone codes and bindings: one lock for the whole binding flow (send limits per IIN and per
//!   number, one current binding per number and per account), which is rare traffic;
//! - access codes: one lock for opening, withdrawing and resolving short codes (a code is unique
//!   among live grants; a wrong code counts against every live one);
//! - documents: the subject's document type (its versions).
//!
//! Single-use ids are single statements (`INSERT … ON CONFLICT DO NOTHING`, a conditional
//! `UPDATE`), and the SMS outbox is claimed with `FOR UPDATE SKIP LOCKED`.
//!
//! **Durability.** Every transaction commits synchronously except touching a session
//! (`synchronous_commit = off` for that transaction only): a crash of the database server may
//! lose the last `last_seen_at` updates, which only makes a session look idle for longer
//! (stricter). The use of a challenge is committed synchronously: the portal refuses challenges
//! from before *its* start, not from before the database's, so a lost use could be replayed.
//!
//! Units are the SQLite store's: times in unix milliseconds, hashes and nonces as bytes.

mod auth;
mod documents;
mod migrations;
mod nonces;
mod phone;

use ca_core::store::postgres::pool::{Cached, Conn, Pool, Tx};
use ca_core::store::StoreError;
use postgres::Row;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{
    from_millis, millis, Account, AttemptGate, CounterOutcome, FailedAttempt, LoginRecord, NewAccount, NewOtp,
    NewSession, OtpOutcome, PasswordChange, PortalStore, QueuedMail, SessionInfo, SessionLookup,
};
use crate::account::{AccountKind, AccountState, CreatedBy};

/// The variable the store password is read from unless `[store] password_env` names another.
pub const PASSWORD_ENV: &str = "PORTAL_STORE_PASSWORD";
/// The variable naming a file that holds the store password.
pub const PASSWORD_FILE_ENV: &str = "PORTAL_STORE_PASSWORD_FILE";

/// The advisory lock held while migrating ("portal-m" in ASCII).
const MIGRATION_LOCK: i64 = 0x706f_7274_616c_2d6d;

/// The portal's store in a PostgreSQL database.
pub struct PgPortalStore {
    pool: Pool,
    purges: super::PurgeSchedule,
}

impl std::fmt::Debug for PgPortalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPortalStore").field("database", &self.pool.location()).finish()
    }
}

/// A `postgres::Client` blocks on a runtime of its own when it is dropped, which panics on a
/// tokio worker thread, where an async server may drop the last handle of the store (at
/// shutdown, when the runtime drops its tasks). There the pooled connections are closed on a
/// thread of their own.
impl Drop for PgPortalStore {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let pool = std::mem::replace(&mut self.pool, Pool::new(postgres::Config::new(), String::new()));
        if let Err(e) = std::thread::Builder::new().name("portal-db-close".into()).spawn(move || drop(pool)) {
            tracing::warn!(error = %e, "no thread to close the store's connections on");
        }
    }
}

/// `postgres` errors become [`StoreError::Database`] saying what was being done.
trait Context<T> {
    fn context(self, what: &str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, postgres::Error> {
    fn context(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| {
            let detail = match e.as_db_error() {
                Some(db) => format!("{} ({})", db.message(), db.code().code()),
                None => e.to_string(),
            };
            StoreError::Database(format!("{what}: {detail}"))
        })
    }
}

/// The advisory-lock key of one thing decided about: `domain` and `key` hashed to 63 bits, so
/// the keys of different domains (and the CA's constants) do not meet in practice.
fn keyed(domain: &str, key: &[u8]) -> i64 {
    let digest = Sha256::new().chain_update(b"portal-lock\0").chain_update(domain).chain_update([0]).chain_update(key);
    let digest = digest.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first) & i64::MAX
}

/// A transaction under the advisory lock of `domain`/`key` (see the module documentation).
fn begin<'c>(conn: &'c mut Conn<'_>, domain: &str, key: &[u8]) -> Result<Tx<'c>, StoreError> {
    conn.begin(keyed(domain, key)).context("starting a transaction")
}

/// A column, with the error saying which.
fn col<'r, T: postgres::types::FromSql<'r>>(row: &'r Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

fn opt_time(ms: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    ms.map(from_millis).transpose()
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl PgPortalStore {
    /// Connect to the database at `url` (a URL without a password: it comes as `password`, from
    /// the environment or a file) and bring its schema up to date.
    pub fn connect(url: &str, password: Option<&str>) -> Result<Self, StoreError> {
        let probe: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Configuration(format!("the store URL is not a PostgreSQL URL: {e}")))?;
        if probe.get_password().is_some() {
            return Err(StoreError::Configuration(format!(
                "the store URL carries a password: remove it and give the password in {PASSWORD_ENV} or \
                 {PASSWORD_FILE_ENV} (or [store] password_env / password_file)"
            )));
        }
        let (mut config, location) = ca_core::store::postgres::parse_url(url, password)?;
        config.application_name("portal");
        let pool = Pool::new(config, location);
        let store = Self { pool, purges: super::PurgeSchedule::new() };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        let location = self.pool.location().to_owned();
        ca_core::store::postgres::migrations::apply(
            &mut conn,
            &location,
            OffsetDateTime::now_utc().unix_timestamp(),
            migrations::MIGRATIONS,
            migrations::TABLE,
            MIGRATION_LOCK,
        )?;
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, key.as_mut())
            .map_err(|e| StoreError::Database(format!("random: {e}")))?;
        // The first process to open a new database makes the key; the others keep it.
        conn.execute(
            "INSERT INTO secrets (name, value) VALUES ('challenge-key', $1) ON CONFLICT (name) DO NOTHING",
            &[&&key[..]],
        )
        .context("making the challenge key")?;
        Ok(())
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        ca_core::store::postgres::migrations::version_in(&mut *self.pool.get()?, migrations::TABLE)
    }

    fn conn(&self) -> Result<Conn<'_>, StoreError> {
        self.pool.get()
    }

    fn account_where(
        &self,
        condition: &str,
        value: &(dyn postgres::types::ToSql + Sync),
    ) -> Result<Option<Account>, StoreError> {
        let row = self
            .conn()?
            .query_opt_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {condition}"), &[value])
            .context("reading an account")?;
        row.as_ref().map(account).transpose()
    }
}

const ACCOUNT_COLUMNS: &str = "id, login, kind, iin, bin, email, password_hash, state, created_by, created_at";

fn account(r: &Row) -> Result<Account, StoreError> {
    let name = |i: usize, what: &str| -> Result<String, StoreError> {
        col::<String>(r, i).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
    };
    let bad = |what: &str, v: &str| StoreError::Corrupt(format!("accounts: {what} {v:?}"));
    let (kind, state, created_by) = (name(2, "kind")?, name(7, "state")?, name(8, "created by")?);
    Ok(Account {
        id: col(r, 0)?,
        login: col(r, 1)?,
        kind: AccountKind::from_name(&kind).ok_or_else(|| bad("account kind", &kind))?,
        iin: col(r, 3)?,
        bin: col(r, 4)?,
        email: col(r, 5)?,
        password_hash: col(r, 6)?,
        state: AccountState::from_name(&state).ok_or_else(|| bad("account state", &state))?,
        created_by: CreatedBy::from_name(&created_by).ok_or_else(|| bad("created by", &created_by))?,
        created_at: from_millis(col(r, 9)?)?,
    })
}

/// Insert `a` unless its login has an account by now: the new id, or `None`.
fn insert_account(tx: &mut impl Cached, a: &NewAccount) -> Result<Option<i64>, StoreError> {
    let row = tx
        .query_opt_cached(
            "INSERT INTO accounts (login, kind, iin, bin, email, password_hash, state, created_by, created_at, password_changed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (login) DO NOTHING RETURNING id",
            &[
                &a.login,
                &a.kind.name(),
                &a.iin,
                &a.bin,
                &a.email,
                &a.password_hash,
                &a.state.name(),
                &a.created_by.name(),
                &millis(a.at),
            ],
        )
        .context("creating an account")?;
    row.map(|r| col(&r, 0)).transpose()
}

fn queue_mail(tx: &mut impl Cached, mail: &super::NewMail, at: i64) -> Result<(), StoreError> {
    tx.execute_cached(
        "INSERT INTO outbox (recipient, subject, body, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)",
        &[&mail.to, &mail.subject, &mail.body, &at],
    )
    .context("queueing a message")?;
    Ok(())
}

impl PortalStore for PgPortalStore {
    fn create_account(&self, account: &NewAccount) -> Result<Option<i64>, StoreError> {
        insert_account(&mut self.conn()?, account)
    }

    fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError> {
        self.account_where("login = $1", &login)
    }

    fn account_by_id(&self, id: i64) -> Result<Option<Account>, StoreError> {
        self.account_where("id = $1", &id)
    }

    fn create_or_reset_account(&self, account: &NewAccount) -> Result<CounterOutcome, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = begin(&mut conn, "account", account.login.as_bytes())?;
        let state = |tx: &mut Tx<'_>| -> Result<Option<String>, StoreError> {
            tx.query_opt_cached("SELECT state FROM accounts WHERE login = $1 FOR UPDATE", &[&account.login])
                .context("reading an account's state")?
                .map(|r| col(&r, 0))
                .transpose()
        };
        let mut found = state(&mut tx)?;
        if found.is_none() {
            if insert_account(&mut tx, account)?.is_some() {
                tx.commit().context("committing an account")?;
                return Ok(CounterOutcome::Created);
            }
            // Created meanwhile by a registration: it exists, so it is reset.
            found = state(&mut tx)?;
        }
        let outcome = match found.as_deref() {
            Some(s) if s == AccountState::Blocked.name() => CounterOutcome::Blocked,
            Some(_) => {
                tx.execute_cached(
                    "UPDATE accounts SET password_hash = $2, state = $3, password_changed_at = $4 WHERE login = $1",
                    &[&account.login, &account.password_hash, &account.state.name(), &millis(account.at)],
                )
                .context("resetting an account's password")?;
                CounterOutcome::Reset
            }
            None => return Err(StoreError::Database(format!("account {} vanished", account.login))),
        };
        tx.commit().context("committing an account")?;
        Ok(outcome)
    }

    fn change_password(&self, change: &PasswordChange) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = begin(&mut conn, "account-id", &change.account_id.to_be_bytes())?;
        let at = millis(change.at);
        let n = tx
            .execute_cached(
                "UPDATE accounts SET password_hash = $2, state = $3, password_changed_at = $4 WHERE id = $1",
                &[&change.account_id, &change.password_hash, &change.state.name(), &at],
            )
            .context("changing a password")?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!("no account {}", change.account_id)));
        }
        if change.end_sessions {
            tx.execute_cached(
                "UPDATE sessions SET ended_at = $2 WHERE account_id = $1 AND ended_at IS NULL",
                &[&change.account_id, &at],
            )
            .context("ending the account's sessions")?;
        }
        if let Some(mail) = &change.mail {
            queue_mail(&mut tx, mail, at)?;
        }
        tx.commit().context("committing a password change")
    }

    fn begin_password_attempt(
        &self,
        login: &str,
        now: OffsetDateTime,
        max_failures: u32,
        lock_for: time::Duration,
    ) -> Result<AttemptGate, StoreError> {
        auth::begin_password_attempt(&mut self.conn()?, login, now, max_failures, lock_for)
    }

    fn password_attempt_succeeded(&self, login: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        // Under the gate's lock, so a reset never interleaves with a count.
        let mut tx = begin(&mut conn, "password", login.as_bytes())?;
        tx.execute_cached("DELETE FROM password_attempts WHERE login = $1", &[&login])
            .context("resetting the password attempts")?;
        tx.commit().context("committing the reset")
    }

    fn journal_failure(&self, a: &FailedAttempt) -> Result<(), StoreError> {
        auth::journal_failure(&mut self.conn()?, a)
    }

    fn failed_attempts(&self, login: Option<&str>, limit: u32) -> Result<Vec<FailedAttempt>, StoreError> {
        auth::failed_attempts(&mut self.conn()?, login, limit)
    }

    fn recent_failed_attempts(&self, login: &str, limit: u32) -> Result<Vec<FailedAttempt>, StoreError> {
        auth::recent_failed_attempts(&mut self.conn()?, login, limit)
    }

    fn logins_of(&self, account_id: i64, limit: u32) -> Result<Vec<LoginRecord>, StoreError> {
        auth::logins_of(&mut self.conn()?, account_id, limit)
    }

    fn create_session(&self, s: &NewSession) -> Result<i64, StoreError> {
        auth::create_session(&mut self.conn()?, s)
    }

    fn open_session_using(
        &self,
        used: &[u8; 32],
        keep_until: OffsetDateTime,
        session: &NewSession,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = begin(&mut conn, "request-id", used)?;
        let now = millis(session.created_at);
        if self.purges.due(now) {
            tx.execute_cached("DELETE FROM request_ids WHERE keep_until < $1", &[&now])
                .context("purging request ids")?;
        }
        let inserted = tx
            .execute_cached(
                "INSERT INTO request_ids (id, used_at, keep_until) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                &[&&used[..], &now, &millis(keep_until)],
            )
            .context("recording a used challenge")?;
        if inserted != 1 {
            return Ok(None);
        }
        let id = auth::create_session(&mut tx, session)?;
        tx.commit().context("committing a session")?;
        Ok(Some(id))
    }

    fn challenge_key(&self) -> Result<[u8; 32], StoreError> {
        let row = self
            .conn()?
            .query_one_cached("SELECT value FROM secrets WHERE name = 'challenge-key'", &[])
            .context("reading the challenge key")?;
        let key: Vec<u8> = col(&row, 0)?;
        key.try_into().map_err(|_| StoreError::Corrupt("the challenge key is not 32 bytes".into()))
    }

    fn touch_session(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
        idle: time::Duration,
    ) -> Result<SessionLookup, StoreError> {
        auth::touch_session(&mut self.conn()?, token_hash, now, idle)
    }

    fn end_session(&self, account_id: i64, id: i64, now: OffsetDateTime) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute_cached(
                "UPDATE sessions SET ended_at = $3 WHERE id = $2 AND account_id = $1 AND ended_at IS NULL",
                &[&account_id, &id, &millis(now)],
            )
            .context("ending a session")?;
        Ok(n == 1)
    }

    fn sessions_of(
        &self,
        account_id: i64,
        now: OffsetDateTime,
        idle: time::Duration,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        auth::sessions_of(&mut self.conn()?, account_id, now, idle)
    }

    fn issue_otp(&self, otp: &NewOtp) -> Result<(), StoreError> {
        auth::issue_otp(&mut self.conn()?, otp)
    }

    fn check_otp(
        &self,
        purpose: &str,
        subject: &str,
        now: OffsetDateTime,
        max_attempts: u32,
        matches: &dyn Fn(&[u8], &[u8]) -> bool,
    ) -> Result<OtpOutcome, StoreError> {
        auth::check_otp(&mut self.conn()?, purpose, subject, now, max_attempts, matches)
    }

    fn claim_mail(&self, now: OffsetDateTime, lease: time::Duration) -> Result<Vec<QueuedMail>, StoreError> {
        auth::claim_mail(&mut self.conn()?, now, lease)
    }

    fn mail_sent(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        self.conn()?
            .execute_cached(
                "UPDATE outbox SET sent_at = $2, body = '', attempts = attempts + 1 WHERE id = $1",
                &[&id, &millis(now)],
            )
            .context("marking a message sent")?;
        Ok(())
    }

    fn mail_failed(&self, id: i64, error: &str, next_attempt_at: OffsetDateTime) -> Result<(), StoreError> {
        self.conn()?
            .execute_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1",
                &[&id, &error, &millis(next_attempt_at)],
            )
            .context("recording a failed delivery")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_a_password_is_refused_without_repeating_it() {
        let err = PgPortalStore::connect("postgres://portal:hunter2@127.0.0.1:1/portal", None).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Configuration(_)), "{message}");
        assert!(message.contains(PASSWORD_ENV) && !message.contains("hunter2"), "{message}");
        assert!(PgPortalStore::connect("not a url ://", None).is_err());
    }

    #[test]
    fn lock_keys_differ_by_domain_and_key_and_are_positive() {
        let keys = [keyed("password", b"1"), keyed("password", b"2"), keyed("otp", b"1"), keyed("otp", b"")];
        for (i, a) in keys.iter().enumerate() {
            assert!(*a >= 0);
            assert!(keys[i + 1..].iter().all(|b| a != b));
        }
        assert_eq!(keyed("password", b"1"), keys[0], "stable across calls (and processes)");
    }
}
