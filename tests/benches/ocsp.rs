//! OCSP responses per second over HTTP on loopback, next to the raw signing rate of the
//! responder key measured in the same run. Run: `cargo bench -p ca-tests --bench ocsp`
//! (needs `wrk`: `apt-get install wrk`; optional argument: seconds per measurement).
//!
//! Every response is signed live (no pre-signing, no cache): status is read from the store per
//! request. The raw rate uses as many signing threads as the server's blocking pool can run at
//! once on this machine (one per core), since the server signs on all cores too.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use ca_core::clock::SystemClock;
use ca_core::issuer::IssuanceRequest;
use ca_core::ocsp::Responder;
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use ca_core::store::SqliteStore;
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};

fn raw_rate(key: &SoftwareKey, threads: usize, seconds: f64) -> f64 {
    let message = vec![0x30u8; 400]; // about the size of an OCSP ResponseData
    ca_tests::rate_on_threads(threads, seconds, |_| {
        key.sign(&message).unwrap();
    })
}

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed: apt-get install wrk");
        std::process::exit(2);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("OCSP benchmark: {seconds} s per measurement, {cores} cores, wrk -t1 -c8 on loopback, live signing");
    println!("{:<8} {:>14} {:>14} {:>8} {:>10}", "key", "raw signs/s", "responses/s", "ratio", "p99");
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256] {
        let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
        let clock = SystemClock;
        let (key, responder_cert) = ca.ocsp_responder(alg);
        let subject_key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let leaf = ca
            .issuer(&clock)
            .issue(&IssuanceRequest {
                profile: ProfileId::IndividualAuth,
                subject: individual(1),
                roles: vec![],
                public_key: subject_key.public_key().clone(),
            })
            .unwrap();
        let raw = raw_rate(&key, cores, seconds);

        let store = Arc::new(SqliteStore::open(&ca.dir.path().join("ca.db")).unwrap());
        let responder = Responder::new(
            "nca",
            &ca.issuing.certificate_der,
            &responder_cert.der,
            Arc::new(key),
            store,
            Arc::new(SystemClock),
        )
        .unwrap();
        let services = Arc::new(ca_server::Services::new(
            Some(Arc::new(responder)),
            None,
            "nca",
            ca.dir.path().join("crl"),
            ca.dir.path().join("certs"),
        ));
        let (port, runtime) = ca_tests::serve(services);

        // An OCSP request for the leaf, made by openssl, sent as GET (RFC 6960 A.1).
        let dir = ca.dir.path();
        let issuer_pem = ca_tests::write_pem(dir, "issuing.pem", "CERTIFICATE", &ca.issuing.certificate_der);
        let leaf_pem = ca_tests::write_pem(dir, "leaf.pem", "CERTIFICATE", &leaf.der);
        let req = dir.join("req.der");
        ca_tests::openssl_ok(&[
            "ocsp",
            "-issuer",
            issuer_pem.to_str().unwrap(),
            "-cert",
            leaf_pem.to_str().unwrap(),
            "-reqout",
            req.to_str().unwrap(),
        ]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).unwrap());
        let encoded: String = b64
            .chars()
            .map(|c| {
                if c == '/' {
                    "%2F".into()
                } else if c == '+' {
                    "%2B".into()
                } else {
                    c.to_string()
                }
            })
            .collect();
        let url = format!("http://127.0.0.1:{port}/ocsp/{encoded}");
        let run = ca_tests::wrk(&url, seconds, &[]);
        let (rps, p99) = (run.requests_per_second, run.p99);
        println!("{:<8} {:>14.0} {:>14.0} {:>8.2} {:>10}", alg.to_string(), raw, rps, rps / raw, p99);
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
}
