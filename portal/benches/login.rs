//! Login rates of portal-server against baselines measured in the same run on the same cores:
//! - login by EDS end to end over HTTP (`POST /api/v1/challenge`, the client signs it, `POST
//!   /api/v1/login/eds`, a session opened) against the CA's `POST /api/v1/cms/verify` of a
//!   signature by the same key (ca-server on the same CA); target ratio ≥ 0.5;
//! - login by password over HTTP against raw Argon2id verifications with the same parameters
//!   (OWASP's minimum, m = 19 MiB, t = 2, p = 1) on as many threads; target ratio ≥ 0.8.
//!
//! Every HTTP request is a new loopback connection (both sides alike). Run:
//! `cargo bench -p portal --bench login -- [SECONDS]`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use base64::Engine;
use ca_core::clock::SystemClock;
use ca_core::store::SqliteStore;
use portal::account::password::{Argon2Config, PasswordHasherConfig};
use serde_json::json;

const PASSWORD: &str = "Степной7Ветер";

fn main() {
    let seconds: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5.0);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let t = common::TestPortal::start();
    let holder = t.register_person(60, PASSWORD);
    let iin = fixtures::person(60).iin.to_string();

    // The CA's verification API on the same CA, with revocation from its store.
    let store = Arc::new(SqliteStore::open(&t.ca.dir.path().join("ca.db")).unwrap());
    let mut services = ca_server::Services::new(
        None,
        Some(store as Arc<dyn ca_core::store::Store>),
        "nca",
        t.ca.dir.path().join("crl"),
        t.ca.dir.path().join("certs"),
    );
    let (root, issuing) = (t.ca.root.certificate_der.clone(), t.ca.issuing.certificate_der.clone());
    services.verifier = Some(Arc::new(
        ca_server::Verifier::new(
            std::slice::from_ref(&root),
            std::slice::from_ref(&issuing),
            vec![issuing.clone(), root.clone()],
            Arc::new(SystemClock),
        )
        .unwrap(),
    ));
    let (ca_port, _ca_runtime) = ca_tests::serve(Arc::new(services));
    let now = ca_core::clock::Clock::now(&SystemClock);
    let signed =
        ca_core::cms::sign(&[0x42; 32], false, &holder.key, &holder.cert.der, std::slice::from_ref(&issuing), now)
            .unwrap();
    let verify_body = json!({ "cms": base64::engine::general_purpose::STANDARD.encode(&signed) }).to_string();
    let json_header = [("Content-Type", "application/json")];
    let cms_verify = || {
        let (status, body) =
            ca_tests::http(ca_port, "POST", "/api/v1/cms/verify?key_usage=AUTH", &json_header, verify_body.as_bytes());
        assert!(
            status == 200 && body.windows(12).any(|w| w == b"\"valid\":true"),
            "{}",
            String::from_utf8_lossy(&body)
        );
    };
    let eds_login = || {
        let (status, body) = ca_tests::http(t.port, "POST", "/api/v1/challenge", &[], b"");
        assert_eq!(status, 200);
        let challenge: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(challenge["challenge"].as_str().unwrap()).unwrap();
        let now = ca_core::clock::Clock::now(&SystemClock);
        let cms = ca_core::cms::sign(&raw, false, &holder.key, &holder.cert.der, std::slice::from_ref(&issuing), now)
            .unwrap();
        let body = json!({ "cms": base64::engine::general_purpose::STANDARD.encode(cms) }).to_string();
        let (status, answer) = ca_tests::http(t.port, "POST", "/api/v1/login/eds", &json_header, body.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    };
    let password_body = json!({ "login": iin, "password": PASSWORD }).to_string();
    let password_login = || {
        let (status, answer) =
            ca_tests::http(t.port, "POST", "/api/v1/login/password", &json_header, password_body.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    };
    let hasher = PasswordHasherConfig::new(Argon2Config::default()).unwrap();
    let hash = hasher.hash(PASSWORD).unwrap();
    let raw_argon2 = || assert!(hasher.verify(PASSWORD, &hash));

    // Warm up (path caches, connections, allocator).
    for _ in 0..20 {
        cms_verify();
        eds_login();
    }
    password_login();
    println!("portal login benchmark: {threads} client threads, {seconds} s each, P-256 signer, Argon2id m=19456 KiB t=2 p=1");
    let cms_rate = ca_tests::rate_on_threads(threads, seconds, |_| cms_verify());
    let eds_rate = ca_tests::rate_on_threads(threads, seconds, |_| eds_login());
    let argon2_rate = ca_tests::rate_on_threads(threads, seconds, |_| raw_argon2());
    let password_rate = ca_tests::rate_on_threads(threads, seconds, |_| password_login());
    println!("| measurement | per second | ratio | target |");
    println!("|---|---:|---:|---:|");
    println!("| ca-server `POST /api/v1/cms/verify` (baseline) | {cms_rate:.0} | | |");
    println!("| portal EDS login (challenge + sign + login) | {eds_rate:.0} | {:.2} | ≥ 0.5 |", eds_rate / cms_rate);
    println!("| raw Argon2id verify (baseline) | {argon2_rate:.1} | | |");
    println!("| portal password login | {password_rate:.1} | {:.2} | ≥ 0.8 |", password_rate / argon2_rate);
}
