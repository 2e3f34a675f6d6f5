//! Revocation events, CRL numbers and published CRLs.

use postgres::{Client, IsolationLevel, Row, Transaction};

use super::pool::{Cached, Conn, Tx};
use time::OffsetDateTime;

use super::{append, audited, chain_head, load_certificate, now, Context};
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;
use crate::store::{
    AuditEvent, CertificateStatus, CrlKind, CrlRecord, EntrySink, ReleaseOutcome, RevokedEntry, StoreError,
};

/// CRL rows fetched per round trip: a million-entry CRL streams in bounded memory.
const FETCH: i32 = 10_000;

/// Partitions are stored as -1 in `crls` (part of its key) and as NULL in `certificates`.
fn partition_key(partition: Option<u32>) -> i64 {
    partition.map_or(-1, i64::from)
}

fn time(secs: i64, what: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| StoreError::Corrupt(format!("{what}: {secs}: {e}")))
}

/// Append a revocation event for `serial` and return its position. Called under the audit
/// lock, so positions are handed out in commit order.
pub(super) fn insert_event(tx: &mut Tx<'_>, serial: &SerialNumber, kind: &str, at: i64) -> Result<i64, StoreError> {
    tx.query_one_cached(
        "INSERT INTO revocation_events (serial, issuer, crl_partition, kind, at)
         SELECT serial, issuer, crl_partition, $2, $3 FROM certificates WHERE serial = $1
         RETURNING seq",
        &[&serial.to_hex(), &kind, &at],
    )
    .and_then(|r| r.try_get(0))
    .with_context(|| format!("logging the {kind} of {serial}"))
}

pub(super) fn release_hold(
    client: &mut Conn<'_>,
    serial: &SerialNumber,
    audit: &AuditEvent,
) -> Result<ReleaseOutcome, StoreError> {
    let now = now()?;
    let mut tx = audited(client)?;
    let record = load_certificate(&mut tx, serial)?.ok_or_else(|| StoreError::UnknownSerial(serial.clone()))?;
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
    insert_event(&mut tx, serial, "release", now.secs)?;
    tx.execute_cached(
        "UPDATE certificates SET status = 'issued', revoked_at = NULL, revocation_reason = NULL,
             invalidity_date = NULL, revocation_seq = NULL, first_crl_number = NULL
         WHERE serial = $1",
        &[&serial.to_hex()],
    )
    .with_context(|| format!("releasing the hold on {serial}"))?;
    let mut head = chain_head(&mut tx)?;
    append(&mut tx, &mut head, &now, audit)?;
    let updated = load_certificate(&mut tx, serial)?
        .ok_or_else(|| StoreError::Corrupt(format!("certificate {serial} vanished while being released")))?;
    tx.commit().context("committing a hold release")?;
    Ok(ReleaseOutcome::Released(updated))
}

/// One statement: the row lock of the upsert makes concurrent allocations queue, each getting
/// the next number.
pub(super) fn allocate_crl_number(client: &mut Conn<'_>, issuer: &str) -> Result<u64, StoreError> {
    let number: i64 = client
        .query_one_cached(
            "INSERT INTO crl_numbers (issuer, last) VALUES ($1, 1)
             ON CONFLICT (issuer) DO UPDATE SET last = crl_numbers.last + 1
             RETURNING last",
            &[&issuer],
        )
        .and_then(|r| r.try_get(0))
        .context("allocating a CRL number")?;
    u64::try_from(number).map_err(|_| StoreError::Corrupt(format!("CRL number {number}")))
}

fn high_water(tx: &mut Transaction<'_>, issuer: &str) -> Result<i64, StoreError> {
    tx.query_one("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM revocation_events WHERE issuer = $1", &[&issuer])
        .and_then(|r| r.try_get(0))
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

/// A read-only transaction on one snapshot: the position and the rows agree.
fn snapshot(client: &mut Client) -> Result<Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .context("starting a read transaction")
}

/// Run `sql` through a portal and hand each row to `each`, [`FETCH`] rows at a time.
fn stream(
    tx: &mut Transaction<'_>,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    mut each: impl FnMut(&Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let portal = tx.bind(sql, params).context("preparing the revoked list")?;
    loop {
        let rows = tx.query_portal(&portal, FETCH).context("reading revoked certificates")?;
        for row in &rows {
            each(row)?;
        }
        if rows.len() < FETCH as usize {
            return Ok(());
        }
    }
}

/// Run `sql` (rows: serial, revoked_at, revocation_reason, invalidity_date) through a portal,
/// [`FETCH`] rows at a time, and hand each entry to `sink`. The fetching and decoding run on a
/// thread of their own, one batch ahead of the sink (a bounded channel of two batches): the
/// server reads the next rows while the CRL builder encodes the last ones, where one thread
/// would leave each side waiting for the other at every batch.
fn stream_entries(
    tx: &mut Transaction<'_>,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    sink: &mut EntrySink<'_>,
) -> Result<(), StoreError> {
    let portal = tx.bind(sql, params).context("preparing the revoked list")?;
    let (send, received) = std::sync::mpsc::sync_channel::<Result<Vec<RevokedEntry>, StoreError>>(2);
    std::thread::scope(|s| {
        s.spawn(move || loop {
            let batch = tx.query_portal(&portal, FETCH).context("reading revoked certificates").and_then(|rows| {
                rows.iter()
                    .map(|row| {
                        // The serial is borrowed from the row: no String per entry.
                        let decode = || -> Result<(&str, i64, i64, Option<i64>), postgres::Error> {
                            Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?))
                        };
                        let (serial, at, reason, invalidity) = decode().context("decoding a revoked row")?;
                        entry(serial, at, reason, invalidity)
                    })
                    .collect::<Result<Vec<_>, _>>()
            });
            let last = batch.as_ref().map_or(true, |b| b.len() < FETCH as usize);
            // A sink that failed dropped the receiver: stop reading.
            if send.send(batch).is_err() || last {
                return;
            }
        });
        for batch in received {
            for e in batch? {
                sink(e)?;
            }
        }
        Ok(())
    })
}

/// Every revoked certificate of issuer `$1` outside partitions: an index-only scan of
/// `certificates_revoked_list` (migration 4).
const REVOKED_LIST: &str = "SELECT serial, revoked_at, revocation_reason, invalidity_date FROM certificates
     WHERE status = 'revoked' AND issuer = $1 AND crl_partition IS NULL";
/// The same in partition `$2`.
const REVOKED_LIST_IN_PARTITION: &str =
    "SELECT serial, revoked_at, revocation_reason, invalidity_date FROM certificates
     WHERE status = 'revoked' AND issuer = $1 AND crl_partition = $2";

pub(super) fn revoked_snapshot(
    client: &mut Conn<'_>,
    issuer: &str,
    partition: Option<u32>,
    sink: &mut EntrySink<'_>,
) -> Result<i64, StoreError> {
    let mut tx = snapshot(client)?;
    let position = high_water(&mut tx, issuer)?;
    // An index-only scan of `certificates_revoked_list` (migration 4); `IS NOT DISTINCT FROM`
    // would make it a scan of every certificate.
    let partition = partition.map(i64::from);
    let (sql, params): (&str, Vec<&(dyn postgres::types::ToSql + Sync)>) = match &partition {
        None => (REVOKED_LIST, vec![&issuer]),
        Some(p) => (REVOKED_LIST_IN_PARTITION, vec![&issuer, p]),
    };
    stream_entries(&mut tx, sql, &params, sink)?;
    tx.commit().context("ending a read transaction")?;
    Ok(position)
}

pub(super) fn revocation_changes(
    client: &mut Conn<'_>,
    issuer: &str,
    partition: Option<u32>,
    after: i64,
    sink: &mut EntrySink<'_>,
) -> Result<i64, StoreError> {
    let mut tx = snapshot(client)?;
    let position = high_water(&mut tx, issuer)?;
    let partition = partition.map(i64::from);
    stream(
        &mut tx,
        "SELECT c.serial, c.status, c.revoked_at, c.revocation_reason, c.invalidity_date, MAX(e.at)
         FROM revocation_events e JOIN certificates c ON c.serial = e.serial
         WHERE e.issuer = $1 AND e.crl_partition IS NOT DISTINCT FROM $2 AND e.seq > $3 AND e.seq <= $4
         GROUP BY c.serial",
        &[&issuer, &partition, &after, &position],
        |row| {
            let serial: String = row.try_get(0).context("decoding a change")?;
            let status: String = row.try_get(1).context("decoding a change")?;
            let last_event: i64 = row.try_get(5).context("decoding a change")?;
            let e = if status == "revoked" {
                let at: i64 = row.try_get(2).context("decoding a change")?;
                let reason: i64 = row.try_get(3).context("decoding a change")?;
                entry(&serial, at, reason, row.try_get(4).context("decoding a change")?)?
            } else {
                // Released since the base CRL: removeFromCRL, dated at the release.
                entry(&serial, last_event, i64::from(RevocationReason::RemoveFromCrl.code()), None)?
            };
            sink(e)
        },
    )?;
    tx.commit().context("ending a read transaction")?;
    Ok(position)
}

pub(super) fn record_crl(client: &mut Conn<'_>, crl: &CrlRecord, audit: &AuditEvent) -> Result<(), StoreError> {
    let now = now()?;
    let number = i64::try_from(crl.number).map_err(|_| StoreError::Database("CRL number too large".into()))?;
    let base = crl
        .base_number
        .map(i64::try_from)
        .transpose()
        .map_err(|_| StoreError::Database("base CRL number too large".into()))?;
    let mut tx = audited(client)?;
    tx.execute(
        "INSERT INTO crls (issuer, crl_partition, kind, number, base_number, this_update, next_update, event_seq, published_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &crl.issuer,
            &partition_key(crl.partition),
            &crl.kind.as_str(),
            &number,
            &base,
            &crl.this_update.unix_timestamp(),
            &crl.next_update.unix_timestamp(),
            &crl.event_seq,
            &now.secs,
        ],
    )
    .with_context(|| format!("recording CRL {}", crl.number))?;
    // Through `certificates_unpublished` (migration 4): only the revocations new since the last
    // CRL are visited.
    let partition = crl.partition.map(i64::from);
    match &partition {
        None => tx.execute(
            "UPDATE certificates SET first_crl_number = $1
             WHERE status = 'revoked' AND issuer = $2 AND crl_partition IS NULL
               AND first_crl_number IS NULL AND revocation_seq <= $3",
            &[&number, &crl.issuer, &crl.event_seq],
        ),
        Some(p) => tx.execute(
            "UPDATE certificates SET first_crl_number = $1
             WHERE status = 'revoked' AND issuer = $2 AND crl_partition = $4
               AND first_crl_number IS NULL AND revocation_seq <= $3",
            &[&number, &crl.issuer, &crl.event_seq, p],
        ),
    }
    .context("marking revocations published")?;
    let mut head = chain_head(&mut tx)?;
    append(&mut tx, &mut head, &now, audit)?;
    tx.commit().context("committing a CRL record")
}

pub(super) fn last_crl(
    client: &mut Conn<'_>,
    issuer: &str,
    partition: Option<u32>,
    kind: CrlKind,
) -> Result<Option<CrlRecord>, StoreError> {
    let row = client
        .query_opt_cached(
            "SELECT number, base_number, this_update, next_update, event_seq FROM crls
             WHERE issuer = $1 AND crl_partition = $2 AND kind = $3 ORDER BY number DESC LIMIT 1",
            &[&issuer, &partition_key(partition), &kind.as_str()],
        )
        .context("reading the last CRL")?;
    let Some(row) = row else { return Ok(None) };
    let decode = || -> Result<(i64, Option<i64>, i64, i64, i64), postgres::Error> {
        Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?))
    };
    let (number, base, this_update, next_update, event_seq) = decode().context("reading the last CRL")?;
    Ok(Some(CrlRecord {
        issuer: issuer.to_owned(),
        partition,
        kind,
        number: u64::try_from(number).map_err(|_| StoreError::Corrupt(format!("CRL number {number}")))?,
        base_number: base
            .map(|b| u64::try_from(b).map_err(|_| StoreError::Corrupt(format!("base CRL number {b}"))))
            .transpose()?,
        this_update: time(this_update, "this_update")?,
        next_update: time(next_update, "next_update")?,
        event_seq,
    }))
}

/// The latest notAfter among `issuer`'s certificates.
pub(super) fn latest_not_after(client: &mut Conn<'_>, issuer: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    let secs: Option<i64> = client
        .query_one("SELECT MAX(not_after) FROM certificates WHERE issuer = $1", &[&issuer])
        .and_then(|r| r.try_get(0))
        .with_context(|| format!("the latest notAfter of {issuer}'s certificates"))?;
    secs.map(|s| time(s, "not_after")).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::postgres::PgCluster;

    /// A full CRL reads the revoked list from the covering index alone (`IS NOT DISTINCT FROM`,
    /// as before, cannot use an index for the partition: every certificate row was read).
    #[test]
    fn the_revoked_list_is_an_index_only_scan() {
        let cluster = PgCluster::start().unwrap();
        let db = cluster.create_database(None).unwrap();
        let url = cluster.url(&db);
        drop(crate::store::PostgresStore::connect(&url, Some(cluster.password())).unwrap());
        let (config, _) = crate::store::postgres::parse_url(&url, Some(cluster.password())).unwrap();
        let mut client = config.connect(postgres::NoTls).unwrap();
        // An empty test table would be scanned whole anyway: ask what the index allows.
        client.batch_execute("SET enable_seqscan = off; SET enable_bitmapscan = off").unwrap();
        for sql in [REVOKED_LIST, REVOKED_LIST_IN_PARTITION] {
            let sql = sql.replace("$1", "'issuing'").replace("$2", "3");
            let plan: Vec<String> =
                client.query(&format!("EXPLAIN {sql}"), &[]).unwrap().iter().map(|r| r.get(0)).collect();
            let plan = plan.join("\n");
            assert!(plan.contains("Index Only Scan using certificates_revoked_list"), "{plan}");
        }
    }
}
