//! Issuance rate with the durable SQLite store, next to the raw signing rate of the same issuing
//! key measured in the same run. Run: `cargo bench -p ca-tests --bench issuance`
//! (optional arguments: seconds per measurement, default 3; a CA key algorithm to run alone).
//!
//! Single thread throughout, so the ratio compares like with like: issuance = validate + build
//! TBS + reserve (durable commit) + lint + sign + record (durable commit), per batch.

use std::time::{Duration, Instant};

use ca_core::clock::SystemClock;
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use ca_core::store::Store;
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

fn rate(seconds: f64, mut op: impl FnMut() -> usize) -> f64 {
    // Warm up, then run for the given wall time.
    op();
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        done += op();
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// `batch` requests for distinct people, SIGN and AUTH alternating, keys from the pool.
fn requests(n: &mut u32, batch: usize, keys: &[SubjectPublicKeyInfoOwned]) -> Vec<IssuanceRequest> {
    (0..batch)
        .map(|i| {
            *n += 1;
            IssuanceRequest {
                profile: if i % 2 == 0 { ProfileId::IndividualSign } else { ProfileId::IndividualAuth },
                subject: individual(*n % 1000),
                roles: vec![],
                public_key: keys[*n as usize % keys.len()].clone(),
            }
        })
        .collect()
}

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    // Optional second argument: only this CA key algorithm (rsa2048 or p256).
    let only: Option<KeyAlgorithm> = std::env::args().nth(2).and_then(|s| s.parse().ok());
    // A pool of subject keys made in advance: key generation is the applicant's, not issuance.
    let subject_keys: Vec<_> =
        (0..64).map(|_| SoftwareKey::generate(KeyAlgorithm::P256).unwrap().public_key().clone()).collect();
    println!("issuance benchmark, {seconds} s per measurement, single thread, SQLite WAL synchronous=FULL");
    println!("{:<10} {:>6} {:>14} {:>16} {:>8}", "CA key", "batch", "raw signs/s", "issued certs/s", "ratio");
    for (alg, batches) in [(KeyAlgorithm::Rsa2048, vec![1usize, 16, 256]), (KeyAlgorithm::P256, vec![1, 64, 1024])] {
        if only.is_some_and(|o| o != alg) {
            continue;
        }
        let ca = TestCa::new(KeyAlgorithm::P256, alg);
        let signer = ca.issuing.signer();
        // A representative message: the DER of a real end-entity TBSCertificate.
        let clock = SystemClock;
        let sample = ca
            .issuer(&clock)
            .issue(&IssuanceRequest {
                profile: ProfileId::IndividualSign,
                subject: individual(0),
                roles: vec![],
                public_key: subject_keys[0].clone(),
            })
            .unwrap();
        let tbs = der::Encode::to_der(&sample.certificate.tbs_certificate).unwrap();
        let raw = rate(seconds, || {
            signer.sign(&tbs).unwrap();
            1
        });
        for batch in batches {
            let issuer = ca.issuer(&clock);
            let mut n = 0u32;
            let issued = rate(seconds, || {
                let requests = requests(&mut n, batch, &subject_keys);
                issuer.issue_batch(&requests).unwrap().len()
            });
            println!("{:<10} {:>6} {:>14.0} {:>16.0} {:>8.2}", alg.to_string(), batch, raw, issued, issued / raw);
        }
        // Pipelined: reservation and recording of other batches overlap with signing (the key
        // is still used by one thread only).
        for batch in [64usize, 256] {
            let issuer = ca.issuer(&clock);
            let mut n = 0u32;
            let batches = std::iter::from_fn(|| {
                let requests = requests(&mut n, batch, &subject_keys);
                Some(requests)
            });
            let deadline = Instant::now() + Duration::from_secs_f64(seconds);
            let start = Instant::now();
            let mut delivered = 0usize;
            issuer
                .issue_pipelined(batches.take_while(|_| Instant::now() < deadline), |b| delivered += b.len())
                .unwrap();
            let issued = delivered as f64 / start.elapsed().as_secs_f64();
            println!(
                "{:<10} {:>6} {:>14.0} {:>16.0} {:>8.2}  pipelined",
                alg.to_string(),
                batch,
                raw,
                issued,
                issued / raw
            );
        }
        let audit = ca.store.verify_audit();
        assert!(audit.map(|a| a.is_intact()).unwrap_or(false), "audit chain intact after the benchmark");
    }
}
