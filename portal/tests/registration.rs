//! Registration by EDS against a running portal-server, with CMS made by `openssl cms -sign`
//! from certificates our CA issued: individual and legal entity, each registry refusal with
//! its exact text, duplicates, and bad input that changes nothing.

mod common;

use base64::Engine;
use ca_core::clock::FixedClock;
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::{ProfileId, Role};
use ca_core::signer::Signer;
use common::{holder_files, TestPortal};
use fixtures::registry::{excluded, DECEASED, NOT_IN_REGISTRY, SPECIAL_REGISTER};
use portal::account::AccountKind;
use portal::messages;
use serde_json::json;
use time::Duration;

const PASSWORD: &str = "Степной7Ветер";

#[test]
fn an_individual_and_a_legal_entity_register_and_a_second_registration_is_refused() {
    let t = TestPortal::start();
    let holder = t.person_auth(20);
    let (status, body) = t.post("/api/v1/registration", t.registration(20, &holder, PASSWORD));
    assert_eq!((status, body["message"].as_str().unwrap()), (200, messages::REGISTERED));
    let (status, body) = t.login_password(&fixtures::person(20).iin.to_string(), PASSWORD);
    assert_eq!(status, 200, "{body}");

    // The same IIN again, with a new challenge and signature: refused, clearly.
    let (status, body) = t.post("/api/v1/registration", t.registration(20, &holder, PASSWORD));
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "account-exists"));
    assert_eq!(body["message"], messages::ALREADY_REGISTERED);

    // A legal entity: the first head's AUTH certificate carries the BIN; the account logs in by BIN.
    let org = fixtures::organisation(3);
    let head = fixtures::registry::head_of(3);
    let employee = t.holder("head3", ProfileId::LegalAuth, fixtures::employee(head, 3), vec![Role::FirstHead]);
    let challenge = t.challenge();
    let (iin, bin) = (fixtures::person(head).iin.to_string(), org.bin.to_string());
    let statement = portal::account::registration::statement(
        AccountKind::LegalEntity,
        &iin,
        Some(&bin),
        "org3@example.kz",
        &challenge,
    );
    let request = json!({ "kind": "legal-entity", "iin": iin, "bin": bin, "email": "org3@example.kz", "password": PASSWORD,
        "password_repeat": PASSWORD, "agreement_accepted": true, "challenge": challenge, "cms": t.sign(&employee, &statement) });
    let (status, body) = t.post("/api/v1/registration", request);
    assert_eq!((status, body["message"].as_str().unwrap()), (200, messages::REGISTERED), "{body}");
    let account = t.portal.store.account_by_login(&bin).unwrap().unwrap();
    assert_eq!(
        (account.kind, account.iin.as_str(), account.bin.as_deref()),
        (AccountKind::LegalEntity, iin.as_str(), Some(bin.as_str()))
    );
    assert!(account.password_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_eq!(t.login_password(&bin, PASSWORD).0, 200);
    // Login by EDS to the entity's account: the head who registered it, and any of its people
    // whose certificate carries the BIN and an organisation role; not another entity's.
    let (status, grant) = t.login_eds(&employee);
    assert_eq!((status, grant["login"].as_str()), (200, Some(bin.as_str())), "{grant}");
    let colleague = t.holder("staff3", ProfileId::LegalAuth, fixtures::employee(31, 3), vec![Role::Employee]);
    let (status, grant) = t.login_eds(&colleague);
    assert_eq!((status, grant["login"].as_str()), (200, Some(bin.as_str())), "{grant}");
    let outsider = t.holder("staff4", ProfileId::LegalAuth, fixtures::employee(32, 4), vec![Role::Employee]);
    let (status, body) = t.login_eds(&outsider);
    assert_eq!((status, body["error"].as_str()), (401, Some("no-account")), "{body}");
    // And the statement endpoint gives exactly the bytes that were signed.
    let (status, body) = t.post(
        "/api/v1/registration/statement",
        json!({ "kind": "legal-entity", "iin": iin, "bin": bin, "email": "org3@example.kz", "challenge": challenge }),
    );
    assert_eq!(status, 200);
    assert_eq!(
        base64::engine::general_purpose::STANDARD.decode(body["statement"].as_str().unwrap()).unwrap(),
        statement
    );
}

#[test]
fn every_registry_refusal_has_the_documents_text_and_creates_nothing() {
    let t = TestPortal::start();
    let mut cases = vec![
        (DECEASED, "registry-deceased", messages::DECEASED.to_owned()),
        (SPECIAL_REGISTER, "registry-special-register", messages::SPECIAL_REGISTER.to_owned()),
        (NOT_IN_REGISTRY, "registry-no-record", messages::NO_RECORD.to_owned()),
    ];
    for code in 1..=9u8 {
        cases.push((excluded(code), "registry-excluded", messages::excluded(code)));
    }
    for (n, kind, message) in cases {
        let holder = t.person_auth(n);
        let (status, body) = t.post("/api/v1/registration", t.registration(n, &holder, PASSWORD));
        assert_eq!(
            (status, body["error"].as_str().unwrap(), body["message"].as_str().unwrap()),
            (403, kind, message.as_str()),
            "person {n}"
        );
        assert!(t.portal.store.account_by_login(&fixtures::person(n).iin.to_string()).unwrap().is_none());
    }
    // The texts themselves, word for word.
    assert!(messages::DECEASED.ends_with("в ЦОН (код:9)"));
    assert!(messages::excluded(1).ends_with("в ЦОН (код: 1)"));
    assert!(messages::excluded(9).ends_with("в ЦОН (код: 9 - признак исключения ИИН)"));
    assert!(
        messages::SPECIAL_REGISTER.ends_with("Генеральной прокуратуры Республики Казахстан <http://www.pravstat.kz>")
    );
}

#[test]
fn bad_input_gets_a_clear_error_changes_nothing_and_the_server_keeps_serving() {
    let t = TestPortal::start();
    let n = 21;
    let iin = fixtures::person(n).iin.to_string();
    let holder = t.person_auth(n);
    let expect = |body: serde_json::Value, status: u16, kind: &str| {
        let (s, b) = t.post("/api/v1/registration", body);
        assert_eq!((s, b["error"].as_str().unwrap_or_default()), (status, kind), "{b}");
    };
    let good = t.registration(n, &holder, PASSWORD);
    let with = |field: &str, value: serde_json::Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    expect(with("cms", json!("bm90IGEgQ01T")), 400, "malformed-cms");
    let der = base64::engine::general_purpose::STANDARD.decode(good["cms"].as_str().unwrap()).unwrap();
    let truncated = base64::engine::general_purpose::STANDARD.encode(&der[..der.len() / 2]);
    expect(with("cms", json!(truncated)), 400, "malformed-cms");
    expect(with("email", json!("other@example.kz")), 401, "signature-invalid");
    expect(with("password_repeat", json!("Другой7Пароль")), 400, "password-mismatch");
    expect(with("password", json!("Ab1")).clone(), 400, "password-mismatch");
    let short = json!("Ab1");
    let mut body = with("password", short.clone());
    body["password_repeat"] = short;
    expect(body, 400, "password-too-short");
    let mut body = with("password", json!("Password123"));
    body["password_repeat"] = json!("Password123");
    expect(body, 400, "password-common");
    expect(with("iin", json!("123456789012")), 400, "invalid-iin");
    expect(with("email", json!("not-an-email")), 400, "invalid-email");
    expect(with("agreement_accepted", json!(false)), 400, "agreement-not-accepted");
    let (s, b) = t.post("/api/v1/registration", json!({ "kind": "individual" }));
    assert_eq!((s, b["error"].as_str().unwrap()), (400, "malformed-json"));
    // A SIGN certificate is not an AUTH key.
    let sign = t.holder("sign21", ProfileId::IndividualSign, fixtures::individual(n), vec![]);
    expect(t.registration(n, &sign, PASSWORD), 401, "signature-invalid");
    // Another person's certificate for this IIN.
    let other = t.person_auth(22);
    expect(t.registration(n, &other, PASSWORD), 401, "signature-invalid");
    // Untrusted: a certificate of another CA.
    let stranger = fixtures::TestCa::new(hsm::KeyAlgorithm::P256, hsm::KeyAlgorithm::P256);
    let key = hsm::SoftwareKey::generate(hsm::KeyAlgorithm::P256).unwrap();
    let clock = FixedClock(t.ca_now() - Duration::minutes(5));
    let cert = stranger
        .issuer(&clock)
        .issue(&IssuanceRequest {
            profile: ProfileId::IndividualAuth,
            subject: fixtures::individual(n),
            roles: vec![],
            public_key: key.public_key().clone(),
        })
        .unwrap();
    let untrusted = holder_files(&stranger, t.dir.path(), "stranger", key, cert);
    expect(t.registration(n, &untrusted, PASSWORD), 401, "signature-invalid");
    // Expired.
    let key = hsm::SoftwareKey::generate(hsm::KeyAlgorithm::P256).unwrap();
    let past = FixedClock(t.ca_now() - Duration::minutes(9));
    let cert = t
        .issuer_at(&past, Duration::minutes(2))
        .issue(&IssuanceRequest {
            profile: ProfileId::IndividualAuth,
            subject: fixtures::individual(n),
            roles: vec![],
            public_key: key.public_key().clone(),
        })
        .unwrap();
    let expired = holder_files(&t.ca, t.dir.path(), "expired", key, cert);
    expect(t.registration(n, &expired, PASSWORD), 401, "signature-invalid");
    // Revoked (the CA's next CRL lists it).
    let revoked = t.person_auth(n);
    t.publish_crls(&[&revoked.cert.serial]);
    expect(t.registration(n, &revoked, PASSWORD), 401, "signature-invalid");
    // A replayed challenge: the first use registers, the second finds it used (the account
    // check comes after).
    assert!(t.portal.store.account_by_login(&iin).unwrap().is_none(), "nothing was created so far");
    let (s, b) = t.post("/api/v1/registration", good.clone());
    assert_eq!(s, 200, "{b}");
    expect(good, 401, "challenge-replayed");
    // An expired challenge.
    let late = t.registration(23, &t.person_auth(23), PASSWORD);
    t.clock.advance(Duration::minutes(6));
    expect(late, 401, "challenge-expired");
    assert_eq!(ca_tests::http(t.port, "GET", "/healthz", &[], b"").0, 200, "still serving");
}
