//! PostgreSQL implementation of the store, for deployments where several `ca`, `ca-server` and
//! worker processes share one database (the embedded default stays [`super::SqliteStore`]).
//!
//! **Client.** The store traits are synchronous and called from blocking code (the CLI, and the
//! server's `spawn_blocking` sections), so the store uses the synchronous `postgres` crate with a
//! small pool of its own (`pool.rs`). Connections are plain TCP or a unix socket: put the database
//! on loopback, a socket or a private network (TLS to the database is not built in yet).
//!
//! **Serialisation.** Every transaction that appends to the audit journal first takes one
//! transaction-scoped advisory lock ([`AUDIT_LOCK`]), then reads the chain head: across every
//! process on the database, appends are serialised exactly as SQLite's `BEGIN IMMEDIATE`
//! serialises them, and the lock is released by the commit that made the new head visible. The
//! lock is the first thing such a transaction takes, so it cannot deadlock with row locks.
//! Because revocations and releases append audit entries, revocation events also get their
//! positions in commit order, which is what lets a delta CRL say "everything after position n".
//! Writes without audit entries (nonces, CRL numbers, failed deliveries) are single statements
//! whose row locks make them atomic.
//!
//! **Replicas.** [`PostgresStore::connect_with_replica`] sends the read-only traffic of
//! [`Store::state`], [`Store::states`] and [`Store::certificate`] (OCSP, verification and
//! certificate downloads) to a streaming replica; everything else reads the primary. A replica
//! lags: `replica.rs` measures by how much before each read (a cached probe),
//! [`Store::states_as_of`] says up to when the answer is complete, and a replica further behind
//! than its [`ReplicaPolicy`] allows is not read.
//!
//! Units are the SQLite store's: certificate times in unix seconds, audit time in unix
//! nanoseconds, so `ca store copy` moves rows unchanged.

mod audit;
mod connect;
mod crls;
pub mod migrations;
pub mod nonces;
pub mod pool;
mod ra;
mod receipts;
mod replica;
mod rows;

use std::time::Duration;

use postgres::types::ToSql;
use postgres::Row;
use time::OffsetDateTime;

use super::audit::{entry_hash, AuditEntry, AuditEvent, AuditQuery, AuditSink, AuditVerification, ChainVerifier};
use super::chain::{now, ChainHead, Now};
use super::{
    CertificateQuery, CertificateRecord, CertificateState, CertificateStatus, CrlKind, CrlRecord, EntrySink, Issued,
    ReleaseOutcome, Reservation, Revocation, RevokeOutcome, StatusAsOf, Store, StoreError,
};
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;
pub use connect::{parse_url, ReplicaFreshness};
use pool::{Cached, Conn, Pool, Tx};
pub use replica::{ReplicaPolicy, ReplicaProbe, WhenReplicaBehind};

/// The advisory lock that serialises audit appends (and so every audited write), across
/// processes. An arbitrary constant: "ca-audit" in ASCII.
const AUDIT_LOCK: i64 = 0x6361_2d61_7564_6974;
/// The advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x6361_2d6d_6967_7261;
/// Audit rows read per round trip while verifying.
const VERIFY_BATCH: i64 = 10_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The store in a PostgreSQL database.
pub struct PostgresStore {
    pub(in crate::store) primary: Pool,
    replica: Option<replica::Replica>,
    /// The regulation's budgets and calendar, for the deadlines of application events.
    timing: std::sync::RwLock<std::sync::Arc<crate::ra::regulation::Timing>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("primary", &self.primary.location)
            .field("replica", &self.replica.as_ref().map(|r| &r.pool.location))
            .finish()
    }
}

/// `postgres` errors become [`StoreError::Database`] saying what was being done.
trait Context<T> {
    fn context(self, what: &str) -> Result<T, StoreError>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, StoreError>;
}

fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl<T> Context<T> for Result<T, postgres::Error> {
    fn context(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Database(format!("{what}: {}", describe(&e))))
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Database(format!("{}: {}", what(), describe(&e))))
    }
}

/// A write transaction that will append to the audit journal: the audit lock first, taken by
/// the same round trip that opens the transaction.
fn audited<'c>(client: &'c mut Conn<'_>) -> Result<Tx<'c>, StoreError> {
    client.begin(AUDIT_LOCK).context("starting a write transaction under the audit journal lock")
}

/// The journal head; only meaningful under the audit lock.
fn chain_head(tx: &mut Tx<'_>) -> Result<ChainHead, StoreError> {
    let row = tx
        .query_opt_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])
        .context("reading the audit journal head")?;
    match row {
        None => Ok(ChainHead::GENESIS),
        Some(row) => {
            let seq: i64 = row.try_get(0).context("reading the audit journal head")?;
            let hash: Vec<u8> = row.try_get(1).context("reading the audit journal head")?;
            let hash = super::chain::hash32(&hash, "hash")
                .map_err(|p| StoreError::Corrupt(format!("audit entry {seq}: {p}")))?;
            Ok(ChainHead { seq, hash })
        }
    }
}

/// Append `event` after `head` and move `head` on to it.
fn append(tx: &mut Tx<'_>, head: &mut ChainHead, now: &Now, event: &AuditEvent) -> Result<(), StoreError> {
    append_many(tx, head, now, std::slice::from_ref(event))
}

/// Append `events` after `head`, chained in order, with one statement; move `head` to the last.
fn append_many(tx: &mut Tx<'_>, head: &mut ChainHead, now: &Now, events: &[AuditEvent]) -> Result<(), StoreError> {
    let (mut seqs, mut prev_hashes, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    let mut at = *head;
    for event in events {
        let seq = at.seq + 1;
        let hash = entry_hash(seq, now.at, event, &at.hash);
        seqs.push(seq);
        prev_hashes.push(at.hash.to_vec());
        hashes.push(hash.to_vec());
        at = ChainHead { seq, hash };
    }
    let actors: Vec<&str> = events.iter().map(|e| e.actor.as_str()).collect();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    let targets: Vec<Option<&str>> = events.iter().map(|e| e.target.as_deref()).collect();
    let details: Vec<String> = events.iter().map(|e| e.details.to_string()).collect();
    tx.execute_cached(
        "INSERT INTO audit (seq, at_ns, actor, action, target, details, prev_hash, hash)
         SELECT seq, $2, actor, action, target, details, prev_hash, hash
         FROM unnest($1::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::BYTEA[], $8::BYTEA[])
              AS e(seq, actor, action, target, details, prev_hash, hash)",
        &[&seqs, &now.at_ns, &actors, &actions, &targets, &details, &prev_hashes, &hashes],
    )
    .with_context(|| match events {
        [one] => format!("appending audit entry {} ({})", head.seq + 1, one.action),
        _ => format!("appending audit entries {}..={}", head.seq + 1, at.seq),
    })?;
    *head = at;
    Ok(())
}

fn append_all(tx: &mut Tx<'_>, now: &Now, events: &[AuditEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut head = chain_head(tx)?;
    append_many(tx, &mut head, now, events)
}

fn load_certificate(client: &mut impl Cached, serial: &SerialNumber) -> Result<Option<CertificateRecord>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {} FROM certificates WHERE serial = $1", rows::CERTIFICATE_COLUMNS)
    });
    let row = client.query_opt_cached(&SQL, &[&serial.to_hex()]).context("looking up a certificate")?;
    row.as_ref().map(rows::certificate).transpose()
}

fn status_of(tx: &mut Tx<'_>, serial: &SerialNumber) -> Result<Option<CertificateStatus>, StoreError> {
    let row = tx
        .query_opt_cached("SELECT status FROM certificates WHERE serial = $1", &[&serial.to_hex()])
        .context("reading a certificate status")?;
    row.map(|r| {
        let s: String = r.try_get(0).context("reading a certificate status")?;
        super::chain::parse_status(&s)
            .ok_or_else(|| StoreError::Corrupt(format!("certificates row {serial}: status: unknown value {s:?}")))
    })
    .transpose()
}

/// The first of `wanted` that is not in `done` (or is there a second time): what a set-based
/// statement skipped.
fn first_skipped<'a>(wanted: &'a [String], done: &[Row]) -> Result<Option<&'a String>, StoreError> {
    let mut done: std::collections::HashSet<String> =
        done.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>().context("reading affected serials")?;
    Ok(wanted.iter().find(|serial| !done.remove(serial.as_str())))
}

fn opt_i64(value: Option<u32>) -> Option<i64> {
    value.map(i64::from)
}

impl Store for PostgresStore {
    fn reserve(&self, reservations: &[Reservation], audit: &[AuditEvent]) -> Result<(), StoreError> {
        let now = now()?;
        let serials: Vec<String> = reservations.iter().map(|r| r.serial.to_hex()).collect();
        let issuers: Vec<&str> = reservations.iter().map(|r| r.issuer.as_str()).collect();
        let profiles: Vec<&str> = reservations.iter().map(|r| r.profile.as_str()).collect();
        let subjects: Vec<&str> = reservations.iter().map(|r| r.subject_dn.as_str()).collect();
        let iins: Vec<Option<String>> = reservations.iter().map(|r| r.iin.map(|n| n.as_string())).collect();
        let bins: Vec<Option<String>> = reservations.iter().map(|r| r.bin.map(|n| n.as_string())).collect();
        let not_before: Vec<i64> = reservations.iter().map(|r| r.not_before.unix_timestamp()).collect();
        let not_after: Vec<i64> = reservations.iter().map(|r| r.not_after.unix_timestamp()).collect();
        let partitions: Vec<Option<i64>> = reservations.iter().map(|r| opt_i64(r.crl_partition)).collect();
        let mut client = self.primary.get()?;
        let mut tx = audited(&mut client)?;
        // One statement for the whole batch; a serial already taken (or twice in the batch) is
        // skipped by ON CONFLICT and found missing from RETURNING.
        let inserted = tx
            .query_cached(
                "INSERT INTO certificates
                     (serial, issuer, status, profile, subject_dn, iin, bin, not_before, not_after, reserved_at,
                      crl_partition)
                 SELECT serial, issuer, 'reserved', profile, subject_dn, iin, bin, not_before, not_after, $10,
                        crl_partition
                 FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::BIGINT[],
                             $8::BIGINT[], $9::BIGINT[])
                      AS r(serial, issuer, profile, subject_dn, iin, bin, not_before, not_after, crl_partition)
                 ON CONFLICT (serial) DO NOTHING
                 RETURNING serial",
                &[
                    &serials,
                    &issuers,
                    &profiles,
                    &subjects,
                    &iins,
                    &bins,
                    &not_before,
                    &not_after,
                    &partitions,
                    &now.secs,
                ],
            )
            .context("reserving serials")?;
        if let Some(taken) = first_skipped(&serials, &inserted)? {
            let serial = reservations.iter().find(|r| r.serial.to_hex() == *taken).map(|r| r.serial.clone());
            return Err(StoreError::DuplicateSerial(serial.expect("one of the batch")));
        }
        append_all(&mut tx, &now, audit)?;
        tx.commit().context("committing reservations")
    }

    fn record_issued(&self, issued: &[Issued], audit: &[AuditEvent]) -> Result<(), StoreError> {
        let now = now()?;
        let serials: Vec<String> = issued.iter().map(|c| c.serial.to_hex()).collect();
        let ders: Vec<&[u8]> = issued.iter().map(|c| c.der.as_slice()).collect();
        let keys: Vec<Option<Vec<u8>>> = issued.iter().map(|c| super::chain::certificate_key_sha256(&c.der)).collect();
        let mut client = self.primary.get()?;
        let mut tx = audited(&mut client)?;
        let updated = tx
            .query_cached(
                "UPDATE certificates c SET status = 'issued', der = u.der, issued_at = $4, spki_sha256 = u.key_sha256
                 FROM unnest($1::TEXT[], $2::BYTEA[], $3::BYTEA[]) AS u(serial, der, key_sha256)
                 WHERE c.serial = u.serial AND c.status = 'reserved'
                 RETURNING c.serial",
                &[&serials, &ders, &keys, &now.secs],
            )
            .context("recording certificates")?;
        if let Some(skipped) = first_skipped(&serials, &updated)? {
            let serial: SerialNumber = issued
                .iter()
                .find(|c| c.serial.to_hex() == *skipped)
                .map(|c| c.serial.clone())
                .expect("one of the batch");
            return Err(match status_of(&mut tx, &serial)? {
                None => StoreError::UnknownSerial(serial),
                Some(status) => StoreError::WrongStatus { serial, status, expected: CertificateStatus::Reserved },
            });
        }
        append_all(&mut tx, &now, audit)?;
        tx.commit().context("committing issued certificates")
    }

    fn revoke(
        &self,
        serial: &SerialNumber,
        revocation: &Revocation,
        audit: &AuditEvent,
    ) -> Result<RevokeOutcome, StoreError> {
        let now = now()?;
        let mut client = self.primary.get()?;
        let mut tx = audited(&mut client)?;
        let record = load_certificate(&mut tx, serial)?.ok_or_else(|| StoreError::UnknownSerial(serial.clone()))?;
        let on_hold = record.revocation.as_ref().is_some_and(|r| r.reason == RevocationReason::CertificateHold);
        match record.status {
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
        let event = crls::insert_event(&mut tx, serial, "revoke", now.secs)?;
        let revoked_at = record.revocation.as_ref().map_or(revocation.revoked_at, |r| r.revoked_at);
        tx.execute_cached(
            "UPDATE certificates
             SET status = 'revoked', revoked_at = $2, revocation_reason = $3, invalidity_date = $4, revocation_seq = $5
             WHERE serial = $1 AND status IN ('issued', 'revoked')",
            &[
                &serial.to_hex(),
                &revoked_at.unix_timestamp(),
                &i64::from(revocation.reason.code()),
                &revocation.invalidity_date.map(OffsetDateTime::unix_timestamp),
                &event,
            ],
        )
        .with_context(|| format!("revoking {serial}"))?;
        let mut head = chain_head(&mut tx)?;
        append(&mut tx, &mut head, &now, audit)?;
        let updated = load_certificate(&mut tx, serial)?
            .ok_or_else(|| StoreError::Corrupt(format!("certificate {serial} vanished while being revoked")))?;
        tx.commit().context("committing a revocation")?;
        Ok(RevokeOutcome::Revoked(updated))
    }

    fn certificate(&self, serial: &SerialNumber) -> Result<Option<CertificateRecord>, StoreError> {
        load_certificate(&mut self.status_reader()?.0.get()?, serial)
    }

    fn state(&self, serial: &SerialNumber) -> Result<Option<CertificateState>, StoreError> {
        Ok(self.states(std::slice::from_ref(serial))?.pop().flatten())
    }

    fn states(&self, serials: &[SerialNumber]) -> Result<Vec<Option<CertificateState>>, StoreError> {
        Ok(self.states_as_of(serials)?.0)
    }

    fn states_as_of(
        &self,
        serials: &[SerialNumber],
    ) -> Result<(Vec<Option<CertificateState>>, StatusAsOf), StoreError> {
        let mut found: Vec<Option<CertificateState>> = vec![None; serials.len()];
        if serials.is_empty() {
            return Ok((found, StatusAsOf::Current));
        }
        // Where to read is decided (and the replica's completeness measured) before the read:
        // replay only moves forward, so the rows are at least as complete as `as_of` says.
        let (pool, as_of) = self.status_reader()?;
        let keys: Vec<String> = serials.iter().map(SerialNumber::to_hex).collect();
        // One statement: one snapshot for the whole path.
        let rows = pool
            .get()?
            .query_cached(
                "SELECT serial, issuer, status, revoked_at, revocation_reason, invalidity_date
                 FROM certificates WHERE serial = ANY($1)",
                &[&keys],
            )
            .context("looking up certificate statuses")?;
        for row in &rows {
            let serial: String = row.try_get(0).context("reading a certificate status")?;
            let state = rows::state(row, &serial)?;
            for (slot, key) in found.iter_mut().zip(&keys) {
                if *key == serial {
                    *slot = Some(state.clone());
                }
            }
        }
        Ok((found, as_of))
    }

    fn find(&self, query: &CertificateQuery) -> Result<Vec<CertificateRecord>, StoreError> {
        let mut filters = Vec::new();
        let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut bind = |filters: &mut Vec<String>, column: &str, value: String| {
            args.push(Box::new(value));
            filters.push(format!("{column} = ${}", args.len()));
        };
        if let Some(iin) = &query.iin {
            bind(&mut filters, "iin", iin.as_string());
        }
        if let Some(bin) = &query.bin {
            bind(&mut filters, "bin", bin.as_string());
        }
        if let Some(status) = query.status {
            bind(&mut filters, "status", status.as_str().to_owned());
        }
        if let Some(issuer) = &query.issuer {
            bind(&mut filters, "issuer", issuer.clone());
        }
        let mut sql = format!("SELECT {} FROM certificates", rows::CERTIFICATE_COLUMNS);
        if !filters.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&filters.join(" AND "));
        }
        args.push(Box::new(query.limit.map(i64::from)));
        sql.push_str(&format!(" ORDER BY reserved_at DESC, id DESC LIMIT ${}", args.len()));
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        let found = self.primary.get()?.query_cached(&sql, &params).context("searching certificates")?;
        found.iter().map(rows::certificate).collect()
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<AuditEntry, StoreError> {
        let now = now()?;
        let mut client = self.primary.get()?;
        let mut tx = audited(&mut client)?;
        let mut head = chain_head(&mut tx)?;
        let prev_hash = head.hash;
        append(&mut tx, &mut head, &now, event)?;
        tx.commit().context("committing an audit entry")?;
        Ok(AuditEntry { seq: head.seq, at: now.at, event: event.clone(), prev_hash, hash: head.hash })
    }

    fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let mut verifier = ChainVerifier::new();
        let mut after = 0i64;
        let mut client = self.primary.get()?;
        let sql = format!("SELECT {} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2", rows::AUDIT_COLUMNS);
        loop {
            let batch = client.query(&sql, &[&after, &VERIFY_BATCH]).context("reading the audit journal")?;
            for row in &batch {
                let seq: i64 = row.try_get(0).context("reading an audit sequence number")?;
                match rows::audit_entry(row, seq) {
                    Ok(entry) => verifier.push(&entry),
                    Err(bad) => verifier.push_unreadable(seq, bad.hash, bad.problem),
                }
                after = seq;
            }
            if (batch.len() as i64) < VERIFY_BATCH {
                return Ok(verifier.finish());
            }
        }
    }

    fn audit_entries(&self, query: &AuditQuery, sink: &mut AuditSink<'_>) -> Result<(), StoreError> {
        audit::entries(&self.primary, query, sink)
    }

    fn audit_hash(&self, seq: i64) -> Result<Option<[u8; 32]>, StoreError> {
        audit::hash(&mut *self.primary.get()?, seq)
    }

    fn release_hold(&self, serial: &SerialNumber, audit: &AuditEvent) -> Result<ReleaseOutcome, StoreError> {
        crls::release_hold(&mut self.primary.get()?, serial, audit)
    }

    fn allocate_crl_number(&self, issuer: &str) -> Result<u64, StoreError> {
        crls::allocate_crl_number(&mut self.primary.get()?, issuer)
    }

    fn revoked_snapshot(
        &self,
        issuer: &str,
        partition: Option<u32>,
        sink: &mut EntrySink<'_>,
    ) -> Result<i64, StoreError> {
        crls::revoked_snapshot(&mut self.primary.get()?, issuer, partition, sink)
    }

    fn revocation_changes(
        &self,
        issuer: &str,
        partition: Option<u32>,
        after: i64,
        sink: &mut EntrySink<'_>,
    ) -> Result<i64, StoreError> {
        crls::revocation_changes(&mut self.primary.get()?, issuer, partition, after, sink)
    }

    fn record_crl(&self, crl: &CrlRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        crls::record_crl(&mut self.primary.get()?, crl, audit)
    }

    fn last_crl(&self, issuer: &str, partition: Option<u32>, kind: CrlKind) -> Result<Option<CrlRecord>, StoreError> {
        crls::last_crl(&mut self.primary.get()?, issuer, partition, kind)
    }

    fn latest_not_after(&self, issuer: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        crls::latest_not_after(&mut self.primary.get()?, issuer)
    }
}
