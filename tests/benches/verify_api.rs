//! CMS verifications per second through `POST /api/v1/cms/verify` on loopback, next to the raw
//! signature *verify* rate of aws-lc-rs (RSA-2048 PKCS#1 SHA-256, ECDSA P-256 SHA-256) measured
//! in the same run on the same cores. Run: `cargo bench -p ca-tests --bench verify_api -- [SECONDS]
//! [pinned]` (needs `wrk`).
//!
//! The load cycles through requests from 50 distinct signers (each its own certificate and
//! content), revocation checking on (the store answers for the signer and the issuing CA). The CA
//! hierarchy uses the signer's algorithm throughout. Columns: the raw verify rate; the HTTP floor
//! (`GET /healthz` on the same server); CMS verifications/s with the validated-path cache (after
//! one warm-up pass: one signature check per request) and without it (three: signer, signer
//! certificate, issuing CA certificate); p99 latencies. Debian's wrk has no `-R` (constant
//! rate), so latency under light load is p99 at `-c1` and `-c2` instead of at half the peak.
//!
//! Default layout: server, raw baseline and wrk share every core. `pinned` re-runs the benchmark
//! under `taskset -c 0` (server with one worker, raw baseline on one thread) and starts wrk on
//! core 1, so the load generator does not take CPU from the server it measures.
//!
//! For profiling: `VERIFY_API_BENCH_ALG=rsa2048|p256` measures one algorithm,
//! `VERIFY_API_BENCH_IN_PROCESS_ONLY=1` stops after the raw and in-process rates.

use std::process::Command;

// The allocator the `ca-server` and `ca` binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine;
use ca_core::clock::SystemClock;
use ca_core::identity::KeyType;
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use ca_core::store::SqliteStore;
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};

/// Raw verifications per second of one signature over a 300-byte message, on `threads` threads.
fn raw_verify_rate(alg: KeyAlgorithm, threads: usize, seconds: f64) -> f64 {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let message = vec![0x31u8; 300]; // about the size of CAdES signed attributes
    let (public, sig, params): (Vec<u8>, Vec<u8>, &'static dyn signature::VerificationAlgorithm) = match alg {
        KeyAlgorithm::Rsa2048 => {
            let key = signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
            let mut sig = vec![0; key.public_modulus_len()];
            key.sign(&signature::RSA_PKCS1_SHA256, &rng, &message, &mut sig).unwrap();
            (key.public_key().as_ref().to_vec(), sig, &signature::RSA_PKCS1_2048_8192_SHA256)
        }
        _ => {
            let key = signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
            let sig = key.sign(&rng, &message).unwrap().as_ref().to_vec();
            (key.public_key().as_ref().to_vec(), sig, &signature::ECDSA_P256_SHA256_ASN1)
        }
    };
    let key = signature::UnparsedPublicKey::new(params, &public);
    ca_tests::rate_on_threads(threads, seconds, |_| key.verify(&message, &sig).unwrap())
}

/// A load generator's command: on core 1 in pinned mode (the server and the raw baseline
/// share core 0), anywhere otherwise.
fn load_generator(program: &str) -> Command {
    match std::env::var_os(PINNED) {
        Some(_) => {
            let mut c = Command::new("taskset");
            c.args(["-c", "1", program]);
            c
        }
        None => Command::new(program),
    }
}

struct WrkResult {
    rps: f64,
    p99: String,
    errors: bool,
}

fn wrk(url: &str, script: &std::path::Path, threads: usize, connections: usize, seconds: f64) -> WrkResult {
    let out = load_generator("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{}s", seconds.ceil() as u64),
            "--latency",
            "-s",
            script.to_str().unwrap(),
            url,
        ])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let p99 = text.lines().find_map(|l| l.trim().strip_prefix("99%")).map(str::trim).unwrap_or("?").to_owned();
    let errors = text.contains("Non-2xx") || text.contains("Socket errors");
    if errors {
        eprintln!("wrk saw errors:\n{text}");
    }
    WrkResult { rps, p99, errors }
}

/// Distinct signer certificates (and requests) the load cycles through.
const SIGNERS: usize = 50;

/// p99 latency (ms) and achieved rate at a constant `rate` of requests/s (oha, with latency
/// correction, so a stall counts against every request it delayed); `None` without oha
/// (`cargo install oha`, or `OHA=/path/to/oha`).
fn oha_p99(url: &str, body: &std::path::Path, rate: f64, seconds: f64) -> Option<(f64, f64)> {
    let oha = std::env::var("OHA").unwrap_or_else(|_| "oha".into());
    Command::new(&oha).arg("--version").output().ok()?;
    let out = load_generator(&oha)
        .args(["-z", &format!("{}s", seconds.ceil() as u64), "-q", &format!("{rate:.0}"), "-c", "16"])
        .args(["--latency-correction", "--no-tui", "--output-format", "json", "-m", "POST"])
        .args(["-T", "application/json", "-D", body.to_str()?, url])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let ok = v["statusCodeDistribution"]["200"].as_f64().unwrap_or(0.0);
    let total: f64 = v["statusCodeDistribution"].as_object()?.values().filter_map(|n| n.as_f64()).sum();
    if ok < total || total == 0.0 {
        eprintln!("oha saw errors: {}", v["statusCodeDistribution"]);
    }
    Some((v["summary"]["requestsPerSec"].as_f64()?, v["latencyPercentiles"]["p99"].as_f64()? * 1000.0))
}

/// Set in the re-executed benchmark that runs pinned to core 0.
const PINNED: &str = "VERIFY_API_BENCH_PINNED";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed: apt-get install wrk");
        std::process::exit(2);
    }
    let pinned = std::env::var_os(PINNED).is_some();
    if args.get(2).map(String::as_str) == Some("pinned") && !pinned {
        // Run again on core 0 only (server and raw baseline); wrk is started on core 1.
        let status = Command::new("taskset")
            .args(["-c", "0", &args[0], &args[1], "pinned"])
            .env(PINNED, "1")
            .status()
            .expect("taskset runs");
        std::process::exit(status.code().unwrap_or(1));
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let layout = if pinned {
        "server and raw baseline pinned to core 0, wrk to core 1".to_owned()
    } else {
        format!("{cores} cores shared by server, raw baseline and wrk")
    };
    println!("CMS verify API benchmark: {seconds} s per measurement, {layout}, loopback, revocation on (store)");
    println!(
        "{:<8} {:>10} {:>10} {:>10} {:>10} {:>6} {:>10} {:>6} {:>9} {:>9} {:>9}",
        "signer",
        "raw ver/s",
        "in-proc/s",
        "GET floor",
        "CMS/s",
        "ratio",
        "no-cache/s",
        "ratio",
        "p99 peak",
        "p99 -c1",
        "p99 -c2"
    );
    // VERIFY_API_BENCH_ALG=rsa2048|p256 measures one of them only (for profiling).
    let only = std::env::var("VERIFY_API_BENCH_ALG").ok();
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256] {
        if only.as_ref().is_some_and(|a| *a != alg.to_string()) {
            continue;
        }
        let raw = raw_verify_rate(alg, cores, seconds);
        let ca = TestCa::new(alg, alg);
        let signed = signed_requests(&ca, alg);
        let in_process = in_process_rate(&ca, &signed, cores, seconds);
        if std::env::var_os("VERIFY_API_BENCH_IN_PROCESS_ONLY").is_some() {
            println!("{:<8} raw {raw:.0}/s, in-process {in_process:.0}/s", alg.to_string());
            continue;
        }
        let bodies: Vec<String> = signed
            .iter()
            .map(|cms| {
                serde_json::json!({
                    "cms": base64::engine::general_purpose::STANDARD.encode(cms),
                    "requirements": { "key_usage": "SIGN" },
                })
                .to_string()
            })
            .collect();
        let cached = start_server(&ca, None, cores);
        let uncached = start_server(&ca, Some(0), cores);

        let script = ca.dir.path().join("post.lua");
        std::fs::write(&script, post_script(&bodies)).unwrap();
        let get = ca.dir.path().join("get.lua");
        std::fs::write(&get, "wrk.method = \"GET\"\n").unwrap();
        let url = |port: u16| format!("http://127.0.0.1:{port}/api/v1/cms/verify");
        let floor = wrk(&format!("http://127.0.0.1:{}/healthz", cached.0), &get, 1, 4 * cores, seconds);
        // Warm up: connections, statement cache, and every signer's path once.
        wrk(&url(cached.0), &script, 1, 4, 1.0);
        let peak = wrk(&url(cached.0), &script, 1, 4 * cores, seconds);
        let c1 = wrk(&url(cached.0), &script, 1, 1, seconds);
        let c2 = wrk(&url(cached.0), &script, 1, 2, seconds);
        let cold = wrk(&url(uncached.0), &script, 1, 4 * cores, seconds);
        let body = ca.dir.path().join("body.json");
        std::fs::write(&body, &bodies[0]).unwrap();
        let half = oha_p99(&url(cached.0), &body, peak.rps / 2.0, seconds);
        let flag = if [&peak, &c1, &c2, &cold].iter().any(|r| r.errors) { " (errors!)" } else { "" };
        println!(
            "{:<8} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>6.3} {:>10.0} {:>6.3} {:>9} {:>9} {:>9}{flag}   (-c1 {:.0}/s, -c2 {:.0}/s)",
            alg.to_string(),
            raw,
            in_process,
            floor.rps,
            peak.rps,
            peak.rps / raw,
            cold.rps,
            cold.rps / raw,
            peak.p99,
            c1.p99,
            c2.p99,
            c1.rps,
            c2.rps,
        );
        match half {
            Some((rps, p99)) => println!("         constant rate {rps:.0}/s (half of peak, oha): p99 {p99:.2} ms"),
            None => println!("         (install oha for p99 at half of the peak rate)"),
        }
        for (_, runtime) in [cached, uncached] {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// Verifications per second without HTTP: `SignedCms::parse` + `verify` with the server's
/// verifier and store (path cache warm), on `threads` threads.
fn in_process_rate(ca: &TestCa, signed: &[Vec<u8>], threads: usize, seconds: f64) -> f64 {
    let store = SqliteStore::open(&ca.dir.path().join("ca.db")).unwrap();
    let verifier = verifier(ca);
    let requirements = ca_core::cms::Requirements { key_type: Some(KeyType::Sign), ..Default::default() };
    let verify_one = |cms: &[u8]| {
        let now = ca_core::clock::Clock::now(&SystemClock);
        let v = verifier.with_context(Some(&store), now, None, requirements.clone(), Default::default(), |ctx| {
            ca_core::cms::SignedCms::parse(cms).and_then(|c| c.verify(None, ctx))
        });
        assert!(v.unwrap().valid);
    };
    signed.iter().for_each(|cms| verify_one(cms));
    ca_tests::rate_on_threads(threads, seconds, |n| verify_one(&signed[n % signed.len()]))
}

/// Distinct signers, each signing its own request (CMS DER).
fn signed_requests(ca: &TestCa, alg: KeyAlgorithm) -> Vec<Vec<u8>> {
    (0..SIGNERS)
        .map(|i| {
            let key = SoftwareKey::generate(alg).unwrap();
            let cert = ca
                .issuer(&SystemClock)
                .issue(&IssuanceRequest {
                    profile: ProfileId::IndividualSign,
                    subject: individual(i as u32 + 1),
                    roles: vec![],
                    public_key: key.public_key().clone(),
                })
                .unwrap();
            let content = format!(r#"{{"request":"bind phone +7701{i:07}","nonce":"{i:08x}"}}"#);
            ca_core::cms::sign(
                content.as_bytes(),
                false,
                &key,
                &cert.der,
                std::slice::from_ref(&ca.issuing.certificate_der),
                ca_core::clock::Clock::now(&SystemClock),
            )
            .unwrap()
        })
        .collect()
}

/// A wrk script that posts the bodies in turn and stops a thread at the first answer that is
/// not a valid verification (so errors show as a collapsed rate, not as fast failures).
fn post_script(bodies: &[String]) -> String {
    let list: Vec<String> = bodies.iter().map(|b| format!("[[{b}]]")).collect();
    format!(
        "local bodies = {{ {} }}\nlocal i = 0\nwrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n\
         response = function(status, headers, body)\n  if not string.find(body, '\"valid\":true', 1, true) then\n    \
         wrk.thread:stop()\n  end\nend\n",
        list.join(", ")
    )
}

/// What the server verifies with: this CA's root as anchor, its issuing CA, the store's status.
fn verifier(ca: &TestCa) -> ca_server::Verifier {
    let (root, issuing) = (ca.root.certificate_der.clone(), ca.issuing.certificate_der.clone());
    ca_server::Verifier::new(
        std::slice::from_ref(&root),
        std::slice::from_ref(&issuing),
        vec![issuing.clone(), root.clone()],
        Arc::new(SystemClock),
    )
    .unwrap()
}

/// The API over this CA's store; `path_cache`: capacity of the validated-path cache (default
/// when `None`).
fn start_server(ca: &TestCa, path_cache: Option<usize>, workers: usize) -> (u16, tokio::runtime::Runtime) {
    let store = Arc::new(SqliteStore::open(&ca.dir.path().join("ca.db")).unwrap());
    let mut services = ca_server::Services::new(
        None,
        Some(store as Arc<dyn ca_core::store::Store>),
        "nca",
        ca.dir.path().join("crl"),
        ca.dir.path().join("certs"),
    );
    let mut verifier = verifier(ca);
    if let Some(capacity) = path_cache {
        verifier = verifier.with_path_cache(capacity);
    }
    services.verifier = Some(Arc::new(verifier));
    ca_tests::serve_on(Arc::new(services), workers)
}
