//! CRL publication from the store at national scale: a full CRL of 1,000,000 revoked
//! certificates streamed out of SQLite, built and signed, and a delta of 1,000 changes on top
//! of it. Run: `cargo bench -p ca-tests --bench crl_publish [-- N]` (N revocations, default
//! 1,000,000; setting up the database takes a minute).
//!
//! The store is filled with SQL straight into the tables (a million separate durable
//! revocations would take an hour of fsyncs and measure nothing of interest); the 1,000 delta
//! revocations go through the normal `revoke` path.

use std::time::Instant;

use ca_core::clock::SystemClock;
use ca_core::revocation::{revoke, RevocationReason};
use ca_core::serial::SerialNumber;
use ca_core::store::{RevokedEntry, SqliteStore, Store, StoreError};
use crl::{CrlBuilder, CrlEntry, CrlParams};
use fixtures::TestCa;
use hsm::KeyAlgorithm;
use time::{Duration, OffsetDateTime};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn reset_peak_rss() {
    // Linux: writing 5 resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn fill(path: &std::path::Path, n: usize) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF;").unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut cert = tx
            .prepare(
                "INSERT INTO certificates (serial, issuer, status, profile, subject_dn, not_before, not_after,
                     reserved_at, issued_at, der, revoked_at, revocation_reason, revocation_seq)
                 VALUES (?1, 'nca', 'revoked', 'individual-sign', 'CN=BENCH', 1700000000, 1800000000,
                     1700000000, 1700000000, x'3000', ?2, ?3, ?4)",
            )
            .unwrap();
        let mut event = tx
            .prepare("INSERT INTO revocation_events (serial, issuer, kind, at) VALUES (?1, 'nca', 'revoke', ?2)")
            .unwrap();
        for i in 0..n {
            let serial = SerialNumber::random().to_hex();
            let at = 1_700_000_000 + i as i64;
            // Foreign keys are off on this raw connection, so the event can come first and
            // give the certificate its revocation position.
            event.execute(rusqlite::params![serial, at]).unwrap();
            let seq = tx.last_insert_rowid();
            let reason = [1i64, 4, 5, 6, 0][i % 5];
            cert.execute(rusqlite::params![serial, at, reason, seq]).unwrap();
        }
    }
    tx.commit().unwrap();
}

fn publish(
    store: &dyn Store,
    ca: &TestCa,
    number: u64,
    base: Option<(u64, i64)>,
    out: &std::path::Path,
) -> (u64, usize, i64) {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let params = CrlParams {
        issuer: ca.issuing.subject().clone(),
        authority_key_id: ca.issuing.key_id().to_vec(),
        crl_number: number,
        this_update: now,
        next_update: now + Duration::hours(if base.is_some() { 1 } else { 24 }),
        delta_base: base.map(|b| b.0),
        issuing_distribution_point: None,
        freshest_crl: base.is_none().then(|| ca.urls.delta_crl("nca")),
    };
    let mut builder = CrlBuilder::new(&params, ca.issuing.signer()).unwrap();
    let mut sink = |e: RevokedEntry| -> Result<(), StoreError> {
        builder
            .push(&CrlEntry {
                serial: e.serial.as_bytes(),
                revoked_at: e.revoked_at,
                reason: Some(e.reason).filter(|r| *r != RevocationReason::Unspecified),
                invalidity_date: e.invalidity_date,
            })
            .map_err(|err| StoreError::Database(err.to_string()))
    };
    let position = match base {
        None => store.revoked_snapshot("nca", None, &mut sink).unwrap(),
        Some((_, after)) => store.revocation_changes("nca", None, after, &mut sink).unwrap(),
    };
    let file = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let summary = builder.finish_into(file).unwrap();
    (summary.entries, summary.len, position)
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let db = ca.dir.path().join("ca.db");
    let t = Instant::now();
    fill(&db, n);
    println!("filled the store with {n} revoked certificates in {:.1} s", t.elapsed().as_secs_f64());
    let store = SqliteStore::open(&db).unwrap();

    reset_peak_rss();
    let before = peak_rss_mb();
    let t = Instant::now();
    let (entries, bytes, position) = publish(&store, &ca, 1, None, &ca.dir.path().join("full.crl"));
    let full_time = t.elapsed();
    let full_peak = peak_rss_mb();
    println!(
        "full CRL:  {entries} entries, {:.1} MB, store stream + build + RSA-2048 sign + write in {:.2} s, peak RSS {:.0} MB (process was {:.0} MB before)",
        bytes as f64 / 1e6,
        full_time.as_secs_f64(),
        full_peak,
        before
    );

    // 1,000 new revocations through the normal path, then the delta.
    let key = hsm::SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let clock = fixtures::fixed_now();
    let issuer = ca.issuer(&clock);
    let requests: Vec<_> = (0..1000)
        .map(|i| ca_core::issuer::IssuanceRequest {
            profile: ca_core::profile::ProfileId::IndividualSign,
            subject: fixtures::individual(i),
            roles: vec![],
            public_key: ca_core::signer::Signer::public_key(&key).clone(),
        })
        .collect();
    let issued = issuer.issue_batch(&requests).unwrap();
    for c in &issued {
        revoke(&store, &SystemClock, &c.serial, RevocationReason::KeyCompromise, None, "bench").unwrap();
    }
    let t = Instant::now();
    let (entries, bytes, _) = publish(&store, &ca, 2, Some((1, position)), &ca.dir.path().join("delta.crl"));
    let delta_time = t.elapsed();
    println!(
        "delta CRL: {entries} entries, {bytes} bytes, store query + build + sign + write in {:.1} ms",
        delta_time.as_secs_f64() * 1000.0
    );
    let parsed = std::fs::read(ca.dir.path().join("full.crl")).unwrap();
    let crl = crl::parse_and_verify(&parsed, ca_core::signer::Signer::public_key(ca.issuing.signer())).unwrap();
    assert_eq!(crl.crl_number, Some(1));
}
