//! Issuance rate on the PostgreSQL store against the SQLite store, same CA key, same run. Run:
//! `cargo bench -p ca-tests --bench pg_issuance` (optional: seconds per measurement, default 3).
//!
//! Single thread, P-256 CA key (so the store, not the key, is what is measured), batches of 1
//! and 64. The PostgreSQL cluster is a throwaway one on loopback (`fixtures::postgres`) with
//! `fsync` turned back on and `synchronous_commit = on`, so both stores make durable commits.

use std::time::{Duration, Instant};

use ca_core::clock::SystemClock;
use ca_core::issuer::{IssuanceRequest, Issuer};
use ca_core::profile::ProfileId;
use ca_core::signer::Signer as _;
use ca_core::store::{PostgresStore, Store};
use fixtures::postgres::PgCluster;
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use time::Duration as Days;

fn rate(seconds: f64, mut op: impl FnMut() -> usize) -> f64 {
    op();
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        done += op();
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let keys: Vec<_> =
        (0..64).map(|_| SoftwareKey::generate(KeyAlgorithm::P256).unwrap().public_key().clone()).collect();
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    // Durable as in production (the test cluster's defaults are not).
    let cluster = PgCluster::start_with(fixtures::postgres::DURABLE).unwrap();
    assert_eq!(cluster.psql("postgres", "SHOW fsync").unwrap(), "on");
    let db = cluster.create_database(None).unwrap();
    let pg = PostgresStore::connect(&cluster.url(&db), Some(cluster.password())).unwrap();
    let clock = SystemClock;
    println!("issuance on the store, {seconds} s per measurement, single thread, P-256 CA key");
    println!("{:<10} {:>6} {:>16}", "store", "batch", "issued certs/s");
    let stores: [(&str, &dyn Store); 2] = [("sqlite", &ca.store), ("postgres", &pg)];
    for (name, store) in stores {
        for batch in [1usize, 64] {
            let issuer = Issuer {
                ca: &ca.issuing,
                store,
                clock: &clock,
                urls: &ca.urls,
                validity: Days::days(365),
                actor: "bench",
                crl_partitions: None,
            };
            let mut n = 0u32;
            let issued = rate(seconds, || {
                let requests: Vec<IssuanceRequest> = (0..batch)
                    .map(|_| {
                        n += 1;
                        IssuanceRequest {
                            profile: ProfileId::IndividualSign,
                            subject: individual(n % 1000),
                            roles: vec![],
                            public_key: keys[n as usize % keys.len()].clone(),
                        }
                    })
                    .collect();
                issuer.issue_batch(&requests).unwrap().len()
            });
            println!("{name:<10} {batch:>6} {issued:>16.0}");
        }
        assert!(store.verify_audit().unwrap().is_intact(), "audit chain intact after the benchmark");
    }
}
