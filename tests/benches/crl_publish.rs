//! CRL publication from the store at national scale: a full CRL of 1,000,000 revoked
//! certificates streamed out of the store, built, signed and written durably, and a delta of
//! 1,000 changes on top of it — from SQLite, then from PostgreSQL holding the same rows. Run:
//! `cargo bench -p ca-tests --bench crl_publish [-- N [ISSUED]]` (N revocations, default
//! 1,000,000; ISSUED further certificates that are not revoked, default 0; setting up the
//! databases takes a few minutes).
//!
//! The SQLite store is filled with SQL straight into the tables (a million separate durable
//! revocations would take an hour of fsyncs and measure nothing of interest), every row with a
//! certificate-sized DER (900 octets) as real rows have, and moved into a throwaway PostgreSQL
//! cluster (`fsync` and `synchronous_commit` on) by `ca store copy`, then `VACUUM ANALYZE` and a
//! checkpoint; the 1,000 delta revocations go through the normal `revoke` path.

use std::time::Instant;

use ca_core::clock::SystemClock;
use ca_core::issuer::{IssuanceRequest, Issuer};
use ca_core::revocation::{revoke, RevocationReason};
use ca_core::serial::SerialNumber;
use ca_core::store::{PostgresStore, RevokedEntry, SqliteStore, Store, StoreError};
use crl::{CrlBuilder, CrlEntry, CrlParams};
use fixtures::postgres::PgCluster;
use fixtures::TestCa;
use hsm::KeyAlgorithm;
use time::{Duration, OffsetDateTime};

/// Octets of DER per stored certificate: the size of a national-profile certificate.
const DER_LEN: i64 = 900;

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

/// `revoked` revoked and `issued` valid certificates of issuer "nca", in random serial order.
fn fill(path: &std::path::Path, revoked: usize, issued: usize) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF;").unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut cert = tx
            .prepare(
                "INSERT INTO certificates (serial, issuer, status, profile, subject_dn, not_before, not_after,
                     reserved_at, issued_at, der, revoked_at, revocation_reason, revocation_seq)
                 VALUES (?1, 'nca', ?5, 'individual-sign', 'CN=BENCH', 1700000000, 1800000000,
                     1700000000, 1700000000, zeroblob(?6), ?2, ?3, ?4)",
            )
            .unwrap();
        let mut event = tx
            .prepare("INSERT INTO revocation_events (serial, issuer, kind, at) VALUES (?1, 'nca', 'revoke', ?2)")
            .unwrap();
        let every = (revoked + issued) / revoked.max(1);
        let (mut r, mut i) = (0, 0);
        while r < revoked || i < issued {
            let serial = SerialNumber::random().to_hex();
            if r < revoked && (i == issued || (r + i) % every.max(1) == 0) {
                let at = 1_700_000_000 + r as i64;
                // Foreign keys are off on this raw connection, so the event can come first and
                // give the certificate its revocation position.
                event.execute(rusqlite::params![serial, at]).unwrap();
                let seq = tx.last_insert_rowid();
                let reason = [1i64, 4, 5, 6, 0][r % 5];
                cert.execute(rusqlite::params![serial, at, reason, seq, "revoked", DER_LEN]).unwrap();
                r += 1;
            } else {
                cert.execute(rusqlite::params![serial, None::<i64>, None::<i64>, None::<i64>, "issued", DER_LEN])
                    .unwrap();
                i += 1;
            }
        }
    }
    tx.commit().unwrap();
}

/// Stream, build, sign and write durably (temporary file, fsync, rename) as `ca crl publish`
/// does; (entries, octets, position).
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
    let mut summary = None;
    ca_core::fs::write_with(out, ca_core::fs::AtomicWrite::PUBLIC, |f| -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(f);
        summary = Some(builder.finish_into(&mut w).map_err(std::io::Error::other)?);
        std::io::Write::flush(&mut w)
    })
    .unwrap();
    let summary = summary.unwrap();
    (summary.entries, summary.len, position)
}

/// The full CRL, then 1,000 revocations through the normal path and the delta on top of it.
fn measure(backend: &str, store: &dyn Store, ca: &TestCa, revoked: usize) {
    let out = ca.dir.path().join(format!("{backend}-full.crl"));
    reset_peak_rss();
    let before = peak_rss_mb();
    let t = Instant::now();
    let (entries, bytes, position) = publish(store, ca, 1, None, &out);
    let full_time = t.elapsed();
    let full_peak = peak_rss_mb();
    println!(
        "{backend} full CRL:  {entries} entries, {:.1} MB, store stream + build + RSA-2048 sign + durable write in {:.2} s, peak RSS {:.0} MB (process was {:.0} MB before)",
        bytes as f64 / 1e6,
        full_time.as_secs_f64(),
        full_peak,
        before
    );
    let parsed = std::fs::read(&out).unwrap();
    let crl = crl::parse_and_verify(&parsed, ca_core::signer::Signer::public_key(ca.issuing.signer())).unwrap();
    assert_eq!((crl.crl_number, crl.entry_count()), (Some(1), revoked as u64), "every revoked certificate listed");

    let key = hsm::SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let clock = fixtures::fixed_now();
    let issuer = Issuer { store, ..ca.issuer(&clock) };
    let requests: Vec<_> = (0..1000)
        .map(|i| IssuanceRequest {
            profile: ca_core::profile::ProfileId::IndividualSign,
            subject: fixtures::individual(i),
            roles: vec![],
            public_key: ca_core::signer::Signer::public_key(&key).clone(),
        })
        .collect();
    let issued = issuer.issue_batch(&requests).unwrap();
    for c in &issued {
        revoke(store, &SystemClock, &c.serial, RevocationReason::KeyCompromise, None, "bench").unwrap();
    }
    let t = Instant::now();
    let (entries, bytes, _) =
        publish(store, ca, 2, Some((1, position)), &ca.dir.path().join(format!("{backend}-delta.crl")));
    println!(
        "{backend} delta CRL: {entries} entries, {bytes} bytes, store query + build + sign + durable write in {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let issued: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let db = ca.dir.path().join("ca.db");
    let t = Instant::now();
    fill(&db, n, issued);
    println!("filled SQLite with {n} revoked and {issued} valid certificates in {:.1} s", t.elapsed().as_secs_f64());
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    let sqlite = SqliteStore::open(&db).unwrap();
    measure("SQLite", &sqlite, &ca, n);

    // Durable as in production (the test cluster's defaults are not).
    let cluster = PgCluster::start_with(fixtures::postgres::DURABLE).unwrap();
    assert_eq!(cluster.psql("postgres", "SHOW fsync").unwrap(), "on");
    let database = cluster.create_database(None).unwrap();
    let pg = PostgresStore::connect(&cluster.url(&database), Some(cluster.password())).unwrap();
    let t = Instant::now();
    // The delta revocations above are in the SQLite store too: the copy holds n + 1,000.
    ca_core::store::copy::sqlite_to_postgres(&sqlite, &pg).unwrap();
    drop(sqlite);
    cluster.psql(&database, "VACUUM ANALYZE").unwrap();
    cluster.psql(&database, "CHECKPOINT").unwrap();
    println!(
        "copied into PostgreSQL (ca store copy, VACUUM ANALYZE, CHECKPOINT) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    measure("PostgreSQL", &pg, &ca, n + 1000);
}
