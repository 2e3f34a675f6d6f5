//! Login by signature (once, no replay, no expired nonce, challenges rate-limited per client)
//! and signing with the system key behind a bearer token, over HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;

use base64::Engine;
use ca_core::clock::FixedClock;
use ca_core::identity::Subject;
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use serde_json::{json, Value};

mod common;
use common::*;

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
