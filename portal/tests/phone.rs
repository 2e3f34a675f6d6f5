//! Phone binding over HTTP with real `openssl cms -sign` signatures by certificates our test CA
//! issued: bind and see it in the cabinet, change the number (the old number and the email
//! notified), a wrong code refused at once then the right one accepted, a spent session after
//! the attempt limit, resend throttling, bad input; the counter path creating an account with
//! a must-change password; partner systems; and the OTP-guessing bounds.

mod common;

use base64::Engine;
use ca_core::profile::{ProfileId, Role};
use common::{Holder, TestPortal};
use portal::account::counter::Consents;
use portal::account::workstation::Applicant;
use portal::account::{AccountState, CreatedBy};
use portal::notify::sms::spool::{Spool, SpooledSms};
use portal::phone::config::{PartnerRule, SmsConfig};
use portal::phone::system::{Assertion, PartnerBindingRequest, SystemBindingAnswer, SystemCodeRequest};
use portal::phone::workstation as ws;
use portal::store::phone::Channel;
use serde_json::{json, Value};
use time::Duration;

const PASSWORD: &str = "Phone-Binding-2026!x";
const MOBILE_ORG: u32 = 21;
const BANK_ORG: u32 = 22;

fn start() -> TestPortal {
    TestPortal::start_with(|c| {
        let spool = c.store.sqlite_file().unwrap().parent().unwrap().join("sms");
        c.phone.sms = Some(SmsConfig { spool: Some(spool), ..SmsConfig::default() });
        // The test runs the sender itself (no background sender racing it).
        c.phone.send_from_serve = false;
        c.phone.partners = vec![
            PartnerRule {
                name: "egov-mobile".into(),
                channel: Channel::MobileApp,
                bin: Some(fixtures::organisation(MOBILE_ORG).bin.to_string()),
                certificate_sha256: None,
            },
            PartnerRule {
                name: "bank".into(),
                channel: Channel::BankApp,
                bin: Some(fixtures::organisation(BANK_ORG).bin.to_string()),
                certificate_sha256: None,
            },
        ];
    })
}

fn spool_dir(t: &TestPortal) -> std::path::PathBuf {
    t.dir.path().join("sms")
}

/// Run the sender once; every message in the spool.
fn spool(t: &TestPortal) -> Vec<SpooledSms> {
    t.portal.phone.dispatcher.as_ref().unwrap().deliver_pending().unwrap();
    Spool::read(&spool_dir(t)).unwrap()
}

/// The code in the newest message to `phone` that carries one.
fn code_sent_to(t: &TestPortal, phone: &str) -> String {
    t.portal.phone.dispatcher.as_ref().unwrap().deliver_pending().unwrap();
    let outbox = t.portal.store.sms_outbox(1000).unwrap();
    let newest = outbox.iter().rev().find(|m| m.to == phone && m.purpose == "phone-code").expect("a code was queued");
    let sms = Spool::read(&spool_dir(t)).unwrap().into_iter().find(|s| s.id == newest.message_id).unwrap();
    let digits: String = sms.text.chars().skip_while(|c| !c.is_ascii_digit()).take(6).collect();
    assert_eq!(digits.len(), 6, "{}", sms.text);
    digits
}

fn wrong(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

fn sign_holder(t: &TestPortal, n: u32) -> Holder {
    t.holder(&format!("sign{n}"), ProfileId::IndividualSign, fixtures::individual(n), vec![])
}

/// Register person `n` and log in by password: the session token.
fn logged_in(t: &TestPortal, n: u32) -> String {
    t.register_person(n, PASSWORD);
    let (status, body) = t.login_password(&fixtures::person(n).iin.to_string(), PASSWORD);
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

fn request_code(t: &TestPortal, token: &str, phone: &str) -> (u16, Value) {
    t.call("POST", "/api/v1/phone/code", Some(token), &json!({ "phone": phone }))
}

/// Ask for a code; the session and the statement signed by `holder`.
fn code_and_signature(t: &TestPortal, token: &str, phone: &str, holder: &Holder) -> (String, String) {
    let (status, sent) = request_code(t, token, phone);
    assert_eq!(status, 202, "{sent}");
    let statement = base64::engine::general_purpose::STANDARD.decode(sent["statement"].as_str().unwrap()).unwrap();
    (sent["session_id"].as_str().unwrap().to_owned(), t.sign(holder, &statement))
}

fn bind(t: &TestPortal, token: &str, session: &str, code: &str, cms: &str) -> (u16, Value) {
    t.call("POST", "/api/v1/phone/binding", Some(token), &json!({ "session_id": session, "code": code, "cms": cms }))
}

#[test]
fn bind_see_it_in_the_cabinet_then_change_the_number_with_notices_to_the_old_one_and_the_email() {
    let t = start();
    let token = logged_in(&t, 60);
    let signer = sign_holder(&t, 60);
    let (session, cms) = code_and_signature(&t, &token, "8 (701) 000-60-01", &signer);
    let code = code_sent_to(&t, "+77010006001");
    // A wrong code is refused at once; the same signed request with the right code succeeds.
    let (status, body) = bind(&t, &token, &session, &wrong(&code), &cms);
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "wrong-otp"), "{body}");
    assert!(body["message"].as_str().unwrap().starts_with(portal::phone::messages::WRONG_CODE));
    let (status, body) = bind(&t, &token, &session, &code, &cms);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["phone"].as_str(), body["message"].as_str()),
        (Some("+77010006001"), Some("Номер телефона привязан к учетной записи"))
    );
    // A replay of the accepted request: the session is closed.
    assert_eq!(bind(&t, &token, &session, &code, &cms).1["error"], "otp-session-spent");

    let (status, cabinet) = t.call("GET", "/api/v1/phone", Some(&token), &Value::Null);
    assert_eq!(status, 200);
    assert_eq!(
        (cabinet["phone"]["phone"].as_str(), cabinet["phone"]["channel"].as_str()),
        (Some("+77010006001"), Some("portal"))
    );
    assert!(cabinet["phone"]["service_seconds"].as_i64().unwrap() <= 600);

    // Change: a code to the new number and a new signed request.
    t.clock.advance(Duration::minutes(2));
    let (session, cms) = code_and_signature(&t, &token, "+7 702 000 60 02", &signer);
    let code = code_sent_to(&t, "+77020006002");
    let (status, body) = bind(&t, &token, &session, &code, &cms);
    assert_eq!((status, body["message"].as_str()), (200, Some("Номер телефона учетной записи изменен")), "{body}");
    assert_eq!(body["previous"], "+7 7** *** 60 01");
    let (_, cabinet) = t.call("GET", "/api/v1/phone", Some(&token), &Value::Null);
    assert_eq!(cabinet["phone"]["phone"], "+77020006002");
    let history = cabinet["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (history[1]["phone"].as_str(), history[1]["end_reason"].as_str()),
        (Some("+77010006001"), Some("changed"))
    );
    // The old number was told, and the email.
    let messages = spool(&t);
    let to_old: Vec<&SpooledSms> = messages.iter().filter(|m| m.to == "+77010006001").collect();
    assert_eq!(to_old.len(), 2, "the first code and the notice");
    assert!(to_old.iter().any(|m| m.text.contains("отвязан")));
    assert_eq!(messages.len(), 3, "two codes and one notice, nothing else: {messages:?}");
    t.portal.mailer.as_ref().unwrap().deliver_pending().unwrap();
    let mail = t.mail();
    assert!(
        mail.iter().any(|m| m.contains("Прежний номер: +7 7** *** 60 01") && m.contains("+7 7** *** 60 02")),
        "{mail:?}"
    );
    // No message body or journal line holds a code; every attempt is journaled.
    let iin = fixtures::person(60).iin.to_string();
    let journal = t.portal.store.phone_attempts(Some(&iin), 100).unwrap();
    let outcomes: Vec<&str> =
        journal.iter().map(|a| if a.reason.is_empty() { a.outcome.as_str() } else { a.reason.as_str() }).collect();
    assert_eq!(outcomes, ["code-sent", "wrong-otp", "bound", "otp-session-spent", "code-sent", "changed"]);
    assert!(t.portal.store.sms_outbox(100).unwrap().iter().all(|m| m.state == "sent"));
    let (_, doc) = t.call("GET", "/api/v1/openapi.json", None, &Value::Null);
    for path in [
        "/api/v1/phone",
        "/api/v1/phone/code",
        "/api/v1/phone/binding",
        "/api/v1/counter/phone/bindings",
        "/api/v1/partner/phone/bindings",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} in the OpenAPI document");
    }
    let (_, metrics) = t.call("GET", "/metrics", None, &Value::Null);
    assert!(
        metrics.as_str().unwrap().contains("portal_phone_bindings_total{channel=\"portal\",within_budget=\"true\"} 2"),
        "{metrics}"
    );
}

#[test]
fn five_wrong_codes_spend_the_session_and_resends_are_throttled() {
    let t = start();
    let token = logged_in(&t, 61);
    let signer = sign_holder(&t, 61);
    let (session, cms) = code_and_signature(&t, &token, "+77010006101", &signer);
    let code = code_sent_to(&t, "+77010006101");
    for left in (1..=4).rev() {
        let (status, body) = bind(&t, &token, &session, &wrong(&code), &cms);
        assert_eq!(status, 401, "{body}");
        assert!(body["message"].as_str().unwrap().contains(&format!("осталось попыток: {left}")), "{body}");
    }
    let (status, body) = bind(&t, &token, &session, &wrong(&code), &cms);
    assert_eq!((status, body["error"].as_str().unwrap()), (403, "otp-session-spent"));
    assert_eq!(bind(&t, &token, &session, &code, &cms).1["error"], "otp-session-spent", "the right code is too late");

    // A new code at once is too soon (one a minute).
    let (status, body) = request_code(&t, &token, "+77010006101");
    assert_eq!((status, body["error"].as_str().unwrap()), (429, "too-soon"), "{body}");
    t.clock.advance(Duration::seconds(61));
    let (session, cms) = code_and_signature(&t, &token, "+77010006101", &signer);
    let code = code_sent_to(&t, "+77010006101");
    assert_eq!(bind(&t, &token, &session, &code, &cms).0, 200);
    // Five codes an hour per account: three more after these two, then 429 until the hour ends.
    for i in 0..3 {
        t.clock.advance(Duration::seconds(61));
        assert_eq!(request_code(&t, &token, &format!("+7701000620{i}")).0, 202);
    }
    t.clock.advance(Duration::seconds(61));
    let (status, body) = request_code(&t, &token, "+77010006209");
    assert_eq!(status, 429, "{body}");
    let wait: i64 = body["message"].as_str().unwrap().split_whitespace().rev().nth(1).unwrap().parse().unwrap();
    assert!(wait > 3000 && wait <= 3600, "{body}");
    t.clock.advance(Duration::seconds(wait));
    // (The session idled out meanwhile.)
    let (_, grant) = t.login_password(&fixtures::person(61).iin.to_string(), PASSWORD);
    assert_eq!(request_code(&t, grant["token"].as_str().unwrap(), "+77010006209").0, 202);
}

#[test]
fn bad_numbers_taken_numbers_foreign_revoked_and_auth_key_signatures_are_refused() {
    let t = start();
    let token = logged_in(&t, 62);
    for (phone, kind) in [
        ("+7 916 123 45 67", "foreign-phone"),
        ("+49 170 1234567", "foreign-phone"),
        ("+7 727 250 00 00", "not-mobile-phone"),
        ("12345", "invalid-phone"),
        ("<script>", "invalid-phone"),
    ] {
        let (status, body) = request_code(&t, &token, phone);
        assert_eq!((status, body["error"].as_str().unwrap()), (400, kind), "{phone}");
    }
    assert_eq!(t.call("POST", "/api/v1/phone/code", None, &json!({ "phone": "+77010006201" })).0, 401);
    assert_eq!(t.call("POST", "/api/v1/phone/code", Some("forged"), &json!({ "phone": "+77010006201" })).0, 401);

    // Signatures: another person's SIGN certificate, the person's own AUTH key, a revoked one.
    let (session, statement_b64) = {
        let (status, sent) = request_code(&t, &token, "+77010006201");
        assert_eq!(status, 202);
        (sent["session_id"].as_str().unwrap().to_owned(), sent["statement"].as_str().unwrap().to_owned())
    };
    let statement = base64::engine::general_purpose::STANDARD.decode(statement_b64).unwrap();
    let code = code_sent_to(&t, "+77010006201");
    let other = sign_holder(&t, 63);
    let auth = t.person_auth(62);
    let revoked = sign_holder(&t, 62);
    t.publish_crls(&[&revoked.cert.serial]);
    let expired = {
        let key = hsm::SoftwareKey::generate(hsm::KeyAlgorithm::P256).unwrap();
        let past = ca_core::clock::FixedClock(t.ca_now() - Duration::minutes(9));
        let cert = t
            .issuer_at(&past, Duration::minutes(2))
            .issue(&ca_core::issuer::IssuanceRequest {
                profile: ProfileId::IndividualSign,
                subject: fixtures::individual(62),
                roles: vec![],
                public_key: ca_core::signer::Signer::public_key(&key).clone(),
            })
            .unwrap();
        common::holder_files(&t.ca, t.dir.path(), "expired-sign", key, cert)
    };
    for holder in [&other, &auth, &revoked, &expired] {
        let (status, body) = bind(&t, &token, &session, &code, &t.sign(holder, &statement));
        assert_eq!((status, body["error"].as_str().unwrap()), (401, "signature-invalid"), "{body}");
    }
    // A statement for another session or number.
    let good = sign_holder(&t, 62);
    let forged =
        portal::phone::statement(&session, &fixtures::person(62).iin.to_string(), "+77010009999", Channel::Portal);
    assert_eq!(bind(&t, &token, &session, &code, &t.sign(&good, &forged)).0, 401);
    // Nothing was bound, and the code is still good (signature failures do not use it).
    let (status, _) = bind(&t, &token, &session, &code, &t.sign(&good, &statement));
    assert_eq!(status, 200);

    // The number is taken now: another account cannot ask for it.
    let token64 = logged_in(&t, 64);
    let (status, body) = request_code(&t, &token64, "+77010006201");
    assert_eq!((status, body["message"].as_str().unwrap()), (403, portal::phone::messages::PHONE_TAKEN));
    // A session of another account is refused.
    let (session64, _) = {
        let (_, sent) = request_code(&t, &token64, "+77010006401");
        (sent["session_id"].as_str().unwrap().to_owned(), ())
    };
    assert_eq!(bind(&t, &token, &session64, "000000", "AAAA").1["error"], "otp-session-spent");
    assert_eq!(bind(&t, &token, "zz", "000000", "AAAA").1["error"], "invalid-session");
}

fn applicant(n: u32, phone: &str) -> Applicant {
    let p = fixtures::person(n);
    Applicant {
        iin: p.iin.to_string(),
        surname: p.surname,
        given_name: p.given_name,
        patronymic: p.patronymic,
        email: format!("person{n}@example.kz"),
        phone: phone.into(),
        consents: Consents { user_agreement: true, personal_data: true },
    }
}

fn signed_by<T: serde::Serialize>(t: &TestPortal, by: &Holder, request: &T) -> Vec<u8> {
    let now = ca_core::clock::Clock::now(t.clock.as_ref());
    ws::sign(request, &by.key, &by.cert.der, std::slice::from_ref(&t.ca.issuing.certificate_der), now).unwrap()
}

fn post_cms(t: &TestPortal, path: &str, cms: &[u8]) -> (u16, Value) {
    t.post(path, json!({ "cms": base64::engine::general_purpose::STANDARD.encode(cms) }))
}

fn answer(t: &TestPortal, body: &Value, request_id: &str, iin: &str) -> SystemBindingAnswer {
    let der = base64::engine::general_purpose::STANDARD.decode(body["cms"].as_str().unwrap()).unwrap();
    ws::verify_answer(&t.portal.trust, request_id, iin, &der, ca_core::clock::Clock::now(t.clock.as_ref())).unwrap().0
}

#[test]
fn the_counter_binds_for_a_person_without_account_creating_one_that_must_change_its_password() {
    let t = start();
    let now = || ca_core::clock::Clock::now(t.clock.as_ref());
    let a = applicant(70, "+77010007001");
    let request = ws::code_request(&a, now()).unwrap();
    let (status, sent) = post_cms(&t, ws::CODE_PATH, &signed_by(&t, &t.workstation, &request));
    assert_eq!(status, 202, "{sent}");
    let session = sent["session_id"].as_str().unwrap();
    let code = code_sent_to(&t, "+77010007001");
    // The applicant misreads the code: refused at once; the operator sends the right one.
    let wrong_req = ws::binding_request(&a, session, &wrong(&code), now()).unwrap();
    let (status, body) = post_cms(&t, ws::BIND_PATH, &signed_by(&t, &t.workstation, &wrong_req));
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "wrong-otp"));
    // No consent to the use of protected personal data: a motivated refusal.
    let mut no_consent = a.clone();
    no_consent.consents.personal_data = false;
    let req = ws::binding_request(&no_consent, session, &code, now()).unwrap();
    let (status, body) = post_cms(&t, ws::BIND_PATH, &signed_by(&t, &t.workstation, &req));
    assert_eq!((status, body["message"].as_str().unwrap()), (403, portal::phone::messages::NO_CONSENT));
    // Data that does not match the registry.
    let mut mismatch = a.clone();
    mismatch.surname = "Другой".into();
    let req = ws::binding_request(&mismatch, session, &code, now()).unwrap();
    let (status, body) = post_cms(&t, ws::BIND_PATH, &signed_by(&t, &t.workstation, &req));
    assert_eq!((status, body["message"].as_str().unwrap()), (403, portal::phone::messages::REGISTRY_MISMATCH));
    // An unlisted operator.
    let other = t.holder("other-op", ProfileId::LegalSign, fixtures::employee(205, 5), vec![Role::Employee]);
    let req = ws::binding_request(&a, session, &code, now()).unwrap();
    let (status, body) = post_cms(&t, ws::BIND_PATH, &signed_by(&t, &other, &req));
    assert_eq!((status, body["error"].as_str().unwrap()), (403, "workstation-not-authorised"));
    assert!(t.portal.store.account_by_login(&a.iin).unwrap().is_none(), "nothing created by refusals");

    let req = ws::binding_request(&a, session, &code, now()).unwrap();
    let signed = signed_by(&t, &t.workstation, &req);
    let (status, body) = post_cms(&t, ws::BIND_PATH, &signed);
    assert_eq!(status, 200, "{body}");
    let answer = answer(&t, &body, &req.request_id, &a.iin);
    assert_eq!(
        (answer.account.as_str(), answer.outcome.as_str(), answer.channel),
        ("created", "bound", Channel::Counter)
    );
    let account = t.portal.store.account_by_login(&a.iin).unwrap().unwrap();
    assert_eq!((account.state, account.created_by), (AccountState::MustChangePassword, CreatedBy::Counter));
    let (status, session_grant) = t.login_password(&a.iin, answer.password.as_deref().unwrap());
    assert_eq!((status, session_grant["must_change_password"].as_bool()), (200, Some(true)));
    let binding = t.portal.store.current_binding(account.id).unwrap().unwrap();
    assert_eq!((binding.phone.as_str(), binding.channel), ("+77010007001", Channel::Counter));
    assert!(binding.evidence.contains("operator"), "{}", binding.evidence);
    // The same signed request again: replayed.
    assert_eq!(post_cms(&t, ws::BIND_PATH, &signed).1["error"], "request-replayed");
}

fn partner_request(t: &TestPortal, n: u32, phone: &str, by: &Holder) -> (String, String) {
    let now = ca_core::clock::Clock::now(t.clock.as_ref());
    let req = SystemCodeRequest {
        request_id: hex::encode(rand_id()),
        created_at: now,
        iin: fixtures::person(n).iin.to_string(),
        phone: phone.into(),
    };
    let (status, sent) = post_cms(t, "/api/v1/partner/phone/code", &signed_by(t, by, &req));
    assert_eq!(status, 202, "{sent}");
    (sent["session_id"].as_str().unwrap().to_owned(), code_sent_to(t, phone))
}

fn rand_id() -> [u8; 32] {
    let mut id = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    id
}

fn partner_bind(
    t: &TestPortal,
    n: u32,
    phone: &str,
    session: &str,
    code: &str,
    (method, result): (&str, &str),
    by: &Holder,
) -> (u16, Value, String) {
    let now = ca_core::clock::Clock::now(t.clock.as_ref());
    let req = PartnerBindingRequest {
        request_id: hex::encode(rand_id()),
        created_at: now,
        session_id: session.into(),
        code: code.into(),
        iin: fixtures::person(n).iin.to_string(),
        phone: phone.into(),
        authentication: Assertion {
            method: method.into(),
            result: result.into(),
            reference: "check-1".into(),
            at: now,
        },
    };
    let (status, body) = post_cms(t, "/api/v1/partner/phone/bindings", &signed_by(t, by, &req));
    (status, body, req.request_id)
}

#[test]
fn partners_bind_with_their_assertion_and_an_unlisted_partner_or_a_failed_biometric_check_is_refused() {
    let t = start();
    t.register_person(80, PASSWORD);
    t.register_person(81, PASSWORD);
    let mobile = t.holder("mobile", ProfileId::LegalSign, fixtures::employee(210, MOBILE_ORG), vec![Role::Employee]);
    let bank = t.holder("bank", ProfileId::LegalSign, fixtures::employee(211, BANK_ORG), vec![Role::Employee]);
    let stranger = t.holder("stranger", ProfileId::LegalSign, fixtures::employee(212, 7), vec![Role::Employee]);

    let (session, code) = partner_request(&t, 80, "+77470008001", &mobile);
    let (status, body, _) = partner_bind(&t, 80, "+77470008001", &session, &code, ("biometric", "no-match"), &mobile);
    assert_eq!((status, body["message"].as_str().unwrap()), (403, portal::phone::messages::BIOMETRY_FAILED));
    let (status, body, _) = partner_bind(&t, 80, "+77470008001", &session, &code, ("bank-kyc", "match"), &mobile);
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "assertion-invalid"));
    let (status, body, _) = partner_bind(&t, 80, "+77470008001", &session, &code, ("biometric", "match"), &stranger);
    assert_eq!((status, body["error"].as_str().unwrap()), (403, "partner-not-authorised"));
    let (status, body, id) = partner_bind(&t, 80, "+77470008001", &session, &code, ("biometric", "match"), &mobile);
    assert_eq!(status, 200, "{body}");
    let a = answer(&t, &body, &id, &fixtures::person(80).iin.to_string());
    assert_eq!((a.channel, a.account.as_str(), a.password), (Channel::MobileApp, "existing", None));

    let (session, code) = partner_request(&t, 81, "+77070008101", &bank);
    let (status, body, _) = partner_bind(&t, 81, "+77070008101", &session, &code, ("bank-kyc", "match"), &bank);
    assert_eq!(status, 200, "{body}");
    let account = t.portal.store.account_by_login(&fixtures::person(81).iin.to_string()).unwrap().unwrap();
    assert_eq!(t.portal.store.current_binding(account.id).unwrap().unwrap().channel, Channel::BankApp);
    // An unlisted partner cannot even have a code sent; nor for a person without an account.
    let req = SystemCodeRequest {
        request_id: hex::encode(rand_id()),
        created_at: ca_core::clock::Clock::now(t.clock.as_ref()),
        iin: fixtures::person(82).iin.to_string(),
        phone: "+77010008201".into(),
    };
    assert_eq!(post_cms(&t, "/api/v1/partner/phone/code", &signed_by(&t, &stranger, &req)).0, 403);
    let req = SystemCodeRequest { request_id: hex::encode(rand_id()), ..req };
    assert_eq!(post_cms(&t, "/api/v1/partner/phone/code", &signed_by(&t, &mobile, &req)).1["error"], "no-account");
    let journal = t.portal.store.phone_attempts(None, 100).unwrap();
    assert!(journal.iter().any(|a| a.reason == "biometric-failed" && a.channel == Channel::MobileApp));
    assert!(journal.iter().any(|a| a.reason == "partner-not-authorised"));
}

/// One attacker session: as many codes as the limits let through within an hour of `start`,
/// and for each, guesses (never the real code) until the session is spent. Returns (codes
/// sent, guesses the portal evaluated).
fn guess_for_an_hour(t: &TestPortal, attackers: &[(&str, &Holder)], phone: &str) -> (u32, u32) {
    let start = ca_core::clock::Clock::now(t.clock.as_ref());
    let (mut codes, mut evaluated) = (0, 0);
    let mut turn = 0;
    loop {
        let (token, holder) = attackers[turn % attackers.len()];
        turn += 1;
        let (status, sent) = request_code(t, token, phone);
        if status == 429 {
            let retry_at = time::OffsetDateTime::parse(
                sent["retry_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            if retry_at >= start + Duration::hours(1) {
                if turn % attackers.len() == 0 {
                    return (codes, evaluated);
                }
                continue;
            }
            t.clock.advance(retry_at - ca_core::clock::Clock::now(t.clock.as_ref()));
            continue;
        }
        assert_eq!(status, 202, "{sent}");
        codes += 1;
        let session = sent["session_id"].as_str().unwrap();
        let statement = base64::engine::general_purpose::STANDARD.decode(sent["statement"].as_str().unwrap()).unwrap();
        let cms = t.sign(holder, &statement);
        let real: u32 = code_sent_to(t, phone).parse().unwrap();
        for guess in (0..20u32).map(|g| format!("{:06}", (real + 1 + g * 7919) % 1_000_000)) {
            let (status, body) = bind(t, token, session, &guess, &cms);
            match (status, body["error"].as_str().unwrap()) {
                (401, "wrong-otp") => evaluated += 1,
                (403, "otp-session-spent") => {
                    // The guess that spent the session was the last one evaluated.
                    evaluated += 1;
                    break;
                }
                other => panic!("{other:?}: {body}"),
            }
        }
        // Nothing more is evaluated on a spent session.
        assert_eq!(bind(t, token, session, "000000", &cms).1["error"], "otp-session-spent");
    }
}

#[test]
fn guessing_is_bounded_to_five_tries_per_code_and_twenty_five_per_hour_per_account_and_per_number() {
    let t = start();
    // One account guessing at a number: five codes an hour, five tries each.
    let token = logged_in(&t, 90);
    let holder = sign_holder(&t, 90);
    let (codes, guesses) = guess_for_an_hour(&t, &[(&token, &holder)], "+77010009090");
    assert_eq!((codes, guesses), (5, 25));
    // Two accounts taking turns at one number: the number's limit holds them together.
    let (token_b, token_c) = (logged_in(&t, 91), logged_in(&t, 92));
    let (holder_b, holder_c) = (sign_holder(&t, 91), sign_holder(&t, 92));
    let (codes, guesses) = guess_for_an_hour(&t, &[(&token_b, &holder_b), (&token_c, &holder_c)], "+77010009191");
    assert_eq!((codes, guesses), (5, 25));
    // Every guess is journaled; none was ever accepted.
    let journal = t.portal.store.phone_attempts(None, 1000).unwrap();
    assert_eq!(journal.iter().filter(|a| a.reason == "wrong-otp").count(), 2 * 5 * 4);
    assert!(!journal.iter().any(|a| a.outcome == "bound"));
}

#[test]
fn the_counter_bind_phone_command_asks_for_the_code_reads_it_and_prints_the_envelope() {
    use std::io::{BufRead, Write};
    let t = start();
    let a = applicant(75, "+77010007501");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portal-server"))
        .env("WORKSTATION_P12_PASSWORD", "pw")
        .args(["counter-bind-phone", "--portal", &format!("http://127.0.0.1:{}", t.port)])
        .args(["--p12", t.workstation.p12.to_str().unwrap()])
        .args(["--anchor", t.root_pem.to_str().unwrap(), "--intermediate", t.issuing_pem.to_str().unwrap()])
        .args(["--crl-dir", t.crl_dir.to_str().unwrap(), "--iin", &a.iin, "--surname", &a.surname])
        .args(["--given-name", &a.given_name, "--patronymic", a.patronymic.as_deref().unwrap()])
        .args(["--email", &a.email, "--phone", "8 701 000 75 01", "--user-agreement", "--personal-data", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("Enter the code") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the command ended before asking for the code");
    }
    let code = code_sent_to(&t, "+77010007501");
    writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((printed["phone"].as_str(), printed["account"].as_str()), (Some("+77010007501"), Some("created")));
    assert_eq!(t.login_password(&a.iin, printed["password"].as_str().unwrap()).1["must_change_password"], true);
}
