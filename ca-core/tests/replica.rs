//! A real streaming replica (`pg_basebackup -R` to a second loopback port): a revocation
//! committed on the primary is what the replica-reading store answers within the lag the README
//! states, and the store reports the replica's freshness.

use std::time::{Duration, Instant};

use ca_core::revocation::RevocationReason;
use ca_core::serial::SerialNumber;
use ca_core::store::{AuditEvent, CertificateStatus, Issued, PostgresStore, Reservation, Revocation, Store};
use fixtures::postgres::PgCluster;
use time::OffsetDateTime;

/// The bound the README states for a replica on the same network with default settings.
const STATED_LAG: Duration = Duration::from_secs(1);

fn reservation() -> Reservation {
    let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    Reservation {
        serial: SerialNumber::random(),
        issuer: "issuing".into(),
        profile: "individual-sign".into(),
        subject_dn: "CN=TEST".into(),
        iin: None,
        bin: None,
        not_before: t,
        not_after: t + time::Duration::days(365),
        crl_partition: None,
    }
}

#[test]
fn a_revocation_on_the_primary_reaches_the_replica_within_the_stated_lag() {
    let primary = PgCluster::start().unwrap();
    let db = primary.create_database(None).unwrap();
    let url = primary.url(&db);
    let writer = PostgresStore::connect(&url, Some(primary.password())).unwrap();
    let replica = primary.start_replica().unwrap();
    let reader = PostgresStore::connect_with_replica(&url, &replica.url(&db), Some(primary.password())).unwrap();
    assert!(reader.replica_lag().unwrap().unwrap().in_recovery, "the read URL is a standby");

    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let r = reservation();
        let serial = r.serial.clone();
        writer.reserve(&[r], &[]).unwrap();
        writer.record_issued(&[Issued { serial: serial.clone(), der: vec![0x30, 0x00] }], &[]).unwrap();
        let revocation = Revocation {
            reason: RevocationReason::KeyCompromise,
            revoked_at: OffsetDateTime::now_utc(),
            invalidity_date: None,
        };
        writer.revoke(&serial, &revocation, &AuditEvent::new("tester", "certificate.revoke")).unwrap();
        let committed = Instant::now();
        // Poll the replica: replication is asynchronous, this is the lag being measured.
        loop {
            let state = reader.state(&serial).unwrap();
            if state.is_some_and(|s| s.status == CertificateStatus::Revoked) {
                break;
            }
            assert!(committed.elapsed() < STATED_LAG * 5, "the replica did not see the revocation in time");
            std::thread::sleep(Duration::from_millis(2));
        }
        worst = worst.max(committed.elapsed());
    }
    println!("worst replica lag seen: {worst:?}");
    assert!(worst <= STATED_LAG, "replica lag {worst:?} beyond the stated {STATED_LAG:?}");
    let freshness = reader.replica_lag().unwrap().unwrap();
    assert!(freshness.last_replayed.is_some());
}
