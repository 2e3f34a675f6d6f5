//! The CA's own time-stamping authority over HTTP (`POST /tsa`, RFC 3161) against the real
//! OpenSSL: `openssl ts -query` requests (SHA-256/384/512, with and without nonce and certReq)
//! are stamped and `openssl ts -verify` accepts the replies; bad requests get the failInfo RFC
//! 3161 prescribes; a signature made by `openssl cms -sign` and stamped by our TSA passes the
//! CAdES-T path of `/api/v1/cms/verify`; a TSA key on a PKCS#11 token (SoftHSM) stamps too.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::cms::{self, Digest};
use ca_core::identity::Subject;
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use ca_core::tsa::client::{self, RequestOptions};
use ca_core::tsa::{FailureInfo, PkiStatus, TimeStampAuthority, TimeStampResp, TsaSettings};
use ca_tests::{openssl, openssl_ok, write_pem};
use common::{b64, issue, openssl_sign, post_json, Running};
use der::Decode;
use fixtures::TestCa;
use hsm::{KeyAlgorithm, SoftwareKey};
use serde_json::json;

const QUERY: &str = "application/timestamp-query";

/// A TSA certificate of `ca` for `key`.
fn tsa_certificate(ca: &TestCa, key: &dyn Signer) -> Vec<u8> {
    ca.issuer(&FixedClock(SystemClock.now()))
        .issue(&IssuanceRequest {
            profile: ProfileId::TimeStamping,
            subject: Subject::Service { common_name: "TIME-STAMPING AUTHORITY".into(), organisation: None },
            roles: vec![],
            public_key: key.public_key().clone(),
        })
        .unwrap()
        .der
}

/// A server over a test CA whose TSA signs with `key`; `tsa.pem` and `chain.pem` (root and
/// issuing CA) are written into the CA directory for `openssl ts -verify`.
fn start_tsa(ca: TestCa, key: Arc<dyn Signer>) -> Running {
    let certificate = tsa_certificate(&ca, key.as_ref());
    let d = ca.dir.path();
    write_pem(d, "tsa.pem", "CERTIFICATE", &certificate);
    let chain = [&ca.root.certificate_der, &ca.issuing.certificate_der]
        .map(|der| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap())
        .concat();
    std::fs::write(d.join("chain.pem"), chain).unwrap();
    let tsa = TimeStampAuthority::new(&certificate, key, Arc::new(SystemClock), TsaSettings::default()).unwrap();
    common::start_with(ca, None, |services| services.tsa.set(Some(Arc::new(tsa))))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stamp(r: &Running, query: &[u8]) -> Vec<u8> {
    let (status, reply) = ca_tests::http(r.port, "POST", "/tsa", &[("Content-Type", QUERY)], query);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    reply
}

/// `openssl ts -query` over `data` with `args`; the query file.
fn openssl_query(dir: &Path, name: &str, data: &Path, args: &[&str]) -> PathBuf {
    let query = dir.join(format!("{name}.tsq"));
    let mut all = vec!["ts", "-query", "-data", p(data), "-out", p(&query)];
    all.extend(args);
    openssl_ok(&all);
    query
}

fn status_of(reply: &[u8]) -> (PkiStatus, Vec<FailureInfo>) {
    let response = TimeStampResp::from_der(reply).unwrap();
    let fail = response.status.fail_info.as_ref().map(FailureInfo::from_bit_string).unwrap_or_default();
    (response.status.status, fail)
}

#[test]
fn openssl_queries_are_stamped_and_openssl_ts_verify_accepts_the_replies() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let r = start_tsa(ca, Arc::new(SoftwareKey::generate(KeyAlgorithm::P256).unwrap()));
    let d = r.ca.dir.path().to_owned();
    let data = d.join("document.json");
    std::fs::write(&data, b"{\"document\":\"birth certificate\",\"iin\":\"880101300016\"}").unwrap();
    let (chain, tsa) = (d.join("chain.pem"), d.join("tsa.pem"));
    let mut serials = Vec::new();
    for hash in ["-sha256", "-sha384", "-sha512"] {
        for (nonce, cert) in [(true, true), (true, false), (false, true), (false, false)] {
            let name = format!("q{hash}{nonce}{cert}");
            let mut args = vec![hash];
            args.extend((!nonce).then_some("-no_nonce"));
            args.extend(cert.then_some("-cert"));
            let query = openssl_query(&d, &name, &data, &args);
            let reply_path = d.join(format!("{name}.tsr"));
            std::fs::write(&reply_path, stamp(&r, &std::fs::read(&query).unwrap())).unwrap();
            let text = openssl_ok(&["ts", "-reply", "-in", p(&reply_path), "-text"]);
            assert!(text.contains("Status: Granted."), "{text}");
            assert!(text.contains(&format!("Policy OID: {}", ca_core::tsa::DEFAULT_POLICY)), "{text}");
            assert!(text.contains("Ordering: no"), "{text}");
            assert!(text.contains("Accuracy: 0x01 seconds"), "{text}");
            assert!(text.contains("TSA: DirName:") && text.contains("TIME-STAMPING AUTHORITY"), "{text}");
            assert_eq!(text.contains("Nonce: unspecified"), !nonce, "{text}");
            serials.push(text.lines().find(|l| l.starts_with("Serial number:")).unwrap().to_owned());
            // The token carries the TSA certificate only when asked.
            openssl_ok(&["ts", "-reply", "-in", p(&reply_path), "-token_out", "-out", p(&d.join("t.der"))]);
            let printed = openssl_ok(&["pkcs7", "-inform", "DER", "-in", p(&d.join("t.der")), "-print_certs"]);
            assert_eq!(printed.contains("BEGIN CERTIFICATE"), cert, "{name}: {printed}");
            // Against the data, and against the query (which also checks the nonce).
            let untrusted: &[&str] = if cert { &[] } else { &["-untrusted", p(&tsa)] };
            let mut verify = vec!["ts", "-verify", "-in", p(&reply_path), "-data", p(&data), "-CAfile", p(&chain)];
            verify.extend(untrusted);
            let out = openssl_ok(&verify);
            assert!(out.contains("Verification: OK"), "{name}: {out}");
            let mut verify =
                vec!["ts", "-verify", "-in", p(&reply_path), "-queryfile", p(&query), "-CAfile", p(&chain)];
            verify.extend(untrusted);
            assert!(openssl_ok(&verify).contains("Verification: OK"), "{name}");
        }
    }
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 12, "every token has its own serial");
    // A reply for other data is refused by openssl.
    let other = d.join("other.json");
    std::fs::write(&other, b"{}").unwrap();
    let last = d.join("q-sha512falsefalse.tsr");
    let out =
        openssl(&["ts", "-verify", "-in", p(&last), "-data", p(&other), "-CAfile", p(&chain), "-untrusted", p(&tsa)]);
    assert!(!out.status.success(), "a stamp for other data must not verify");
    // Every stamp is counted.
    let (_, metrics) = ca_tests::http(r.port, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("ca_tsa_responses_total{outcome=\"granted\"} 12"), "{metrics}");
}

#[test]
fn bad_requests_get_a_rejection_with_the_failinfo_rfc_3161_prescribes() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let r = start_tsa(ca, Arc::new(SoftwareKey::generate(KeyAlgorithm::P256).unwrap()));
    let d = r.ca.dir.path().to_owned();
    let data = d.join("data");
    std::fs::write(&data, b"data").unwrap();
    let rejected = |query: &[u8]| {
        let reply = stamp(&r, query);
        let path = d.join("rejected.tsr");
        std::fs::write(&path, &reply).unwrap();
        let text = openssl_ok(&["ts", "-reply", "-in", p(&path), "-text"]);
        assert!(text.contains("Status: Rejected."), "{text}");
        status_of(&reply)
    };
    let read = |path: PathBuf| std::fs::read(path).unwrap();
    let sha1 = read(openssl_query(&d, "sha1", &data, &["-sha1"]));
    assert_eq!(rejected(&sha1), (PkiStatus::Rejection, vec![FailureInfo::BadAlg]));
    let policy = read(openssl_query(&d, "policy", &data, &["-sha256", "-tspolicy", "1.2.3.4"]));
    assert_eq!(rejected(&policy), (PkiStatus::Rejection, vec![FailureInfo::UnacceptedPolicy]));
    assert_eq!(rejected(b"\x30\x03\x02\x01"), (PkiStatus::Rejection, vec![FailureInfo::BadDataFormat]));
    // Version 2 (the version INTEGER follows the two-octet SEQUENCE header of a short query).
    let mut v2 = read(openssl_query(&d, "v2", &data, &["-sha256", "-no_nonce"]));
    assert_eq!(&v2[2..5], &[0x02, 0x01, 0x01]);
    v2[4] = 2;
    assert_eq!(rejected(&v2), (PkiStatus::Rejection, vec![FailureInfo::BadRequest]));
    // A longer body than the limit is not read: badDataFormat.
    let huge = vec![0x30; ca_server::MAX_TSA_REQUEST + 1];
    assert_eq!(rejected(&huge), (PkiStatus::Rejection, vec![FailureInfo::BadDataFormat]));
    // Another content type is refused by HTTP, as JSON.
    let ok = read(openssl_query(&d, "ok", &data, &["-sha256"]));
    let (status, body) = ca_tests::http(r.port, "POST", "/tsa", &[("Content-Type", "application/octet-stream")], &ok);
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&body));
    let (status, _) = ca_tests::http(r.port, "POST", "/tsa", &[], &ok);
    assert_eq!(status, 415);
    // The media type is matched without regard to case or parameters.
    let (status, reply) =
        ca_tests::http(r.port, "POST", "/tsa", &[("Content-Type", "Application/Timestamp-Query; x=1")], &ok);
    assert_eq!((status, status_of(&reply).0), (200, PkiStatus::Granted));
    let (_, metrics) = ca_tests::http(r.port, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(metrics).unwrap();
    for line in [
        "ca_tsa_responses_total{outcome=\"badAlg\"} 1",
        "ca_tsa_responses_total{outcome=\"badDataFormat\"} 2",
        "ca_tsa_responses_total{outcome=\"badRequest\"} 1",
        "ca_tsa_responses_total{outcome=\"unacceptedPolicy\"} 1",
        "ca_tsa_responses_total{outcome=\"granted\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[test]
fn without_a_tsa_the_answer_is_a_system_failure_reply() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let r = common::start(ca, None);
    let request = client::request_for_data(Digest::Sha256, b"x", &RequestOptions::default()).unwrap();
    let reply = stamp(&r, request.der());
    assert_eq!(status_of(&reply), (PkiStatus::Rejection, vec![FailureInfo::SystemFailure]));
}

/// Stamp the only signature of `signed` through `/tsa` and attach the token (CAdES-T).
fn with_our_timestamp(r: &Running, signed: &[u8]) -> Vec<u8> {
    let signature = &cms::signature_values(signed).unwrap()[0];
    let request = client::request_for_data(Digest::Sha256, signature, &RequestOptions::default()).unwrap();
    let response = TimeStampResp::from_der(&stamp(r, request.der())).unwrap();
    assert_eq!(response.status.status, PkiStatus::Granted);
    let token = der::Encode::to_der(&response.time_stamp_token.unwrap()).unwrap();
    cms::add_signature_timestamp(signed, 0, &token).unwrap()
}

#[test]
fn an_openssl_signature_stamped_by_our_tsa_passes_the_cades_t_path_of_the_api() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let signer = issue(&ca, &SystemClock, ProfileId::IndividualSign, 1, KeyAlgorithm::P256);
    let r = start_tsa(ca, Arc::new(SoftwareKey::generate(KeyAlgorithm::Rsa2048).unwrap()));
    let signed = openssl_sign(&r.ca, &signer, "signer", common::CONTENT, true);
    let stamped = with_our_timestamp(&r, &signed);
    let (status, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&stamped) }));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], true, "{v:#}");
    let report = &v["signers"][0];
    assert_eq!(report["timestamp"]["valid"], true, "{v:#}");
    assert!(report["timestamp"]["tsa"].as_str().unwrap().contains("TIME-STAMPING AUTHORITY"), "{v:#}");
    assert_eq!(report["validation_time_source"], "timestamp", "{v:#}");
    // openssl still verifies the signature with the unsigned attribute added.
    let d = r.ca.dir.path();
    std::fs::write(d.join("stamped.cms"), &stamped).unwrap();
    let out = openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        p(&d.join("stamped.cms")),
        "-CAfile",
        p(&d.join("chain.pem")),
        "-purpose",
        "any",
        "-out",
        p(&d.join("content.out")),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A token over another signature does not count.
    let other = openssl_sign(&r.ca, &signer, "other", b"other content", true);
    let token_of_other = {
        let other_stamped = with_our_timestamp(&r, &other);
        let sd: cms_types::signed_data::SignedData =
            cms_types::content_info::ContentInfo::from_der(&other_stamped).unwrap().content.decode_as().unwrap();
        let attrs = sd.signer_infos.0.iter().next().unwrap().unsigned_attrs.clone().unwrap();
        der::Encode::to_der(&attrs.iter().next().unwrap().values.iter().next().unwrap().clone()).unwrap()
    };
    let mismatched = cms::add_signature_timestamp(&signed, 0, &token_of_other).unwrap();
    let (_, v) = post_json(&r, "/api/v1/cms/verify", &json!({ "cms": b64(&mismatched) }));
    assert_eq!(v["signers"][0]["timestamp"]["valid"], false, "{v:#}");
}

#[test]
fn a_tsa_key_on_a_pkcs11_token_stamps_and_openssl_verifies() {
    use hsm::pkcs11::{Pkcs11Module, SecretPin, TokenSelector};
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let conf = ca_tests::softhsm_tokens(ca.dir.path(), &["TSA"], "4321");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let token =
        Pkcs11Module::load(ca_tests::SOFTHSM_MODULE).unwrap().open_token(&TokenSelector::Label("TSA".into())).unwrap();
    token.login(&SecretPin::new(zeroize::Zeroizing::new("4321".to_string()))).unwrap();
    let key = token.generate_key_pair(KeyAlgorithm::P256, "TSA key").unwrap();
    let r = start_tsa(ca, Arc::new(key));
    let d = r.ca.dir.path().to_owned();
    let data = d.join("data");
    std::fs::write(&data, b"stamped on a token").unwrap();
    let query = openssl_query(&d, "token", &data, &["-sha256", "-cert"]);
    let reply = d.join("token.tsr");
    std::fs::write(&reply, stamp(&r, &std::fs::read(&query).unwrap())).unwrap();
    let out =
        openssl_ok(&["ts", "-verify", "-in", p(&reply), "-queryfile", p(&query), "-CAfile", p(&d.join("chain.pem"))]);
    assert!(out.contains("Verification: OK"), "{out}");
}
