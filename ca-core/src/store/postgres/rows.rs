//! Conversions between PostgreSQL rows and domain values. A row that does not decode is
//! reported as [`StoreError::Corrupt`] naming the column, never a panic.

use postgres::types::FromSql;
use postgres::Row;
use time::OffsetDateTime;

use crate::serial::SerialNumber;
use crate::store::audit::{AuditEntry, AuditEvent};
use crate::store::chain::{hash32, optional_seconds, parse_status, revocation, seconds};
use crate::store::{CertificateRecord, CertificateState, CertificateStatus, StoreError};

/// Columns read by [`certificate`], in its order (the SQLite store's, so rows copy as they are).
pub(super) const CERTIFICATE_COLUMNS: &str = "serial, issuer, status, profile, subject_dn, iin, bin, \
     not_before, not_after, reserved_at, issued_at, der, revoked_at, revocation_reason, invalidity_date, \
     crl_partition, first_crl_number";

/// Columns read by [`audit_entry`], in its order.
pub(super) const AUDIT_COLUMNS: &str = "seq, at_ns, actor, action, target, details, prev_hash, hash";

pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize, column: &str) -> Result<T, String> {
    row.try_get(idx).map_err(|e| format!("{column}: {e}"))
}

/// A row selected with [`CERTIFICATE_COLUMNS`].
pub(super) fn certificate(row: &Row) -> Result<CertificateRecord, StoreError> {
    let serial_text: Option<String> = row.try_get(0).ok();
    decode_certificate(row).map_err(|problem| match serial_text {
        Some(serial) => StoreError::Corrupt(format!("certificates row {serial}: {problem}")),
        None => StoreError::Corrupt(format!("certificates: {problem}")),
    })
}

fn decode_certificate(row: &Row) -> Result<CertificateRecord, String> {
    let serial: String = get(row, 0, "serial")?;
    let serial = serial.parse::<SerialNumber>().map_err(|e| format!("serial: {e}"))?;
    let status: String = get(row, 2, "status")?;
    let status = parse_status(&status).ok_or_else(|| format!("status: unknown value {status:?}"))?;
    let iin = get::<Option<String>>(row, 5, "iin")?.map(|v| v.parse().map_err(|e| format!("iin: {e}"))).transpose()?;
    let bin = get::<Option<String>>(row, 6, "bin")?.map(|v| v.parse().map_err(|e| format!("bin: {e}"))).transpose()?;
    let revocation = revocation(
        status,
        get(row, 12, "revoked_at")?,
        get(row, 13, "revocation_reason")?,
        get(row, 14, "invalidity_date")?,
    )?;
    let der: Option<Vec<u8>> = get(row, 11, "der")?;
    if status != CertificateStatus::Reserved && der.is_none() {
        return Err(format!("{} without a certificate", status.as_str()));
    }
    Ok(CertificateRecord {
        serial,
        issuer: get(row, 1, "issuer")?,
        status,
        profile: get(row, 3, "profile")?,
        subject_dn: get(row, 4, "subject_dn")?,
        iin,
        bin,
        not_before: seconds(get(row, 7, "not_before")?, "not_before")?,
        not_after: seconds(get(row, 8, "not_after")?, "not_after")?,
        reserved_at: seconds(get(row, 9, "reserved_at")?, "reserved_at")?,
        issued_at: optional_seconds(get(row, 10, "issued_at")?, "issued_at")?,
        revocation,
        crl_partition: get::<Option<i64>>(row, 15, "crl_partition")?
            .map(|p| u32::try_from(p).map_err(|_| format!("crl_partition: {p} out of range")))
            .transpose()?,
        first_crl_number: get::<Option<i64>>(row, 16, "first_crl_number")?
            .map(|n| u64::try_from(n).map_err(|_| format!("first_crl_number: {n} out of range")))
            .transpose()?,
        der,
    })
}

/// A row of serial, issuer, status, revoked_at, revocation_reason (BIGINT), invalidity_date.
pub(super) fn state(row: &Row, serial: &str) -> Result<CertificateState, StoreError> {
    let decode = || -> Result<CertificateState, String> {
        let status: String = get(row, 2, "status")?;
        let status = parse_status(&status).ok_or_else(|| format!("status: unknown value {status:?}"))?;
        let revocation = revocation(
            status,
            get(row, 3, "revoked_at")?,
            get(row, 4, "revocation_reason")?,
            get(row, 5, "invalidity_date")?,
        )?;
        Ok(CertificateState { issuer: get(row, 1, "issuer")?, status, revocation })
    };
    decode().map_err(|problem| StoreError::Corrupt(format!("certificates row {serial}: {problem}")))
}

/// Why one audit row could not be decoded (see the SQLite store's twin).
pub(super) struct UnreadableAudit {
    pub hash: Option<[u8; 32]>,
    pub problem: String,
}

/// A row selected with [`AUDIT_COLUMNS`].
pub(super) fn audit_entry(row: &Row, seq: i64) -> Result<AuditEntry, UnreadableAudit> {
    let hash = get::<Vec<u8>>(row, 7, "hash").and_then(|h| hash32(&h, "hash"));
    let decoded = (|| {
        let at_ns: i64 = get(row, 1, "at_ns")?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ns))
            .map_err(|e| format!("at_ns: {at_ns} is not a time: {e}"))?;
        let details: String = get(row, 5, "details")?;
        let details = serde_json::from_str(&details).map_err(|e| format!("details: not JSON: {e}"))?;
        let event = AuditEvent {
            actor: get(row, 2, "actor")?,
            action: get(row, 3, "action")?,
            target: get(row, 4, "target")?,
            details,
        };
        let prev_hash = hash32(&get::<Vec<u8>>(row, 6, "prev_hash")?, "prev_hash")?;
        Ok::<_, String>((at, event, prev_hash))
    })();
    match (decoded, hash) {
        (Ok((at, event, prev_hash)), Ok(hash)) => Ok(AuditEntry { seq, at, event, prev_hash, hash }),
        (Err(problem), hash) => {
            Err(UnreadableAudit { hash: hash.ok(), problem: format!("unreadable entry: {problem}") })
        }
        (Ok(_), Err(problem)) => Err(UnreadableAudit { hash: None, problem: format!("unreadable entry: {problem}") }),
    }
}
