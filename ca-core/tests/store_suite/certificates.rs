//! Reserve → sign → record, revocation, search and status look-ups.

use ca_core::revocation::RevocationReason;
use ca_core::serial::SerialNumber;
use ca_core::store::{CertificateQuery, CertificateStatus, Revocation, RevokeOutcome, Store, StoreError};

use crate::backends::Backend;
use crate::common::*;

pub fn reserve_record_revoke_happy_path(b: &impl Backend) {
    let store = b.store();
    let r = reservation(Some(iin("88010130001")), None);
    let serial = r.serial.clone();
    store.reserve(std::slice::from_ref(&r), &[event("certificate.reserve", &serial)]).unwrap();

    let rec = store.certificate(&serial).unwrap().unwrap();
    assert_eq!(rec.status, CertificateStatus::Reserved);
    assert_eq!((rec.iin, rec.bin, rec.not_before, rec.not_after), (r.iin, None, r.not_before, r.not_after));
    assert_eq!(
        (rec.issuer.as_str(), rec.profile.as_str(), rec.subject_dn.as_str()),
        ("issuing", "individual-sign", r.subject_dn.as_str())
    );
    assert!(rec.der.is_none() && rec.issued_at.is_none() && rec.revocation.is_none());

    store.record_issued(&[issued(&serial)], &[event("certificate.issue", &serial)]).unwrap();
    let rec = store.certificate(&serial).unwrap().unwrap();
    assert_eq!(rec.status, CertificateStatus::Issued);
    assert_eq!(rec.der, Some(issued(&serial).der));
    assert!(rec.issued_at.is_some());

    let rev = revocation(RevocationReason::KeyCompromise);
    let RevokeOutcome::Revoked(rec) = store.revoke(&serial, &rev, &event("certificate.revoke", &serial)).unwrap()
    else {
        panic!("expected a revocation");
    };
    assert_eq!(rec.status, CertificateStatus::Revoked);
    assert_eq!(rec.revocation, Some(rev));
    assert_eq!(store.certificate(&serial).unwrap(), Some(rec));
    assert_eq!(audit_len(store), 3);
    assert!(store.certificate(&SerialNumber::random()).unwrap().is_none());
}

pub fn duplicate_serial_is_rejected_and_nothing_written(b: &impl Backend) {
    let store = b.store();
    let first = reservation(None, None);
    store.reserve(std::slice::from_ref(&first), &[event("certificate.reserve", &first.serial)]).unwrap();

    let fresh = reservation(None, None);
    let err =
        store.reserve(&[fresh.clone(), first.clone()], &[event("certificate.reserve", &fresh.serial)]).unwrap_err();
    assert!(matches!(&err, StoreError::DuplicateSerial(s) if *s == first.serial), "{err}");
    assert!(store.certificate(&fresh.serial).unwrap().is_none(), "the whole batch rolls back");
    assert_eq!(audit_len(store), 1);

    // A duplicate inside one batch is caught the same way.
    let err = store.reserve(&[fresh.clone(), fresh.clone()], &[]).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSerial(_)));
    assert_eq!(store.find(&CertificateQuery::default()).unwrap().len(), 1);
}

pub fn recording_needs_a_reservation(b: &impl Backend) {
    let store = b.store();
    let r = reservation(None, None);
    let reserved = r.serial.clone();
    store.reserve(&[r], &[]).unwrap();

    let unknown = SerialNumber::random();
    let err = store.record_issued(&[issued(&reserved), issued(&unknown)], &[event("certificate.issue", &unknown)]);
    assert!(matches!(&err, Err(StoreError::UnknownSerial(s)) if *s == unknown), "{err:?}");
    assert_eq!(store.certificate(&reserved).unwrap().unwrap().status, CertificateStatus::Reserved, "rolled back");
    assert_eq!(audit_len(store), 0);

    store.record_issued(&[issued(&reserved)], &[]).unwrap();
    let err = store.record_issued(&[issued(&reserved)], &[]).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::WrongStatus { status: CertificateStatus::Issued, expected: CertificateStatus::Reserved, .. }
        ),
        "{err}"
    );
}

pub fn revoke_unknown_reserved_and_already_revoked(b: &impl Backend) {
    let store = b.store();
    let rev = revocation(RevocationReason::Superseded);
    let unknown = SerialNumber::random();
    assert!(matches!(
        store.revoke(&unknown, &rev, &event("certificate.revoke", &unknown)),
        Err(StoreError::UnknownSerial(_))
    ));

    let r = reservation(None, None);
    let reserved = r.serial.clone();
    store.reserve(&[r], &[]).unwrap();
    let err = store.revoke(&reserved, &rev, &event("certificate.revoke", &reserved)).unwrap_err();
    assert!(matches!(err, StoreError::WrongStatus { status: CertificateStatus::Reserved, .. }), "{err}");

    let serial = issue_one(store, reservation(None, None));
    let before = audit_len(store);
    let RevokeOutcome::Revoked(first) = store.revoke(&serial, &rev, &event("certificate.revoke", &serial)).unwrap()
    else {
        panic!("expected a revocation");
    };
    let again =
        Revocation { reason: RevocationReason::KeyCompromise, revoked_at: t(1_720_000_000), invalidity_date: None };
    let outcome = store.revoke(&serial, &again, &event("certificate.revoke", &serial)).unwrap();
    assert_eq!(outcome, RevokeOutcome::AlreadyRevoked(first.clone()), "the first revocation stands");
    assert_eq!(store.certificate(&serial).unwrap(), Some(first));
    assert_eq!(audit_len(store), before + 1, "only the real revocation is journalled");
}

pub fn find_filters_and_orders_newest_first(b: &impl Backend) {
    let store = b.store();
    let alice = iin("88010130001");
    let bob = iin("91052345678");
    let acme = bin("12134001234");
    let a1 = reservation(Some(alice), None);
    let a2 = reservation(Some(alice), Some(acme));
    let b1 = reservation(Some(bob), Some(acme));
    store.reserve(&[a1.clone(), a2.clone(), b1.clone()], &[]).unwrap();
    store.record_issued(&[issued(&a2.serial)], &[]).unwrap();

    let serials =
        |q: CertificateQuery| -> Vec<SerialNumber> { store.find(&q).unwrap().into_iter().map(|r| r.serial).collect() };
    assert_eq!(
        serials(CertificateQuery { iin: Some(alice), ..Default::default() }),
        [a2.serial.clone(), a1.serial.clone()]
    );
    assert_eq!(
        serials(CertificateQuery { bin: Some(acme), ..Default::default() }),
        [b1.serial.clone(), a2.serial.clone()]
    );
    assert_eq!(
        serials(CertificateQuery { status: Some(CertificateStatus::Issued), ..Default::default() }),
        vec![a2.serial.clone()]
    );
    assert_eq!(
        serials(CertificateQuery { iin: Some(alice), status: Some(CertificateStatus::Reserved), ..Default::default() }),
        vec![a1.serial.clone()]
    );
    assert_eq!(serials(CertificateQuery { issuer: Some("root".into()), ..Default::default() }), []);
    assert_eq!(
        serials(CertificateQuery { issuer: Some("issuing".into()), limit: Some(2), ..Default::default() }).len(),
        2
    );
    assert_eq!(serials(CertificateQuery::default()), [b1.serial, a2.serial, a1.serial]);
    assert_eq!(store.latest_not_after("issuing").unwrap(), Some(t(1_731_536_000)));
    assert_eq!(store.latest_not_after("root").unwrap(), None);
}

pub fn states_answer_a_whole_path_in_its_order(b: &impl Backend) {
    let store = b.store();
    let good = issue_one(store, reservation(Some(iin("88010130001")), None));
    let revoked = issue_one(store, reservation(None, Some(bin("88014000001"))));
    let rev = revocation(RevocationReason::KeyCompromise);
    store.revoke(&revoked, &rev, &event("certificate.revoke", &revoked)).unwrap();
    let reserved = reservation(None, None);
    store.reserve(std::slice::from_ref(&reserved), &[event("certificate.reserve", &reserved.serial)]).unwrap();
    let unknown = SerialNumber::random();

    let asked = [revoked.clone(), unknown.clone(), good.clone(), reserved.serial.clone(), good.clone()];
    let states = store.states(&asked).unwrap();
    assert_eq!(states.len(), asked.len());
    assert_eq!(
        states[0].as_ref().map(|s| (s.status, s.revocation.clone())),
        Some((CertificateStatus::Revoked, Some(rev)))
    );
    assert!(states[1].is_none(), "an unknown serial is None, in its place");
    assert_eq!(states[2].as_ref().map(|s| s.status), Some(CertificateStatus::Issued));
    assert_eq!(states[3].as_ref().map(|s| s.status), Some(CertificateStatus::Reserved));
    assert_eq!(states[4], states[2], "a serial asked twice is answered twice");
    assert_eq!(states[2].as_ref().map(|s| s.issuer.as_str()), Some("issuing"));
    for (serial, state) in asked.iter().zip(&states) {
        assert_eq!(&store.state(serial).unwrap(), state);
        assert_eq!(&store.certificate(serial).unwrap().map(Into::into), state);
    }
    assert!(store.states(&[]).unwrap().is_empty());
}

pub fn corrupt_certificate_row_is_reported_not_panicked(b: &impl Backend) {
    let store = b.store();
    let serial = issue_one(store, reservation(None, None));
    // Twelve digits, but not an IIN (wrong check digit).
    b.raw(&format!("UPDATE certificates SET iin = '123456789012' WHERE serial = '{}'", serial.to_hex())).unwrap();
    let err = store.certificate(&serial).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("iin")), "{err}");
}

/// Issuers in several threads, each with its own handle (connections), reserving and
/// recording at once: every serial is recorded once, and the journal is one intact chain.
pub fn concurrent_issuers_keep_one_chain(b: &impl Backend) {
    const THREADS: usize = 4;
    const EACH: usize = 10;
    let handles: Vec<_> = (0..THREADS).map(|_| b.open()).collect();
    std::thread::scope(|s| {
        for store in &handles {
            s.spawn(move || {
                for _ in 0..EACH {
                    let serial = issue_one(store, reservation(None, None));
                    store
                        .revoke(
                            &serial,
                            &revocation(RevocationReason::Superseded),
                            &event("certificate.revoke", &serial),
                        )
                        .unwrap();
                }
            });
        }
    });
    let all = b.store().find(&CertificateQuery::default()).unwrap();
    assert_eq!(all.len(), THREADS * EACH);
    assert!(all.iter().all(|r| r.status == CertificateStatus::Revoked));
    let v = b.store().verify_audit().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.entries, (THREADS * EACH * 3) as u64);
}
