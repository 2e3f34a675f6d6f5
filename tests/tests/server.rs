//! `ca-server` over HTTP. The OCSP responder, checked with the real `openssl ocsp`: good, revoked
//! (time and reason), never issued (revoked/certificateHold at the epoch), nonce, signature
//! verification, and bad requests answered with OCSP error statuses while the server keeps
//! serving. The certificate information API, metrics and the OpenAPI description.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use ca_core::clock::{Clock, SystemClock};
use ca_core::issuer::IssuanceRequest;
use ca_core::ocsp::Responder;
use ca_core::profile::ProfileId;
use ca_core::revocation::{revoke, RevocationReason};
use ca_core::signer::Signer;
use ca_core::store::SqliteStore;
use ca_tests::{openssl, write_pem};
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};

struct Running {
    ca: TestCa,
    store: Arc<SqliteStore>,
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

fn start(responder_key: KeyAlgorithm) -> Running {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let (key, cert) = ca.ocsp_responder(responder_key);
    // The server gets its own connection to the same database file, as in production.
    let store = Arc::new(SqliteStore::open(&ca.dir.path().join("ca.db")).unwrap());
    let responder = Responder::new(
        "nca",
        &ca.issuing.certificate_der,
        &cert.der,
        Arc::new(key),
        store.clone(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let services = Arc::new(ca_server::Services::new(
        Some(Arc::new(responder)),
        Some(store.clone() as Arc<dyn ca_core::store::Store>),
        "nca",
        ca.dir.path().join("crl"),
        ca.dir.path().join("certs"),
    ));
    let (port, runtime) = ca_tests::serve(services);
    let dir = ca.dir.path();
    write_pem(dir, "issuing.pem", "CERTIFICATE", &ca.issuing.certificate_der);
    let mut chain =
        std::fs::read_to_string(write_pem(dir, "root.pem", "CERTIFICATE", &ca.root.certificate_der)).unwrap();
    chain.push_str(&std::fs::read_to_string(dir.join("issuing.pem")).unwrap());
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    Running { ca, store, port, _runtime: runtime }
}

fn leaf(r: &Running, n: u32) -> (ca_core::serial::SerialNumber, std::path::PathBuf) {
    let clock = SystemClock;
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let cert =
        r.ca.issuer(&clock)
            .issue(&IssuanceRequest {
                profile: ProfileId::IndividualSign,
                subject: individual(n),
                roles: vec![],
                public_key: key.public_key().clone(),
            })
            .unwrap();
    let path = write_pem(r.ca.dir.path(), &format!("leaf{n}.pem"), "CERTIFICATE", &cert.der);
    (cert.serial, path)
}

fn ocsp(r: &Running, target: &[&str], extra: &[&str]) -> (bool, String) {
    let dir = r.ca.dir.path();
    let url = format!("http://127.0.0.1:{}/ocsp", r.port);
    let issuer = dir.join("issuing.pem");
    let chain = dir.join("chain.pem");
    let mut args = vec!["ocsp", "-issuer", issuer.to_str().unwrap(), "-url", &url, "-CAfile", chain.to_str().unwrap()];
    args.extend_from_slice(target);
    args.extend_from_slice(extra);
    let out = openssl(&args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn post(port: u16, body: &[u8]) -> (u16, Vec<u8>) {
    ca_tests::http(port, "POST", "/ocsp", &[("Content-Type", "application/ocsp-request")], body)
}

/// The OCSPResponse's responseStatus: SEQUENCE { ENUMERATED status, ... }.
fn response_status(der: &[u8]) -> u8 {
    assert!(der.len() >= 5 && der[0] == 0x30, "not an OCSPResponse: {der:02x?}");
    let at = if der[1] & 0x80 == 0 { 2 } else { 2 + (der[1] & 0x7f) as usize };
    assert_eq!(der[at], 0x0a, "ENUMERATED expected");
    der[at + 2]
}

#[test]
fn openssl_sees_good_revoked_and_never_issued_with_a_verified_signature() {
    for responder_key in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256] {
        let r = start(responder_key);
        let (_, good) = leaf(&r, 1);
        let (revoked_serial, revoked) = leaf(&r, 2);

        let (ok, text) = ocsp(&r, &["-cert", good.to_str().unwrap()], &[]);
        assert!(ok, "{text}");
        assert!(text.contains("Response verify OK"), "{text}");
        assert!(text.contains(&format!("{}: good", good.display())), "{text}");

        // Revocation is visible the moment it commits: no CRL, no restart.
        revoke(r.store.as_ref(), &SystemClock, &revoked_serial, RevocationReason::KeyCompromise, None, "test").unwrap();
        let (ok, text) = ocsp(&r, &["-cert", revoked.to_str().unwrap()], &[]);
        assert!(ok, "{text}");
        assert!(text.contains(&format!("{}: revoked", revoked.display())), "{text}");
        assert!(text.contains("Reason: keyCompromise"), "{text}");
        assert!(text.contains("Revocation Time:"), "{text}");

        // A serial this CA never issued: revoked, certificateHold, 1970, extended revoke.
        let (ok, text) = ocsp(&r, &["-serial", "0x1234567890"], &["-resp_text"]);
        assert!(ok, "{text}");
        assert!(text.contains(": revoked"), "{text}");
        assert!(text.contains("Reason: certificateHold"), "{text}");
        assert!(text.contains("Jan  1 00:00:00 1970 GMT"), "{text}");
        // OpenSSL's object table names id-pkix-ocsp 9 (extended revoke) "valid".
        assert!(text.contains("Response Extensions") && text.contains("valid:"), "{text}");

        // The nonce is echoed (openssl checks it and complains if it is missing).
        let (ok, text) = ocsp(&r, &["-cert", good.to_str().unwrap()], &["-resp_text"]);
        assert!(ok && text.contains("OCSP Nonce"), "{text}");
        assert!(!text.contains("WARNING: no nonce in response"), "{text}");
        // SHA-256 CertIDs are answered too.
        let (ok, text) = ocsp(&r, &["-sha256", "-cert", good.to_str().unwrap()], &[]);
        assert!(ok && text.contains(": good"), "{text}");
    }
}

#[test]
fn bad_requests_get_ocsp_error_statuses_and_the_server_keeps_serving() {
    let r = start(KeyAlgorithm::P256);
    let (_, good) = leaf(&r, 3);
    // Garbage, truncated, empty: malformedRequest (1), HTTP 200 as RFC 6960 wants.
    for body in [&b"garbage"[..], &[0x30, 0x82, 0x01][..], &[][..]] {
        let (status, der) = post(r.port, body);
        assert_eq!(status, 200);
        assert_eq!(response_status(&der), 1, "malformedRequest for {body:02x?}");
    }
    // Truncate a real request made by openssl.
    let req = r.ca.dir.path().join("req.der");
    let out = openssl(&[
        "ocsp",
        "-issuer",
        r.ca.dir.path().join("issuing.pem").to_str().unwrap(),
        "-cert",
        good.to_str().unwrap(),
        "-reqout",
        req.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let request = std::fs::read(&req).unwrap();
    let (_, der) = post(r.port, &request[..request.len() - 5]);
    assert_eq!(response_status(&der), 1);
    // Oversized: malformedRequest without reading it all.
    let (status, der) = post(r.port, &vec![0x30; 64 * 1024]);
    assert_eq!(status, 200);
    assert_eq!(response_status(&der), 1);

    // A certificate of another CA: unauthorized (6).
    let other = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let foreign_issuer = write_pem(other.dir.path(), "issuing.pem", "CERTIFICATE", &other.issuing.certificate_der);
    let out = openssl(&[
        "ocsp",
        "-issuer",
        foreign_issuer.to_str().unwrap(),
        "-serial",
        "0x42",
        "-reqout",
        req.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let (_, der) = post(r.port, &std::fs::read(&req).unwrap());
    assert_eq!(response_status(&der), 6, "unauthorized");

    // GET with base64 works, and the server still answers correctly after all of the above.
    let b64 = {
        use std::process::Command;
        let o = Command::new("openssl").args(["base64", "-A", "-in", req.to_str().unwrap()]).output().unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    let mut s = TcpStream::connect(("127.0.0.1", r.port)).unwrap();
    write!(s, "GET /ocsp/{b64} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    let (ok, text) = ocsp(&r, &["-cert", good.to_str().unwrap()], &[]);
    assert!(ok && text.contains(": good"), "{text}");
    let _ = SystemClock.now();
}

fn request(port: u16, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let (status, _, body) = exchange(port, method, path, content_type, body);
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn certificate_info_metrics_and_openapi() {
    let r = start(KeyAlgorithm::P256);
    let (serial, leaf) = leaf(&r, 5);
    let pem = std::fs::read_to_string(&leaf).unwrap();

    let body = serde_json::json!({ "certificate": pem }).to_string();
    let (status, text) = request(r.port, "POST", "/api/v1/x509/info", "application/json", body.as_bytes());
    assert_eq!(status, 200, "{text}");
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(info["serial"], serial.to_hex());
    assert_eq!(info["subject"]["iin"], fixtures::person(5).iin.to_string());
    assert_eq!(info["key_usage"], "SIGN");
    assert_eq!(info["roles"], serde_json::json!(["individual"]));
    assert_eq!(info["issued_by_this_ca"], true);
    assert_eq!(info["status"]["status"], "good");
    assert_eq!(info["valid_now"], true);
    assert!(info["policies"].as_array().unwrap().iter().any(|p| p == "1.2.398.3.3.2.3"));

    revoke(r.store.as_ref(), &SystemClock, &serial, RevocationReason::Superseded, None, "test").unwrap();
    let der = std::process::Command::new("openssl")
        .args(["x509", "-in", leaf.to_str().unwrap(), "-outform", "DER"])
        .output()
        .unwrap()
        .stdout;
    let (status, text) = request(r.port, "POST", "/api/v1/x509/info", "application/pkix-cert", &der);
    assert_eq!(status, 200, "{text}");
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(info["status"]["status"], "revoked");
    assert_eq!(info["status"]["reason"], "superseded");

    // Garbage, truncated, wrong JSON and oversized bodies: 4xx with a JSON error.
    for (ct, body) in [
        ("application/json", b"{not json".to_vec()),
        ("application/json", br#"{"certificate": "AAAA"}"#.to_vec()),
        ("application/pkix-cert", der[..der.len() / 2].to_vec()),
        ("application/octet-stream", b"garbage".to_vec()),
    ] {
        let (status, text) = request(r.port, "POST", "/api/v1/x509/info", ct, &body);
        assert_eq!(status, 400, "{text}");
        let err: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(err["error"].is_string() && err["message"].is_string(), "{text}");
    }
    let (status, _) = request(r.port, "POST", "/api/v1/x509/info", "application/json", &vec![b' '; 2 * 1024 * 1024]);
    assert_eq!(status, 413);

    // Still serving; metrics count what happened; the OpenAPI document describes the API.
    let (status, text) = request(r.port, "GET", "/metrics", "text/plain", b"");
    assert_eq!(status, 200);
    assert!(text.contains("ca_http_requests_total{route=\"/api/v1/x509/info\",status=\"200\"} 2"), "{text}");
    assert!(text.contains("ca_http_requests_total{route=\"/api/v1/x509/info\",status=\"400\"} 4"), "{text}");
    let (status, text) = request(r.port, "GET", "/api/v1/openapi.json", "application/json", b"");
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc["paths"]["/api/v1/x509/info"]["post"].is_object());
    let (status, _) = request(r.port, "GET", "/healthz", "text/plain", b"");
    assert_eq!(status, 200);
}

/// Status, headers (lower-cased names) and body of one request.
fn exchange(port: u16, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let (status, head, body) = ca_tests::http_with_head(port, method, path, &[("Content-Type", content_type)], body);
    (status, head.to_lowercase(), body)
}

fn json_error(status: u16, head: &str, body: &[u8]) -> serde_json::Value {
    assert!(head.contains("content-type: application/json"), "{status}: {head}");
    let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
    assert!(value["error"].is_string() && value["message"].as_str().is_some_and(|m| !m.is_empty()), "{value}");
    value
}

#[test]
fn errors_outside_the_api_are_json_and_ocsp_without_a_responder_says_try_later() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let store = Arc::new(SqliteStore::open(&ca.dir.path().join("ca.db")).unwrap());
    let services = ca_server::Services::new(
        None,
        Some(store as Arc<dyn ca_core::store::Store>),
        "nca",
        ca.dir.path().join("crl"),
        ca.dir.path().join("certs"),
    );
    let (port, _runtime) = ca_tests::serve(Arc::new(services));

    // No responder: an OCSPResponse with tryLater (3), not an HTTP error page.
    let (status, der) = post(port, b"\x30\x00");
    assert_eq!(status, 200);
    assert_eq!(response_status(&der), 3, "tryLater");
    // GET without a request in the path: malformedRequest (1).
    let (status, head, der) = exchange(port, "GET", "/ocsp", "text/plain", b"");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: application/ocsp-response"), "{head}");
    assert_eq!(response_status(&der), 1);

    let (status, head, body) = exchange(port, "PUT", "/ocsp", "application/ocsp-request", b"x");
    assert_eq!(status, 405);
    assert!(head.contains("allow: "), "{head}");
    assert_eq!(json_error(status, &head, &body)["error"], "method-not-allowed");
    for path in ["/crl/nca.crl", "/crl/..%2Fca.db", "/ca/missing.pem", "/nothing/here", "/crl/"] {
        let (status, head, body) = exchange(port, "GET", path, "text/plain", b"");
        assert_eq!(status, 404, "{path}");
        assert_eq!(json_error(status, &head, &body)["error"], "not-found", "{path}");
    }

    // /cps, in every certificate's policies: the built-in notice names the CA.
    let (status, head, body) = exchange(port, "GET", "/cps", "text/plain", b"");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/plain"), "{head}");
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("nca") && text.contains("1.2.398.3.3.2.1"), "{text}");
}

#[test]
fn ca_certificate_media_types_empty_fields_and_400s_match_the_openapi_description() {
    let r = start(KeyAlgorithm::P256);
    let certs = r.ca.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    write_pem(&certs, "nca.pem", "CERTIFICATE", &r.ca.issuing.certificate_der);
    std::fs::write(certs.join("nca.cer"), &r.ca.issuing.certificate_der).unwrap();
    let (_, _, doc) = exchange(r.port, "GET", "/api/v1/openapi.json", "application/json", b"");
    let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    let documented = &doc["paths"]["/ca/{file}"]["get"]["responses"]["200"]["content"];
    for (file, media_type) in [("nca.pem", "application/x-pem-file"), ("nca.cer", "application/pkix-cert")] {
        let (status, head, _) = exchange(r.port, "GET", &format!("/ca/{file}"), "text/plain", b"");
        assert_eq!(status, 200, "{file}");
        assert!(head.contains(&format!("content-type: {media_type}")), "{file}: {head}");
        assert!(documented[media_type].is_object(), "{media_type} not documented: {documented}");
    }
    assert!(doc["paths"]["/cps"]["get"].is_object());
    // Empty base64 fields are not valid requests, and every POST documents its 400.
    for (path, field) in [
        ("/api/v1/cms/verify", "cms"),
        ("/api/v1/auth/login", "cms"),
        ("/api/v1/x509/info", "certificate"),
        ("/api/v1/x509/verify", "certificate"),
    ] {
        let schema = &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(schema["properties"][field]["minLength"], 1, "{path}");
    }
    // (verify_api.rs sends the empty values to the endpoints that need a verifier.)
    let (status, head, text) =
        exchange(r.port, "POST", "/api/v1/x509/info", "application/json", br#"{"certificate": ""}"#);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&text));
    json_error(status, &head, &text);
    for (path, item) in doc["paths"].as_object().unwrap() {
        // (/ocsp answers every request body with an OCSPResponse, never 400.)
        if let Some(post) = item.get("post").filter(|_| path.starts_with("/api/")) {
            if post.get("requestBody").is_some() {
                assert!(post["responses"]["400"].is_object(), "{path} does not document its 400");
            }
        }
    }
}

#[test]
fn certificate_info_names_first_name_and_patronymic_and_reads_annotated_pem() {
    let r = start(KeyAlgorithm::P256);
    let (_, leaf) = leaf(&r, 1);
    let pem = std::fs::read_to_string(&leaf).unwrap();
    // What `openssl pkcs12 -nokeys` writes before each certificate.
    let annotated =
        format!("Bag Attributes\n    localKeyID: 01 02\n    friendlyName: x\nsubject=CN = X\nissuer=CN = Y\n{pem}");
    let body = serde_json::json!({ "certificate": annotated }).to_string();
    let (status, text) = request(r.port, "POST", "/api/v1/x509/info", "application/json", body.as_bytes());
    assert_eq!(status, 200, "{text}");
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    let person = fixtures::person(1);
    let subject = &info["subject"];
    assert_eq!(subject["surname"], person.surname.to_uppercase());
    assert_eq!(subject["first_name"], person.given_name.to_uppercase());
    assert_eq!(subject["patronymic"], person.patronymic.unwrap().to_uppercase());
    assert!(subject.get("given_name").is_none() && subject.get("organization").is_none(), "{subject}");
    assert!(subject.as_object().unwrap().contains_key("organisation"), "{subject}");
    let kinds: Vec<&str> =
        subject["attributes"].as_array().unwrap().iter().map(|a| a["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["CN", "SN", "SERIALNUMBER", "C", "G"]);
}
