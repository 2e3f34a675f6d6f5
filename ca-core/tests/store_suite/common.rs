//! Test values shared by the cases.

use ca_core::identity::{Bin, Iin};
use ca_core::revocation::RevocationReason;
use ca_core::serial::SerialNumber;
use ca_core::store::{AuditEvent, Issued, Reservation, Revocation, Store};
use time::OffsetDateTime;

pub fn iin(first_eleven: &str) -> Iin {
    Iin::with_check_digit(first_eleven).expect("valid test IIN")
}

pub fn bin(first_eleven: &str) -> Bin {
    Bin::with_check_digit(first_eleven).expect("valid test BIN")
}

pub fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

pub fn reservation(iin: Option<Iin>, bin: Option<Bin>) -> Reservation {
    Reservation {
        serial: SerialNumber::random(),
        issuer: "issuing".into(),
        profile: "individual-sign".into(),
        subject_dn: "CN=TEST,SERIALNUMBER=IIN000000000000".into(),
        iin,
        bin,
        not_before: t(1_700_000_000),
        not_after: t(1_731_536_000),
        crl_partition: None,
    }
}

pub fn event(action: &str, serial: &SerialNumber) -> AuditEvent {
    AuditEvent::new("tester", action).target(serial.to_hex()).details(serde_json::json!({ "n": 1, "ok": true }))
}

pub fn issued(serial: &SerialNumber) -> Issued {
    Issued { serial: serial.clone(), der: vec![0x30, 0x03, 0x02, 0x01, 0x01] }
}

pub fn revocation(reason: RevocationReason) -> Revocation {
    Revocation { reason, revoked_at: t(1_710_000_000), invalidity_date: Some(t(1_709_000_000)) }
}

/// Reserve and record one certificate; returns its serial.
pub fn issue_one(store: &impl Store, r: Reservation) -> SerialNumber {
    let serial = r.serial.clone();
    store.reserve(&[r], &[event("certificate.reserve", &serial)]).unwrap();
    store.record_issued(&[issued(&serial)], &[event("certificate.issue", &serial)]).unwrap();
    serial
}

pub fn audit_len(store: &impl Store) -> u64 {
    store.verify_audit().unwrap().entries
}
