//! What both store backends share when they write: the time of one transaction in the
//! precisions the tables store, the journal's head, and row decoding that does not depend on
//! the database.

use time::OffsetDateTime;

use super::audit::GENESIS_HASH;
use super::{CertificateStatus, Revocation, StoreError};
use crate::revocation::RevocationReason;

/// The time of one transaction, in the precisions the tables store.
pub(super) struct Now {
    pub secs: i64,
    /// Audit time, already truncated to what `at_ns` can hold so the hash matches what is read back.
    pub at: OffsetDateTime,
    pub at_ns: i64,
}

pub(super) fn now() -> Result<Now, StoreError> {
    let t = OffsetDateTime::now_utc();
    let at_ns = i64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| StoreError::Database(format!("the clock reads {t}, beyond what the audit journal can store")))?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ns))
        .map_err(|e| StoreError::Database(format!("audit time: {e}")))?;
    Ok(Now { secs: t.unix_timestamp(), at, at_ns })
}

/// The last entry of the journal, or the genesis position.
#[derive(Clone, Copy)]
pub(super) struct ChainHead {
    pub seq: i64,
    pub hash: [u8; 32],
}

impl ChainHead {
    pub const GENESIS: Self = Self { seq: 0, hash: GENESIS_HASH };
}

/// A stored 32-byte hash.
pub(super) fn hash32(value: &[u8], column: &str) -> Result<[u8; 32], String> {
    <[u8; 32]>::try_from(value).map_err(|_| format!("{column}: {} bytes, expected 32", value.len()))
}

pub(super) fn seconds(value: i64, column: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::from_unix_timestamp(value).map_err(|e| format!("{column}: {value} is not a time: {e}"))
}

pub(super) fn optional_seconds(value: Option<i64>, column: &str) -> Result<Option<OffsetDateTime>, String> {
    value.map(|v| seconds(v, column)).transpose()
}

pub(super) fn parse_status(value: &str) -> Option<CertificateStatus> {
    match value {
        "reserved" => Some(CertificateStatus::Reserved),
        "issued" => Some(CertificateStatus::Issued),
        "revoked" => Some(CertificateStatus::Revoked),
        _ => None,
    }
}

/// The revocation columns (revoked_at, revocation_reason, invalidity_date) checked against the
/// status.
pub(super) fn revocation(
    status: CertificateStatus,
    revoked_at: Option<i64>,
    reason: Option<i64>,
    invalidity_date: Option<i64>,
) -> Result<Option<Revocation>, String> {
    let revoked_at = optional_seconds(revoked_at, "revoked_at")?;
    let invalidity_date = optional_seconds(invalidity_date, "invalidity_date")?;
    Ok(match (status, revoked_at, reason) {
        (CertificateStatus::Revoked, Some(revoked_at), Some(code)) => {
            let reason = u8::try_from(code)
                .ok()
                .and_then(RevocationReason::from_code)
                .ok_or_else(|| format!("revocation_reason: {code} is not a CRLReason"))?;
            Some(Revocation { reason, revoked_at, invalidity_date })
        }
        (CertificateStatus::Revoked, _, _) => return Err("revoked without revocation time and reason".into()),
        (_, None, None) if invalidity_date.is_none() => None,
        _ => return Err("revocation fields set on a certificate that is not revoked".into()),
    })
}

/// The SHA-256 of a certificate's SubjectPublicKeyInfo, the digest a key is looked up by (`None`
/// if the DER does not decode, which the issuer never records).
pub(super) fn certificate_key_sha256(der: &[u8]) -> Option<Vec<u8>> {
    use der::{Decode, Encode};
    let certificate = x509_cert::Certificate::from_der(der).ok()?;
    let spki = certificate.tbs_certificate.subject_public_key_info.to_der().ok()?;
    Some(crate::ra::csr_keys::spki_sha256(&spki).to_vec())
}

/// When an application step recorded at `at` is timed from, given the application's previous
/// timed step (its time and name; claims, releases and counter totals are bookkeeping and not
/// passed here). Flow 1: the operator's time runs from when the applicant presents the form at
/// the counter (a recorded step), never from the online registration or the head's
/// confirmation; without a recorded presentation the operator's step is not timed.
/// Whether `step` ends the applicant's stay at the counter, which is then timed as a whole
/// ([`Step::CounterTotal`](crate::ra::application::Step::CounterTotal), 20 minutes): the card
/// written, or at a State Corporation counter its operator's confirmation (section 7: "не более
/// 20 минут"; the certificates follow within a working day).
pub(super) fn ends_counter_stay(
    kind: crate::ra::application::ApplicationKind,
    channel: crate::ra::application::Channel,
    step: crate::ra::application::Step,
) -> bool {
    use crate::ra::application::{ApplicationKind as K, Channel, Step};
    match (kind, channel) {
        (K::Card, _) => step == Step::Issue,
        (_, Channel::StateCorporation) => matches!(step, Step::OperatorConfirm | Step::OperatorVerifyConfirm),
        _ => false,
    }
}

pub(super) fn step_started(
    kind: crate::ra::application::ApplicationKind,
    step: crate::ra::application::Step,
    previous: Option<(i64, &str)>,
    at: i64,
) -> i64 {
    use crate::ra::application::{ApplicationKind, Step};
    let operator_at_counter = matches!(kind, ApplicationKind::NewIndividual | ApplicationKind::NewEmployee)
        && matches!(step, Step::OperatorVerify | Step::OperatorVerifyConfirm);
    match previous {
        Some((_, step)) if operator_at_counter && step != Step::Present.name() => at,
        Some((started, _)) => started.min(at),
        None => at,
    }
}
