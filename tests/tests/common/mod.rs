//! What the verification API tests share (`verify_api*.rs`): a running server over a test CA,
//! signers, raw HTTP with JSON answers, signatures made by `openssl cms -sign`.

// Each test file uses a part of these.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use base64::Engine;
use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::issuer::{IssuanceRequest, IssuedCertificate};
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use ca_core::store::SqliteStore;
use ca_tests::{openssl_ok, write_pem};
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

pub const CONTENT: &[u8] = b"{\"request\":\"bind phone +77010000000\"}";
pub const TOKEN: &str = "portal-token-0123456789";

/// The system clock moved by a settable number of seconds (for nonce expiry).
#[derive(Default)]
pub struct ShiftedClock(pub AtomicI64);

impl Clock for ShiftedClock {
    fn now(&self) -> OffsetDateTime {
        SystemClock.now() + Duration::seconds(self.0.load(Ordering::Relaxed))
    }
}

pub struct Holder {
    pub key: SoftwareKey,
    pub cert: IssuedCertificate,
}

pub struct Running {
    pub ca: TestCa,
    pub port: u16,
    pub clock: Arc<ShiftedClock>,
    pub _runtime: tokio::runtime::Runtime,
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn start(ca: TestCa, system: Option<&Holder>) -> Running {
    start_with(ca, system, |_| {})
}

/// [`start`], with a last change to the services before they are served.
pub fn start_with(ca: TestCa, system: Option<&Holder>, tweak: impl FnOnce(&mut ca_server::Services)) -> Running {
    let store = Arc::new(SqliteStore::open(&ca.dir.path().join("ca.db")).unwrap());
    let clock = Arc::new(ShiftedClock::default());
    let mut services = ca_server::Services::new(
        None,
        Some(store.clone() as Arc<dyn ca_core::store::Store>),
        "nca",
        ca.dir.path().join("crl"),
        ca.dir.path().join("certs"),
    );
    let (root, issuing) = (ca.root.certificate_der.clone(), ca.issuing.certificate_der.clone());
    let verifier = ca_server::Verifier::new(
        std::slice::from_ref(&root),
        std::slice::from_ref(&issuing),
        vec![issuing.clone(), root.clone()],
        clock.clone(),
    )
    .unwrap();
    services.verifier = Some(Arc::new(verifier));
    services.nonces = Some(store.clone());
    services.ra_store = Some(store);
    services.clock = clock.clone();
    if let Some(h) = system {
        let key = SoftwareKey::from_encrypted_pem(&h.key.to_encrypted_pem(b"pw").unwrap(), b"pw").unwrap();
        services.system_signer.set(Some(Arc::new(ca_server::SystemSigner {
            signer: Arc::new(key),
            certificate: h.cert.der.clone(),
            chain: vec![issuing],
        })));
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(TOKEN.as_bytes()));
        services.api_tokens.set(Arc::new(ca_server::ApiTokens::parse(&digest).unwrap()));
    }
    tweak(&mut services);
    let (port, runtime) = ca_tests::serve(Arc::new(services));
    Running { ca, port, clock, _runtime: runtime }
}

pub fn issue(ca: &TestCa, clock: &dyn Clock, profile: ProfileId, n: u32, alg: KeyAlgorithm) -> Holder {
    let key = SoftwareKey::generate(alg).unwrap();
    let cert = ca
        .issuer(clock)
        .issue(&IssuanceRequest {
            profile,
            subject: individual(n),
            roles: vec![],
            public_key: key.public_key().clone(),
        })
        .unwrap();
    Holder { key, cert }
}

/// A raw HTTP/1.1 exchange; the answer's status and JSON body.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let (status, body) = ca_tests::http(port, method, path, headers, body);
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    (status, json)
}

pub fn post_json(r: &Running, path: &str, body: &Value) -> (u16, Value) {
    http(r.port, "POST", path, &[("Content-Type", "application/json")], body.to_string().as_bytes())
}

pub fn reasons(v: &Value) -> Vec<String> {
    v["reasons"].as_array().map(|a| a.iter().filter_map(|r| r.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// Sign `content` with openssl from the holder's key (through a PKCS#12, as a client has it).
pub fn openssl_sign(ca: &TestCa, h: &Holder, name: &str, content: &[u8], attached: bool) -> Vec<u8> {
    openssl_sign_with(ca, h, name, content, attached, &[])
}

/// [`openssl_sign`] with more `openssl cms -sign` options (e.g. `-noattr`).
pub fn openssl_sign_with(
    ca: &TestCa,
    h: &Holder,
    name: &str,
    content: &[u8],
    attached: bool,
    extra: &[&str],
) -> Vec<u8> {
    let dir = ca.dir.path();
    let p12 =
        hsm::build_pkcs12(&h.key, &h.cert.der, std::slice::from_ref(&ca.issuing.certificate_der), "pw", name).unwrap();
    let p12_path = dir.join(format!("{name}.p12"));
    std::fs::write(&p12_path, p12).unwrap();
    let key = dir.join(format!("{name}.key"));
    let p = |p: &PathBuf| p.to_str().unwrap().to_owned();
    openssl_ok(&["pkcs12", "-in", &p(&p12_path), "-passin", "pass:pw", "-nodes", "-nocerts", "-out", &p(&key)]);
    let cert = write_pem(dir, &format!("{name}.pem"), "CERTIFICATE", &h.cert.der);
    let issuing = write_pem(dir, "issuing.pem", "CERTIFICATE", &ca.issuing.certificate_der);
    let data = dir.join(format!("{name}.data"));
    std::fs::write(&data, content).unwrap();
    let out = dir.join(format!("{name}.cms"));
    let mut args = vec!["cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER"];
    if attached {
        args.push("-nodetach");
    }
    args.extend(extra);
    let (cert, key, issuing, data, out_s) = (p(&cert), p(&key), p(&issuing), p(&data), p(&out));
    args.extend(["-signer", &cert, "-inkey", &key, "-certfile", &issuing, "-in", &data, "-out", &out_s]);
    openssl_ok(&args);
    std::fs::read(out).unwrap()
}

pub fn past_ca() -> (TestCa, OffsetDateTime) {
    let now = SystemClock.now();
    (TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048, &FixedClock(now - Duration::days(800))), now)
}
