//! Revocation events, CRL numbers and published CRLs.

use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;

use super::{append, chain_head, immediate, load_certificate, now, Context};
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;
use crate::store::{
    AuditEvent, CertificateStatus, CrlKind, CrlRecord, EntrySink, ReleaseOutcome, RevokedEntry, StoreError,
};

/// Partitions are stored as -1 in `crls` (part of its key) and as NULL in `certificates`.
fn partition_key(partition: Option<u32>) -> i64 {
    partition.map_or(-1, i64::from)
}

fn time(secs: i64, what: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| StoreError::Corrupt(format!("{what}: {secs}: {e}")))
}

/// Append a revocation event for `serial` and return its position.
pub(super) fn insert_event(tx: &Connection, serial: &SerialNumber, kind: &str, at: i64) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO revocation_events (serial, issuer, crl_partition, kind, at)
         SELECT serial, issuer, crl_partition, ?2, ?3 FROM certificates WHERE serial = ?1",
    )
    .and_then(|mut s| s.execute(params![serial.to_hex(), kind, at]))
    .with_context(|| format!("logging the {kind} of {serial}"))?;
    Ok(tx.last_insert_rowid())
}

pub(super) fn release_hold(
    conn: &mut Connection,
    serial: &SerialNumber,
    audit: &AuditEvent,
) -> Result<ReleaseOutcome, StoreError> {
    let now = now()?;
    let tx = immediate(conn)?;
    let record = load_certificate(&tx, serial)?.ok_or_else(|| StoreError::UnknownSerial(serial.clone()))?;
    let on_hold = record.revocation.as_ref().is_some_and(|r| r.reason == RevocationReason::CertificateHold);
    if record.status == CertificateStatus::Reserved {
        return Err(StoreError::WrongStatus {
            serial: serial.clone(),
            status: CertificateStatus::Reserved,
            expected: CertificateStatus::Revoked,
        });
    }
    if !on_hold {
        return Ok(ReleaseOutcome::NotOnHold(record));
    }
    insert_event(&tx, serial, "release", now.secs)?;
    tx.prepare_cached(
        "UPDATE certificates SET status = 'issued', revoked_at = NULL, revocation_reason = NULL,
             invalidity_date = NULL, revocation_seq = NULL, first_crl_number = NULL
         WHERE serial = ?1",
    )
    .and_then(|mut s| s.execute([serial.to_hex()]))
    .with_context(|| format!("releasing the hold on {serial}"))?;
    let mut head = chain_head(&tx)?;
    append(&tx, &mut head, &now, audit)?;
    let updated = load_certificate(&tx, serial)?
        .ok_or_else(|| StoreError::Corrupt(format!("certificate {serial} vanished while being released")))?;
    tx.commit().context("committing a hold release")?;
    Ok(ReleaseOutcome::Released(updated))
}

pub(super) fn allocate_crl_number(conn: &mut Connection, issuer: &str) -> Result<u64, StoreError> {
    let tx = immediate(conn)?;
    let number: i64 = tx
        .query_row(
            "INSERT INTO crl_numbers (issuer, last) VALUES (?1, 1)
             ON CONFLICT (issuer) DO UPDATE SET last = last + 1
             RETURNING last",
            [issuer],
            |r| r.get(0),
        )
        .context("allocating a CRL number")?;
    tx.commit().context("committing a CRL number")?;
    u64::try_from(number).map_err(|_| StoreError::Corrupt(format!("CRL number {number}")))
}

fn high_water(conn: &Connection, issuer: &str) -> Result<i64, StoreError> {
    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM revocation_events WHERE issuer = ?1", [issuer], |r| r.get(0))
        .context("reading the revocation event position")
}

fn entry(serial: &str, revoked_at: i64, reason: i64, invalidity: Option<i64>) -> Result<RevokedEntry, StoreError> {
    let serial: SerialNumber =
        serial.parse().map_err(|e| StoreError::Corrupt(format!("certificates row {serial}: serial: {e}")))?;
    let reason = u8::try_from(reason)
        .ok()
        .and_then(RevocationReason::from_code)
        .ok_or_else(|| StoreError::Corrupt(format!("certificates row {serial}: reason {reason}")))?;
    Ok(RevokedEntry {
        revoked_at: time(revoked_at, "revoked_at")?,
        invalidity_date: invalidity.map(|d| time(d, "invalidity_date")).transpose()?,
        serial,
        reason,
    })
}

/// Every revoked certificate of issuer `?1` in partition `?2`: read from the covering index
/// `certificates_revoked_list` alone (migration 9), never the table rows with their DER.
pub(super) const REVOKED_LIST: &str = "SELECT serial, revoked_at, revocation_reason, invalidity_date FROM certificates
     WHERE status = 'revoked' AND issuer = ?1 AND crl_partition IS ?2";

/// Mark the revocations up to position `?4` as first published in CRL `?1`: through the small
/// index `certificates_unpublished` (migration 9), only the revocations new since the last CRL.
pub(super) const MARK_PUBLISHED: &str = "UPDATE certificates SET first_crl_number = ?1
     WHERE status = 'revoked' AND issuer = ?2 AND crl_partition IS ?3
       AND first_crl_number IS NULL AND revocation_seq <= ?4";

pub(super) fn revoked_snapshot(
    conn: &mut Connection,
    issuer: &str,
    partition: Option<u32>,
    sink: &mut EntrySink<'_>,
) -> Result<i64, StoreError> {
    // One read transaction: the position and the rows come from the same snapshot.
    let tx = conn.transaction().context("starting a read transaction")?;
    let position = high_water(&tx, issuer)?;
    {
        let mut stmt = tx.prepare_cached(REVOKED_LIST).context("preparing the revoked list")?;
        let mut rows = stmt.query(params![issuer, partition]).context("reading revoked certificates")?;
        while let Some(row) = rows.next().context("reading revoked certificates")? {
            // The serial is borrowed from the row: no String per entry.
            let decode = || -> rusqlite::Result<(&str, i64, i64, Option<i64>)> {
                Ok((row.get_ref(0)?.as_str()?, row.get(1)?, row.get(2)?, row.get(3)?))
            };
            let (serial, at, reason, invalidity) = decode().context("decoding a revoked row")?;
            sink(entry(serial, at, reason, invalidity)?)?;
        }
    }
    tx.finish().context("ending a read transaction")?;
    Ok(position)
}

pub(super) fn revocation_changes(
    conn: &mut Connection,
    issuer: &str,
    partition: Option<u32>,
    after: i64,
    sink: &mut EntrySink<'_>,
) -> Result<i64, StoreError> {
    let tx = conn.transaction().context("starting a read transaction")?;
    let position = high_water(&tx, issuer)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT c.serial, c.status, c.revoked_at, c.revocation_reason, c.invalidity_date, MAX(e.at)
                 FROM revocation_events e JOIN certificates c ON c.serial = e.serial
                 WHERE e.issuer = ?1 AND e.crl_partition IS ?2 AND e.seq > ?3 AND e.seq <= ?4
                 GROUP BY c.serial",
            )
            .context("preparing the revocation changes")?;
        let mut rows = stmt.query(params![issuer, partition, after, position]).context("reading revocation changes")?;
        while let Some(row) = rows.next().context("reading revocation changes")? {
            let serial: String = row.get(0).context("decoding a change")?;
            let status: String = row.get(1).context("decoding a change")?;
            let last_event: i64 = row.get(5).context("decoding a change")?;
            let e = if status == "revoked" {
                let at: i64 = row.get(2).context("decoding a change")?;
                let reason: i64 = row.get(3).context("decoding a change")?;
                entry(&serial, at, reason, row.get(4).context("decoding a change")?)?
            } else {
                // Released since the base CRL: removeFromCRL, dated at the release.
                entry(&serial, last_event, i64::from(RevocationReason::RemoveFromCrl.code()), None)?
            };
            sink(e)?;
        }
    }
    tx.finish().context("ending a read transaction")?;
    Ok(position)
}

pub(super) fn record_crl(conn: &mut Connection, crl: &CrlRecord, audit: &AuditEvent) -> Result<(), StoreError> {
    let now = now()?;
    let number = i64::try_from(crl.number).map_err(|_| StoreError::Database("CRL number too large".into()))?;
    let base = crl
        .base_number
        .map(i64::try_from)
        .transpose()
        .map_err(|_| StoreError::Database("base CRL number too large".into()))?;
    let tx = immediate(conn)?;
    tx.prepare_cached(
        "INSERT INTO crls (issuer, crl_partition, kind, number, base_number, this_update, next_update, event_seq, published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            crl.issuer,
            partition_key(crl.partition),
            crl.kind.as_str(),
            number,
            base,
            crl.this_update.unix_timestamp(),
            crl.next_update.unix_timestamp(),
            crl.event_seq,
            now.secs,
        ])
    })
    .with_context(|| format!("recording CRL {}", crl.number))?;
    tx.prepare_cached(MARK_PUBLISHED)
        .and_then(|mut s| s.execute(params![number, crl.issuer, crl.partition, crl.event_seq]))
        .context("marking revocations published")?;
    let mut head = chain_head(&tx)?;
    append(&tx, &mut head, &now, audit)?;
    tx.commit().context("committing a CRL record")
}

pub(super) fn last_crl(
    conn: &Connection,
    issuer: &str,
    partition: Option<u32>,
    kind: CrlKind,
) -> Result<Option<CrlRecord>, StoreError> {
    let row: Option<(i64, Option<i64>, i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT number, base_number, this_update, next_update, event_seq FROM crls
             WHERE issuer = ?1 AND crl_partition = ?2 AND kind = ?3 ORDER BY number DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(params![issuer, partition_key(partition), kind.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
        })
        .context("reading the last CRL")?;
    row.map(|(number, base, this_update, next_update, event_seq)| {
        Ok(CrlRecord {
            issuer: issuer.to_owned(),
            partition,
            kind,
            number: u64::try_from(number).map_err(|_| StoreError::Corrupt(format!("CRL number {number}")))?,
            base_number: base.map(|b| b as u64),
            this_update: time(this_update, "this_update")?,
            next_update: time(next_update, "next_update")?,
            event_seq,
        })
    })
    .transpose()
}

/// The latest notAfter among `issuer`'s certificates (a scan of them: run once per rollover).
pub(super) fn latest_not_after(conn: &Connection, issuer: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    let secs: Option<i64> = conn
        .prepare_cached("SELECT MAX(not_after) FROM certificates WHERE issuer = ?1")
        .and_then(|mut s| s.query_row(params![issuer], |row| row.get(0)))
        .with_context(|| format!("the latest notAfter of {issuer}'s certificates"))?;
    secs.map(|s| time(s, "not_after")).transpose()
}
