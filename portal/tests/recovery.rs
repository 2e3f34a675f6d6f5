//! Password recovery against a running portal-server: by EDS (AUTH or SIGN key of the
//! account's IIN) and by email (a registry match mails a generated password through the
//! outbox to the maildir; it must be changed at the next login); a mismatch changes nothing
//! and answers the same.

mod common;

use common::TestPortal;
use portal::account::AccountState;
use portal::messages;
use serde_json::{json, Value};

const PASSWORD: &str = "Степной7Ветер";
const NEW: &str = "Горный9Ручей";

#[test]
fn recovery_by_eds_with_the_sign_key_sets_the_new_password_and_ends_sessions() {
    let t = TestPortal::start();
    t.register_person(40, PASSWORD);
    let iin = fixtures::person(40).iin.to_string();
    let (_, session) = t.login_password(&iin, PASSWORD);
    let sign = t.holder("sign40", ca_core::profile::ProfileId::IndividualSign, fixtures::individual(40), vec![]);
    let request = |holder: &common::Holder, login: &str| {
        let challenge = t.challenge();
        let statement = portal::account::recovery::statement(login, &challenge);
        json!({ "login": login, "new_password": NEW, "new_password_repeat": NEW, "challenge": challenge, "cms": t.sign(holder, &statement) })
    };
    // Another person's signature recovers nothing.
    let other = t.person_auth(41);
    let (status, body) = t.post("/api/v1/recovery/eds", request(&other, &iin));
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "signature-invalid"));
    assert_eq!(t.login_password(&iin, PASSWORD).0, 200, "unchanged");
    let (status, body) = t.post("/api/v1/recovery/eds", request(&sign, &iin));
    assert_eq!(status, 200, "{body}");
    assert_eq!(t.login_password(&iin, PASSWORD).0, 401);
    let (status, body) = t.login_password(&iin, NEW);
    assert_eq!((status, body["must_change_password"].as_bool()), (200, Some(false)));
    let old = session["token"].as_str().unwrap();
    assert_eq!(t.call("GET", "/api/v1/sessions", Some(old), &Value::Null).0, 401, "sessions ended");
    let journal = t.portal.store.failed_attempts(Some(&iin), 10).unwrap();
    assert!(journal.iter().any(|a| a.method == "recovery-eds" && a.reason == "signature-invalid"));
}

#[test]
fn recovery_by_email_mails_a_generated_password_that_must_be_changed_and_a_mismatch_changes_nothing() {
    let t = TestPortal::start();
    t.register_person(42, PASSWORD);
    let iin = fixtures::person(42).iin.to_string();
    let record = fixtures::registry::person_record(42);
    let before = t.portal.store.account_by_login(&iin).unwrap().unwrap();
    // Wrong document number, wrong date, an IIN without account: the same answer, nothing changes.
    for (number, date, who) in [
        ("000000000", record.document_issued.to_string(), iin.clone()),
        (record.document_number.as_str(), "2001-01-01".to_owned(), iin.clone()),
        (record.document_number.as_str(), record.document_issued.to_string(), fixtures::person(43).iin.to_string()),
    ] {
        let (status, body) =
            t.post("/api/v1/recovery/email", json!({ "iin": who, "document_number": number, "document_issued": date }));
        assert_eq!((status, body["message"].as_str().unwrap()), (202, messages::RECOVERY_EMAIL_SENT));
    }
    assert_eq!(t.portal.store.account_by_login(&iin).unwrap().unwrap(), before);
    assert!(t.mail().is_empty());
    assert_eq!(t.login_password(&iin, PASSWORD).0, 200);
    // Locked out by ten wrong passwords: the recovery lifts the lock.
    for _ in 0..10 {
        t.login_password(&iin, "Неверный1пароль");
    }
    assert_eq!(t.login_password(&iin, PASSWORD).0, 429);

    let (status, body) = t.post(
        "/api/v1/recovery/email",
        json!({ "iin": iin, "document_number": record.document_number, "document_issued": record.document_issued.to_string() }),
    );
    assert_eq!((status, body["message"].as_str().unwrap()), (202, messages::RECOVERY_EMAIL_SENT));
    let mail = t.mail();
    assert_eq!(mail.len(), 1);
    let generated = mail[0].lines().find_map(|l| l.strip_prefix("Новый пароль: ")).unwrap().trim().to_owned();
    assert_eq!(generated.len(), 12);
    let raw = std::fs::read_dir(t.maildir.join("new")).unwrap().next().unwrap().unwrap().path();
    assert!(std::fs::read_to_string(raw).unwrap().contains("To: person42@example.kz"));
    assert_eq!(t.portal.store.account_by_login(&iin).unwrap().unwrap().state, AccountState::MustChangePassword);
    assert_eq!(t.login_password(&iin, PASSWORD).0, 401, "the old password is gone");

    // Must change: the session can do nothing but change the password.
    let (status, session) = t.login_password(&iin, &generated);
    assert_eq!((status, session["must_change_password"].as_bool()), (200, Some(true)));
    let token = session["token"].as_str().unwrap();
    let (status, body) = t.call("GET", "/api/v1/sessions", Some(token), &Value::Null);
    assert_eq!((status, body["error"].as_str().unwrap()), (403, "password-change-required"));
    let change = |current: &str, new: &str| {
        t.call(
            "POST",
            "/api/v1/password/change",
            Some(token),
            &json!({ "current_password": current, "new_password": new, "new_password_repeat": new }),
        )
    };
    assert_eq!(change(&generated, &generated).0, 400, "the same password again");
    assert_eq!(change("Неверный1пароль", NEW).0, 401);
    assert_eq!(change(&generated, NEW).0, 200);
    assert_eq!(t.call("GET", "/api/v1/sessions", Some(token), &Value::Null).0, 200);
    assert_eq!(t.login_password(&iin, NEW).1["must_change_password"], false);
    // The delivered message's body (the password) is no longer in the outbox.
    assert!(t
        .portal
        .store
        .claim_mail(ca_core::clock::Clock::now(t.clock.as_ref()), time::Duration::minutes(5))
        .unwrap()
        .is_empty());
}

#[test]
fn a_legal_entity_recovers_by_bin_and_registration_number() {
    let t = TestPortal::start();
    let org = fixtures::organisation(4);
    let head = fixtures::registry::head_of(4);
    let holder = t.holder(
        "head4",
        ca_core::profile::ProfileId::LegalAuth,
        fixtures::employee(head, 4),
        vec![ca_core::profile::Role::FirstHead],
    );
    let (iin, bin) = (fixtures::person(head).iin.to_string(), org.bin.to_string());
    let challenge = t.challenge();
    let statement = portal::account::registration::statement(
        portal::account::AccountKind::LegalEntity,
        &iin,
        Some(&bin),
        "org4@example.kz",
        &challenge,
    );
    let (status, body) = t.post("/api/v1/registration", json!({ "kind": "legal-entity", "iin": iin, "bin": bin, "email": "org4@example.kz",
        "password": PASSWORD, "password_repeat": PASSWORD, "agreement_accepted": true, "challenge": challenge, "cms": t.sign(&holder, &statement) }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(t.post("/api/v1/recovery/email", json!({ "bin": bin, "registration_number": "RC-999999" })).0, 202);
    assert!(t.mail().is_empty());
    let number = fixtures::registry::entity_record(4).registration_number;
    assert_eq!(t.post("/api/v1/recovery/email", json!({ "bin": bin, "registration_number": number })).0, 202);
    assert_eq!(t.mail().len(), 1);
    assert_eq!(t.portal.store.account_by_login(&bin).unwrap().unwrap().state, AccountState::MustChangePassword);
    let (status, body) = t.post("/api/v1/recovery/email", json!({ "bin": "12" }));
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid-bin"));
}
