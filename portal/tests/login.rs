//! Login against a running portal-server: the 10-failure / 15-minute lockout with the exact
//! messages (EDS and OTP stay open, an injected clock ends it), no race past the limit under
//! 50 concurrent guesses, no enumeration, the journal of failed attempts, sessions, and login
//! by one-time password to the bound phone.

mod common;

use common::TestPortal;
use portal::messages;
use serde_json::json;
use time::Duration;

const PASSWORD: &str = "Степной7Ветер";

#[test]
fn ten_failures_lock_password_login_for_fifteen_minutes_eds_stays_open_and_the_journal_has_them() {
    let t = TestPortal::start();
    let holder = t.register_person(30, PASSWORD);
    let iin = fixtures::person(30).iin.to_string();
    for _ in 0..10 {
        let (status, body) = t.login_password(&iin, "Неверный1пароль");
        assert_eq!((status, body["message"].as_str().unwrap()), (401, messages::WRONG_LOGIN));
    }
    let (status, body) = t.login_password(&iin, PASSWORD);
    assert_eq!((status, body["error"].as_str().unwrap()), (429, "password-login-locked"));
    assert_eq!(body["message"], messages::LOCKED);
    // Retry-After counts from the portal's clock: the full 15 minutes now.
    let request = json!({ "login": iin, "password": PASSWORD }).to_string();
    let (status, head, _) = ca_tests::http_with_head(
        t.port,
        "POST",
        "/api/v1/login/password",
        &[("User-Agent", "portal-tests/1")],
        request.as_bytes(),
    );
    assert_eq!(status, 429);
    assert!(head.to_ascii_lowercase().contains("retry-after: 900\r\n"), "{head}");
    // EDS login is not locked.
    let (status, body) = t.login_eds(&holder);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["login"], iin.as_str());
    // Still locked a second before the end, open at 15 minutes.
    t.clock.advance(Duration::minutes(15) - Duration::seconds(1));
    assert_eq!(t.login_password(&iin, PASSWORD).0, 429);
    t.clock.advance(Duration::seconds(1));
    let (status, body) = t.login_password(&iin, PASSWORD);
    assert_eq!(status, 200, "{body}");
    // The journal: ten wrong passwords and three locked attempts, every field.
    let journal = t.portal.store.failed_attempts(Some(&iin), 100).unwrap();
    assert_eq!(journal.len(), 13);
    assert!(journal[..10].iter().all(|a| a.reason == "wrong-password"));
    assert!(journal[10..].iter().all(|a| a.reason == "locked"));
    for a in &journal {
        assert_eq!(
            (a.method.as_str(), a.client_address.as_deref(), a.user_agent.as_deref()),
            ("password", Some("127.0.0.1"), Some("portal-tests/1"))
        );
    }
    assert_eq!(
        journal[0].at + Duration::minutes(15),
        ca_core::clock::Clock::now(t.clock.as_ref()),
        "the portal's time"
    );
    // A success resets the count: nine more failures do not lock.
    for _ in 0..9 {
        assert_eq!(t.login_password(&iin, "Неверный1пароль").0, 401);
    }
    assert_eq!(t.login_password(&iin, PASSWORD).0, 200);
    let metrics = ca_tests::http(t.port, "GET", "/metrics", &[], b"").1;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("portal_password_lockouts_total 1"), "{metrics}");
    assert!(metrics.contains("portal_logins_total{method=\"eds\",outcome=\"success\"} 1"), "{metrics}");
}

#[test]
fn fifty_concurrent_wrong_guesses_never_get_an_eleventh_check() {
    let t = TestPortal::start();
    t.register_person(31, PASSWORD);
    let iin = fixtures::person(31).iin.to_string();
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50).map(|_| s.spawn(|| t.login_password(&iin, "Неверный1пароль").0)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers.iter().filter(|&&s| s == 401).count(), 10, "{answers:?}");
    assert_eq!(answers.iter().filter(|&&s| s == 429).count(), 40, "{answers:?}");
    assert_eq!(t.login_password(&iin, PASSWORD).0, 429, "the right password is refused too");
    let journal = t.portal.store.failed_attempts(Some(&iin), 100).unwrap();
    assert_eq!(journal.iter().filter(|a| a.reason == "wrong-password").count(), 10);
}

#[test]
fn an_unknown_login_gets_the_same_answer_and_the_same_work_as_a_wrong_password() {
    let t = TestPortal::start();
    t.register_person(32, PASSWORD);
    let known = fixtures::person(32).iin.to_string();
    let unknown = fixtures::person(33).iin.to_string();
    let time = |login: &str| {
        let start = std::time::Instant::now();
        let answer = t.login_password(login, "Неверный1пароль");
        (answer, start.elapsed())
    };
    let mut known_times = Vec::new();
    let mut unknown_times = Vec::new();
    for _ in 0..4 {
        let ((s1, b1), d1) = time(&known);
        let ((s2, b2), d2) = time(&unknown);
        assert_eq!((s1, &b1), (s2, &b2), "same status and body");
        known_times.push(d1);
        unknown_times.push(d2);
    }
    known_times.sort();
    unknown_times.sort();
    // Both run one Argon2id verification (m=19 MiB): medians within a factor of two, where a
    // skipped verification would be orders of magnitude faster.
    let (k, u) = (known_times[2].as_secs_f64(), unknown_times[2].as_secs_f64());
    assert!(u > k / 2.0 && u < k * 2.0, "known {k:.4} s, unknown {u:.4} s");
    // An unknown login locks like a known one (a lockout tells nothing either).
    for _ in 0..6 {
        t.login_password(&unknown, "Неверный1пароль");
    }
    let (status, body) = t.login_password(&unknown, "Неверный1пароль");
    assert_eq!((status, body["message"].as_str().unwrap()), (429, messages::LOCKED));
    assert_eq!(t.portal.store.failed_attempts(Some(&unknown), 100).unwrap()[0].reason, "unknown-account");
    // Malformed logins are bad input, not attempts.
    let (status, body) = t.login_password("12345", "x");
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid-login"));
}

#[test]
fn sessions_are_listed_idle_out_end_at_logout_and_tokens_are_stored_hashed() {
    let t = TestPortal::start();
    t.register_person(34, PASSWORD);
    let iin = fixtures::person(34).iin.to_string();
    let (_, first) = t.login_password(&iin, PASSWORD);
    let (_, second) = t.login_password(&iin, PASSWORD);
    let token = first["token"].as_str().unwrap();
    let (status, list) = t.call("GET", "/api/v1/sessions", Some(token), &serde_json::Value::Null);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(list["current"], first["session_id"]);
    // Ending another session, then logging out this one.
    let other = second["session_id"].as_i64().unwrap();
    assert_eq!(t.call("DELETE", &format!("/api/v1/sessions/{other}"), Some(token), &serde_json::Value::Null).0, 204);
    assert_eq!(
        t.call("GET", "/api/v1/sessions", Some(second["token"].as_str().unwrap()), &serde_json::Value::Null).0,
        401
    );
    assert_eq!(t.call("POST", "/api/v1/logout", Some(token), &serde_json::Value::Null).0, 204);
    assert_eq!(t.call("GET", "/api/v1/sessions", Some(token), &serde_json::Value::Null).0, 401);
    // Idle timeout (30 minutes): a session unused that long is over.
    let (_, third) = t.login_password(&iin, PASSWORD);
    let token = third["token"].as_str().unwrap();
    t.clock.advance(Duration::minutes(29));
    assert_eq!(t.call("GET", "/api/v1/sessions", Some(token), &serde_json::Value::Null).0, 200);
    t.clock.advance(Duration::minutes(30));
    let (status, body) = t.call("GET", "/api/v1/sessions", Some(token), &serde_json::Value::Null);
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "session-expired"));
    // Only the SHA-256 of a token is in the database.
    let db = std::fs::read(t.dir.path().join("portal.db")).unwrap_or_default();
    let wal = std::fs::read(t.dir.path().join("portal.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
    assert_eq!(t.call("GET", "/api/v1/sessions", None, &serde_json::Value::Null).0, 401);
}

#[test]
fn a_one_time_password_to_the_bound_phone_opens_one_session_and_locked_password_login_does_not_matter() {
    let t = TestPortal::start();
    t.register_person(35, PASSWORD);
    let iin = fixtures::person(35).iin.to_string();
    let request = || t.post("/api/v1/login/otp/request", json!({ "login": iin }));
    // No bound phone: the same answer, nothing sent.
    let (status, unbound) = request();
    assert_eq!(status, 202);
    assert!(t.phones.sent.lock().unwrap().is_empty());
    t.phones.bound.lock().unwrap().push((iin.clone(), "+77010000035".into()));
    for _ in 0..10 {
        t.login_password(&iin, "Неверный1пароль");
    }
    assert_eq!(t.login_password(&iin, PASSWORD).0, 429);
    let (status, bound) = request();
    assert_eq!((status, &bound), (202, &unbound), "the answer does not tell whether a phone is bound");
    let (phone, text) = t.phones.sent.lock().unwrap().last().cloned().unwrap();
    assert_eq!(phone, "+77010000035");
    let code: String = text.chars().filter(char::is_ascii_digit).take(6).collect();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let (status, body) = t.post("/api/v1/login/otp", json!({ "login": iin, "code": wrong }));
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "wrong-otp"));
    let (status, body) = t.post("/api/v1/login/otp", json!({ "login": iin, "code": code }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(t.post("/api/v1/login/otp", json!({ "login": iin, "code": code })).0, 401, "one session per code");
    // Expired after 5 minutes.
    request();
    let text = t.phones.sent.lock().unwrap().last().cloned().unwrap().1;
    let code: String = text.chars().filter(char::is_ascii_digit).take(6).collect();
    t.clock.advance(Duration::minutes(5));
    assert_eq!(t.post("/api/v1/login/otp", json!({ "login": iin, "code": code })).0, 401);
    let journal = t.portal.store.failed_attempts(Some(&iin), 100).unwrap();
    assert!(journal.iter().any(|a| a.method == "otp" && a.reason == "wrong-otp"));
    assert!(journal.iter().any(|a| a.method == "otp" && a.reason == "no-valid-otp"));
}

#[test]
fn eds_login_refuses_a_sign_key_a_replayed_challenge_and_an_unregistered_person() {
    let t = TestPortal::start();
    let holder = t.register_person(36, PASSWORD);
    let challenge = t.challenge();
    let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &challenge).unwrap();
    let cms = t.sign(&holder, &raw);
    assert_eq!(t.post("/api/v1/login/eds", json!({ "cms": cms })).0, 200);
    let (status, body) = t.post("/api/v1/login/eds", json!({ "cms": cms }));
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "challenge-replayed"));
    // A challenge the portal did not issue (one bit of a real one changed): refused.
    let mut forged = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, t.challenge()).unwrap();
    forged[3] ^= 1;
    let (status, body) = t.post("/api/v1/login/eds", json!({ "cms": t.sign(&holder, &forged) }));
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "challenge-unknown"));
    let sign = t.holder("sign36", ca_core::profile::ProfileId::IndividualSign, fixtures::individual(36), vec![]);
    assert_eq!(t.login_eds(&sign).0, 401);
    let (status, body) = t.login_eds(&t.person_auth(37));
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "no-account"));
    let (status, body) = t.post("/api/v1/login/eds", json!({ "cms": "garbage" }));
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "malformed-cms"));
}

/// A login records the challenge's use without an fsync of its own, so a record lost with an
/// OS crash must not let the challenge be used again: a portal refuses the challenges issued
/// before it started, and its own work.
#[test]
fn a_challenge_issued_before_a_restart_is_refused() {
    let t = TestPortal::start();
    let holder = t.register_person(38, PASSWORD);
    let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, t.challenge()).unwrap();
    let cms = t.sign(&holder, &raw);
    t.clock.advance(Duration::seconds(1));
    let plugins = portal::setup::Plugins { clock: t.clock.clone(), phones: Some(t.phones.clone()), sms: None };
    let restarted = portal::setup::build(&t.config, plugins).unwrap();
    let refused = restarted.login_eds(cms.as_bytes(), None, &portal::Client::default()).unwrap_err();
    assert_eq!(refused.kind(), "challenge-expired", "{refused}");
    assert!(refused.to_string().contains("before the portal restarted"), "{refused}");
    let fresh = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        restarted.issue_challenge().unwrap().challenge,
    )
    .unwrap();
    let grant = restarted.login_eds(t.sign(&holder, &fresh).as_bytes(), None, &portal::Client::default()).unwrap();
    assert_eq!(grant.login, fixtures::person(38).iin.to_string());
    // The portal that issued the first challenge (started before it) still accepts it once.
    assert_eq!(t.post("/api/v1/login/eds", json!({ "cms": cms })).0, 200);
}

/// Behind a reverse proxy listed in `[server] trusted_proxies` the journal holds the address the
/// proxy forwards; from any other peer `X-Forwarded-For` is the client's own claim and ignored.
#[test]
fn the_journal_has_the_real_client_address_behind_a_trusted_proxy_only() {
    let failed_from = |t: &TestPortal, forwarded: &str| {
        let body = json!({ "login": fixtures::person(39).iin.to_string(), "password": "wrong password 1" });
        let headers = [("Content-Type", "application/json"), ("X-Forwarded-For", forwarded)];
        let (status, _) =
            ca_tests::http(t.port, "POST", "/api/v1/login/password", &headers, body.to_string().as_bytes());
        assert_eq!(status, 401);
        let journal = t.portal.store.failed_attempts(None, 10).unwrap();
        journal.last().unwrap().client_address.clone()
    };
    let proxied = TestPortal::start_with(|c| c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
    assert_eq!(failed_from(&proxied, "203.0.113.9").as_deref(), Some("203.0.113.9"));
    // The client's own claim, left of what the proxy appended, is not believed.
    assert_eq!(failed_from(&proxied, "198.51.100.1, 203.0.113.10").as_deref(), Some("203.0.113.10"));
    let direct = TestPortal::start();
    assert_eq!(failed_from(&direct, "203.0.113.9").as_deref(), Some("127.0.0.1"), "no trusted proxy: the peer");
}
