//! A real streaming replica (`pg_basebackup -R` to a second loopback port): a revocation
//! committed on the primary is what the replica-reading store answers within the lag the README
//! states, and the store reports the replica's freshness; OCSP `thisUpdate` read from the replica
//! is the time up to which the replica is complete, and a stopped replica leads to the configured
//! fallback (the primary, or `tryLater`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ca_core::clock::SystemClock;
use ca_core::issuer::{IssuanceRequest, Issuer};
use ca_core::ocsp::{request_for, Responder};
use ca_core::profile::ProfileId;
use ca_core::revocation::RevocationReason;
use ca_core::serial::SerialNumber;
use ca_core::store::postgres::{ReplicaPolicy, WhenReplicaBehind};
use ca_core::store::{AuditEvent, CertificateStatus, Issued, PostgresStore, Reservation, Revocation, Store};
use der::Decode;
use fixtures::postgres::PgCluster;
use fixtures::TestCa;
use hsm::KeyAlgorithm;
use time::OffsetDateTime;
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus};

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
    // The replica reports its freshness: it has replayed the primary's transactions (the
    // report may trail the reads above by a replay, so it too is given the stated lag).
    let asked = Instant::now();
    loop {
        let freshness = reader.replica_lag().unwrap().unwrap();
        if freshness.caught_up && freshness.last_replayed.is_some() {
            break;
        }
        assert!(asked.elapsed() < STATED_LAG, "the replica reports no replayed transaction: {freshness:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A reader of the replica under `policy`, probing before every read.
fn reader(
    url: &str,
    read_url: &str,
    password: &str,
    max_lag: Duration,
    when_behind: WhenReplicaBehind,
) -> PostgresStore {
    let mut store = PostgresStore::connect_with_replica(url, read_url, Some(password)).unwrap();
    store.set_replica_policy(ReplicaPolicy { max_lag, when_behind, probe_every: Duration::ZERO });
    store
}

/// The responder's answer for one certificate: the response status, and thisUpdate with the
/// certificate's status when successful.
fn ask(responder: &Responder, request: &[u8]) -> (OcspResponseStatus, Option<(OffsetDateTime, &'static str)>) {
    let (der, _) = responder.respond(request);
    let response = OcspResponse::from_der(&der).unwrap();
    let Some(bytes) = response.response_bytes else { return (response.response_status, None) };
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    let single = &basic.tbs_response_data.responses[0];
    let this_update =
        OffsetDateTime::from_unix_timestamp(single.this_update.0.to_unix_duration().as_secs() as i64).unwrap();
    let status = match single.cert_status {
        CertStatus::Good(_) => "good",
        CertStatus::Revoked(_) => "revoked",
        CertStatus::Unknown(_) => "unknown",
    };
    (response.response_status, Some((this_update, status)))
}

fn floor(t: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap()
}

#[test]
fn ocsp_this_update_is_when_the_replica_was_complete_and_a_stopped_replica_falls_back() {
    let primary = PgCluster::start().unwrap();
    let db = primary.create_database(None).unwrap();
    let url = primary.url(&db);
    let password = primary.password();
    let writer = PostgresStore::connect(&url, Some(password)).unwrap();
    let replica = primary.start_replica().unwrap();
    let read_url = replica.url(&db);

    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let (key, responder_cert) = ca.ocsp_responder(KeyAlgorithm::P256);
    let key: Arc<dyn ca_core::signer::Signer> = Arc::new(key);
    let clock = SystemClock;
    let issuer = Issuer {
        ca: &ca.issuing,
        store: &writer,
        clock: &clock,
        urls: &ca.urls,
        validity: time::Duration::days(365),
        actor: "test",
        crl_partitions: None,
    };
    let subject_key = hsm::SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let leaf = issuer
        .issue(&IssuanceRequest {
            profile: ProfileId::IndividualSign,
            subject: fixtures::individual(1),
            roles: vec![],
            public_key: ca_core::signer::Signer::public_key(&subject_key).clone(),
        })
        .unwrap();
    let request = request_for(&leaf.certificate, &ca.issuing.certificate).unwrap();
    let responder = |store: PostgresStore| {
        Responder::new(
            ca.issuing.name.clone(),
            &ca.issuing.certificate_der,
            &responder_cert.der,
            key.clone(),
            Arc::new(store),
            Arc::new(SystemClock),
        )
        .unwrap()
    };
    let hour = Duration::from_secs(3600);
    let lenient = responder(reader(&url, &read_url, password, hour, WhenReplicaBehind::Primary));
    let strict = responder(reader(&url, &read_url, password, Duration::ZERO, WhenReplicaBehind::Primary));
    let refusing = responder(reader(&url, &read_url, password, Duration::ZERO, WhenReplicaBehind::TryLater));
    let probe = reader(&url, &read_url, password, hour, WhenReplicaBehind::Primary);

    // Caught up: the replica is complete as of the probe, so thisUpdate is (about) now.
    let deadline = Instant::now() + STATED_LAG * 5;
    while probe.replica_probe().unwrap().unwrap().complete_as_of.is_none_or(|t| t < floor(leaf.not_before)) {
        assert!(Instant::now() < deadline, "the replica did not catch up");
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = floor(OffsetDateTime::now_utc());
    let (status, answer) = ask(&lenient, &request);
    assert_eq!(status, OcspResponseStatus::Successful);
    let (this_update, cert_status) = answer.unwrap();
    assert_eq!(cert_status, "good");
    assert!(this_update <= OffsetDateTime::now_utc() && this_update >= before - time::Duration::seconds(1));

    // Stop replay on the replica, then revoke on the primary.
    replica.psql(&db, "SELECT pg_wal_replay_pause()").unwrap();
    // The request takes effect at the next record replayed; wait until it has.
    let deadline = Instant::now() + STATED_LAG * 5;
    while replica.psql(&db, "SELECT pg_get_wal_replay_pause_state()").unwrap() != "paused" {
        assert!(Instant::now() < deadline, "replay did not pause");
        // Something to replay, so the pause is reached.
        writer.append_audit(&AuditEvent::new("tester", "test.tick")).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let revoked_at = OffsetDateTime::now_utc();
    let revocation = Revocation { reason: RevocationReason::KeyCompromise, revoked_at, invalidity_date: None };
    writer.revoke(&leaf.serial, &revocation, &AuditEvent::new("tester", "certificate.revoke")).unwrap();
    let replayed = probe.replica_lag().unwrap().unwrap().last_replayed.expect("the replica replayed the issuance");

    // Within a lenient bound the stale replica answers, and thisUpdate says how stale: no later
    // than the last transaction it replayed, before the revocation.
    let (_, answer) = ask(&lenient, &request);
    let (this_update, cert_status) = answer.unwrap();
    assert_eq!(cert_status, "good", "the paused replica has not seen the revocation");
    assert!(this_update <= replayed, "thisUpdate {this_update} after the replica's replay time {replayed}");
    assert!(this_update <= floor(revoked_at));
    let lag = probe.replica_probe().unwrap().unwrap().lag;
    assert!(lag > Duration::ZERO && lag < hour, "lag {lag:?}");

    // Over the bound: the primary answers (current), or the responder says tryLater.
    let (status, answer) = ask(&strict, &request);
    assert_eq!(status, OcspResponseStatus::Successful);
    let (this_update, cert_status) = answer.unwrap();
    assert_eq!(cert_status, "revoked", "read from the primary");
    assert!(this_update >= floor(revoked_at));
    let (status, answer) = ask(&refusing, &request);
    assert_eq!(status, OcspResponseStatus::TryLater);
    assert!(answer.is_none());

    // Replay resumed: the replica catches up and answers the revocation itself.
    replica.psql(&db, "SELECT pg_wal_replay_resume()").unwrap();
    let deadline = Instant::now() + STATED_LAG * 5;
    loop {
        let (status, answer) = ask(&strict, &request);
        if status == OcspResponseStatus::Successful && probe.replica_probe().unwrap().unwrap().lag == Duration::ZERO {
            let (this_update, cert_status) = answer.unwrap();
            assert_eq!(cert_status, "revoked");
            assert!(this_update >= floor(revoked_at));
            break;
        }
        assert!(Instant::now() < deadline, "the replica did not catch up after resuming");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (_, answer) = ask(&lenient, &request);
    assert_eq!(answer.unwrap().1, "revoked");
}
