//! Login rates of portal-server against baselines measured in the same run on the same cores:
//! - login by EDS end to end over HTTP (`POST /api/v1/challenge`, the client signs it, `POST
//!   /api/v1/login/eds`, a session opened) against the CA's `POST /api/v1/cms/verify` of a
//!   signature by the same key (ca-server on the same CA); target ratio ≥ 0.5;
//! - login by password over HTTP against raw Argon2id verifications with the same parameters
//!   (OWASP's minimum, m = 19 MiB, t = 2, p = 1) on as many threads; target ratio ≥ 0.8.
//!
//! `LOGIN_CLIENTS=N` sets the client threads of both measurements (default: four per core, so
//! that the servers are measured busy: with one per core each closed loop leaves its server
//! idle while the client signs or reads the answer, and the rate measures the loop, not the
//! server).
//! Every HTTP request is a new loopback connection (both sides alike), or with `keep-alive` each
//! client thread keeps one connection per server as a browser does (both sides alike again).
//! Each measurement and its baseline alternate in five rounds of SECONDS/5 (the machine's load
//! drifts less within a round); the ratio is of the totals, with the rounds' lowest and highest
//! ratio beside it.
//! With `split` the servers (both, with their runtimes and blocking pools) run on the last CPU
//! and the client threads on the others (pinned with `taskset`), as if the load came from other
//! machines: the client's signature and its side of HTTP no longer take the servers' CPU, so
//! the rates are the servers'. Without it everything shares every CPU. Run:
//! `cargo bench -p portal --bench login -- [SECONDS] [eds|password|parts] [postgres] [keep-alive] [split]`
//! (eds and password by default; `postgres`: the portal's store in a throwaway PostgreSQL
//! cluster instead of the SQLite file).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use base64::Engine;
use ca_core::clock::SystemClock;
use ca_core::store::SqliteStore;
use portal::account::password::{Argon2Config, PasswordHasherConfig};
use serde_json::json;

const PASSWORD: &str = "Степной7Ветер";

/// An HTTP exchange (port, method, path, headers, body) → (status, body): [`ca_tests::http`] or
/// [`ca_tests::http_keep_alive`].
type HttpClient = fn(u16, &str, &str, &[(&str, &str)], &[u8]) -> (u16, Vec<u8>);

fn main() {
    let seconds: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5.0);
    let only = std::env::args().skip(1).find(|a| a == "eds" || a == "password" || a == "parts");
    let run = |what: &str| only.as_deref().is_none_or(|o| o == what);
    // One HTTP client for the baseline and the measurement alike.
    let http: HttpClient =
        if std::env::args().any(|a| a == "keep-alive") { ca_tests::http_keep_alive } else { ca_tests::http };
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = std::env::var("LOGIN_CLIENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(4 * cpus);
    let split = std::env::args().any(|a| a == "split");
    assert!(!split || cpus >= 2, "split needs two CPUs or more");
    if split {
        // Threads inherit the CPUs of the thread that starts them: the servers' from here.
        pin_main_thread(&(cpus - 1).to_string());
    }
    let secrets = tempfile::tempdir().unwrap();
    let cluster = std::env::args().any(|a| a == "postgres").then(|| fixtures::postgres::PgCluster::start().unwrap());
    let t = match &cluster {
        Some(cluster) => {
            let store = common::postgres_store(cluster, secrets.path());
            common::TestPortal::start_with(|c| c.store = store)
        }
        None => common::TestPortal::start(),
    };
    println!("portal store: {}", t.config.store);
    let holder = t.register_person(60, PASSWORD);
    let iin = fixtures::person(60).iin.to_string();

    // The CA's verification API on the same CA, with revocation from its store.
    let store = Arc::new(SqliteStore::open(&t.ca.dir.path().join("ca.db")).unwrap());
    let ca_store: Arc<dyn ca_core::store::Store> = store.clone();
    let mut services = ca_server::Services::new(
        None,
        Some(store as Arc<dyn ca_core::store::Store>),
        "nca",
        t.ca.dir.path().join("crl"),
        t.ca.dir.path().join("certs"),
    );
    let (root, issuing) = (t.ca.root.certificate_der.clone(), t.ca.issuing.certificate_der.clone());
    let services_verifier = Arc::new(
        ca_server::Verifier::new(
            std::slice::from_ref(&root),
            std::slice::from_ref(&issuing),
            vec![issuing.clone(), root.clone()],
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    services.verifier = Some(services_verifier.clone());
    let (ca_port, _ca_runtime) = ca_tests::serve(Arc::new(services));
    let now = ca_core::clock::Clock::now(&SystemClock);
    let signed =
        ca_core::cms::sign(&[0x42; 32], false, &holder.key, &holder.cert.der, std::slice::from_ref(&issuing), now)
            .unwrap();
    let verify_body = json!({ "cms": base64::engine::general_purpose::STANDARD.encode(&signed) }).to_string();
    let json_header = [("Content-Type", "application/json")];
    let cms_verify = || {
        let (status, body) =
            http(ca_port, "POST", "/api/v1/cms/verify?key_usage=AUTH", &json_header, verify_body.as_bytes());
        assert!(
            status == 200 && body.windows(12).any(|w| w == b"\"valid\":true"),
            "{}",
            String::from_utf8_lossy(&body)
        );
    };
    let challenge = || {
        let (status, body) = http(t.port, "POST", "/api/v1/challenge", &[], b"");
        assert_eq!(status, 200);
        let challenge: serde_json::Value = serde_json::from_slice(&body).unwrap();
        base64::engine::general_purpose::STANDARD.decode(challenge["challenge"].as_str().unwrap()).unwrap()
    };
    let client_sign = |raw: &[u8]| {
        let now = ca_core::clock::Clock::now(&SystemClock);
        ca_core::cms::sign(raw, false, &holder.key, &holder.cert.der, std::slice::from_ref(&issuing), now).unwrap()
    };
    let eds_login = || {
        let cms = client_sign(&challenge());
        let body = json!({ "cms": base64::engine::general_purpose::STANDARD.encode(cms) }).to_string();
        let (status, answer) = http(t.port, "POST", "/api/v1/login/eds", &json_header, body.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    };
    let password_body = json!({ "login": iin, "password": PASSWORD }).to_string();
    let password_login = || {
        let (status, answer) = http(t.port, "POST", "/api/v1/login/password", &json_header, password_body.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    };
    let hasher = PasswordHasherConfig::new(Argon2Config::default()).unwrap();
    let hash = hasher.hash(PASSWORD).unwrap();
    let raw_argon2 = || assert!(hasher.verify(PASSWORD, &hash));

    if split {
        // The client threads, started from here from now on.
        pin_main_thread(&format!("0-{}", cpus - 2));
    }
    // Warm up (path caches, connections, allocator).
    for _ in 0..20 {
        cms_verify();
        eds_login();
    }
    password_login();
    let connections = if std::env::args().any(|a| a == "keep-alive") { "kept alive" } else { "one per request" };
    let placement = if split {
        format!("servers on CPU {}, clients on CPUs 0-{}", cpus - 1, cpus - 2)
    } else {
        format!("servers and clients sharing {cpus} CPUs")
    };
    println!("portal login benchmark: {threads} client threads, {placement}, connections {connections}, {seconds} s per measurement in 5 alternating rounds, P-256 signer, Argon2id m=19456 KiB t=2 p=1");
    println!("| measurement | per second | ratio (rounds: lowest–highest) | target |");
    println!("|---|---:|---:|---:|");
    if run("eds") {
        let (cms_rate, eds_rate, low, high) = alternate(
            || ca_tests::rate_on_threads(threads, seconds / 5.0, |_| cms_verify()),
            || ca_tests::rate_on_threads(threads, seconds / 5.0, |_| eds_login()),
        );
        println!("| ca-server `POST /api/v1/cms/verify` (baseline) | {cms_rate:.0} | | |");
        println!(
            "| portal EDS login (challenge + sign + login) | {eds_rate:.0} | {:.2} ({low:.2}–{high:.2}) | ≥ 0.5 |",
            eds_rate / cms_rate
        );
        // Where a login's time goes besides verification (each alone, once, for the breakdown).
        let challenge_rate = ca_tests::rate_on_threads(threads, seconds / 5.0, |_| drop(challenge()));
        let sign_rate = ca_tests::rate_on_threads(threads, seconds / 5.0, |_| drop(client_sign(&[0x42; 32])));
        println!("| of which: portal `POST /api/v1/challenge` alone | {challenge_rate:.0} | | |");
        println!("| of which: the client's CMS signature alone (in process) | {sign_rate:.0} | | |");
    }
    if only.as_deref() == Some("parts") {
        // In process, one thread, no HTTP: where the portal's login spends its time.
        let each = |what: &str, n: u32, f: &dyn Fn()| {
            let start = std::time::Instant::now();
            for _ in 0..n {
                f();
            }
            println!("| {what} | {:.1} µs | | |", start.elapsed().as_secs_f64() * 1e6 / f64::from(n));
        };
        let requirements =
            || ca_core::cms::Requirements { key_type: Some(ca_core::identity::KeyType::Auth), ..Default::default() };
        let verifier = services_verifier.clone();
        each("ca-server verification (store revocation)", 2000, &|| {
            let now = ca_core::clock::Clock::now(&SystemClock);
            let v =
                verifier.with_context(Some(ca_store.as_ref()), now, None, requirements(), Default::default(), |ctx| {
                    ca_core::cms::verify(&signed, None, ctx).unwrap()
                });
            assert!(v.valid);
        });
        each("portal verification (CRL files)", 2000, &|| {
            t.portal.trust.verify(&signed, None, requirements(), t.portal.clock.now()).unwrap();
        });
        each("portal verification of a fresh signature (its signing included)", 2000, &|| {
            let cms = client_sign(&[0x42; 32]);
            t.portal.trust.verify(&cms, None, requirements(), t.portal.clock.now()).unwrap();
        });
        let client = portal::Client::default();
        each("portal login_eds (verification, challenge, account, session)", 2000, &|| {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(t.portal.issue_challenge().unwrap().challenge)
                .unwrap();
            t.portal.login_eds(&client_sign(&raw), None, &client).unwrap();
        });
        each("the client's signature alone", 2000, &|| drop(client_sign(&[0x42; 32])));
        each("store: the account by login", 2000, &|| drop(t.portal.store.account_by_login(&iin).unwrap()));
        let account = t.portal.store.account_by_login(&iin).unwrap().unwrap();
        each("store: a session opened with the challenge's use", 2000, &|| {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(t.portal.issue_challenge().unwrap().challenge)
                .unwrap();
            let valid = t.portal.check_challenge(&raw).unwrap();
            t.portal.open_session_using(&account, "eds", &client, Some(valid)).unwrap();
        });
    }
    if run("password") {
        let (argon2_rate, password_rate, low, high) = alternate(
            || ca_tests::rate_on_threads(threads, seconds / 5.0, |_| raw_argon2()),
            || ca_tests::rate_on_threads(threads, seconds / 5.0, |_| password_login()),
        );
        println!("| raw Argon2id verify (baseline) | {argon2_rate:.1} | | |");
        println!(
            "| portal password login | {password_rate:.1} | {:.2} ({low:.2}–{high:.2}) | ≥ 0.8 |",
            password_rate / argon2_rate
        );
    }
}

/// Pin the main thread (its id is the process id) to `cpus` (a `taskset` list).
fn pin_main_thread(cpus: &str) {
    let status = std::process::Command::new("taskset")
        .args(["-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset (util-linux)");
    assert!(status.success(), "taskset -p -c {cpus} failed");
}

/// Five rounds of `baseline` then `measured` (each a rate over an equal time): the mean rates
/// and the lowest and highest ratio of a round.
fn alternate(baseline: impl Fn() -> f64, measured: impl Fn() -> f64) -> (f64, f64, f64, f64) {
    let rounds: Vec<(f64, f64)> = (0..5).map(|_| (baseline(), measured())).collect();
    let mean = |f: fn(&(f64, f64)) -> f64| rounds.iter().map(f).sum::<f64>() / rounds.len() as f64;
    let ratios = rounds.iter().map(|(b, m)| m / b);
    let low = ratios.clone().fold(f64::INFINITY, f64::min);
    let high = ratios.fold(0.0, f64::max);
    (mean(|r| r.0), mean(|r| r.1), low, high)
}
