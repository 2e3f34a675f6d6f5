//! The verification API over HTTP against the running server: CMS made by `openssl cms -sign`
//! (attached and detached, RSA and ECDSA) verifies; tampering, expiry, revocation before and
//! after signing, untrusted and wrong-key-type signers get their verdicts; bare certificates;
//! a remembered path; requirements in the query; garbage, truncated and oversized bodies get
//! JSON 4xx and the server keeps serving. Login and system signing: `verify_api_login.rs`;
//! administration: `verify_api_admin.rs`; foreign CAs' CRLs: `verify_api_crl.rs`.

use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::profile::ProfileId;
use ca_core::revocation::{revoke, RevocationReason};
use ca_tests::write_pem;
use fixtures::{individual, TestCa};
use hsm::KeyAlgorithm;
use serde_json::json;
use time::{Duration, OffsetDateTime};

mod common;
use common::*;

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
