use std::path::Path;

use rusqlite::Connection;
use time::OffsetDateTime;

use super::*;
use crate::identity::{Bin, Iin};
use crate::revocation::RevocationReason;

fn iin(first_eleven: &str) -> Iin {
    Iin::with_check_digit(first_eleven).expect("valid test IIN")
}

fn bin(first_eleven: &str) -> Bin {
    Bin::with_check_digit(first_eleven).expect("valid test BIN")
}

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

fn reservation(iin: Option<Iin>, bin: Option<Bin>) -> Reservation {
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

fn event(action: &str, serial: &SerialNumber) -> AuditEvent {
    AuditEvent::new("tester", action).target(serial.to_hex()).details(serde_json::json!({ "n": 1, "ok": true }))
}

fn issued(serial: &SerialNumber) -> Issued {
    Issued { serial: serial.clone(), der: vec![0x30, 0x03, 0x02, 0x01, 0x01] }
}

fn revocation(reason: RevocationReason) -> Revocation {
    Revocation { reason, revoked_at: t(1_710_000_000), invalidity_date: Some(t(1_709_000_000)) }
}

/// Reserve and record one certificate; returns its serial.
fn issue_one(store: &SqliteStore, r: Reservation) -> SerialNumber {
    let serial = r.serial.clone();
    store.reserve(&[r], &[event("certificate.reserve", &serial)]).unwrap();
    store.record_issued(&[issued(&serial)], &[event("certificate.issue", &serial)]).unwrap();
    serial
}

fn audit_len(store: &SqliteStore) -> u64 {
    store.verify_audit().unwrap().entries
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

#[test]
fn reserve_record_revoke_happy_path() {
    let store = SqliteStore::open_in_memory().unwrap();
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
    assert_eq!(audit_len(&store), 3);
    assert!(store.certificate(&SerialNumber::random()).unwrap().is_none());
}

#[test]
fn duplicate_serial_is_rejected_and_nothing_written() {
    let store = SqliteStore::open_in_memory().unwrap();
    let first = reservation(None, None);
    store.reserve(std::slice::from_ref(&first), &[event("certificate.reserve", &first.serial)]).unwrap();

    let fresh = reservation(None, None);
    let err =
        store.reserve(&[fresh.clone(), first.clone()], &[event("certificate.reserve", &fresh.serial)]).unwrap_err();
    assert!(matches!(&err, StoreError::DuplicateSerial(s) if *s == first.serial), "{err}");
    assert!(store.certificate(&fresh.serial).unwrap().is_none(), "the whole batch rolls back");
    assert_eq!(audit_len(&store), 1);

    // A duplicate inside one batch is caught the same way.
    let err = store.reserve(&[fresh.clone(), fresh.clone()], &[]).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSerial(_)));
    assert_eq!(store.find(&CertificateQuery::default()).unwrap().len(), 1);
}

#[test]
fn recording_needs_a_reservation() {
    let store = SqliteStore::open_in_memory().unwrap();
    let r = reservation(None, None);
    let reserved = r.serial.clone();
    store.reserve(&[r], &[]).unwrap();

    let unknown = SerialNumber::random();
    let err = store.record_issued(&[issued(&reserved), issued(&unknown)], &[event("certificate.issue", &unknown)]);
    assert!(matches!(&err, Err(StoreError::UnknownSerial(s)) if *s == unknown), "{err:?}");
    assert_eq!(store.certificate(&reserved).unwrap().unwrap().status, CertificateStatus::Reserved, "rolled back");
    assert_eq!(audit_len(&store), 0);

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

#[test]
fn revoke_unknown_reserved_and_already_revoked() {
    let store = SqliteStore::open_in_memory().unwrap();
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

    let serial = issue_one(&store, reservation(None, None));
    let before = audit_len(&store);
    let RevokeOutcome::Revoked(first) = store.revoke(&serial, &rev, &event("certificate.revoke", &serial)).unwrap()
    else {
        panic!("expected a revocation");
    };
    let again =
        Revocation { reason: RevocationReason::KeyCompromise, revoked_at: t(1_720_000_000), invalidity_date: None };
    let outcome = store.revoke(&serial, &again, &event("certificate.revoke", &serial)).unwrap();
    assert_eq!(outcome, RevokeOutcome::AlreadyRevoked(first.clone()), "the first revocation stands");
    assert_eq!(store.certificate(&serial).unwrap(), Some(first));
    assert_eq!(audit_len(&store), before + 1, "only the real revocation is journalled");
}

#[test]
fn find_filters_and_orders_newest_first() {
    let store = SqliteStore::open_in_memory().unwrap();
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
}

#[test]
fn audit_chain_verifies_after_many_operations() {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut expected = 0;
    for round in 0..30 {
        let batch: Vec<Reservation> = (0..5).map(|_| reservation(None, None)).collect();
        let events: Vec<AuditEvent> = batch.iter().map(|r| event("certificate.reserve", &r.serial)).collect();
        store.reserve(&batch, &events).unwrap();
        let certs: Vec<Issued> = batch.iter().map(|r| issued(&r.serial)).collect();
        store.record_issued(&certs, &[AuditEvent::new("ca", "certificate.issue.batch")]).unwrap();
        expected += 6;
        if round % 3 == 0 {
            let s = &batch[0].serial;
            store.revoke(s, &revocation(RevocationReason::Unspecified), &event("certificate.revoke", s)).unwrap();
            expected += 1;
        }
        let entry = store
            .append_audit(&AuditEvent::new("operator", "note").details(serde_json::json!({ "round": round, "x": 0.1 })))
            .unwrap();
        expected += 1;
        assert_eq!(entry.seq, expected as i64);
    }
    let v = store.verify_audit().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.entries, expected);
}

#[test]
fn appended_entry_matches_what_is_stored() {
    let store = SqliteStore::open_in_memory().unwrap();
    let first = store.append_audit(&AuditEvent::new("a", "one")).unwrap();
    let second = store.append_audit(&AuditEvent::new("b", "two").target("x")).unwrap();
    assert_eq!((first.seq, first.prev_hash), (1, GENESIS_HASH));
    assert_eq!((second.seq, second.prev_hash), (2, first.hash));
    assert_eq!(second.hash, entry_hash(2, second.at, &second.event, &first.hash));
    assert_eq!(store.verify_audit().unwrap().head, hex::encode(second.hash));
}

fn journalled_file_store(dir: &Path) -> (SqliteStore, std::path::PathBuf) {
    let path = dir.join("ca.db");
    let store = SqliteStore::open(&path).unwrap();
    for i in 0..5 {
        store.append_audit(&AuditEvent::new("tester", format!("step.{i}"))).unwrap();
    }
    assert!(store.verify_audit().unwrap().is_intact());
    (store, path)
}

#[test]
fn append_only_triggers_refuse_update_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, path) = journalled_file_store(dir.path());
    let conn = raw(&path);
    for sql in ["UPDATE audit SET actor = 'mallory' WHERE seq = 3", "DELETE FROM audit WHERE seq = 3"] {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("audit journal is append-only"), "{sql}: {err}");
    }
}

#[test]
fn edited_audit_row_is_detected_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = journalled_file_store(dir.path());
    let conn = raw(&path);
    conn.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 3;").unwrap();
    let v = store.verify_audit().unwrap();
    assert!(!v.is_intact());
    assert_eq!(v.problems.len(), 1, "{v:?}");
    assert_eq!(v.problems[0].seq, 3);
}

#[test]
fn deleted_audit_row_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = journalled_file_store(dir.path());
    let conn = raw(&path);
    conn.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 3;").unwrap();
    let v = store.verify_audit().unwrap();
    assert_eq!(v.entries, 4);
    assert!(v.problems.iter().any(|p| p.seq == 4 && p.problem.contains("gap")), "{v:?}");
}

#[test]
fn unreadable_audit_row_is_a_problem_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = journalled_file_store(dir.path());
    let conn = raw(&path);
    conn.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET details = '{not json' WHERE seq = 2;").unwrap();
    let v = store.verify_audit().unwrap();
    assert_eq!(v.entries, 5);
    assert_eq!(v.problems.len(), 1, "{v:?}");
    assert_eq!(v.problems[0].seq, 2);
}

#[test]
fn corrupt_certificate_row_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    let store = SqliteStore::open(&path).unwrap();
    let serial = issue_one(&store, reservation(None, None));
    raw(&path).execute("UPDATE certificates SET iin = '123456789012' WHERE serial = ?1", [serial.to_hex()]).unwrap();
    let err = store.certificate(&serial).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("iin")), "{err}");
}

#[test]
fn file_store_persists_and_reopens_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    let serial = {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.path(), Some(path.as_path()));
        issue_one(&store, reservation(Some(iin("88010130001")), None))
    };
    for _ in 0..2 {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), migrations::LATEST);
        assert_eq!(store.certificate(&serial).unwrap().unwrap().status, CertificateStatus::Issued);
        let v = store.verify_audit().unwrap();
        assert!(v.is_intact() && v.entries == 2, "{v:?}");
    }
    let conn = raw(&path);
    let applied: i64 = conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
    assert_eq!(applied, migrations::MIGRATIONS.len() as i64);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn two_handles_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    let cli = SqliteStore::open(&path).unwrap();
    let server = SqliteStore::open(&path).unwrap();
    let serial = issue_one(&cli, reservation(None, None));
    server.append_audit(&AuditEvent::new("server", "hello")).unwrap();
    assert!(server.certificate(&serial).unwrap().is_some());
    let v = cli.verify_audit().unwrap();
    assert!(v.is_intact() && v.entries == 3, "{v:?}");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    drop(SqliteStore::open(&path).unwrap());
    raw(&path).execute("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)", []).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::SchemaTooNew { found: 999, known, .. } if *known == migrations::LATEST),
        "{err}"
    );
}

#[test]
fn store_is_send_and_sync() {
    fn assert_store<T: Store + Send + Sync + 'static>() {}
    assert_store::<SqliteStore>();
}

/// `cargo test --release -p ca-core throughput -- --ignored --nocapture`
#[test]
#[ignore = "measures throughput; run in release mode"]
fn throughput_reserve_and_record_in_batches_of_1000() {
    const BATCH: usize = 1000;
    const BATCHES: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bench.db")).unwrap();
    let person = iin("88010130001");
    let der = vec![0x5a; 1200];
    let started = std::time::Instant::now();
    for _ in 0..BATCHES {
        let batch: Vec<Reservation> = (0..BATCH).map(|_| reservation(Some(person), None)).collect();
        let events: Vec<AuditEvent> = batch.iter().map(|r| event("certificate.reserve", &r.serial)).collect();
        store.reserve(&batch, &events).unwrap();
        let certs: Vec<Issued> = batch.iter().map(|r| Issued { serial: r.serial.clone(), der: der.clone() }).collect();
        let events: Vec<AuditEvent> = batch.iter().map(|r| event("certificate.issue", &r.serial)).collect();
        store.record_issued(&certs, &events).unwrap();
    }
    let elapsed = started.elapsed();
    let total = BATCH * BATCHES;
    println!(
        "{total} certificates reserved+recorded (2 audit entries each) in {elapsed:.2?}: {:.0} certificates/s",
        total as f64 / elapsed.as_secs_f64()
    );
    let started = std::time::Instant::now();
    let v = store.verify_audit().unwrap();
    println!("verified {} audit entries in {:.2?}", v.entries, started.elapsed());
    assert!(v.is_intact());
}

mod crls {
    use super::*;
    use crate::revocation::RevocationReason;
    use crate::store::{CrlKind, CrlRecord, ReleaseOutcome, RevokedEntry};

    fn issued_cert(store: &SqliteStore, partition: Option<u32>) -> SerialNumber {
        let mut r = reservation(None, None);
        r.crl_partition = partition;
        let serial = r.serial.clone();
        store.reserve(&[r], &[]).unwrap();
        store.record_issued(&[issued(&serial)], &[]).unwrap();
        serial
    }

    fn revoke(store: &SqliteStore, serial: &SerialNumber, reason: RevocationReason) -> RevokeOutcome {
        let revocation = Revocation { reason, revoked_at: t(1_710_000_000), invalidity_date: None };
        store.revoke(serial, &revocation, &event("certificate.revoke", serial)).unwrap()
    }

    fn snapshot(store: &SqliteStore, partition: Option<u32>) -> (i64, Vec<RevokedEntry>) {
        let mut out = Vec::new();
        let pos = store
            .revoked_snapshot("issuing", partition, &mut |e| {
                out.push(e);
                Ok(())
            })
            .unwrap();
        (pos, out)
    }

    fn changes(store: &SqliteStore, partition: Option<u32>, after: i64) -> (i64, Vec<RevokedEntry>) {
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

    #[test]
    fn crl_numbers_only_increase_per_issuer() {
        let store = SqliteStore::open_in_memory().unwrap();
        let a: Vec<u64> = (0..3).map(|_| store.allocate_crl_number("issuing").unwrap()).collect();
        assert_eq!(a, vec![1, 2, 3]);
        assert_eq!(store.allocate_crl_number("other").unwrap(), 1);
    }

    #[test]
    fn full_snapshot_delta_changes_and_first_crl_number() {
        let store = SqliteStore::open_in_memory().unwrap();
        let a = issued_cert(&store, None);
        let b = issued_cert(&store, None);
        let c = issued_cert(&store, None);
        revoke(&store, &a, RevocationReason::KeyCompromise);
        revoke(&store, &b, RevocationReason::CertificateHold);
        let (pos, entries) = snapshot(&store, None);
        assert_eq!(entries.len(), 2);
        store.record_crl(&crl(CrlKind::Full, 1, None, pos), &event("crl.publish", &a)).unwrap();
        assert_eq!(store.certificate(&a).unwrap().unwrap().first_crl_number, Some(1));
        assert_eq!(store.last_crl("issuing", None, CrlKind::Full).unwrap().unwrap().number, 1);

        // After the full CRL: c revoked, b released, a unchanged.
        revoke(&store, &c, RevocationReason::Superseded);
        assert!(matches!(store.release_hold(&b, &event("hold.release", &b)).unwrap(), ReleaseOutcome::Released(_)));
        assert!(matches!(store.release_hold(&a, &event("hold.release", &a)).unwrap(), ReleaseOutcome::NotOnHold(_)));
        let (pos2, delta) = changes(&store, None, pos);
        assert!(pos2 > pos);
        let mut got: Vec<(SerialNumber, RevocationReason)> = delta.into_iter().map(|e| (e.serial, e.reason)).collect();
        got.sort_by(|x, y| x.0.cmp(&y.0));
        let mut want = vec![(b.clone(), RevocationReason::RemoveFromCrl), (c.clone(), RevocationReason::Superseded)];
        want.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(got, want);
        store.record_crl(&crl(CrlKind::Delta, 2, Some(1), pos2), &event("crl.publish", &c)).unwrap();
        assert_eq!(store.certificate(&c).unwrap().unwrap().first_crl_number, Some(2));
        assert_eq!(store.certificate(&b).unwrap().unwrap().status, CertificateStatus::Issued);
        assert!(store.verify_audit().unwrap().is_intact());
    }

    #[test]
    fn a_hold_can_become_final_and_keeps_its_date() {
        let store = SqliteStore::open_in_memory().unwrap();
        let a = issued_cert(&store, None);
        revoke(&store, &a, RevocationReason::CertificateHold);
        assert!(matches!(revoke(&store, &a, RevocationReason::CertificateHold), RevokeOutcome::AlreadyRevoked(_)));
        let later =
            Revocation { reason: RevocationReason::KeyCompromise, revoked_at: t(1_720_000_000), invalidity_date: None };
        let out = store.revoke(&a, &later, &event("certificate.revoke", &a)).unwrap();
        let RevokeOutcome::Revoked(rec) = out else { panic!("hold becomes final") };
        let rev = rec.revocation.unwrap();
        assert_eq!(rev.reason, RevocationReason::KeyCompromise);
        assert_eq!(rev.revoked_at, t(1_710_000_000));
        assert!(matches!(revoke(&store, &a, RevocationReason::Superseded), RevokeOutcome::AlreadyRevoked(_)));
        assert!(matches!(store.release_hold(&a, &event("hold.release", &a)).unwrap(), ReleaseOutcome::NotOnHold(_)));
    }

    #[test]
    fn partitions_are_listed_separately() {
        let store = SqliteStore::open_in_memory().unwrap();
        let p0 = issued_cert(&store, Some(0));
        let p1 = issued_cert(&store, Some(1));
        let none = issued_cert(&store, None);
        for s in [&p0, &p1, &none] {
            revoke(&store, s, RevocationReason::Unspecified);
        }
        assert_eq!(snapshot(&store, Some(0)).1.iter().map(|e| e.serial.clone()).collect::<Vec<_>>(), vec![p0]);
        assert_eq!(snapshot(&store, Some(1)).1.len(), 1);
        assert_eq!(snapshot(&store, None).1.iter().map(|e| e.serial.clone()).collect::<Vec<_>>(), vec![none]);
        assert_eq!(changes(&store, Some(1), 0).1.len(), 1);
    }
}

#[test]
fn states_answer_a_whole_path_in_its_order() {
    let store = SqliteStore::open_in_memory().unwrap();
    let good = issue_one(&store, reservation(Some(iin("88010130001")), None));
    let revoked = issue_one(&store, reservation(None, Some(bin("88014000001"))));
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
    // The single look-up agrees with the batch, and with the full record.
    for (serial, state) in asked.iter().zip(&states) {
        assert_eq!(&store.state(serial).unwrap(), state);
        assert_eq!(&store.certificate(serial).unwrap().map(Into::into), state);
    }
    assert!(store.states(&[]).unwrap().is_empty());
}
