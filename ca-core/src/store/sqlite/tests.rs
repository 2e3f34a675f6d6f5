//! What is particular to the SQLite file: persistence, WAL, several handles on one file, schema
//! versions. The behaviour every store shares is tested on SQLite and PostgreSQL alike by
//! `ca-core/tests/store_suite`.

use std::path::Path;

use rusqlite::Connection;
use time::OffsetDateTime;

use super::*;
use crate::identity::{Bin, Iin};

fn iin(first_eleven: &str) -> Iin {
    Iin::with_check_digit(first_eleven).expect("valid test IIN")
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

/// Reserve and record one certificate; returns its serial.
fn issue_one(store: &SqliteStore, r: Reservation) -> SerialNumber {
    let serial = r.serial.clone();
    store.reserve(&[r], &[event("certificate.reserve", &serial)]).unwrap();
    store.record_issued(&[issued(&serial)], &[event("certificate.issue", &serial)]).unwrap();
    serial
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
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

/// A full CRL reads the revoked list from the covering index alone: through the table, every
/// entry cost a read of its row (with its DER), at national scale a scan of the whole file.
#[test]
fn the_revoked_list_and_the_published_mark_are_index_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.db");
    drop(SqliteStore::open(&path).unwrap());
    let plan = |sql: &str| -> String {
        let conn = raw(&path);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params = rusqlite::params_from_iter(std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count()));
        let rows = stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
    };
    let list = plan(crls::REVOKED_LIST);
    assert!(list.contains("USING COVERING INDEX certificates_revoked_list"), "{list}");
    let mark = plan(crls::MARK_PUBLISHED);
    assert!(mark.contains("USING INDEX certificates_unpublished"), "{mark}");
}

#[test]
fn status_reads_do_not_wait_for_the_writer() {
    // OCSP and verification read statuses while the store's one read-write connection is busy
    // with a write (an issuance's transaction and fsync, a revocation): the read goes to a
    // reader of its own and sees what was committed before it.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ca.db")).unwrap();
    let serial = issue_one(&store, reservation(Some(iin("88010130001")), None));
    let (sent, answered) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        // Taken in here, so a failure below releases it before the scope joins the reader.
        let writer = store.lock();
        writer
            .execute_batch(
                "BEGIN IMMEDIATE;
                 UPDATE certificates SET status = 'revoked', revoked_at = 1700000100, revocation_reason = 1",
            )
            .unwrap();
        s.spawn(|| {
            let states = store.states(std::slice::from_ref(&serial)).unwrap();
            let found = store.find(&CertificateQuery { iin: Some(iin("88010130001")), ..Default::default() }).unwrap();
            sent.send((states, found.len())).unwrap();
        });
        let (states, found) = answered
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the status read waited for the writer's transaction");
        // The uncommitted change is not seen.
        assert_eq!(states[0].as_ref().unwrap().status, CertificateStatus::Issued);
        assert_eq!(found, 1);
        writer.execute_batch("COMMIT").unwrap();
        drop(writer);
    });
    // Committed: the next read sees it.
    assert_eq!(store.states(&[serial]).unwrap()[0].as_ref().unwrap().status, CertificateStatus::Revoked);
}

#[test]
fn many_concurrent_readers_share_a_bounded_set_of_connections() {
    // As on ca-server's blocking pool: far more threads than connections worth keeping.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ca.db")).unwrap();
    let serial = issue_one(&store, reservation(None, None));
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                for _ in 0..50 {
                    let states = store.states(std::slice::from_ref(&serial)).unwrap();
                    assert_eq!(states[0].as_ref().unwrap().status, CertificateStatus::Issued);
                }
            });
        }
    });
    let (open, idle) = store.readers.as_ref().unwrap().counts();
    assert!((1..=16).contains(&open), "{open} readers open for 64 threads");
    assert_eq!(idle, open, "every reader back");
}
