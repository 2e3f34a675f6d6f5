//! `ca-signer` driven by a WebSocket test client as a portal page drives the national signing
//! client: keys from PKCS#12 files and a SoftHSM token; the CMS checked by `openssl cms
//! -verify` and by our `/api/v1/cms/verify` (AUTH vs SIGN as asked), the XML by xmlsec1; a
//! foreign origin refused; a refused confirmation answers the cancel code and signs nothing.

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::issuer::{IssuanceRequest, IssuedCertificate};
use ca_core::profile::ProfileId;
use ca_core::signer::{SignatureAlgorithm, Signer, SignerError};
use ca_signer::keys::{self, KeyEntry};
use ca_signer::{Confirmer, Policy, Service};
use ca_tests::{openssl, write_pem, xmlsec1};
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use serde_json::{json, Value};
use spki::SubjectPublicKeyInfoOwned;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use zeroize::Zeroizing;

const ORIGIN: &str = "https://portal.test.kz";
const MODULE: &str = "kz.gov.pki.knca.commonUtils";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn issue(ca: &TestCa, profile: ProfileId, public_key: SubjectPublicKeyInfoOwned) -> IssuedCertificate {
    let request = IssuanceRequest { profile, subject: individual(5), roles: vec![], public_key };
    ca.issuer(&FixedClock(SystemClock.now())).issue(&request).unwrap()
}

/// ca-signer with `keys` on a free loopback port.
fn signer(keys: Vec<KeyEntry>, confirmer: Arc<dyn Confirmer>) -> (u16, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let service = Arc::new(Service::new(keys, confirmer, Arc::new(SystemClock)));
    runtime.spawn(ca_signer::server::serve(listener, ca_signer::server::router(service, vec![ORIGIN.into()])));
    (port, runtime)
}

/// ca-server verifying for this CA.
fn verifier(ca: &TestCa) -> (u16, tokio::runtime::Runtime) {
    let (root, issuing) = (&ca.root.certificate_der, &ca.issuing.certificate_der);
    let services = ca_tests::verifying_services(ca.dir.path(), root, issuing, Arc::new(SystemClock));
    ca_tests::serve_on(Arc::new(services), 1)
}

type Client = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(port: u16, origin: &str) -> Result<Client, tungstenite::Error> {
    let mut request = format!("ws://127.0.0.1:{port}/").into_client_request().unwrap();
    request.headers_mut().insert("Origin", origin.parse().unwrap());
    let (mut ws, _) = tungstenite::connect(request)?;
    let greeting: Value = serde_json::from_str(&ws.read().unwrap().into_text().unwrap()).unwrap();
    assert!(greeting["result"]["version"].is_string(), "{greeting}");
    Ok(ws)
}

fn call(ws: &mut Client, method: &str, args: Value) -> Value {
    let request = json!({ "module": MODULE, "method": method, "args": args });
    ws.send(Message::Text(request.to_string().into())).unwrap();
    serde_json::from_str(&ws.read().unwrap().into_text().unwrap()).unwrap()
}

fn cms_verify(port: u16, cms: &str, data: Option<&[u8]>, key_usage: &str) -> Value {
    let mut body = json!({ "cms": cms, "requirements": { "key_usage": key_usage } });
    if let Some(data) = data {
        body["data"] = json!(b64(data));
    }
    let (status, answer) = ca_tests::http(
        port,
        "POST",
        "/api/v1/cms/verify",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200);
    serde_json::from_slice(&answer).unwrap()
}

fn openssl_verifies(ca: &TestCa, cms: &[u8], content: &[u8], detached: bool) {
    let dir = ca.dir.path();
    let root = write_pem(dir, "root.pem", "CERTIFICATE", &ca.root.certificate_der);
    let (file, data, out) = (dir.join("signer.cms"), dir.join("signer.data"), dir.join("signer.out"));
    std::fs::write(&file, cms).unwrap();
    std::fs::write(&data, content).unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    let (file, data_s, out_s, root) = (p(&file), p(&data), p(&out), p(&root));
    let mut args = vec!["cms", "-verify", "-binary", "-inform", "DER", "-in", &file, "-CAfile", &root, "-out", &out_s];
    // An AUTH certificate is not an S/MIME signing certificate: the chain is what is checked here.
    args.extend(["-purpose", "any"]);
    if detached {
        args.extend(["-content", data_s.as_str()]);
    }
    let result = openssl(&args);
    assert!(result.status.success(), "openssl cms -verify: {}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(std::fs::read(out).unwrap(), content);
}

fn xmlsec1_verifies(ca: &TestCa, xml: &str) {
    let dir = ca.dir.path();
    let root = write_pem(dir, "root.pem", "CERTIFICATE", &ca.root.certificate_der);
    let issuing = write_pem(dir, "issuing.pem", "CERTIFICATE", &ca.issuing.certificate_der);
    let file = dir.join("signer.xml");
    std::fs::write(&file, xml).unwrap();
    let (root, issuing, file) = (root.to_str().unwrap(), issuing.to_str().unwrap(), file.to_str().unwrap());
    let result = xmlsec1(&["--verify", "--trusted-pem", root, "--untrusted-pem", issuing, file]);
    assert!(result.status.success(), "xmlsec1 --verify: {}", String::from_utf8_lossy(&result.stderr));
}

/// The national key stores: AUTH (RSA) and SIGN (P-256) PKCS#12 files, loaded by ca-signer.
fn pkcs12_keys(ca: &TestCa) -> Vec<KeyEntry> {
    let mut out = Vec::new();
    for (profile, alg, name) in [
        (ProfileId::IndividualAuth, KeyAlgorithm::Rsa2048, "AUTH_RSA256_test.p12"),
        (ProfileId::IndividualSign, KeyAlgorithm::P256, "ECDSA256_test.p12"),
    ] {
        let key = SoftwareKey::generate(alg).unwrap();
        let cert = issue(ca, profile, key.public_key().clone());
        let chain = [ca.issuing.certificate_der.clone()];
        let p12 = hsm::build_pkcs12(&key, &cert.der, &chain, "Qwerty12", name).unwrap();
        let path = ca.dir.path().join(name);
        std::fs::write(&path, p12).unwrap();
        out.push(keys::from_pkcs12(&path, &Zeroizing::new("Qwerty12".to_string())).unwrap());
    }
    let wrong = Zeroizing::new("wrong password".to_string());
    assert!(keys::from_pkcs12(&ca.dir.path().join("AUTH_RSA256_test.p12"), &wrong).is_err());
    out
}

/// The signing requests of a portal page, checked by the three oracles.
fn sign_everything(ca: &TestCa, ws: &mut Client, storage: &str, verify_port: u16) {
    let content = "{\"request\":\"bind phone +77010000000\"}".as_bytes();
    for (key_type, usage, other) in [("SIGNATURE", "SIGN", "AUTH"), ("AUTHENTICATION", "AUTH", "SIGN")] {
        for attached in [true, false] {
            let v = call(ws, "createCAdESFromBase64", json!([storage, key_type, b64(content), attached]));
            assert_eq!(v["code"], "200", "{v}");
            let cms_b64 = v["responseObject"].as_str().unwrap();
            let cms = base64::engine::general_purpose::STANDARD.decode(cms_b64).unwrap();
            openssl_verifies(ca, &cms, content, !attached);
            let data = (!attached).then_some(content);
            let r = cms_verify(verify_port, cms_b64, data, usage);
            assert_eq!(r["valid"], true, "{key_type} attached={attached}: {r:#}");
            assert_eq!(r["signers"][0]["certificate"]["identity"]["key_type"], usage);
            let r = cms_verify(verify_port, cms_b64, data, other);
            assert!(r["reasons"].as_array().unwrap().contains(&json!("WrongKeyType")), "{r}");
        }
    }
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?><login><nonce>bm9uY2U=</nonce></login>"#;
    let v = call(ws, "signXml", json!([storage, "AUTHENTICATION", xml, "", ""]));
    assert_eq!(v["code"], "200", "{v}");
    xmlsec1_verifies(ca, v["responseObject"].as_str().unwrap());
}

#[test]
fn pkcs12_keys_sign_cms_and_xml_for_a_portal_page() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let keys = pkcs12_keys(&ca);
    let (port, _signer) = signer(keys, Arc::new(Policy::Accept));
    let (verify_port, _server) = verifier(&ca);
    let mut ws = connect(port, ORIGIN).unwrap();

    let v = call(&mut ws, "getActiveTokens", json!([]));
    assert_eq!(v, json!({ "code": "200", "responseObject": ["PKCS12"] }));
    let v = call(&mut ws, "getKeyInfo", json!(["PKCS12"]));
    assert_eq!(v["code"], "200", "{v}");
    assert_eq!(v["responseObject"]["keyType"], "AUTHENTICATION");
    assert_eq!(v["responseObject"]["iin"], individual(5).iin().unwrap().to_string());
    assert!(v["responseObject"]["pem"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    sign_everything(&ca, &mut ws, "PKCS12", verify_port);

    // The protocol's refusals.
    for (method, args, message) in [
        ("getKeyInfo", json!(["AKKaztokenStore"]), "storage.unknown"),
        ("createCAdESFromBase64", json!(["PKCS12", "SIGNATURE", "not base64!", true]), "args.invalid"),
        ("createCAdESFromBase64", json!(["PKCS12", "OTHER", "", true]), "args.invalid"),
        ("signXml", json!(["PKCS12", "SIGNATURE", "<a/>", "/a/b", ""]), "args.invalid"),
        (
            "signXml",
            json!(["PKCS12", "SIGNATURE", "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>", "", ""]),
            "args.invalid",
        ),
        ("shutdown", json!([]), "module.method.not.found"),
    ] {
        let v = call(&mut ws, method, args);
        assert_eq!(v, json!({ "code": "500", "message": message }), "{method}");
    }
}

/// A signer that counts its signatures.
struct Counting(SoftwareKey, Arc<AtomicUsize>);

impl Signer for Counting {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.0.algorithm()
    }
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        self.0.public_key()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.sign(message)
    }
}

#[test]
fn a_foreign_origin_is_refused_and_a_refused_confirmation_signs_nothing() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let cert = issue(&ca, ProfileId::IndividualSign, key.public_key().clone());
    let count = Arc::new(AtomicUsize::new(0));
    let signer_key = Arc::new(Counting(key, count.clone()));
    let entry = KeyEntry::new("PKCS12", signer_key, cert.der, vec![]).unwrap();
    let (port, _signer) = signer(vec![entry], Arc::new(Policy::Refuse));

    match connect(port, "https://evil.example") {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        Err(other) => panic!("expected 403, got {other}"),
        Ok(_) => panic!("a foreign origin was accepted"),
    }
    assert!(matches!(connect(port, ""), Err(tungstenite::Error::Http(_))), "no origin is no allowed origin");

    let mut ws = connect(port, ORIGIN).unwrap();
    let v = call(&mut ws, "createCAdESFromBase64", json!(["PKCS12", "SIGNATURE", b64(b"pay"), true]));
    assert_eq!(v, json!({ "code": "500", "message": "action.canceled" }));
    let v = call(&mut ws, "signXml", json!(["PKCS12", "SIGNATURE", "<a/>", "", ""]));
    assert_eq!(v, json!({ "code": "500", "message": "action.canceled" }));
    assert_eq!(count.load(Ordering::SeqCst), 0, "nothing was signed");
    // No AUTH key in this storage.
    let v = call(&mut ws, "createCAdESFromBase64", json!(["PKCS12", "AUTHENTICATION", b64(b"pay"), true]));
    assert_eq!(v, json!({ "code": "500", "message": "storage.empty" }));
}

#[test]
fn keys_on_a_softhsm_token_sign_like_an_id_card() {
    use hsm::pkcs11::{CertificateCategory, Pkcs11Module, SecretPin, TokenSelector};
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let conf = ca_tests::softhsm_tokens(ca.dir.path(), &["id-card"], "1234");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let pin = || SecretPin::new(Zeroizing::new("1234".to_string()));
    {
        let module = Pkcs11Module::load(ca_tests::SOFTHSM_MODULE).unwrap();
        let token = module.open_token(&TokenSelector::Label("id-card".into())).unwrap();
        token.login(&pin()).unwrap();
        for (profile, alg) in
            [(ProfileId::IndividualAuth, KeyAlgorithm::Rsa2048), (ProfileId::IndividualSign, KeyAlgorithm::P256)]
        {
            let key = token.generate_key_pair(alg, &format!("{profile:?}")).unwrap();
            let cert = issue(&ca, profile, key.public_key().clone());
            token.write_certificate(&cert.der, &format!("{profile:?}"), CertificateCategory::TokenUser).unwrap();
        }
        token.write_certificate(&ca.issuing.certificate_der, "NCA", CertificateCategory::Authority).unwrap();
    }
    let entries = keys::from_token(Path::new(ca_tests::SOFTHSM_MODULE), "id-card", &pin(), "AKKaztokenStore").unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.chain == vec![ca.issuing.certificate_der.clone()]));
    let (port, _signer) = signer(entries, Arc::new(Policy::Accept));
    let (verify_port, _server) = verifier(&ca);
    let mut ws = connect(port, ORIGIN).unwrap();
    let v = call(&mut ws, "getActiveTokens", json!([]));
    assert_eq!(v["responseObject"], json!(["AKKaztokenStore"]));
    sign_everything(&ca, &mut ws, "AKKaztokenStore", verify_port);
}
