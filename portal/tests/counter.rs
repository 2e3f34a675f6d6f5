//! Counter registration: a request signed with a workstation certificate our CA issued, the
//! portal's answer signed by its own EDS and checked by `openssl cms -verify` against our CA
//! chain; an unlisted workstation gets 403, a replay is refused; and the workstation command
//! `portal-server counter-register` end to end.

mod common;

use base64::Engine;
use ca_tests::openssl;
use common::{Holder, TestPortal};
use portal::account::counter::{Consents, CounterResponse};
use portal::account::workstation::{self, Applicant};
use portal::account::{AccountState, CreatedBy};
use serde_json::json;

fn applicant(n: u32) -> Applicant {
    let p = fixtures::person(n);
    Applicant {
        iin: p.iin.to_string(),
        surname: p.surname,
        given_name: p.given_name,
        patronymic: p.patronymic,
        email: format!("person{n}@example.kz"),
        phone: "+77010000050".into(),
        consents: Consents { user_agreement: true, personal_data: true },
    }
}

fn send(
    t: &TestPortal,
    by: &Holder,
    a: &Applicant,
) -> (u16, serde_json::Value, portal::account::counter::CounterRequest) {
    let now = ca_core::clock::Clock::now(t.clock.as_ref());
    let request = workstation::request(a, now).unwrap();
    let signed = workstation::sign_request(
        &request,
        &by.key,
        &by.cert.der,
        std::slice::from_ref(&t.ca.issuing.certificate_der),
        now,
    )
    .unwrap();
    let (status, body) = t.post(
        "/api/v1/counter/registrations",
        json!({ "cms": base64::engine::general_purpose::STANDARD.encode(signed) }),
    );
    (status, body, request)
}

#[test]
fn a_workstation_registers_a_person_and_openssl_verifies_the_portals_signed_answer() {
    let t = TestPortal::start();
    let (status, body, request) = send(&t, &t.workstation, &applicant(50));
    assert_eq!(status, 200, "{body}");
    let der = base64::engine::general_purpose::STANDARD.decode(body["cms"].as_str().unwrap()).unwrap();
    let answer = t.dir.path().join("answer.cms");
    let content = t.dir.path().join("answer.json");
    std::fs::write(&answer, &der).unwrap();
    let out = openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        answer.to_str().unwrap(),
        "-CAfile",
        t.root_pem.to_str().unwrap(),
        "-certfile",
        t.issuing_pem.to_str().unwrap(),
        "-purpose",
        "any",
        "-out",
        content.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "openssl cms -verify: {}", String::from_utf8_lossy(&out.stderr));
    let response: CounterResponse = serde_json::from_slice(&std::fs::read(&content).unwrap()).unwrap();
    assert_eq!(
        (response.request_id.as_str(), response.login.as_str(), response.outcome.as_str()),
        (request.request_id.as_str(), request.iin.as_str(), "created")
    );
    // The signer is the portal's system certificate.
    let signer = t.dir.path().join("signer.pem");
    let out = openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        answer.to_str().unwrap(),
        "-noverify",
        "-signer",
        signer.to_str().unwrap(),
        "-out",
        "/dev/null",
    ]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(&signer).unwrap(), std::fs::read(&t.portal_signer.cert_pem).unwrap());
    // Our own check on the workstation's side agrees.
    workstation::verify_response(&t.portal.trust, &request, &der, ca_core::clock::Clock::now(t.clock.as_ref()))
        .unwrap();

    let account = t.portal.store.account_by_login(&request.iin).unwrap().unwrap();
    assert_eq!((account.state, account.created_by), (AccountState::MustChangePassword, CreatedBy::Counter));
    let (status, session) = t.login_password(&request.iin, &response.password);
    assert_eq!((status, session["must_change_password"].as_bool()), (200, Some(true)));

    // Again for the same person: the password is regenerated.
    let (status, body, again) = send(&t, &t.workstation, &applicant(50));
    assert_eq!(status, 200, "{body}");
    let der = base64::engine::general_purpose::STANDARD.decode(body["cms"].as_str().unwrap()).unwrap();
    assert!(
        workstation::verify_response(&t.portal.trust, &request, &der, ca_core::clock::Clock::now(t.clock.as_ref()))
            .is_err(),
        "an answer to another request"
    );
    let second =
        workstation::verify_response(&t.portal.trust, &again, &der, ca_core::clock::Clock::now(t.clock.as_ref()))
            .unwrap()
            .0;
    assert_eq!(second.outcome, "password-regenerated");
    assert_ne!(second.password, response.password);
    assert_eq!(t.login_password(&request.iin, &response.password).0, 401);
}

#[test]
fn an_unlisted_workstation_gets_403_a_replay_is_refused_and_the_registry_is_asked() {
    let t = TestPortal::start();
    // An employee of another organisation, and an individual: not on the allow-list.
    let other = t.holder(
        "other-org",
        ca_core::profile::ProfileId::LegalSign,
        fixtures::employee(202, 5),
        vec![ca_core::profile::Role::Employee],
    );
    let (status, body, _) = send(&t, &other, &applicant(51));
    assert_eq!((status, body["error"].as_str().unwrap()), (403, "workstation-not-authorised"));
    let person =
        t.holder("person-sign", ca_core::profile::ProfileId::IndividualSign, fixtures::individual(203), vec![]);
    assert_eq!(send(&t, &person, &applicant(51)).0, 403);
    assert!(t.portal.store.account_by_login(&fixtures::person(51).iin.to_string()).unwrap().is_none());

    // A replay of the very same signed request.
    let now = ca_core::clock::Clock::now(t.clock.as_ref());
    let request = workstation::request(&applicant(52), now).unwrap();
    let w = &t.workstation;
    let signed = workstation::sign_request(
        &request,
        &w.key,
        &w.cert.der,
        std::slice::from_ref(&t.ca.issuing.certificate_der),
        now,
    )
    .unwrap();
    let body = json!({ "cms": base64::engine::general_purpose::STANDARD.encode(&signed) });
    assert_eq!(t.post("/api/v1/counter/registrations", body.clone()).0, 200);
    let (status, answer) = t.post("/api/v1/counter/registrations", body);
    assert_eq!((status, answer["error"].as_str().unwrap()), (403, "request-replayed"));
    // A stale request.
    let old = workstation::request(&applicant(53), now - time::Duration::minutes(11)).unwrap();
    let signed = workstation::sign_request(&old, &w.key, &w.cert.der, &[], now).unwrap();
    let (status, answer) = t.post(
        "/api/v1/counter/registrations",
        json!({ "cms": base64::engine::general_purpose::STANDARD.encode(&signed) }),
    );
    assert_eq!((status, answer["error"].as_str().unwrap()), (400, "request-stale"));
    // The registry's refusal, with the document's text.
    let (status, answer, _) = send(&t, w, &applicant(fixtures::registry::DECEASED));
    assert_eq!((status, answer["message"].as_str().unwrap()), (403, portal::messages::DECEASED));
    // Names that are not the registry's.
    let mut wrong = applicant(54);
    wrong.surname = "Другой".into();
    assert_eq!(send(&t, w, &wrong).1["error"], "registry-mismatch");
    // Garbage.
    let (status, answer) = t.post("/api/v1/counter/registrations", json!({ "cms": "AAAA" }));
    assert_eq!((status, answer["error"].as_str().unwrap()), (400, "malformed-cms"));
}

#[test]
fn the_counter_register_command_signs_sends_verifies_and_prints_the_envelope() {
    let t = TestPortal::start();
    let p12 = t.workstation.p12.clone();
    let run = |n: u32, p12: &std::path::Path| {
        let a = applicant(n);
        std::process::Command::new(env!("CARGO_BIN_EXE_portal-server"))
            .env("WORKSTATION_P12_PASSWORD", "pw")
            .args([
                "counter-register",
                "--portal",
                &format!("http://127.0.0.1:{}", t.port),
                "--p12",
                p12.to_str().unwrap(),
            ])
            .args(["--anchor", t.root_pem.to_str().unwrap(), "--intermediate", t.issuing_pem.to_str().unwrap()])
            .args([
                "--crl-dir",
                t.crl_dir.to_str().unwrap(),
                "--iin",
                &a.iin,
                "--surname",
                &a.surname,
                "--given-name",
                &a.given_name,
            ])
            .args(["--email", &a.email, "--phone", &a.phone, "--user-agreement", "--personal-data", "--json"])
            .output()
            .unwrap()
    };
    let out = run(55, &p12);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let iin = fixtures::person(55).iin.to_string();
    assert_eq!(printed["login"], iin.as_str());
    assert_eq!(t.login_password(&iin, printed["password"].as_str().unwrap()).0, 200);
    // An unlisted workstation: refused, exit code 8, nothing printed.
    let other = t.holder(
        "cli-other",
        ca_core::profile::ProfileId::LegalSign,
        fixtures::employee(204, 6),
        vec![ca_core::profile::Role::Employee],
    );
    let other_p12 = other.p12.clone();
    let out = run(56, &other_p12);
    assert_eq!(out.status.code(), Some(8), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an authorised counter workstation"));
    drop(other);
}

/// Document 002's counter flow registers a person or gives a new password; it says nothing of
/// lifting a block, which stays an administrator's decision: the request is refused and the
/// account keeps its state and its password.
#[test]
fn a_counter_registration_does_not_unblock_a_blocked_account() {
    let t = TestPortal::start();
    let (status, body, request) = send(&t, &t.workstation, &applicant(51));
    assert_eq!(status, 200, "{body}");
    let before = t.portal.store.account_by_login(&request.iin).unwrap().unwrap();
    // Blocked by an administrator (no API for it yet: straight in the database).
    let db = rusqlite::Connection::open(t.config.store.sqlite_file().unwrap()).unwrap();
    db.execute("UPDATE accounts SET state = 'blocked' WHERE login = ?1", [&request.iin]).unwrap();
    let (status, body, _) = send(&t, &t.workstation, &applicant(51));
    assert_eq!((status, body["error"].as_str()), (403, Some("account-blocked")), "{body}");
    let after = t.portal.store.account_by_login(&request.iin).unwrap().unwrap();
    assert_eq!(after.state, AccountState::Blocked);
    assert_eq!(after.password_hash, before.password_hash, "the password is not replaced");
}
