//! The verification API over HTTP against the running server: CMS made by `openssl cms -sign`
//! (attached and detached, RSA and ECDSA) verifies; tampering, expiry, revocation before and
//! after signing, untrusted and wrong-key-type signers get their verdicts; bare certificates;
//! login by signature (once, no replay, no expired nonce); signing with the system key behind a
//! bearer token; garbage, truncated and oversized bodies get JSON 4xx and the server keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use base64::Engine;
use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::identity::Subject;
use ca_core::issuer::{IssuanceRequest, IssuedCertificate};
use ca_core::profile::ProfileId;
use ca_core::revocation::{revoke, RevocationReason};
use ca_core::signer::Signer;
use ca_core::store::SqliteStore;
use ca_tests::{openssl_ok, write_pem};
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

const CONTENT: &[u8] = b"{\"request\":\"bind phone +77010000000\"}";
const TOKEN: &str = "portal-token-0123456789";

/// The system clock moved by a settable number of seconds (for nonce expiry).
#[derive(Default)]
struct ShiftedClock(AtomicI64);

impl Clock for ShiftedClock {
    fn now(&self) -> OffsetDateTime {
        SystemClock.now() + Duration::seconds(self.0.load(Ordering::Relaxed))
    }
}

struct Holder {
    key: SoftwareKey,
    cert: IssuedCertificate,
}

struct Running {
    ca: TestCa,
    port: u16,
    clock: Arc<ShiftedClock>,
    _runtime: tokio::runtime::Runtime,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn start(ca: TestCa, system: Option<&Holder>) -> Running {
    start_with(ca, system, |_| {})
}

/// [`start`], with a last change to the services before they are served.
fn start_with(ca: TestCa, system: Option<&Holder>, tweak: impl FnOnce(&mut ca_server::Services)) -> Running {
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

fn issue(ca: &TestCa, clock: &dyn Clock, profile: ProfileId, n: u32, alg: KeyAlgorithm) -> Holder {
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
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let (status, body) = ca_tests::http(port, method, path, headers, body);
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    (status, json)
}

fn post_json(r: &Running, path: &str, body: &Value) -> (u16, Value) {
    http(r.port, "POST", path, &[("Content-Type", "application/json")], body.to_string().as_bytes())
}

fn reasons(v: &Value) -> Vec<String> {
    v["reasons"].as_array().map(|a| a.iter().filter_map(|r| r.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// Sign `content` with openssl from the holder's key (through a PKCS#12, as a client has it).
fn openssl_sign(ca: &TestCa, h: &Holder, name: &str, content: &[u8], attached: bool) -> Vec<u8> {
    openssl_sign_with(ca, h, name, content, attached, &[])
}

/// [`openssl_sign`] with more `openssl cms -sign` options (e.g. `-noattr`).
fn openssl_sign_with(ca: &TestCa, h: &Holder, name: &str, content: &[u8], attached: bool, extra: &[&str]) -> Vec<u8> {
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

fn past_ca() -> (TestCa, OffsetDateTime) {
    let now = SystemClock.now();
    (TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048, &FixedClock(now - Duration::days(800))), now)
}

#[test]
fn openssl_signatures_verify_and_tampering_is_a_verdict() {
    let (ca, now) = past_ca();
    let clock = FixedClock(now);
    let rsa = issue(&ca, &clock, ProfileId::IndividualSign, 1, KeyAlgorithm::Rsa2048);
    let ec = issue(&ca, &clock, ProfileId::IndividualSign, 2, KeyAlgorithm::P256);
    let iin1 = individual(1).iin().unwrap().to_string();
    let r = start(ca, None);
    for (h, name, n) in [(&rsa, "rsa", 1), (&ec, "ec", 2)] {
        let iin = individual(n).iin().unwrap().to_string();
        let attached = openssl_sign(&r.ca, h, name, CONTENT, true);
        let req = json!({ "cms": b64(&attached), "requirements": { "key_usage": "SIGN", "iin": iin } });
        let (status, v) = post_json(&r, "/api/v1/cms/verify", &req);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["valid"], true, "{name}: {v:#}");
        let signer = &v["signers"][0];
        assert_eq!(signer["certificate"]["identity"]["iin"], iin.as_str());
        assert_eq!(signer["certificate"]["identity"]["key_type"], "SIGN");
        assert_eq!(signer["revocation"]["state"], "good");
        assert_eq!(signer["chain"].as_array().unwrap().len(), 2);
        assert!(signer["signing_time"].is_string());
        assert_eq!(v["content"], b64(CONTENT));

        // The raw DER body works too.
        let (status, v) =
            http(r.port, "POST", "/api/v1/cms/verify", &[("Content-Type", "application/pkcs7-mime")], &attached);
        assert_eq!((status, &v["valid"]), (200, &json!(true)), "{v}");

        let detached = openssl_sign(&r.ca, h, name, CONTENT, false);
        let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&detached), "data": b64(CONTENT) }));
        assert_eq!(v["valid"], true, "{name} detached: {v:#}");
        let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&detached) }));
        assert_eq!(v["valid"], false);
        assert!(reasons(&v).contains(&"ContentMissing".into()), "{v}");

        let mut other = CONTENT.to_vec();
        other[3] ^= 0x01;
        let (status, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&detached), "data": b64(&other) }));
        assert_eq!(status, 200);
        assert_eq!(v["valid"], false);
        assert!(reasons(&v).contains(&"DigestMismatch".into()), "{v}");

        let at = attached.windows(CONTENT.len()).position(|w| w == CONTENT).unwrap();
        let mut flipped = attached.clone();
        flipped[at + 5] ^= 0x01;
        let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&flipped) }));
        assert!(v["valid"] == false && reasons(&v).contains(&"DigestMismatch".into()), "{v}");
        let mut flipped = attached.clone();
        *flipped.last_mut().unwrap() ^= 0x01;
        let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&flipped) }));
        assert!(v["valid"] == false && reasons(&v).contains(&"SignatureInvalid".into()), "{v}");
    }
    // A relying party asking for another person or key type.
    let attached = openssl_sign(&r.ca, &ec, "ec", CONTENT, true);
    let (_, v) =
        post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&attached), "requirements": { "iin": iin1 } }));
    assert!(reasons(&v).contains(&"WrongPerson".into()), "{v}");
    let (_, v) = post_json(
        &r,
        "/api/v1/cms/verify",
        &json!({ "cms": b64(&attached), "requirements": { "key_usage": "AUTH", "roles": ["individual"] } }),
    );
    assert_eq!(v["valid"], false);
    assert!(reasons(&v).contains(&"WrongKeyType".into()), "{v}");
    let (status, v) =
        post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&attached), "requirements": { "keyusage": "AUTH" } }));
    assert_eq!((status, v["error"].as_str()), (400, Some("malformed-request")), "a misspelt requirement: {v}");
}

#[test]
fn expired_revoked_and_untrusted_signers_get_their_verdicts() {
    let (ca, now) = past_ca();
    let expired = issue(&ca, &FixedClock(now - Duration::days(790)), ProfileId::IndividualSign, 3, KeyAlgorithm::P256);
    let month_ago = FixedClock(now - Duration::days(30));
    let revoked_before = issue(&ca, &month_ago, ProfileId::IndividualSign, 4, KeyAlgorithm::P256);
    let revoked_after = issue(&ca, &month_ago, ProfileId::IndividualSign, 5, KeyAlgorithm::Rsa2048);
    let signed_at = now - Duration::days(10);
    let sign = |h: &Holder, at| {
        ca_core::cms::sign(CONTENT, false, &h.key, &h.cert.der, std::slice::from_ref(&ca.issuing.certificate_der), at)
            .unwrap()
    };
    let cms_before = sign(&revoked_before, signed_at);
    let cms_after = sign(&revoked_after, signed_at);
    revoke(
        &ca.store,
        &FixedClock(now - Duration::days(20)),
        &revoked_before.cert.serial,
        RevocationReason::KeyCompromise,
        None,
        "t",
    )
    .unwrap();
    revoke(
        &ca.store,
        &FixedClock(now - Duration::days(5)),
        &revoked_after.cert.serial,
        RevocationReason::Superseded,
        None,
        "t",
    )
    .unwrap();
    let other = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &FixedClock(now));
    let stranger = issue(&other, &FixedClock(now), ProfileId::IndividualSign, 6, KeyAlgorithm::P256);
    let r = start(ca, None);

    let cms = openssl_sign(&r.ca, &expired, "expired", CONTENT, true);
    let (status, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&cms) }));
    assert_eq!(status, 200, "an expired signer is a verdict, not an error");
    assert!(v["valid"] == false && reasons(&v).contains(&"Expired".into()), "{v}");
    assert!(!reasons(&v).contains(&"Untrusted".into()), "{v}");

    let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&cms_before) }));
    assert!(v["valid"] == false && reasons(&v).contains(&"Revoked".into()), "{v}");
    assert_eq!(v["signers"][0]["revocation"]["state"], "revoked");
    assert_eq!(v["signers"][0]["revocation"]["source"], "store");

    let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&cms_after) }));
    assert_eq!(v["valid"], true, "revoked after signing: {v:#}");
    assert!(reasons(&v).contains(&"RevokedAfterSigning".into()));
    assert_eq!(v["signers"][0]["revocation"]["state"], "revoked-later");
    // ...but not when the relying party validates at its own "now".
    let req = json!({ "cms": b64(&cms_after), "validation_time": now.format(&time::format_description::well_known::Rfc3339).unwrap() });
    let (_, v) = post_json(&r, "/api/v1/cms/verify", &req);
    assert!(v["valid"] == false && reasons(&v).contains(&"Revoked".into()), "{v}");
    assert_eq!(v["signers"][0]["validation_time_source"], "relying-party", "{v}");

    let cms = openssl_sign(&other, &stranger, "stranger", CONTENT, true);
    let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&cms) }));
    assert!(v["valid"] == false && reasons(&v).contains(&"Untrusted".into()), "{v}");

    // The same analysis for bare certificates.
    let (status, v) = post_json(&r, "/api/v1/x509/verify", &json!({ "certificate": b64(&revoked_after.cert.der) }));
    assert_eq!(status, 200);
    assert!(v["valid"] == false && reasons(&v).contains(&"Revoked".into()), "{v}");
    let at = (now - Duration::days(10)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let req = json!({ "certificate": b64(&revoked_after.cert.der), "validation_time": at, "requirements": { "key_usage": "SIGN" } });
    let (_, v) = post_json(&r, "/api/v1/x509/verify", &req);
    assert_eq!(v["valid"], true, "{v:#}");
    assert_eq!(v["certificate"]["identity"]["key_type"], "SIGN");
    let (_, v) = post_json(&r, "/api/v1/x509/verify", &json!({ "certificate": b64(&expired.cert.der) }));
    assert!(reasons(&v).contains(&"Expired".into()), "{v}");
    let pem = String::from_utf8(
        std::fs::read(write_pem(other.dir.path(), "s.pem", "CERTIFICATE", &stranger.cert.der)).unwrap(),
    )
    .unwrap();
    let (_, v) =
        http(r.port, "POST", "/api/v1/x509/verify", &[("Content-Type", "application/x-pem-file")], pem.as_bytes());
    assert!(reasons(&v).contains(&"Untrusted".into()), "{v}");
    let (_, openapi) = http(r.port, "GET", "/api/v1/openapi.json", &[], b"");
    for path in [
        "/api/v1/cms/verify",
        "/api/v1/x509/verify",
        "/api/v1/auth/challenge",
        "/api/v1/auth/login",
        "/api/v1/cms/sign",
    ] {
        assert!(openapi["paths"][path]["post"].is_object(), "{path} in the OpenAPI document");
    }
    let (_, metrics) = http(r.port, "GET", "/metrics", &[], b"");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("ca_verifications_total{endpoint=\"cms\",verdict=\"invalid\",reason=\"Expired\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_foreign_trusted_ca_without_a_reachable_crl_is_never_good() {
    let now = SystemClock.now();
    let ours = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &FixedClock(now));
    let foreign = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &FixedClock(now));
    let h = issue(&foreign, &FixedClock(now), ProfileId::IndividualSign, 10, KeyAlgorithm::P256);
    let store = Arc::new(SqliteStore::open(&ours.dir.path().join("ca.db")).unwrap());
    let mut services = ca_server::Services::new(
        None,
        Some(store as Arc<dyn ca_core::store::Store>),
        "nca",
        ours.dir.path().join("crl"),
        ours.dir.path().join("certs"),
    );
    // The foreign root is trusted; its CRL distribution point (http://pki.test.kz/…) is not reachable.
    let anchors = [ours.root.certificate_der.clone(), foreign.root.certificate_der.clone()];
    let intermediates = [ours.issuing.certificate_der.clone(), foreign.issuing.certificate_der.clone()];
    let ours_cas = vec![ours.issuing.certificate_der.clone(), ours.root.certificate_der.clone()];
    let verifier = ca_server::Verifier::new(&anchors, &intermediates, ours_cas, Arc::new(SystemClock)).unwrap();
    services.verifier = Some(Arc::new(verifier));
    let (port, _runtime) = ca_tests::serve(Arc::new(services));
    let (status, v) = http(
        port,
        "POST",
        "/api/v1/x509/verify",
        &[("Content-Type", "application/json")],
        json!({ "certificate": b64(&h.cert.der) }).to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], false, "{v:#}");
    assert!(reasons(&v).contains(&"RevocationUnavailable".into()), "{v}");
    assert_eq!(v["revocation"]["state"], "unavailable");
    assert_eq!(v["chain_trusted"], true);
}

fn challenge(r: &Running) -> Vec<u8> {
    let (status, v) = http(r.port, "POST", "/api/v1/auth/challenge", &[], b"");
    assert_eq!(status, 200, "{v}");
    assert!(v["expires_at"].is_string());
    base64::engine::general_purpose::STANDARD.decode(v["nonce"].as_str().unwrap()).unwrap()
}

#[test]
fn login_by_signature_once_without_replay_or_expired_nonce() {
    let (ca, now) = past_ca();
    let clock = FixedClock(now);
    let auth = issue(&ca, &clock, ProfileId::IndividualAuth, 7, KeyAlgorithm::Rsa2048);
    let sign = issue(&ca, &clock, ProfileId::IndividualSign, 7, KeyAlgorithm::P256);
    let r = start(ca, None);

    let nonce = challenge(&r);
    assert_eq!(nonce.len(), 32);
    let cms = openssl_sign(&r.ca, &auth, "auth", &nonce, true);
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "cms": b64(&cms) }));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["iin"], individual(7).iin().unwrap().to_string());
    assert_eq!(v["key_usage"], "AUTH");
    assert_eq!(v["certificate"]["serial"], auth.cert.serial.to_hex());
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "cms": b64(&cms) }));
    assert_eq!((status, v["error"].as_str()), (401, Some("nonce-replayed")), "{v}");

    // Detached, with the nonce as data.
    let nonce = challenge(&r);
    let cms = openssl_sign(&r.ca, &auth, "auth", &nonce, false);
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "cms": b64(&cms), "data": b64(&nonce) }));
    assert_eq!(status, 200, "{v}");

    // A SIGN key may not log in, and does not use up the nonce.
    let nonce = challenge(&r);
    let cms = openssl_sign(&r.ca, &sign, "sign", &nonce, true);
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "cms": b64(&cms) }));
    assert_eq!((status, v["error"].as_str()), (401, Some("signature-invalid")), "{v}");
    assert!(v["details"]["reasons"].as_array().unwrap().contains(&json!("WrongKeyType")), "{v}");

    // A nonce this server never issued.
    let cms = openssl_sign(&r.ca, &auth, "auth", &[9u8; 32], true);
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "cms": b64(&cms) }));
    assert_eq!((status, v["error"].as_str()), (401, Some("nonce-unknown")), "{v}");

    // Expired: the server's clock moves past the 5 minutes.
    let nonce = challenge(&r);
    let cms = openssl_sign(&r.ca, &auth, "auth", &nonce, true);
    r.clock.0.store(6 * 60, Ordering::Relaxed);
    let (status, v) = post_json(&r, "/api/v1/auth/login", &json!({ "cms": b64(&cms) }));
    assert_eq!((status, v["error"].as_str()), (401, Some("nonce-expired")), "{v}");
}

#[test]
fn system_signing_needs_a_listed_token() {
    let (ca, now) = past_ca();
    let system = {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let cert = ca
            .issuer(&FixedClock(now))
            .issue(&IssuanceRequest {
                profile: ProfileId::IndividualSign,
                subject: Subject::Individual(fixtures::person(8)),
                roles: vec![],
                public_key: key.public_key().clone(),
            })
            .unwrap();
        Holder { key, cert }
    };
    let r = start(ca, Some(&system));
    let body = json!({ "data": b64(CONTENT) }).to_string();
    let json_ct = ("Content-Type", "application/json");
    let (status, v) = http(r.port, "POST", "/api/v1/cms/sign", &[json_ct], body.as_bytes());
    assert_eq!((status, v["error"].as_str()), (401, Some("unauthenticated")));
    let (status, _) =
        http(r.port, "POST", "/api/v1/cms/sign", &[json_ct, ("Authorization", "Bearer wrong")], body.as_bytes());
    assert_eq!(status, 403);
    let bearer = format!("Bearer {TOKEN}");
    let (status, v) = http(r.port, "POST", "/api/v1/cms/sign", &[json_ct, ("Authorization", &bearer)], body.as_bytes());
    assert_eq!(status, 200, "{v}");
    let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": v["cms"] }));
    assert_eq!(v["valid"], true, "{v:#}");
    assert_eq!(v["content"], b64(CONTENT));
}

#[test]
fn garbage_truncated_and_oversized_bodies_are_json_errors_and_the_server_keeps_serving() {
    let (ca, now) = past_ca();
    let h = issue(&ca, &FixedClock(now), ProfileId::IndividualSign, 9, KeyAlgorithm::P256);
    let r = start(ca, None);
    let good = openssl_sign(&r.ca, &h, "good", CONTENT, true);
    let raw = [("Content-Type", "application/pkcs7-mime")];
    let json_ct = [("Content-Type", "application/json")];
    let big = vec![0x30u8; 1024 * 1024 + 10];
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<u8>);
    let cases: Vec<Case<'_>> = vec![
        ("/api/v1/cms/verify", &raw, b"hello world, not a CMS".to_vec()),
        ("/api/v1/cms/verify", &raw, good[..good.len() / 2].to_vec()),
        ("/api/v1/cms/verify", &raw, vec![]),
        ("/api/v1/cms/verify", &json_ct, b"{\"cms\": 42".to_vec()),
        ("/api/v1/cms/verify", &json_ct, json!({ "cms": b64(&good[..100]) }).to_string().into_bytes()),
        ("/api/v1/cms/verify", &json_ct, json!({ "cms": "x", "data": "%%%" }).to_string().into_bytes()),
        ("/api/v1/cms/verify", &raw, big.clone()),
        ("/api/v1/x509/verify", &raw, b"garbage".to_vec()),
        ("/api/v1/x509/verify", &raw, big),
        ("/api/v1/auth/login", &json_ct, b"[]".to_vec()),
        ("/api/v1/auth/login", &json_ct, json!({ "cms": "AAAA" }).to_string().into_bytes()),
        // Empty strings are what the OpenAPI description's minLength: 1 refuses.
        ("/api/v1/cms/verify", &json_ct, json!({ "cms": "" }).to_string().into_bytes()),
        ("/api/v1/x509/verify", &json_ct, json!({ "certificate": "" }).to_string().into_bytes()),
        ("/api/v1/auth/login", &json_ct, json!({ "cms": "" }).to_string().into_bytes()),
    ];
    for (path, headers, body) in cases {
        let (status, v) = http(r.port, "POST", path, headers, &body);
        assert!((400..500).contains(&status), "{path} {} bytes: {status} {v}", body.len());
        assert!(v["error"].is_string() && v["message"].is_string(), "{path}: JSON error expected, got {v}");
        let (status, v) = http(r.port, "POST", "/api/v1/cms/verify", &raw, &good);
        assert_eq!((status, &v["valid"]), (200, &json!(true)), "still serving after {path}");
    }
}

// ---- administration: requests signed by a CA operator ------------------------------------

fn holder_with_roles(ca: &TestCa, profile: ProfileId, n: u32, roles: Vec<ca_core::profile::Role>) -> Holder {
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let clock = SystemClock;
    let cert = ca
        .issuer(&clock)
        .issue(&IssuanceRequest { profile, subject: individual(n), roles, public_key: key.public_key().clone() })
        .unwrap();
    Holder { key, cert }
}

fn signed_by(r: &Running, h: &Holder, content: &[u8]) -> Vec<u8> {
    signed_at(r, h, content, SystemClock.now())
}

/// A request signed with signingTime `at`: two signatures over the same content in the same
/// second are the same request (single use).
fn signed_at(r: &Running, h: &Holder, content: &[u8], at: OffsetDateTime) -> Vec<u8> {
    ca_core::cms::sign(content, false, &h.key, &h.cert.der, std::slice::from_ref(&r.ca.issuing.certificate_der), at)
        .unwrap()
}

/// The journal entries with `action`, oldest first.
fn journaled(store: &SqliteStore, action: &str) -> Vec<ca_core::store::AuditEntry> {
    use ca_core::store::Store;
    let mut found = Vec::new();
    store
        .audit_entries(&Default::default(), &mut |e| {
            if e.event.action == action {
                found.push(e);
            }
            Ok(())
        })
        .unwrap();
    found
}

fn admin(r: &Running, path: &str, body: &[u8]) -> (u16, Value) {
    http(r.port, "POST", path, &[("Content-Type", "application/pkcs7-mime")], body)
}

/// The RA's signature check is never reached for unsigned submissions.
struct NoSignatures;
impl ca_core::ra::SignatureCheck for NoSignatures {
    fn check(
        &self,
        _: &ca_core::ra::SignedPayload,
        _: &ca_core::ra::Expectation,
    ) -> Result<ca_core::ra::SignerFacts, ca_core::ra::SignatureProblem> {
        Err(ca_core::ra::SignatureProblem::Unavailable("not used in this test".into()))
    }
}

#[test]
fn administration_needs_an_operator_signature_and_is_audited() {
    use ca_core::profile::Role;
    use ca_core::ra::RaStore;
    use ca_core::store::Store;
    let r = start(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None);
    let clock = SystemClock;
    let target = issue(&r.ca, &clock, ProfileId::IndividualSign, 30, KeyAlgorithm::P256);
    let operator = holder_with_roles(&r.ca, ProfileId::IndividualSign, 31, vec![Role::CaOperator]);
    let operator_auth = holder_with_roles(&r.ca, ProfileId::IndividualAuth, 31, vec![Role::CaOperator]);
    let citizen = holder_with_roles(&r.ca, ProfileId::IndividualSign, 32, vec![]);
    let request = json!({ "action": "revoke", "serial": target.cert.serial.to_hex(), "reason": "keyCompromise" });
    let request = serde_json::to_vec(&request).unwrap();
    let audit_before = r.ca.store.verify_audit().unwrap().entries;

    // Unauthenticated and unauthorised calls change nothing.
    for (body, status) in [
        (Vec::new(), 401),
        (b"garbage".to_vec(), 401),
        (signed_by(&r, &citizen, &request), 403),
        (signed_by(&r, &operator_auth, &request), 403),
    ] {
        let (got, v) = admin(&r, "/api/v1/admin/revocations", &body);
        assert_eq!(got, status, "{v}");
        assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    }
    let record = r.ca.store.certificate(&target.cert.serial).unwrap().unwrap();
    assert_eq!(record.status, ca_core::store::CertificateStatus::Issued, "nothing was revoked");

    // The operator's signed request revokes, once; a second time says so.
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &signed_by(&r, &operator, &request));
    assert_eq!(got, 200, "{v}");
    assert_eq!(v["already"], false);
    assert_eq!(
        r.ca.store.certificate(&target.cert.serial).unwrap().unwrap().status,
        ca_core::store::CertificateStatus::Revoked
    );
    let again = signed_at(&r, &operator, &request, SystemClock.now() - Duration::seconds(2));
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &again);
    assert_eq!((got, v["already"].clone()), (200, json!(true)));

    // The two refusals of signers of this CA and the revocation are journaled one by one; the
    // anonymous ones (empty, garbage) are only counted until their minute is over.
    let audit = r.ca.store.verify_audit().unwrap();
    assert!(audit.is_intact());
    assert_eq!(audit.entries, audit_before + 3);
    assert_eq!(journaled(&r.ca.store, "admin.refused").len(), 2);

    // Confirming an application: the operator's signature over its statement.
    let import = ca_core::ra::csv::parse(&fixtures::registry::registry_csv()).unwrap();
    r.ca.store.import_registry(&import, "test").unwrap();
    let registry = ca_core::ra::StoreRegistry(&r.ca.store);
    let ra = ca_core::ra::RegistrationAuthority {
        store: &r.ca.store,
        certificates: &r.ca.store,
        registry: &registry,
        signatures: &NoSignatures,
        clock: &clock,
        install_url: "",
    };
    let submission = ca_core::ra::Submission {
        kind: ca_core::ra::ApplicationKind::NewIndividual,
        iin: fixtures::person(21).iin,
        bin: None,
        serials: Vec::new(),
        revocation_reason: None,
        signature: None,
        operator: None,
    };
    let a = ra.submit(&submission).unwrap().application().clone();
    ra.verify_identity(&a.number, "operator-1").unwrap();
    let path = format!("/api/v1/admin/applications/{}/confirm", a.number);
    let (got, v) = admin(&r, &path, &signed_by(&r, &operator, b"something else"));
    assert_eq!(got, 403, "{v}");
    let statement = ra.statement("operator-confirm", &a).canonical();
    let (got, v) = admin(&r, &path, &signed_by(&r, &citizen, &statement));
    assert_eq!(got, 403, "{v}");
    let (got, v) = admin(&r, &path, &signed_by(&r, &operator, &statement));
    assert_eq!(got, 200, "{v}");
    assert_eq!(v["application"]["state"], "confirmed");
    assert!(r.ca.store.verify_audit().unwrap().is_intact());
}

#[test]
fn an_admin_request_needs_signed_attributes_and_is_single_use() {
    use ca_core::profile::Role;
    use ca_core::store::{CertificateStatus, Store};
    let r = start(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None);
    let target = issue(&r.ca, &SystemClock, ProfileId::IndividualSign, 40, KeyAlgorithm::P256);
    let operator = holder_with_roles(&r.ca, ProfileId::IndividualSign, 41, vec![Role::CaOperator]);
    let hold = json!({ "action": "revoke", "serial": target.cert.serial.to_hex(), "reason": "certificateHold" });
    let hold = serde_json::to_vec(&hold).unwrap();
    let status = || r.ca.store.certificate(&target.cert.serial).unwrap().unwrap().status;

    // Without signed attributes there is no signingTime: such a request could be replayed forever.
    let bare = openssl_sign_with(&r.ca, &operator, "op-noattr", &hold, true, &["-noattr"]);
    for _ in 0..2 {
        let (got, v) = admin(&r, "/api/v1/admin/revocations", &bare);
        assert_eq!(got, 401, "{v}");
        assert!(v["message"].as_str().unwrap().contains("signed attributes"), "{v}");
    }
    assert_eq!(status(), CertificateStatus::Issued, "nothing was held");

    // With them (openssl's default), the hold is made once ...
    let signed = openssl_sign(&r.ca, &operator, "op-attr", &hold, true);
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &signed);
    assert_eq!((got, v["already"].clone()), (200, json!(false)), "{v}");
    assert_eq!(status(), CertificateStatus::Revoked);
    let release = ca_core::store::AuditEvent::new("test", "certificate.release").target(target.cert.serial.to_hex());
    r.ca.store.release_hold(&target.cert.serial, &release).unwrap();
    assert_eq!(status(), CertificateStatus::Issued);

    // ... and the same request sent again does not hold the released certificate again, now
    // or after the 10-minute window.
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &signed);
    assert_eq!((got, v["error"].as_str()), (401, Some("replayed")), "{v}");
    r.clock.0.store(11 * 60, Ordering::Relaxed);
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &signed);
    assert_eq!(got, 401, "{v}");
    assert!(v["message"].as_str().unwrap().contains("more than 10 minutes ago"), "{v}");
    assert_eq!(status(), CertificateStatus::Issued, "the release stands");

    // Each of these refusals names the operator in the journal; so does a malformed body under
    // a valid signature.
    r.clock.0.store(0, Ordering::Relaxed);
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &signed_by(&r, &operator, b"{\"action\":\"revoke\"}"));
    assert_eq!(got, 400, "{v}");
    let refused = journaled(&r.ca.store, "admin.refused");
    let reasons: Vec<&str> = refused.iter().map(|e| e.event.details["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["no-signed-attributes", "no-signed-attributes", "replayed", "too-old", "malformed-request"]);
    assert!(refused.iter().all(|e| e.event.actor.contains(&operator.cert.serial.to_hex())), "{refused:?}");
    assert!(r.ca.store.verify_audit().unwrap().is_intact());
}

#[test]
fn a_confirmation_signed_for_another_application_is_refused() {
    use ca_core::profile::Role;
    use ca_core::ra::RaStore;
    let r = start(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None);
    let operator = holder_with_roles(&r.ca, ProfileId::IndividualSign, 42, vec![Role::CaOperator]);
    let import = ca_core::ra::csv::parse(&fixtures::registry::registry_csv()).unwrap();
    r.ca.store.import_registry(&import, "test").unwrap();
    let registry = ca_core::ra::StoreRegistry(&r.ca.store);
    let ra = ca_core::ra::RegistrationAuthority {
        store: &r.ca.store,
        certificates: &r.ca.store,
        registry: &registry,
        signatures: &NoSignatures,
        clock: &SystemClock,
        install_url: "",
    };
    let submit = |n: u32| {
        let submission = ca_core::ra::Submission {
            kind: ca_core::ra::ApplicationKind::NewIndividual,
            iin: fixtures::person(n).iin,
            bin: None,
            serials: Vec::new(),
            revocation_reason: None,
            signature: None,
            operator: None,
        };
        ra.submit(&submission).unwrap().application().clone()
    };
    let (a2, a3) = (submit(21), submit(22));
    let confirm = |a: &ca_core::ra::Application, statement_of: &ca_core::ra::Application, at: OffsetDateTime| {
        let statement = ra.statement("operator-confirm", statement_of).canonical();
        admin(
            &r,
            &format!("/api/v1/admin/applications/{}/confirm", a.number),
            &signed_at(&r, &operator, &statement, at),
        )
    };
    let now = SystemClock.now();
    let (got, v) = confirm(&a2, &a2, now);
    assert_eq!((got, v["application"]["state"].as_str()), (200, Some("confirmed")), "{v}");
    // A-2 is confirmed already; a signature over A-3 posted to A-2 is still a refusal.
    let (got, v) = confirm(&a2, &a3, now - Duration::seconds(1));
    assert_eq!(got, 403, "{v}");
    assert!(v["message"].as_str().unwrap().contains("not this application"), "{v}");
    // Its own statement, signed anew, is the harmless second confirmation.
    let (got, v) = confirm(&a2, &a2, now - Duration::seconds(2));
    assert_eq!((got, v["application"]["state"].as_str()), (200, Some("confirmed")), "{v}");
}

#[test]
fn anonymous_junk_to_the_admin_endpoints_adds_a_bounded_number_of_audit_rows() {
    use ca_core::store::Store;
    let r = start(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None);
    let before = r.ca.store.verify_audit().unwrap().entries;
    let stranger = issue(
        &TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256),
        &SystemClock,
        ProfileId::IndividualSign,
        43,
        KeyAlgorithm::P256,
    );
    let foreign = signed_by(&r, &stranger, b"{}");
    let bodies: [&[u8]; 3] = [b"", b"junk", &foreign];
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for i in 0..10_000 {
        let (got, _) = admin(&r, "/api/v1/admin/revocations", bodies[i % 3]);
        *statuses.entry(got).or_default() += 1;
    }
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), [401, 429], "{statuses:?}");
    assert!(statuses[&429] > 9_000, "past its burst a client is turned away unverified: {statuses:?}");
    assert_eq!(r.ca.store.verify_audit().unwrap().entries, before, "no row per junk request");
    // The first refusal after the minute writes one entry with the sum.
    r.clock.0.store(61, Ordering::Relaxed);
    let _ = admin(&r, "/api/v1/admin/revocations", b"junk");
    let after = r.ca.store.verify_audit().unwrap();
    assert_eq!(after.entries, before + 1);
    let summed = journaled(&r.ca.store, "admin.refused.anonymous");
    assert_eq!(summed.len(), 1);
    assert_eq!(summed[0].event.details["count"], 10_001);
    let (_, metrics) = http(r.port, "GET", "/metrics", &[], b"");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(metrics.contains("ca_admin_refusals_total{signer=\"anonymous\",reason=\"rate-limited\"}"), "{metrics}");
}

// ---- revocation of a foreign trusted CA's certificates from its CRL -------------------------

/// A small HTTP server for CRLs: answers `GET /crl/<file>` with the bytes published under that
/// file name and counts the requests for each.
struct CrlServer {
    port: u16,
    files: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    hits: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl CrlServer {
    fn hits(&self, file: &str) -> usize {
        self.hits.lock().unwrap().get(file).copied().unwrap_or(0)
    }
}

fn crl_server() -> CrlServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let files: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>> = Arc::default();
    let hits: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
    let (f, h) = (files.clone(), hits.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let file = request.split(' ').nth(1).unwrap_or("").rsplit('/').next().unwrap_or("").to_owned();
            *h.lock().unwrap().entry(file.clone()).or_default() += 1;
            let body = f.lock().unwrap().get(&file).cloned().unwrap_or_default();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    CrlServer { port, files, hits }
}

/// A CRL of `authority` (the issuing or the root CA) revoking `revoked` for a key compromise.
fn make_crl(
    authority: &ca_core::issuer::CertificateAuthority,
    number: u64,
    revoked: &[&ca_core::serial::SerialNumber],
    this: OffsetDateTime,
    next: OffsetDateTime,
) -> Vec<u8> {
    make_crl_with(authority, number, revoked, this, next, |_| {})
}

/// [`make_crl`] with its parameters changed by `tweak` (scope, delta base).
fn make_crl_with(
    authority: &ca_core::issuer::CertificateAuthority,
    number: u64,
    revoked: &[&ca_core::serial::SerialNumber],
    this: OffsetDateTime,
    next: OffsetDateTime,
    tweak: impl FnOnce(&mut crl::CrlParams),
) -> Vec<u8> {
    let mut params = crl::CrlParams {
        issuer: authority.subject().clone(),
        authority_key_id: authority.key_id().to_vec(),
        crl_number: number,
        this_update: this,
        next_update: next,
        delta_base: None,
        issuing_distribution_point: None,
        freshest_crl: None,
    };
    tweak(&mut params);
    let entries = revoked.iter().map(|s| crl::CrlEntry {
        serial: s.as_bytes(),
        revoked_at: this,
        reason: Some(ca_core::revocation::RevocationReason::KeyCompromise),
        invalidity_date: None,
    });
    crl::build_crl(&params, entries, authority.signer()).unwrap()
}

/// Publish `ca`'s CRL as `file` (signed by `authority`, the issuing or the root CA).
fn publish_crl(
    authority: &ca_core::issuer::CertificateAuthority,
    server: &CrlServer,
    file: &str,
    number: u64,
    revoked: &[&ca_core::serial::SerialNumber],
    this: OffsetDateTime,
    next: OffsetDateTime,
) {
    let der = make_crl(authority, number, revoked, this, next);
    server.files.lock().unwrap().insert(file.to_owned(), der);
}

/// `cms` with `crls` in its SignedData's RevocationInfoChoices (outside what the signer signed).
fn with_crls(cms: &[u8], crls: &[Vec<u8>]) -> Vec<u8> {
    use cms_types::content_info::ContentInfo;
    use cms_types::revocation::{RevocationInfoChoice, RevocationInfoChoices};
    use cms_types::signed_data::SignedData;
    use der::{Any, Decode, Encode};
    let mut info = ContentInfo::from_der(cms).unwrap();
    let mut signed: SignedData = info.content.decode_as().unwrap();
    let choices = crls
        .iter()
        .map(|der| RevocationInfoChoice::Crl(x509_cert::crl::CertificateList::from_der(der).unwrap()))
        .collect::<Vec<_>>();
    signed.crls = Some(RevocationInfoChoices::try_from(choices).unwrap());
    info.content = Any::encode_from(&signed).unwrap();
    info.to_der().unwrap()
}

/// A foreign trusted CA whose distribution points cannot be reached: without revocation
/// evidence its signer is refused (revocation is required by default); the CRLs the signer
/// carries in the SignedData, or the relying party sends, answer instead.
#[test]
fn crls_carried_in_the_signature_or_sent_answer_when_the_distribution_point_fails() {
    use ca_core::cms::{self, PathOptions, Requirements};
    let clock = Arc::new(ShiftedClock::default());
    // Port 1 on the loopback: the fetch is refused at once.
    let urls = ca_core::config::PublicationUrls::under("http://127.0.0.1:1");
    let foreign = TestCa::with_urls(KeyAlgorithm::P256, KeyAlgorithm::P256, clock.as_ref(), urls);
    let signer = issue(&foreign, clock.as_ref(), ProfileId::IndividualSign, 41, KeyAlgorithm::P256);
    let verifier = ca_server::Verifier::new(
        std::slice::from_ref(&foreign.root.certificate_der),
        std::slice::from_ref(&foreign.issuing.certificate_der),
        Vec::new(),
        clock.clone(),
    )
    .unwrap();
    let now = clock.now();
    let chain = std::slice::from_ref(&foreign.issuing.certificate_der);
    let signature = cms::sign(b"foreign", false, &signer.key, &signer.cert.der, chain, now).unwrap();
    let check = |cms: &[u8], options: PathOptions| {
        verifier.with_context(None, now, Some(now), Requirements::default(), options, |ctx| {
            cms::verify(cms, None, ctx).unwrap()
        })
    };
    let reasons = |v: &ca_core::cms::CmsVerification| format!("{:?}", v.signers[0].findings);

    let v = check(&signature, PathOptions::default());
    assert!(!v.valid && v.has(ca_core::cms::Reason::RevocationUnavailable), "{}", reasons(&v));

    let next = now + Duration::days(1);
    let root_crl = make_crl(&foreign.root, 1, &[], now, next);
    let good = [root_crl.clone(), make_crl(&foreign.issuing, 1, &[], now, next)];
    let v = check(&with_crls(&signature, &good), PathOptions::default());
    assert!(v.valid, "{}", reasons(&v));
    assert_eq!(v.signers[0].revocation.source.as_deref(), Some("CRL"));

    let revoked = [root_crl, make_crl(&foreign.issuing, 2, &[&signer.cert.serial], now, next)];
    let v = check(&with_crls(&signature, &revoked), PathOptions::default());
    assert!(!v.valid && v.has(ca_core::cms::Reason::Revoked), "{}", reasons(&v));

    // The same CRLs sent by the relying party instead.
    let sent = |crls: &[Vec<u8>]| PathOptions {
        crls: crls.iter().map(|c| Arc::new(ca_core::pkix::PkixCrl::from_der(c).unwrap())).collect(),
        ..PathOptions::default()
    };
    assert!(check(&signature, sent(&good)).valid);
    assert!(!check(&signature, sent(&revoked)).valid);
}

#[test]
fn a_foreign_cas_crl_is_fetched_cached_until_next_update_and_never_trusted_stale() {
    use ca_core::cms::{self, Requirements};
    let server = crl_server();
    let clock = Arc::new(ShiftedClock::default());
    let urls = ca_core::config::PublicationUrls::under(&format!("http://127.0.0.1:{}", server.port));
    let foreign = TestCa::with_urls(KeyAlgorithm::P256, KeyAlgorithm::P256, clock.as_ref(), urls);
    let ours = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let signer = issue(&foreign, clock.as_ref(), ProfileId::IndividualSign, 40, KeyAlgorithm::P256);
    let verifier = ca_server::Verifier::new(
        &[ours.root.certificate_der.clone(), foreign.root.certificate_der.clone()],
        &[ours.issuing.certificate_der.clone(), foreign.issuing.certificate_der.clone()],
        vec![ours.issuing.certificate_der.clone(), ours.root.certificate_der.clone()],
        clock.clone(),
    )
    .unwrap();
    let content = b"a request signed under a foreign CA";
    let signature = cms::sign(
        content,
        false,
        &signer.key,
        &signer.cert.der,
        std::slice::from_ref(&foreign.issuing.certificate_der),
        clock.now(),
    )
    .unwrap();
    let check = || {
        let now = clock.now();
        verifier.with_context(None, now, Some(now), Requirements::default(), Default::default(), |ctx| {
            cms::verify(&signature, None, ctx).unwrap()
        })
    };
    let reasons = |v: &ca_core::cms::CmsVerification| format!("{:?}", v.signers[0].findings);

    // A current CRL without the signer: good, fetched once and then served from the cache.
    // (The root's CRL, for the issuing CA's own certificate, is valid all along.)
    let now = clock.now();
    publish_crl(&foreign.root, &server, "root.crl", 1, &[], now, now + Duration::days(30));
    publish_crl(&foreign.issuing, &server, "nca.crl", 1, &[], now, now + Duration::hours(1));
    let v = check();
    assert!(v.valid, "{}", reasons(&v));
    assert_eq!(v.signers[0].revocation.source.as_deref(), Some("CRL"));
    let v = check();
    assert!(v.valid);
    assert_eq!(server.hits("nca.crl"), 1, "cached until nextUpdate");

    // The foreign CA revokes the signer; the cached CRL stands until its nextUpdate, then the
    // new one is fetched and the signer is revoked.
    publish_crl(&foreign.issuing, &server, "nca.crl", 2, &[&signer.cert.serial], now, now + Duration::hours(3));
    assert!(check().valid, "still the cached CRL");
    clock.0.store(3600 + 60, Ordering::Relaxed);
    let v = check();
    assert!(!v.valid);
    assert!(reasons(&v).contains("Revoked"), "{}", reasons(&v));
    assert_eq!(server.hits("nca.crl"), 2);

    // Past that CRL's nextUpdate the server only has a stale one: never "good".
    clock.0.store(4 * 3600, Ordering::Relaxed);
    publish_crl(&foreign.issuing, &server, "nca.crl", 3, &[], now, now + Duration::hours(3) + Duration::minutes(30));
    let v = check();
    assert!(!v.valid);
    assert!(reasons(&v).contains("RevocationUnavailable"), "{}", reasons(&v));
}

/// A foreign trusted CA publishing its CRLs on a loopback server, and a signature by one of
/// its subscribers.
struct Foreign {
    server: CrlServer,
    clock: Arc<ShiftedClock>,
    ca: TestCa,
    signer: Holder,
}

fn foreign_ca(n: u32) -> Foreign {
    let server = crl_server();
    let clock = Arc::new(ShiftedClock::default());
    let urls = ca_core::config::PublicationUrls::under(&format!("http://127.0.0.1:{}", server.port));
    let ca = TestCa::with_urls(KeyAlgorithm::P256, KeyAlgorithm::P256, clock.as_ref(), urls);
    let signer = issue(&ca, clock.as_ref(), ProfileId::IndividualSign, n, KeyAlgorithm::P256);
    let now = clock.now();
    // The root's CRL, for the issuing CA's own certificate, is good all along.
    publish_crl(&ca.root, &server, "root.crl", 1, &[], now, now + Duration::days(30));
    Foreign { server, clock, ca, signer }
}

impl Foreign {
    /// Verify a fresh signature through a new verifier (empty caches) that trusts the root and
    /// knows `intermediate` as the issuing CA's certificate; revocation is required.
    fn verify(&self, intermediate: &[u8]) -> ca_core::cms::CmsVerification {
        use ca_core::cms::{self, Requirements};
        let now = self.clock.now();
        let verifier = ca_server::Verifier::new(
            std::slice::from_ref(&self.ca.root.certificate_der),
            &[intermediate.to_vec()],
            Vec::new(),
            self.clock.clone(),
        )
        .unwrap();
        let chain = [intermediate.to_vec()];
        let signature = cms::sign(b"foreign", false, &self.signer.key, &self.signer.cert.der, &chain, now).unwrap();
        verifier.with_context(None, now, Some(now), Requirements::default(), Default::default(), |ctx| {
            cms::verify(&signature, None, ctx).unwrap()
        })
    }
}

/// RFC 5280 §6.3.3(f): a fetched CRL counts only when its issuer's certificate allows
/// cRLSign, even when the CRL is signed with the very key that issued the certificate.
#[test]
fn a_fetched_crl_whose_issuer_lacks_crl_sign_is_no_status() {
    use der::{Decode, Encode};
    use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
    let f = foreign_ca(50);
    let now = f.clock.now();
    publish_crl(&f.ca.issuing, &f.server, "nca.crl", 1, &[], now, now + Duration::days(1));
    assert!(f.verify(&f.ca.issuing.certificate_der).valid, "the CA's own certificate allows cRLSign");

    // The same name and key, certified by the root for keyCertSign only.
    let mut cert = x509_cert::Certificate::from_der(&f.ca.issuing.certificate_der).unwrap();
    let tbs = &mut cert.tbs_certificate;
    tbs.serial_number = x509_cert::serial_number::SerialNumber::new(&[0x42; 16]).unwrap();
    let usage = KeyUsage(KeyUsages::KeyCertSign.into()).to_der().unwrap();
    let ku =
        tbs.extensions.iter_mut().flatten().find(|e| e.extn_id == der::asn1::ObjectIdentifier::new_unwrap("2.5.29.15"));
    ku.expect("a CA certificate has keyUsage").extn_value = der::asn1::OctetString::new(usage).unwrap();
    let signature = f.ca.root.signer().sign(&tbs.to_der().unwrap()).unwrap();
    cert.signature = der::asn1::BitString::from_bytes(&signature).unwrap();
    let without_crl_sign = cert.to_der().unwrap();

    let v = f.verify(&without_crl_sign);
    let reasons = format!("{:?}", v.signers[0].findings);
    assert!(!v.valid && v.has(ca_core::cms::Reason::RevocationUnavailable), "{reasons}");
    assert!(reasons.contains("cRLSign"), "{reasons}");
}

/// RFC 5280 §6.3.3(b): a fetched CRL whose Issuing Distribution Point is another partition
/// does not cover the certificate.
#[test]
fn a_fetched_crl_scoped_to_another_distribution_point_is_no_status() {
    let f = foreign_ca(51);
    let now = f.clock.now();
    let other = format!("http://127.0.0.1:{}/crl/nca_p7.crl", f.server.port);
    let scoped = make_crl_with(&f.ca.issuing, 1, &[], now, now + Duration::days(1), |p| {
        p.issuing_distribution_point =
            Some(crl::IssuingDistributionPoint { uri: other, only_contains_user_certs: true })
    });
    f.server.files.lock().unwrap().insert("nca.crl".into(), scoped);
    let v = f.verify(&f.ca.issuing.certificate_der);
    let reasons = format!("{:?}", v.signers[0].findings);
    assert!(!v.valid && v.has(ca_core::cms::Reason::RevocationUnavailable), "{reasons}");
}

/// The delta CRL a certificate's FreshestCRL names is fetched with the complete CRL: a
/// revocation published only in the delta counts.
#[test]
fn a_revocation_only_in_the_fetched_delta_crl_counts() {
    let f = foreign_ca(52);
    let now = f.clock.now();
    publish_crl(&f.ca.issuing, &f.server, "nca.crl", 1, &[], now, now + Duration::days(1));
    let empty_delta = make_crl_with(&f.ca.issuing, 2, &[], now, now + Duration::hours(1), |p| p.delta_base = Some(1));
    f.server.files.lock().unwrap().insert("nca_d.crl".into(), empty_delta);
    let v = f.verify(&f.ca.issuing.certificate_der);
    assert!(v.valid, "{:?}", v.signers[0].findings);
    assert_eq!(f.server.hits("nca_d.crl"), 1);

    let serial = &f.signer.cert.serial;
    let delta = make_crl_with(&f.ca.issuing, 3, &[serial], now, now + Duration::hours(1), |p| p.delta_base = Some(1));
    f.server.files.lock().unwrap().insert("nca_d.crl".into(), delta);
    let v = f.verify(&f.ca.issuing.certificate_der);
    let reasons = format!("{:?}", v.signers[0].findings);
    assert!(!v.valid && v.has(ca_core::cms::Reason::Revoked), "{reasons}");
}

/// A signature checked at a past validation time against the CRL fetched today: the CRL
/// issued after that time is the evidence, and a revocation after it is reported, not fatal.
#[test]
fn a_past_signature_is_checked_against_todays_fetched_crl() {
    use ca_core::cms::{self, Reason, Requirements};
    let f = foreign_ca(53);
    let signed_at = f.clock.now();
    let chain = [f.ca.issuing.certificate_der.clone()];
    let signature = cms::sign(b"last week", false, &f.signer.key, &f.signer.cert.der, &chain, signed_at).unwrap();
    f.clock.0.store(2 * 86_400, Ordering::Relaxed);
    let now = f.clock.now();
    publish_crl(&f.ca.root, &f.server, "root.crl", 2, &[], now, now + Duration::days(30));
    let serial = &f.signer.cert.serial;
    publish_crl(&f.ca.issuing, &f.server, "nca.crl", 2, &[serial], now, now + Duration::days(1));
    let verifier =
        ca_server::Verifier::new(std::slice::from_ref(&f.ca.root.certificate_der), &chain, Vec::new(), f.clock.clone())
            .unwrap();
    let v = verifier.with_context(None, now, Some(signed_at), Requirements::default(), Default::default(), |ctx| {
        cms::verify(&signature, None, ctx).unwrap()
    });
    let reasons = format!("{:?}", v.signers[0].findings);
    assert!(v.valid && v.has(Reason::RevokedAfterSigning), "{reasons}");
}

/// A new P-256 CA, a SIGN certificate for person `n` issued now, and its attached signature of
/// [`CONTENT`] made a second later.
fn fresh_signature(n: u32) -> (TestCa, Holder, Vec<u8>, OffsetDateTime) {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let now = SystemClock.now();
    let h = issue(&ca, &FixedClock(now), ProfileId::IndividualSign, n, KeyAlgorithm::P256);
    let chain = std::slice::from_ref(&ca.issuing.certificate_der);
    let cms = ca_core::cms::sign(CONTENT, false, &h.key, &h.cert.der, chain, now + Duration::seconds(1)).unwrap();
    (ca, h, cms, now)
}

/// The second verification of a signer reuses its validated path (seen in /metrics), and a
/// revocation between the two is still seen: only path facts are remembered, never status.
#[test]
fn a_remembered_path_does_not_hide_a_later_revocation() {
    let (ca, h, cms, now) = fresh_signature(7);
    let r = start(ca, None);
    let body = json!({ "cms": b64(&cms) });
    let (_, v) = post_json(&r, "/api/v1/cms/verify", &body);
    assert_eq!(v["valid"], true, "{v:#}");
    let (_, v) = post_json(&r, "/api/v1/cms/verify", &body);
    assert_eq!(v["valid"], true, "{v:#}");
    let (_, metrics) = http(r.port, "GET", "/metrics", &[], b"");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(metrics.contains("ca_path_cache_lookups_total{result=\"hit\"} 1"), "{metrics}");
    assert!(metrics.contains("ca_path_cache_entries 1"), "{metrics}");

    revoke(&r.ca.store, &FixedClock(now), &h.cert.serial, RevocationReason::KeyCompromise, None, "t").unwrap();
    let (_, v) = post_json(&r, "/api/v1/cms/verify", &body);
    assert_eq!(v["valid"], false, "{v:#}");
    assert!(reasons(&v).contains(&"Revoked".into()), "{v}");
    let (_, metrics) = http(r.port, "GET", "/metrics", &[], b"");
    assert!(metrics.as_str().unwrap_or_default().contains("ca_path_cache_lookups_total{result=\"hit\"} 2"));
}

/// Login challenges are rows in the store, so anonymous clients get a bounded number: a burst,
/// then 429 with Retry-After and nothing written. Behind a trusted proxy, X-Forwarded-For tells
/// clients apart; from anyone else it is ignored.
#[test]
fn login_challenges_are_rate_limited_per_client() {
    fn challenge(r: &Running, forwarded_for: &str) -> (u16, Value, bool) {
        let mut s = TcpStream::connect(("127.0.0.1", r.port)).unwrap();
        let head = format!(
            "POST /api/v1/auth/challenge HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\
             X-Forwarded-For: {forwarded_for}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let retry_after = text.to_ascii_lowercase().contains("\r\nretry-after: ");
        let start = text.find("\r\n\r\n").map(|p| p + 4).unwrap_or(text.len());
        (status, serde_json::from_str(&text[start..]).unwrap_or(Value::Null), retry_after)
    }
    let slow = ca_server::Rate { per_second: 0.001, burst: 3.0 };
    let wide = ca_server::Rate { per_second: 1000.0, burst: 1000.0 };
    let nonces = |r: &Running| -> i64 {
        rusqlite::Connection::open(r.ca.dir.path().join("ca.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM auth_nonces", [], |row| row.get(0))
            .unwrap()
    };

    // Not behind a trusted proxy: the header is the client's own claim and changes nothing.
    let r = start_with(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None, |s| {
        s.challenge_limiter = ca_server::RateLimiter::new(slow, wide, vec![]);
    });
    for i in 0..3 {
        assert_eq!(challenge(&r, &format!("10.0.0.{i}")).0, 200);
    }
    let (status, body, retry_after) = challenge(&r, "10.0.0.99");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "rate-limited", "{body}");
    assert!(retry_after, "429 says when to come back");
    assert_eq!(nonces(&r), 3, "a refused challenge writes nothing");

    // Behind a trusted proxy (the test client is 127.0.0.1): each forwarded client has its own.
    let r = start_with(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None, |s| {
        s.challenge_limiter = ca_server::RateLimiter::new(slow, wide, vec!["127.0.0.1".parse().unwrap()]);
    });
    for _ in 0..3 {
        assert_eq!(challenge(&r, "198.51.100.7").0, 200);
    }
    assert_eq!(challenge(&r, "198.51.100.7").0, 429);
    assert_eq!(challenge(&r, "198.51.100.8").0, 200, "another client behind the proxy is not held up");
    assert_eq!(nonces(&r), 4);
}

/// A CMS or certificate posted as itself (DER) carries its requirements in the query.
#[test]
fn requirements_in_the_query_for_binary_bodies() {
    let (ca, h, cms, _) = fresh_signature(8);
    let r = start(ca, None);
    let der = [("Content-Type", "application/pkcs7-mime")];
    let post = |path: &str, body: &[u8]| http(r.port, "POST", path, &der, body);

    let (status, v) = post("/api/v1/cms/verify", &cms);
    assert_eq!((status, &v["valid"]), (200, &json!(true)), "{v:#}");
    let iin = v["signers"][0]["certificate"]["identity"]["iin"].as_str().unwrap().to_owned();
    let other_iin = ca_core::identity::Iin::with_check_digit("88010130001").unwrap().to_string();
    assert_ne!(iin, other_iin);

    let (_, v) = post(&format!("/api/v1/cms/verify?key_usage=SIGN&iin={iin}"), &cms);
    assert_eq!(v["valid"], true, "{v:#}");
    let (_, v) = post("/api/v1/cms/verify?key_usage=AUTH", &cms);
    assert!(v["valid"] == false && reasons(&v) == ["WrongKeyType"], "{v:#}");
    let (_, v) = post(&format!("/api/v1/cms/verify?iin={other_iin}"), &cms);
    assert!(v["valid"] == false && reasons(&v) == ["WrongPerson"], "{v:#}");
    let (_, v) = post("/api/v1/cms/verify?roles=first-head", &cms);
    assert!(v["valid"] == false && reasons(&v).contains(&"MissingRole".into()), "{v:#}");
    let (_, v) = post("/api/v1/x509/verify?key_usage=AUTH", &h.cert.der);
    assert!(v["valid"] == false && reasons(&v) == ["WrongKeyType"], "{v:#}");

    // Wrong queries are refused, never ignored.
    for query in [
        "colour=red",
        "key_usage=ENCRYPT",
        "iin=123",
        "validation_time=yesterday",
        "revocation=sometimes",
        "max_path_length=-1",
        "initial_policy_set=x",
    ] {
        let (status, v) = post(&format!("/api/v1/cms/verify?{query}"), &cms);
        assert_eq!(status, 400, "{query}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| e.starts_with("malformed")), "{query}: {v}");
    }
    // Requirements in the query and in the JSON body at once: ambiguous, refused.
    let (status, v) = http(
        r.port,
        "POST",
        "/api/v1/cms/verify?key_usage=AUTH",
        &[("Content-Type", "application/json")],
        json!({ "cms": b64(&cms), "requirements": { "key_usage": "SIGN" } }).to_string().as_bytes(),
    );
    assert_eq!(status, 400, "{v}");
    let (_, openapi) = http(r.port, "GET", "/api/v1/openapi.json", &[], b"");
    for path in ["/api/v1/cms/verify", "/api/v1/x509/verify"] {
        // The requirements and the validation time (5), and the path validation inputs (8).
        assert_eq!(openapi["paths"][path]["post"]["parameters"].as_array().map(Vec::len), Some(13), "{path}");
    }
    assert_eq!(openapi["components"]["parameters"]["key_usage"]["in"], "query");
    // The query alone also applies to a JSON body without requirements.
    let (_, v) = http(
        r.port,
        "POST",
        "/api/v1/cms/verify?key_usage=AUTH",
        &[("Content-Type", "application/json")],
        json!({ "cms": b64(&cms) }).to_string().as_bytes(),
    );
    assert!(reasons(&v) == ["WrongKeyType"], "{v:#}");
}
