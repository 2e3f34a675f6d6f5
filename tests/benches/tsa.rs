//! Time-stamp responses per second over HTTP on loopback (`POST /tsa`), next to the raw signing
//! rate of the TSA key measured in the same run. Run: `cargo bench -p ca-tests --bench tsa`
//! (needs `wrk`: `apt-get install wrk`; optional argument: seconds per measurement).
//!
//! Every response is made live: the request parsed and checked, a fresh TSTInfo (random
//! serial, genTime, nonce echoed), a CMS SignedData with signed attributes, signed by the key.
//! The raw rate signs a message the size of those signed attributes on every core, as the
//! server's blocking pool does.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::identity::Subject;
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use ca_core::tsa::{TimeStampAuthority, TsaSettings};
use fixtures::TestCa;
use hsm::{KeyAlgorithm, SoftwareKey};

fn raw_rate(key: &SoftwareKey, threads: usize, seconds: f64) -> f64 {
    let message = vec![0x31u8; 180]; // about the size of a token's signed attributes
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
    println!("TSA benchmark: {seconds} s per measurement, {cores} cores, wrk -t1 -c8 POST on loopback, live signing");
    println!("{:<8} {:>14} {:>14} {:>8} {:>10}", "key", "raw signs/s", "responses/s", "ratio", "p99");
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256] {
        let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
        let key = SoftwareKey::generate(alg).unwrap();
        let certificate = ca
            .issuer(&FixedClock(SystemClock.now()))
            .issue(&IssuanceRequest {
                profile: ProfileId::TimeStamping,
                subject: Subject::Service { common_name: "TSA".into(), organisation: None },
                roles: vec![],
                public_key: key.public_key().clone(),
            })
            .unwrap()
            .der;
        let raw = raw_rate(&key, cores, seconds);
        let tsa = TimeStampAuthority::new(&certificate, Arc::new(key), Arc::new(SystemClock), TsaSettings::default())
            .unwrap();
        let services =
            ca_server::Services::new(None, None, "nca", ca.dir.path().join("crl"), ca.dir.path().join("certs"));
        services.tsa.set(Some(Arc::new(tsa)));
        let (port, runtime) = ca_tests::serve(Arc::new(services));

        // A query made by openssl (SHA-256, nonce, certReq), posted by wrk.
        let dir = ca.dir.path();
        let (data, query, script) = (dir.join("data"), dir.join("q.tsq"), dir.join("post.lua"));
        std::fs::write(&data, b"a document to stamp").unwrap();
        let p = |p: &std::path::Path| p.to_str().unwrap().to_owned();
        ca_tests::openssl_ok(&["ts", "-query", "-data", &p(&data), "-sha256", "-cert", "-out", &p(&query)]);
        let lua = format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/timestamp-query\"\n\
             local f = io.open(\"{}\", \"rb\")\nwrk.body = f:read(\"*all\")\nf:close()\n",
            p(&query)
        );
        std::fs::write(&script, lua).unwrap();
        let url = format!("http://127.0.0.1:{port}/tsa");
        let run = ca_tests::wrk(&url, seconds, &["-s", &p(&script)]);
        let (rps, p99) = (run.requests_per_second, run.p99);
        // Every answer was a stamp, not a refusal.
        let granted = ca_tests::http(port, "GET", "/metrics", &[], b"").1;
        let granted = String::from_utf8_lossy(&granted);
        let refused = granted.lines().any(|l| l.starts_with("ca_tsa_responses_total") && !l.contains("granted"));
        if refused {
            eprintln!("some requests were refused:\n{granted}");
        }
        println!("{:<8} {:>14.0} {:>14.0} {:>8.2} {:>10}", alg.to_string(), raw, rps, rps / raw, p99);
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
}
