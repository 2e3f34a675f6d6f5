//! SQLite implementation of the store.
//!
//! One read-write connection behind a mutex, and read-only connections for the hot reads
//! (status look-ups, listings, CRL snapshots: [`readers`]); the WAL is checkpointed by a thread
//! of the store ([`checkpointer`]), not inside a commit. The file runs in WAL mode with
//! `synchronous=FULL`, so a call that returned `Ok` survives a power cut, and with a busy timeout
//! so the CLI and the server can share it. Every write is one `BEGIN IMMEDIATE` transaction: the write lock is taken before the
//! first read, so the audit chain head read at the start cannot change before the commit.
//!
//! Certificate times are stored in unix seconds (the precision of X.509 and CRLs): records read
//! back carry whole seconds. Audit times are stored in unix nanoseconds, exactly what the entry
//! hash covers.

mod audit;
pub mod checkpointer;
mod crls;
mod files;
mod migrations;
pub mod nonces;
mod ra;
pub mod readers;
mod receipts;
mod rows;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior};
use time::OffsetDateTime;

use super::audit::{entry_hash, AuditEntry, AuditEvent, AuditQuery, AuditSink, AuditVerification, ChainVerifier};
use super::chain::{now, ChainHead, Now};
use super::{
    CertificateQuery, CertificateRecord, CertificateState, CertificateStatus, CrlKind, CrlRecord, EntrySink, Issued,
    ReleaseOutcome, Reservation, Revocation, RevokeOutcome, Store, StoreError,
};
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Distinct statements in use, including every filter combination of `find`.
const STATEMENT_CACHE_CAPACITY: usize = 64;
/// Audit rows read per lock acquisition while verifying, so writers are not held up for the
/// length of a full walk.
const VERIFY_BATCH: i64 = 10_000;

/// The store in a SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
    /// Read-only connections to the same file (`None` in memory, where a second connection
    /// would open another, empty database).
    readers: Option<readers::Readers>,
    /// The regulation's budgets and calendar, for the deadlines of application events.
    timing: std::sync::RwLock<std::sync::Arc<crate::ra::regulation::Timing>>,
    /// Checkpoints the WAL off the write path (file stores only); stops when dropped.
    _checkpointer: Option<checkpointer::Checkpointer>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open the store at `path`, creating it if needed, and bring its schema up to date.
    ///
    /// The file holds personal data (names, IINs, e-mail addresses): it is created readable by
    /// the owner only (0600), and an existing file, WAL and shared-memory index that are
    /// readable by others are narrowed to 0600. SQLite gives the `-wal` and `-shm` files it
    /// creates the database file's mode.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        files::restrict_permissions(path).map_err(|e| StoreError::Database(format!("{location}: permissions: {e}")))?;
        let conn = Connection::open(path).with_context(|| format!("opening {location}"))?;
        conn.busy_timeout(BUSY_TIMEOUT).context("setting the busy timeout")?;
        let mode: String =
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).context("switching to WAL mode")?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(store = %location, journal_mode = %mode, "the store could not switch to WAL mode");
        }
        Self::finish_open(conn, Some(path.to_path_buf()), &location)
    }

    /// A private store in memory, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().context("opening an in-memory database")?;
        Self::finish_open(conn, None, ":memory:")
    }

    fn finish_open(mut conn: Connection, path: Option<PathBuf>, location: &str) -> Result<Self, StoreError> {
        conn.pragma_update(None, "synchronous", "FULL").context("setting synchronous=FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON").context("enabling foreign keys")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        migrations::migrate(&mut conn, location, now()?.secs)?;
        index_certificate_keys(&mut conn)?;
        let readers = path.clone().map(readers::Readers::new);
        let checkpointer =
            path.as_deref().map(|p| checkpointer::Checkpointer::start(&conn, p, "ca-db-checkpoint")).transpose()?;
        Ok(Self { conn: Mutex::new(conn), path, readers, timing: Default::default(), _checkpointer: checkpointer })
    }

    /// Time application steps by `timing` (ca.toml's `[regulation]`) from now on; until then,
    /// by the document's budgets and Kazakhstan's fixed-date holidays.
    pub fn set_timing(&self, timing: crate::ra::regulation::Timing) {
        *self.timing.write().unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(timing);
    }

    /// The budgets and calendar application events are timed by.
    pub fn timing(&self) -> std::sync::Arc<crate::ra::regulation::Timing> {
        self.timing.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The file behind the store; `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        migrations::current_version(&self.lock())
    }

    /// A connection for a read that needs no write lock: a reader of its own for a store in a
    /// file, the one connection in memory.
    pub(in crate::store) fn read(&self) -> Result<Read<'_>, StoreError> {
        Ok(match &self.readers {
            Some(readers) => Read::Reader(readers.get()?),
            None => Read::Shared(self.lock()),
        })
    }

    pub(in crate::store) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| {
            // A panic while holding the lock unwound through `Transaction::drop`, which rolls
            // back; make sure of it and carry on.
            let conn = poisoned.into_inner();
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            self.conn.clear_poison();
            conn
        })
    }
}

/// A connection to read with: see [`SqliteStore::read`].
pub(in crate::store) enum Read<'a> {
    Reader(readers::Reader<'a>),
    Shared(MutexGuard<'a, Connection>),
}

impl std::ops::Deref for Read<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            Read::Reader(r) => r,
            Read::Shared(c) => c,
        }
    }
}

impl std::ops::DerefMut for Read<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        match self {
            Read::Reader(r) => r,
            Read::Shared(c) => c,
        }
    }
}

/// Give the certificates recorded before schema version 6 the key digest that finds them by
/// key (a key already certified is refused on a new application). A no-op once done: the
/// partial index holds only the rows still to do.
fn index_certificate_keys(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    let todo: Vec<(String, Vec<u8>)> = {
        let mut stmt = tx
            .prepare("SELECT serial, der FROM certificates WHERE spki_sha256 IS NULL AND der IS NOT NULL")
            .context("finding certificates without a key digest")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).context("reading certificates")?;
        rows.collect::<Result<_, _>>().context("reading certificates")?
    };
    for (serial, der) in &todo {
        if let Some(sha) = super::chain::certificate_key_sha256(der) {
            tx.execute("UPDATE certificates SET spki_sha256 = ?2 WHERE serial = ?1", params![serial, sha])
                .with_context(|| format!("indexing the key of certificate {serial}"))?;
        }
    }
    tx.commit().context("committing the key digests")
}

/// `rusqlite` errors become [`StoreError::Database`] saying what was being done.
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

fn is_primary_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::ConstraintViolation
            && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a write transaction")
}

fn chain_head(tx: &Transaction<'_>) -> Result<ChainHead, StoreError> {
    let last: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .context("reading the audit journal head")?;
    match last {
        None => Ok(ChainHead::GENESIS),
        Some((seq, hash)) => {
            let hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| {
                StoreError::Corrupt(format!("audit entry {seq}: hash is {} bytes, expected 32", hash.len()))
            })?;
            Ok(ChainHead { seq, hash })
        }
    }
}

/// Append `event` after `head` and move `head` on to it.
fn append(tx: &Transaction<'_>, head: &mut ChainHead, now: &Now, event: &AuditEvent) -> Result<(), StoreError> {
    let seq = head.seq + 1;
    let hash = entry_hash(seq, now.at, event, &head.hash);
    tx.prepare_cached(
        "INSERT INTO audit (seq, at_ns, actor, action, target, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            seq,
            now.at_ns,
            event.actor,
            event.action,
            event.target,
            event.details.to_string(),
            &head.hash[..],
            &hash[..],
        ])
    })
    .with_context(|| format!("appending audit entry {seq} ({})", event.action))?;
    *head = ChainHead { seq, hash };
    Ok(())
}

fn append_all(tx: &Transaction<'_>, now: &Now, events: &[AuditEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut head = chain_head(tx)?;
    events.iter().try_for_each(|event| append(tx, &mut head, now, event))
}

fn load_certificate(conn: &Connection, serial: &SerialNumber) -> Result<Option<CertificateRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {} FROM certificates WHERE serial = ?1", rows::CERTIFICATE_COLUMNS))
        .context("preparing a certificate lookup")?;
    let mut found = stmt.query([serial.to_hex()]).context("looking up a certificate")?;
    match found.next().context("reading a certificate")? {
        Some(row) => rows::certificate(row).map(Some),
        None => Ok(None),
    }
}

fn status_of(tx: &Transaction<'_>, serial: &SerialNumber) -> Result<Option<CertificateStatus>, StoreError> {
    let status: Option<String> = tx
        .prepare_cached("SELECT status FROM certificates WHERE serial = ?1")
        .and_then(|mut s| s.query_row([serial.to_hex()], |r| r.get(0)).optional())
        .context("reading a certificate status")?;
    status
        .map(|s| {
            rows::parse_status(&s)
                .ok_or_else(|| StoreError::Corrupt(format!("certificates row {serial}: status: unknown value {s:?}")))
        })
        .transpose()
}

impl Store for SqliteStore {
    fn reserve(&self, reservations: &[Reservation], audit: &[AuditEvent]) -> Result<(), StoreError> {
        let now = now()?;
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO certificates
                         (serial, issuer, status, profile, subject_dn, iin, bin, not_before, not_after, reserved_at,
                          crl_partition)
                     VALUES (?1, ?2, 'reserved', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .context("preparing a reservation")?;
            for r in reservations {
                let inserted = insert.execute(params![
                    r.serial.to_hex(),
                    r.issuer,
                    r.profile,
                    r.subject_dn,
                    r.iin.map(|n| n.as_string()),
                    r.bin.map(|n| n.as_string()),
                    r.not_before.unix_timestamp(),
                    r.not_after.unix_timestamp(),
                    now.secs,
                    r.crl_partition,
                ]);
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_primary_key_violation(&e) => {
                        return Err(StoreError::DuplicateSerial(r.serial.clone()))
                    }
                    Err(e) => return Err(e).with_context(|| format!("reserving serial {}", r.serial)),
                }
            }
        }
        append_all(&tx, &now, audit)?;
        tx.commit().context("committing reservations")
    }

    fn record_issued(&self, issued: &[Issued], audit: &[AuditEvent]) -> Result<(), StoreError> {
        let now = now()?;
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE certificates SET status = 'issued', der = ?2, issued_at = ?3, spki_sha256 = ?4
                     WHERE serial = ?1 AND status = 'reserved'",
                )
                .context("preparing to record a certificate")?;
            for cert in issued {
                let changed = update
                    .execute(params![
                        cert.serial.to_hex(),
                        cert.der,
                        now.secs,
                        super::chain::certificate_key_sha256(&cert.der)
                    ])
                    .with_context(|| format!("recording certificate {}", cert.serial))?;
                if changed == 0 {
                    // Only now find out why, so the common path is one statement per certificate.
                    return Err(match status_of(&tx, &cert.serial)? {
                        None => StoreError::UnknownSerial(cert.serial.clone()),
                        Some(status) => StoreError::WrongStatus {
                            serial: cert.serial.clone(),
                            status,
                            expected: CertificateStatus::Reserved,
                        },
                    });
                }
            }
        }
        append_all(&tx, &now, audit)?;
        tx.commit().context("committing issued certificates")
    }

    fn revoke(
        &self,
        serial: &SerialNumber,
        revocation: &Revocation,
        audit: &AuditEvent,
    ) -> Result<RevokeOutcome, StoreError> {
        let now = now()?;
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let record = load_certificate(&tx, serial)?.ok_or_else(|| StoreError::UnknownSerial(serial.clone()))?;
        let on_hold = record.revocation.as_ref().is_some_and(|r| r.reason == RevocationReason::CertificateHold);
        match record.status {
            // A hold may become a final revocation; any other revoked certificate stays as it
            // is. Dropping the transaction rolls back; nothing was written.
            CertificateStatus::Revoked if !on_hold || revocation.reason == RevocationReason::CertificateHold => {
                return Ok(RevokeOutcome::AlreadyRevoked(record))
            }
            CertificateStatus::Reserved => {
                return Err(StoreError::WrongStatus {
                    serial: serial.clone(),
                    status: CertificateStatus::Reserved,
                    expected: CertificateStatus::Issued,
                })
            }
            CertificateStatus::Issued | CertificateStatus::Revoked => {}
        }
        let event = crls::insert_event(&tx, serial, "revoke", now.secs)?;
        // A hold that becomes final keeps the date the certificate stopped being valid.
        let revoked_at = record.revocation.as_ref().map_or(revocation.revoked_at, |r| r.revoked_at);
        tx.prepare_cached(
            "UPDATE certificates
             SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3, invalidity_date = ?4,
                 revocation_seq = ?5
             WHERE serial = ?1 AND status IN ('issued', 'revoked')",
        )
        .and_then(|mut s| {
            s.execute(params![
                serial.to_hex(),
                revoked_at.unix_timestamp(),
                revocation.reason.code(),
                revocation.invalidity_date.map(OffsetDateTime::unix_timestamp),
                event,
            ])
        })
        .with_context(|| format!("revoking {serial}"))?;
        let mut head = chain_head(&tx)?;
        append(&tx, &mut head, &now, audit)?;
        let updated = load_certificate(&tx, serial)?
            .ok_or_else(|| StoreError::Corrupt(format!("certificate {serial} vanished while being revoked")))?;
        tx.commit().context("committing a revocation")?;
        Ok(RevokeOutcome::Revoked(updated))
    }

    fn certificate(&self, serial: &SerialNumber) -> Result<Option<CertificateRecord>, StoreError> {
        load_certificate(&*self.read()?, serial)
    }

    fn state(&self, serial: &SerialNumber) -> Result<Option<CertificateState>, StoreError> {
        Ok(self.states(std::slice::from_ref(serial))?.pop().flatten())
    }

    fn states(&self, serials: &[SerialNumber]) -> Result<Vec<Option<CertificateState>>, StoreError> {
        // One statement, so one read transaction (one round of WAL locks) for the whole path.
        let mut found: Vec<Option<CertificateState>> = vec![None; serials.len()];
        if serials.is_empty() {
            return Ok(found);
        }
        let placeholders = vec!["?"; serials.len()].join(", ");
        let sql = format!(
            "SELECT serial, issuer, status, revoked_at, revocation_reason, invalidity_date \
             FROM certificates WHERE serial IN ({placeholders})"
        );
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&sql).context("preparing a status lookup")?;
        let keys: Vec<String> = serials.iter().map(SerialNumber::to_hex).collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(&keys)).context("looking up certificate statuses")?;
        while let Some(row) = rows.next().context("reading a certificate status")? {
            let serial: String = row.get(0).context("reading a certificate status")?;
            let state = rows::state(row, &serial)?;
            for (slot, key) in found.iter_mut().zip(&keys) {
                if *key == serial {
                    *slot = Some(state.clone());
                }
            }
        }
        Ok(found)
    }

    fn find(&self, query: &CertificateQuery) -> Result<Vec<CertificateRecord>, StoreError> {
        // Only the filters in use go into the SQL, so each combination gets a plan that uses its
        // index; there are few enough combinations for all of them to stay in the statement cache.
        let mut filters = Vec::new();
        let mut args = Vec::new();
        if let Some(iin) = &query.iin {
            filters.push("iin = ?");
            args.push(Value::Text(iin.as_string()));
        }
        if let Some(bin) = &query.bin {
            filters.push("bin = ?");
            args.push(Value::Text(bin.as_string()));
        }
        if let Some(status) = query.status {
            filters.push("status = ?");
            args.push(Value::Text(status.as_str().to_owned()));
        }
        if let Some(issuer) = &query.issuer {
            filters.push("issuer = ?");
            args.push(Value::Text(issuer.clone()));
        }
        let mut sql = format!("SELECT {} FROM certificates", rows::CERTIFICATE_COLUMNS);
        if !filters.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&filters.join(" AND "));
        }
        // Reservations of one batch share a second; the rowid keeps them newest-first too.
        sql.push_str(" ORDER BY reserved_at DESC, rowid DESC LIMIT ?");
        args.push(Value::Integer(query.limit.map_or(-1, i64::from)));

        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&sql).context("preparing a certificate search")?;
        let mut found = stmt.query(params_from_iter(args)).context("searching certificates")?;
        let mut records = Vec::new();
        while let Some(row) = found.next().context("reading certificates")? {
            records.push(rows::certificate(row)?);
        }
        Ok(records)
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry, StoreError> {
        let now = now()?;
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let mut head = chain_head(&tx)?;
        let prev_hash = head.hash;
        append(&tx, &mut head, &now, event)?;
        tx.commit().context("committing an audit entry")?;
        Ok(AuditEntry { seq: head.seq, at: now.at, event: event.clone(), prev_hash, hash: head.hash })
    }

    fn release_hold(&self, serial: &SerialNumber, audit: &AuditEvent) -> Result<ReleaseOutcome, StoreError> {
        crls::release_hold(&mut self.lock(), serial, audit)
    }

    fn allocate_crl_number(&self, issuer: &str) -> Result<u64, StoreError> {
        crls::allocate_crl_number(&mut self.lock(), issuer)
    }

    fn revoked_snapshot(
        &self,
        issuer: &str,
        partition: Option<u32>,
        sink: &mut EntrySink<'_>,
    ) -> Result<i64, StoreError> {
        crls::revoked_snapshot(&mut *self.read()?, issuer, partition, sink)
    }

    fn revocation_changes(
        &self,
        issuer: &str,
        partition: Option<u32>,
        after: i64,
        sink: &mut EntrySink<'_>,
    ) -> Result<i64, StoreError> {
        crls::revocation_changes(&mut *self.read()?, issuer, partition, after, sink)
    }

    fn record_crl(&self, crl: &CrlRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        crls::record_crl(&mut self.lock(), crl, audit)
    }

    fn last_crl(&self, issuer: &str, partition: Option<u32>, kind: CrlKind) -> Result<Option<CrlRecord>, StoreError> {
        crls::last_crl(&self.lock(), issuer, partition, kind)
    }

    fn latest_not_after(&self, issuer: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        crls::latest_not_after(&self.lock(), issuer)
    }

    fn audit_entries(&self, query: &AuditQuery, sink: &mut AuditSink<'_>) -> Result<(), StoreError> {
        audit::entries(self, query, sink)
    }

    fn audit_hash(&self, seq: i64) -> Result<Option<[u8; 32]>, StoreError> {
        audit::hash(&self.lock(), seq)
    }

    fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let mut verifier = ChainVerifier::new();
        let mut after = 0i64;
        loop {
            let conn = self.lock();
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    rows::AUDIT_COLUMNS
                ))
                .context("preparing to read the audit journal")?;
            let mut batch = stmt.query(params![after, VERIFY_BATCH]).context("reading the audit journal")?;
            let mut read = 0;
            while let Some(row) = batch.next().context("reading the audit journal")? {
                // `seq` is the rowid: always an integer.
                let seq: i64 = row.get(0).context("reading an audit sequence number")?;
                match rows::audit_entry(row, seq) {
                    Ok(entry) => verifier.push(&entry),
                    Err(bad) => verifier.push_unreadable(seq, bad.hash, bad.problem),
                }
                after = seq;
                read += 1;
            }
            if read < VERIFY_BATCH {
                return Ok(verifier.finish());
            }
        }
    }
}
