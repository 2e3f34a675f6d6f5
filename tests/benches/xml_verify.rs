//! XML signature verifications per second through `POST /api/v1/xml/verify` as a ratio of CMS
//! verifications through `POST /api/v1/cms/verify`, in the same run on the same server: a
//! typical signed login (a nonce and a timestamp, an enveloped RSA-2048 signature with inclusive
//! C14N, the signer's certificate in KeyInfo) against a CMS over the same content from the same
//! key. Run: `cargo bench -p ca-tests --bench xml_verify -- [SECONDS]` (needs `wrk`).
//!
//! 50 distinct AUTH signers, revocation on (the store answers), the validated-path cache warm;
//! the measurements alternate (CMS, XML, CMS, XML) so that a drift of the machine shows.

use std::process::Command;
use std::sync::Arc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use base64::Engine;
use ca_core::clock::{Clock, SystemClock};
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};

const SIGNERS: usize = 50;

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed: apt-get install wrk");
        std::process::exit(2);
    }
    let ca = TestCa::new(KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa2048);
    let (mut xml_bodies, mut cms_bodies) = (Vec::new(), Vec::new());
    for i in 0..SIGNERS {
        let key = SoftwareKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        let request = IssuanceRequest {
            profile: ProfileId::IndividualAuth,
            subject: individual(i as u32 + 1),
            roles: vec![],
            public_key: key.public_key().clone(),
        };
        let cert = ca.issuer(&SystemClock).issue(&request).unwrap();
        let nonce = base64::engine::general_purpose::STANDARD.encode([i as u8; 32]);
        let login = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><login><nonce>{nonce}</nonce><timeTicket>{}</timeTicket></login>"#,
            SystemClock.now().unix_timestamp()
        );
        let chain = [ca.issuing.certificate_der.clone()];
        let xml = ca_core::xml::sign(login.as_bytes(), &key, &cert.der, &chain, &Default::default()).unwrap();
        let cms = ca_core::cms::sign(login.as_bytes(), false, &key, &cert.der, &chain, SystemClock.now()).unwrap();
        let requirements = serde_json::json!({ "key_usage": "AUTH" });
        let xml = String::from_utf8(xml).unwrap();
        xml_bodies.push(serde_json::json!({ "xml": xml, "requirements": requirements }).to_string());
        let cms = base64::engine::general_purpose::STANDARD.encode(cms);
        cms_bodies.push(serde_json::json!({ "cms": cms, "requirements": requirements }).to_string());
    }
    let (port, _runtime) = start_server(&ca);
    let dir = ca.dir.path();
    let mut rates = Vec::new();
    for (name, path, bodies) in [
        ("cms", "/api/v1/cms/verify", &cms_bodies),
        ("xml", "/api/v1/xml/verify", &xml_bodies),
        ("cms", "/api/v1/cms/verify", &cms_bodies),
        ("xml", "/api/v1/xml/verify", &xml_bodies),
    ] {
        // Warm the path cache and check every body verifies.
        for body in bodies.iter() {
            let (status, answer) =
                ca_tests::http(port, "POST", path, &[("Content-Type", "application/json")], body.as_bytes());
            assert!(status == 200 && String::from_utf8_lossy(&answer).contains("\"valid\":true"), "{name}");
        }
        let script = dir.join(format!("{name}.lua"));
        std::fs::write(&script, ca_tests::wrk_post_script(bodies)).unwrap();
        let rate = wrk(&format!("http://127.0.0.1:{port}{path}"), &script, seconds);
        println!("{name} verify: {rate:.0}/s ({} bytes per request)", bodies[0].len());
        rates.push(rate);
    }
    let (cms, xml) = ((rates[0] + rates[2]) / 2.0, (rates[1] + rates[3]) / 2.0);
    println!("xml/verify : cms/verify = {:.2}", xml / cms);
}

/// Requests per second by wrk (2 threads, 8 connections).
fn wrk(url: &str, script: &std::path::Path, seconds: f64) -> f64 {
    let out = Command::new("wrk")
        .args(["-t2", "-c8", &format!("-d{}s", seconds.ceil() as u64), "-s", script.to_str().unwrap(), url])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk's output:\n{text}"))
}

fn start_server(ca: &TestCa) -> (u16, tokio::runtime::Runtime) {
    let (root, issuing) = (&ca.root.certificate_der, &ca.issuing.certificate_der);
    ca_tests::serve(Arc::new(ca_tests::verifying_services(ca.dir.path(), root, issuing, Arc::new(SystemClock))))
}
