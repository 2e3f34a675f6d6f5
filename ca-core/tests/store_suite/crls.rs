//! CRL numbers, the revoked snapshot, delta changes, holds and partitions.

use ca_core::revocation::RevocationReason;
use ca_core::serial::SerialNumber;
use ca_core::store::{
    CertificateStatus, CrlKind, CrlRecord, ReleaseOutcome, Revocation, RevokeOutcome, RevokedEntry, Store,
};

use crate::backends::Backend;
use crate::common::*;

fn issued_cert(store: &impl Store, partition: Option<u32>) -> SerialNumber {
    let mut r = reservation(None, None);
    r.crl_partition = partition;
    let serial = r.serial.clone();
    store.reserve(&[r], &[]).unwrap();
    store.record_issued(&[issued(&serial)], &[]).unwrap();
    serial
}

fn revoke(store: &impl Store, serial: &SerialNumber, reason: RevocationReason) -> RevokeOutcome {
    let revocation = Revocation { reason, revoked_at: t(1_710_000_000), invalidity_date: None };
    store.revoke(serial, &revocation, &event("certificate.revoke", serial)).unwrap()
}

fn snapshot(store: &impl Store, partition: Option<u32>) -> (i64, Vec<RevokedEntry>) {
    let mut out = Vec::new();
    let pos = store
        .revoked_snapshot("issuing", partition, &mut |e| {
            out.push(e);
            Ok(())
        })
        .unwrap();
    (pos, out)
}

fn changes(store: &impl Store, partition: Option<u32>, after: i64) -> (i64, Vec<RevokedEntry>) {
    let mut out = Vec::new();
    let pos = store
        .revocation_changes("issuing", partition, after, &mut |e| {
            out.push(e);
            Ok(())
        })
        .unwrap();
    (pos, out)
}

fn crl(kind: CrlKind, number: u64, base: Option<u64>, event_seq: i64) -> CrlRecord {
    CrlRecord {
        issuer: "issuing".into(),
        partition: None,
        kind,
        number,
        base_number: base,
        this_update: t(1_710_000_000),
        next_update: t(1_710_086_400),
        event_seq,
    }
}

/// CRL numbers only grow, per issuer, also when several handles allocate at once.
pub fn crl_numbers_only_increase_per_issuer(b: &impl Backend) {
    let store = b.store();
    let a: Vec<u64> = (0..3).map(|_| store.allocate_crl_number("issuing").unwrap()).collect();
    assert_eq!(a, vec![1, 2, 3]);
    assert_eq!(store.allocate_crl_number("other").unwrap(), 1);
    let handles: Vec<_> = (0..4).map(|_| b.open()).collect();
    let mut got: Vec<u64> = std::thread::scope(|s| {
        let threads: Vec<_> = handles
            .iter()
            .map(|h| s.spawn(move || (0..10).map(|_| h.allocate_crl_number("issuing").unwrap()).collect::<Vec<_>>()))
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    got.sort_unstable();
    assert_eq!(got, (4..=43).collect::<Vec<_>>(), "no number twice, none skipped");
}

pub fn full_snapshot_delta_changes_and_first_crl_number(b: &impl Backend) {
    let store = b.store();
    let a = issued_cert(store, None);
    let bb = issued_cert(store, None);
    let c = issued_cert(store, None);
    revoke(store, &a, RevocationReason::KeyCompromise);
    revoke(store, &bb, RevocationReason::CertificateHold);
    let (pos, entries) = snapshot(store, None);
    assert_eq!(entries.len(), 2);
    store.record_crl(&crl(CrlKind::Full, 1, None, pos), &event("crl.publish", &a)).unwrap();
    assert_eq!(store.certificate(&a).unwrap().unwrap().first_crl_number, Some(1));
    assert_eq!(store.last_crl("issuing", None, CrlKind::Full).unwrap().unwrap(), crl(CrlKind::Full, 1, None, pos));

    revoke(store, &c, RevocationReason::Superseded);
    assert!(matches!(store.release_hold(&bb, &event("hold.release", &bb)).unwrap(), ReleaseOutcome::Released(_)));
    assert!(matches!(store.release_hold(&a, &event("hold.release", &a)).unwrap(), ReleaseOutcome::NotOnHold(_)));
    let (pos2, delta) = changes(store, None, pos);
    assert!(pos2 > pos);
    let mut got: Vec<(SerialNumber, RevocationReason)> = delta.into_iter().map(|e| (e.serial, e.reason)).collect();
    got.sort_by(|x, y| x.0.cmp(&y.0));
    let mut want = vec![(bb.clone(), RevocationReason::RemoveFromCrl), (c.clone(), RevocationReason::Superseded)];
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got, want);
    store.record_crl(&crl(CrlKind::Delta, 2, Some(1), pos2), &event("crl.publish", &c)).unwrap();
    assert_eq!(store.certificate(&c).unwrap().unwrap().first_crl_number, Some(2));
    assert_eq!(store.certificate(&bb).unwrap().unwrap().status, CertificateStatus::Issued);
    assert_eq!(store.last_crl("issuing", None, CrlKind::Delta).unwrap().unwrap().base_number, Some(1));
    assert!(store.verify_audit().unwrap().is_intact());
}

pub fn a_hold_can_become_final_and_keeps_its_date(b: &impl Backend) {
    let store = b.store();
    let a = issued_cert(store, None);
    revoke(store, &a, RevocationReason::CertificateHold);
    assert!(matches!(revoke(store, &a, RevocationReason::CertificateHold), RevokeOutcome::AlreadyRevoked(_)));
    let later =
        Revocation { reason: RevocationReason::KeyCompromise, revoked_at: t(1_720_000_000), invalidity_date: None };
    let RevokeOutcome::Revoked(rec) = store.revoke(&a, &later, &event("certificate.revoke", &a)).unwrap() else {
        panic!("hold becomes final")
    };
    let rev = rec.revocation.unwrap();
    assert_eq!(rev.reason, RevocationReason::KeyCompromise);
    assert_eq!(rev.revoked_at, t(1_710_000_000));
    assert!(matches!(revoke(store, &a, RevocationReason::Superseded), RevokeOutcome::AlreadyRevoked(_)));
    assert!(matches!(store.release_hold(&a, &event("hold.release", &a)).unwrap(), ReleaseOutcome::NotOnHold(_)));
}

pub fn partitions_are_listed_separately(b: &impl Backend) {
    let store = b.store();
    let p0 = issued_cert(store, Some(0));
    let p1 = issued_cert(store, Some(1));
    let none = issued_cert(store, None);
    for s in [&p0, &p1, &none] {
        revoke(store, s, RevocationReason::Unspecified);
    }
    assert_eq!(snapshot(store, Some(0)).1.iter().map(|e| e.serial.clone()).collect::<Vec<_>>(), vec![p0]);
    assert_eq!(snapshot(store, Some(1)).1.len(), 1);
    assert_eq!(snapshot(store, None).1.iter().map(|e| e.serial.clone()).collect::<Vec<_>>(), vec![none]);
    assert_eq!(changes(store, Some(1), 0).1.len(), 1);
}

/// More revoked certificates than one fetch of the PostgreSQL store's portal (10,000 rows).
/// They are revoked behind the store's back, in one statement: what is tested is the
/// streaming, and 10,000 revocations one by one would take a minute.
pub fn a_large_snapshot_streams_every_entry(b: &impl Backend) {
    let store = b.store();
    let batch: Vec<_> = (0..12_500).map(|_| reservation(None, None)).collect();
    store.reserve(&batch, &[]).unwrap();
    let certs: Vec<_> = batch.iter().map(|r| issued(&r.serial)).collect();
    store.record_issued(&certs, &[]).unwrap();
    b.raw(
        "UPDATE certificates SET status = 'revoked', revoked_at = 1710000000, revocation_reason = 4
         WHERE serial IN (SELECT serial FROM certificates ORDER BY serial LIMIT 10050)",
    )
    .unwrap();
    let (_, entries) = snapshot(store, None);
    assert_eq!(entries.len(), 10_050);
    let mut serials: Vec<_> = entries.into_iter().map(|e| e.serial).collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 10_050, "every entry once");

    // A sink that fails (a CRL file that cannot be written) ends the stream with its error,
    // wherever it is, and the store serves the next snapshot.
    let mut taken = 0;
    let failed = store.revoked_snapshot("issuing", None, &mut |_| {
        taken += 1;
        if taken == 10_001 {
            return Err(ca_core::store::StoreError::Database("disk full".into()));
        }
        Ok(())
    });
    assert!(matches!(failed, Err(ca_core::store::StoreError::Database(m)) if m == "disk full"));
    assert_eq!(taken, 10_001, "nothing handed to the sink after it failed");
    assert_eq!(snapshot(store, None).1.len(), 10_050);
}
