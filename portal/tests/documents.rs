//! Digital documents over HTTP (document 003): an authority submits a document signed with
//! `openssl cms -sign` by a certificate our CA issued; the portal time-stamps it at a loopback
//! `openssl ts -reply` TSA and stores it; `openssl cms -verify` accepts the stored signature;
//! the subject sees it with its report; versions; representatives until 18; open access by QR
//! token and short code with view marks in both cabinets, expiry, withdrawal and the limits on
//! guessing; an integrated system gets a document only after the subject's OTP consent.

mod common;
#[path = "support/documents.rs"]
mod support;

use base64::Engine;
use ca_tests::openssl;
use portal::documents::signed_request::canonical;
use portal::documents::systems::{ConsentRelay, DocumentRequest};
use serde_json::{json, Value};
use support::{registry_with_child, request_id, DocsPortal};
use time::Duration;

fn iin(n: u32) -> String {
    fixtures::person(n).iin.to_string()
}

fn events(d: &DocsPortal, token: &str) -> Vec<Value> {
    let (status, body) = d.get("/api/v1/documents/history", token);
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().unwrap().clone()
}

fn journal_outcomes(d: &DocsPortal, action: &str) -> Vec<String> {
    d.t.portal
        .store
        .document_events(1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.outcome)
        .collect()
}

#[test]
fn an_authority_submits_a_document_openssl_verifies_it_and_the_subject_sees_it_with_its_report() {
    let d = DocsPortal::start(|_| {});
    let subject = 70;
    let id = d.submit_ok(&iin(subject), "identity-card", "N-0001");

    // The stored signature (the authority's, with the time stamp added unsigned) verifies with
    // openssl and gives back the canonical document the authority signed.
    let stored = d.t.portal.store.document(id).unwrap().unwrap();
    let cms = d.t.dir.path().join("stored.cms");
    let out_file = d.t.dir.path().join("stored.json");
    std::fs::write(&cms, &stored.cms).unwrap();
    let out = openssl(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        cms.to_str().unwrap(),
        "-CAfile",
        d.t.root_pem.to_str().unwrap(),
        "-certfile",
        d.t.issuing_pem.to_str().unwrap(),
        "-purpose",
        "any",
        "-out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "openssl cms -verify: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&out_file).unwrap(), stored.content);
    // The token is an RFC 3161 token of our TSA over the authority's signature value, as
    // `openssl ts -verify` sees it.
    let token = d.t.dir.path().join("token.der");
    std::fs::write(&token, &stored.timestamp_token).unwrap();
    let untrusted = d.t.dir.path().join("untrusted.pem");
    let mut pems = std::fs::read(&d.t.issuing_pem).unwrap();
    pems.extend(std::fs::read(&d.tsa.cert_pem).unwrap());
    std::fs::write(&untrusted, pems).unwrap();
    let signature = portal::documents::timestamp::signature_value(&stored.cms).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&signature));
    let out = openssl(&[
        "ts",
        "-verify",
        "-in",
        token.to_str().unwrap(),
        "-token_in",
        "-digest",
        &digest,
        "-CAfile",
        d.t.root_pem.to_str().unwrap(),
        "-untrusted",
        untrusted.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "openssl ts -verify: {}", String::from_utf8_lossy(&out.stderr));

    // The subject sees it with its verification report.
    let me = d.person_session(subject);
    let (status, body) = d.get("/api/v1/documents", &me);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["documents"].as_array().unwrap().len(), 1, "{body}");
    let (status, doc) = d.get(&format!("/api/v1/documents/{id}"), &me);
    assert_eq!(status, 200, "{doc}");
    let report = &doc["report"];
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["timestamp"]["valid"], true, "{report}");
    assert_eq!(report["timestamp"]["tsa"], "C=KZ,CN=TEST TSA", "{report}");
    assert_eq!(report["validation_time_source"], "timestamp", "{report}");
    assert_eq!(report["authority"]["name"], "Министерство внутренних дел");
    assert_eq!(report["authority"]["signer_is_authority"], true);
    assert_eq!(report["signer"]["bin"], support::authority_bin());
    assert_eq!(doc["data"]["number"], "N-0001");
    assert_eq!(doc["standing"], "subject");

    // A newer document of the same type replaces it in the view; history keeps both.
    let newer = d.submit_ok(&iin(subject), "identity-card", "N-0002");
    let (_, body) = d.get("/api/v1/documents", &me);
    let list = body["documents"].as_array().unwrap();
    assert_eq!((list.len(), list[0]["id"].as_i64(), list[0]["version"].as_i64()), (1, Some(newer), Some(2)), "{body}");
    let (_, body) = d.get("/api/v1/documents?history=true", &me);
    assert_eq!(body["documents"].as_array().unwrap().len(), 2, "{body}");
    let (_, old) = d.get(&format!("/api/v1/documents/{id}"), &me);
    assert_eq!(old["current"], false);

    // Another person does not see it.
    let other = d.person_session(71);
    let (status, body) = d.get(&format!("/api/v1/documents/{id}"), &other);
    assert_eq!((status, body["error"].as_str()), (404, Some("document-not-found")), "{body}");
}

#[test]
fn a_document_stamped_by_the_products_own_tsa_has_a_valid_report() {
    // The TSA that `ca tsa init` + ca-server's `POST /tsa` run: ca_core::tsa with a certificate
    // of the tsa profile issued by our CA.
    let d = DocsPortal::start(|_| {});
    let own = d.t.holder(
        "own-tsa",
        ca_core::profile::ProfileId::TimeStamping,
        ca_core::identity::Subject::Service { common_name: "OWN TSA".into(), organisation: None },
        vec![],
    );
    let authority = ca_core::tsa::TimeStampAuthority::new(
        &own.cert.der,
        std::sync::Arc::new(own.key),
        d.t.clock.clone(),
        ca_core::tsa::TsaSettings::default(),
    )
    .unwrap();
    *d.slot.ours.lock().unwrap() = Some(std::sync::Arc::new(authority));

    let subject = 72;
    let id = d.submit_ok(&iin(subject), "identity-card", "N-0100");
    let me = d.person_session(subject);
    let (status, doc) = d.get(&format!("/api/v1/documents/{id}"), &me);
    assert_eq!(status, 200, "{doc}");
    let report = &doc["report"];
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["timestamp"]["valid"], true, "{report}");
    assert_eq!(report["timestamp"]["tsa"], "C=KZ,CN=OWN TSA", "{report}");
    assert_eq!(report["validation_time_source"], "timestamp", "{report}");
}

#[test]
fn submissions_outside_the_allow_list_or_replayed_are_refused_and_journaled() {
    let d = DocsPortal::start(|_| {});
    let subject = iin(72);
    // A type the authority may not issue.
    let (status, body) = d.submit(&d.signed_document(&d.authority, &subject, "driving-licence", "D-1"));
    assert_eq!((status, body["error"].as_str()), (403, Some("document-type-not-allowed")), "{body}");
    // Signed by an organisation that is not an authority (the integrated system's certificate).
    let (status, body) = d.submit(&d.signed_document(&d.system, &subject, "identity-card", "N-9"));
    assert_eq!((status, body["error"].as_str()), (403, Some("authority-not-authorised")), "{body}");
    // A signature that does not verify: the content changed after signing.
    let cms = d.signed_document(&d.authority, &subject, "identity-card", "N-10");
    let mut der = base64::engine::general_purpose::STANDARD.decode(&cms).unwrap();
    let at = der.windows(6).position(|w| w == b"N-10\",").unwrap();
    der[at + 3] = b'1';
    let (status, body) = d.submit(&base64::engine::general_purpose::STANDARD.encode(der));
    assert_eq!((status, body["error"].as_str()), (401, Some("signature-invalid")), "{body}");
    // Non-canonical bytes (pretty-printed) are refused.
    let doc = d.document(&subject, "identity-card", "N-11");
    let pretty = serde_json::to_vec_pretty(&doc).unwrap();
    let (status, body) = d.submit(&d.t.sign(&d.authority, &pretty));
    assert_eq!((status, body["error"].as_str()), (400, Some("non-canonical-request")), "{body}");
    // A replay of an accepted submission.
    let cms = d.signed_document(&d.authority, &subject, "identity-card", "N-12");
    assert_eq!(d.submit(&cms).0, 201);
    let (status, body) = d.submit(&cms);
    assert_eq!((status, body["error"].as_str()), (403, Some("request-replayed")), "{body}");
    // Nothing else was stored; every attempt is in the journal.
    assert_eq!(d.t.portal.store.documents_of(&subject, true).unwrap().len(), 1);
    let outcomes = journal_outcomes(&d, "submit");
    for kind in [
        "document-type-not-allowed",
        "authority-not-authorised",
        "signature-invalid",
        "non-canonical-request",
        "request-replayed",
    ] {
        assert!(outcomes.iter().any(|o| o == kind), "{kind} not journaled: {outcomes:?}");
    }
}

#[test]
fn a_parent_sees_a_childs_documents_until_the_child_turns_18() {
    let now = fixtures::fixed_now().0;
    let kz_today = (now + Duration::hours(5)).date();
    // The child turns 18 three days from now (Kazakhstan's date).
    let adult = kz_today + Duration::days(3);
    let born = adult.replace_year(adult.year() - 18).unwrap();
    let parent = 73;
    let (registry, child) = registry_with_child(parent, born);
    let d = DocsPortal::start(|c| c.registry.csv = registry.path().to_path_buf());
    let id = d.submit_ok(&child, "birth-certificate", "B-1");
    let me = d.person_session(parent);
    let (_, body) = d.get("/api/v1/documents", &me);
    let list = body["documents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["standing"], json!({ "representative": "parent" }), "{body}");
    let (status, _) = d.get(&format!("/api/v1/documents/{id}"), &me);
    assert_eq!(status, 200);
    // The parent may open access to the minor's document.
    let (status, body) = d.post_as(&format!("/api/v1/documents/{id}/access"), &me, Value::Null);
    assert_eq!(status, 201, "{body}");

    // The day the child turns 18 the document is no longer the parent's to see.
    d.t.clock.advance(Duration::days(3));
    d.t.publish_crls(&[]);
    let me = d.login(parent);
    let (_, body) = d.get("/api/v1/documents", &me);
    assert_eq!(body["documents"].as_array().unwrap().len(), 0, "{body}");
    let (status, body) = d.get(&format!("/api/v1/documents/{id}"), &me);
    assert_eq!((status, body["error"].as_str()), (404, Some("document-not-found")), "{body}");
}

#[test]
fn open_access_by_qr_token_and_short_code_marks_both_cabinets_expires_and_is_withdrawn() {
    let d = DocsPortal::start(|_| {});
    let (subject, viewer) = (74, 75);
    let id = d.submit_ok(&iin(subject), "identity-card", "N-20");
    let me = d.person_session(subject);
    let third = d.person_session(viewer);

    let (status, grant) = d.post_as(&format!("/api/v1/documents/{id}/access"), &me, Value::Null);
    assert_eq!(status, 201, "{grant}");
    let (token, code) = (grant["token"].as_str().unwrap().to_owned(), grant["short_code"].as_str().unwrap().to_owned());
    assert_eq!(code.len(), 6);
    assert_eq!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32, "256-bit token");
    assert!(grant["url"].as_str().unwrap().ends_with(&token));
    assert!(grant["qr_svg"].as_str().unwrap().contains("<svg"));
    let png = base64::engine::general_purpose::STANDARD.decode(grant["qr_png"].as_str().unwrap()).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");

    // Not logged in: refused.
    let (status, _) = d.t.post("/api/v1/documents/open", json!({ "token": token }));
    assert_eq!(status, 401);
    // The third party resolves the token and the code.
    for body in [json!({ "token": token }), json!({ "code": code })] {
        let (status, doc) = d.post_as("/api/v1/documents/open", &third, body);
        assert_eq!(status, 200, "{doc}");
        assert_eq!((doc["id"].as_i64(), doc["standing"].as_str()), (Some(id), Some("third-party")));
        assert_eq!(doc["report"]["valid"], true, "{doc}");
    }
    // View marks in both cabinets, by QR and by code.
    for token in [&me, &third] {
        let views: Vec<Value> = events(&d, token).into_iter().filter(|e| e["action"] == "view").collect();
        assert_eq!(views.len(), 2, "{views:?}");
        assert!(views.iter().all(|e| e["actor"] == iin(viewer).as_str() && e["subject_iin"] == iin(subject).as_str()));
        let mut channels: Vec<&str> = views.iter().map(|e| e["channel"].as_str().unwrap()).collect();
        channels.sort();
        assert_eq!(channels, ["code", "qr"]);
    }
    assert!(events(&d, &me).iter().any(|e| e["action"] == "access-opened"), "consent recorded");

    // Expired: refused.
    d.t.clock.advance(Duration::minutes(5) + Duration::seconds(1));
    let (me, third) = (d.login(subject), d.login(viewer));
    let (status, body) = d.post_as("/api/v1/documents/open", &third, json!({ "token": token }));
    assert_eq!((status, body["error"].as_str()), (403, Some("access-expired")), "{body}");
    let (status, body) = d.post_as("/api/v1/documents/open", &third, json!({ "code": code }));
    assert_eq!((status, body["error"].as_str()), (404, Some("access-code-invalid")), "{body}");

    // Withdrawn: refused; withdrawing again is refused.
    let (_, grant) = d.post_as(&format!("/api/v1/documents/{id}/access"), &me, Value::Null);
    let (token, code, gid) = (
        grant["token"].as_str().unwrap().to_owned(),
        grant["short_code"].as_str().unwrap().to_owned(),
        grant["grant_id"].as_i64().unwrap(),
    );
    let (status, _) = d.t.call("DELETE", &format!("/api/v1/documents/access/{gid}"), Some(&third), &Value::Null);
    assert_eq!(status, 404, "only the one who opened it withdraws");
    let (status, body) = d.t.call("DELETE", &format!("/api/v1/documents/access/{gid}"), Some(&me), &Value::Null);
    assert_eq!(status, 204, "{body}");
    let (status, body) = d.post_as("/api/v1/documents/open", &third, json!({ "token": token }));
    assert_eq!((status, body["error"].as_str()), (403, Some("access-withdrawn")), "{body}");
    let (status, body) = d.post_as("/api/v1/documents/open", &third, json!({ "code": code }));
    assert_eq!((status, body["error"].as_str()), (404, Some("access-code-invalid")), "{body}");
    let (status, _) = d.t.call("DELETE", &format!("/api/v1/documents/access/{gid}"), Some(&me), &Value::Null);
    assert_eq!(status, 403);
    // A token that is not ours.
    let (status, body) = d.post_as("/api/v1/documents/open", &third, json!({ "token": "A".repeat(43) }));
    assert_eq!((status, body["error"].as_str()), (404, Some("access-not-found")), "{body}");
    // Still exactly two view marks.
    assert_eq!(events(&d, &third).iter().filter(|e| e["action"] == "view").count(), 2);
}

fn wrong_codes(right: &str) -> impl Iterator<Item = String> + '_ {
    (0..1_000_000u32).map(|n| format!("{n:06}")).filter(move |c| c != right)
}

#[test]
fn short_code_guessing_is_stopped_per_third_party_per_code_and_globally() {
    let d = DocsPortal::start(|c| {
        c.documents.access.code_tries_per_viewer = 5;
        c.documents.access.code_lock_after = 8;
        c.documents.access.code_failures_global = 12;
    });
    let id = d.submit_ok(&iin(76), "identity-card", "N-30");
    let me = d.person_session(76);
    let (_, grant) = d.post_as(&format!("/api/v1/documents/{id}/access"), &me, Value::Null);
    let code = grant["short_code"].as_str().unwrap().to_owned();
    let mut guesses = wrong_codes(&code);
    let open = |who: &str, code: &str| d.post_as("/api/v1/documents/open", who, json!({ "code": code }));

    // One third party: five wrong codes, then refused even with the right one.
    let a = d.person_session(77);
    for _ in 0..5 {
        assert_eq!(open(&a, &guesses.next().unwrap()).0, 404);
    }
    let (status, body) = open(&a, &code);
    assert_eq!((status, body["error"].as_str()), (429, Some("code-tries-exceeded")), "{body}");

    // Another: after three more wrong codes (eight during the code's life) the code is locked.
    let b = d.person_session(78);
    for _ in 0..3 {
        assert_eq!(open(&b, &guesses.next().unwrap()).0, 404);
    }
    let (status, body) = open(&b, &code);
    assert_eq!((status, body["error"].as_str()), (404, Some("access-code-invalid")), "locked: {body}");
    let (status, _) = d.post_as("/api/v1/documents/open", &b, json!({ "token": grant["token"] }));
    assert_eq!(status, 403, "the grant is closed for the QR token too");

    // Everyone together: twelve wrong codes within the window close short-code lookups.
    let c = d.person_session(79);
    for _ in 0..4 {
        assert_eq!(open(&c, &guesses.next().unwrap()).0, 404);
    }
    let (status, body) = open(&c, &guesses.next().unwrap());
    assert_eq!((status, body["error"].as_str()), (429, Some("code-lookups-limited")), "{body}");
    let outcomes = journal_outcomes(&d, "view");
    assert_eq!(outcomes.iter().filter(|o| *o == "wrong-code").count(), 12, "{outcomes:?}");
}

fn system_request(d: &DocsPortal, subject: &str, doc_type: &str) -> DocumentRequest {
    DocumentRequest {
        created_at: ca_core::clock::Clock::now(d.t.clock.as_ref()),
        doc_type: doc_type.into(),
        request_id: request_id(),
        subject_iin: subject.into(),
        system: "bank-7".into(),
    }
}

fn relay(d: &DocsPortal, document_request: &str, code: &str) -> (u16, Value) {
    let relay = ConsentRelay {
        code: code.into(),
        created_at: ca_core::clock::Clock::now(d.t.clock.as_ref()),
        document_request: document_request.into(),
        request_id: request_id(),
        system: "bank-7".into(),
    };
    d.t.post("/api/v1/systems/document-releases", json!({ "cms": d.t.sign(&d.system, &canonical(&relay)) }))
}

#[test]
fn an_integrated_system_gets_a_document_only_after_the_subjects_otp_consent() {
    let d = DocsPortal::start(|_| {});
    let subject = 80;
    d.submit_ok(&iin(subject), "identity-card", "N-40");
    d.person_session(subject);
    d.t.phones.bound.lock().unwrap().push((iin(subject), "+77010000080".into()));

    // Outside the allow-list: a type the system may not receive; a signer that is not the system.
    let req = system_request(&d, &iin(subject), "birth-certificate");
    let (status, body) =
        d.t.post("/api/v1/systems/document-requests", json!({ "cms": d.t.sign(&d.system, &canonical(&req)) }));
    assert_eq!((status, body["error"].as_str()), (403, Some("document-type-not-allowed")), "{body}");
    let req = system_request(&d, &iin(subject), "identity-card");
    let (status, body) =
        d.t.post("/api/v1/systems/document-requests", json!({ "cms": d.t.sign(&d.authority, &canonical(&req)) }));
    assert_eq!((status, body["error"].as_str()), (403, Some("system-not-admitted")), "{body}");

    let req = system_request(&d, &iin(subject), "identity-card");
    let (status, body) =
        d.t.post("/api/v1/systems/document-requests", json!({ "cms": d.t.sign(&d.system, &canonical(&req)) }));
    assert_eq!(status, 202, "{body}");
    let sent = d.t.phones.sent.lock().unwrap().clone();
    let (phone, text) = sent.last().unwrap();
    assert_eq!(phone, "+77010000080");
    let code: String = text.split("Код согласия: ").nth(1).unwrap().chars().take(6).collect();

    // Without the right code nothing is released.
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let (status, body) = relay(&d, &req.request_id, &wrong);
    assert_eq!((status, body["error"].as_str()), (401, Some("wrong-otp")), "{body}");
    assert!(!events(&d, &d.login(subject)).iter().any(|e| e["action"] == "released"));

    let (status, body) = relay(&d, &req.request_id, &code);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["document"]["data"]["number"], "N-40");
    assert_eq!(body["document"]["report"]["valid"], true);
    assert!(!body["cms"].as_str().unwrap().is_empty() && !body["timestamp_token"].as_str().unwrap().is_empty());
    // Once only; the release is in the subject's cabinet.
    let (status, body) = relay(&d, &req.request_id, &code);
    assert_eq!((status, body["error"].as_str()), (403, Some("already-released")), "{body}");
    let released: Vec<Value> =
        events(&d, &d.login(subject)).into_iter().filter(|e| e["action"] == "released").collect();
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0]["actor"], "bank-7");
}

#[test]
fn a_time_stamp_from_a_tsa_that_is_not_pinned_is_refused_and_nothing_is_stored() {
    let d = DocsPortal::start(|c| c.documents.tsa.as_mut().unwrap().certificate_sha256 = vec!["ab".repeat(32)]);
    let (status, body) = d.submit(&d.signed_document(&d.authority, &iin(81), "identity-card", "N-50"));
    assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("not a configured time-stamping authority"), "{body}");
    assert_eq!(d.slot.served.load(std::sync::atomic::Ordering::SeqCst), 1, "the TSA was asked");
    assert!(d.t.portal.store.documents_of(&iin(81), true).unwrap().is_empty());
    assert_eq!(journal_outcomes(&d, "submit"), ["unavailable"]);
}

#[test]
fn a_bank_at_its_counter_is_recorded_as_the_organisation_that_viewed() {
    let d = DocsPortal::start(|_| {});
    let subject = 82;
    let id = d.submit_ok(&iin(subject), "identity-card", "N-60");
    let me = d.person_session(subject);
    let (_, grant) = d.post_as(&format!("/api/v1/documents/{id}/access"), &me, Value::Null);
    // The bank's legal-entity account (login = its BIN), the cashier's IIN kept.
    let bin = support::system_bin();
    let cashier = iin(252);
    let store = &d.t.portal.store;
    store
        .create_account(&portal::store::NewAccount {
            login: bin.clone(),
            kind: portal::account::AccountKind::LegalEntity,
            iin: cashier.clone(),
            bin: Some(bin.clone()),
            email: "bank@example.kz".into(),
            password_hash: "unused".into(),
            state: portal::account::AccountState::Active,
            created_by: portal::account::CreatedBy::SelfService,
            at: ca_core::clock::Clock::now(d.t.clock.as_ref()),
        })
        .unwrap()
        .unwrap();
    let account = store.account_by_login(&bin).unwrap().unwrap();
    let bank = d.t.portal.open_session(&account, "eds", &portal::Client::default()).unwrap().token;
    let (status, doc) = d.post_as("/api/v1/documents/open", &bank, json!({ "code": grant["short_code"] }));
    assert_eq!(status, 200, "{doc}");
    // A legal entity has no documents of its own; it sees the view it made.
    let (_, list) = d.get("/api/v1/documents", &bank);
    assert_eq!(list["documents"].as_array().unwrap().len(), 0);
    for token in [&me, &bank] {
        let view = events(&d, token).into_iter().find(|e| e["action"] == "view").expect("view mark");
        assert_eq!((view["actor"].as_str(), view["actor_kind"].as_str()), (Some(bin.as_str()), Some("organisation")));
        assert!(view["detail"].as_str().unwrap().starts_with(&format!("acting: {cashier}; grant ")), "{view}");
    }
}

#[test]
fn a_time_stamp_reply_for_another_request_is_refused() {
    let d = DocsPortal::start(|_| {});
    let first = d.submit_ok(&iin(83), "identity-card", "N-70");
    // The first reply, checked again as the answer to a request with the same imprint but
    // another nonce: refused.
    let stored = d.t.portal.store.document(first).unwrap().unwrap();
    let signature = portal::documents::timestamp::signature_value(&stored.cms).unwrap();
    let reply = std::fs::read(d.t.dir.path().join("tsa").join("r0.tsr")).unwrap();
    let config = d.t.portal.documents.tsa.clone().unwrap();
    let client =
        portal::documents::timestamp::HttpTimeStamper::new(&config, d.t.portal.trust.clone(), d.t.clock.clone());
    let again = portal::documents::timestamp::request(&signature).unwrap();
    let err = client.check_reply(&again, &reply).unwrap_err().to_string();
    assert!(err.contains("nonce differs"), "{err}");
    // The TSA answers the next request with the reply to the previous one: a valid token of our
    // TSA, but over another signature and with another nonce.
    d.slot.replay_previous.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = d.submit(&d.signed_document(&d.authority, &iin(83), "identity-card", "N-71"));
    assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("messageImprint differs"), "{body}");
    assert_eq!(d.t.portal.store.documents_of(&iin(83), true).unwrap().len(), 1, "nothing more stored");
}

/// The portal's time stamps go through `ca_core::tsa::client` (request, then the reply checked:
/// imprint, nonce, a time-stamping authority chaining to the portal's anchors); the token comes
/// back with the TSA certificate it was verified with — from `openssl ts -reply` and from the
/// product's own TSA alike.
#[test]
fn a_time_stamp_comes_with_the_tsa_certificate_from_openssl_and_from_our_own_tsa() {
    use portal::documents::timestamp::{HttpTimeStamper, TimeStamper};
    let d = DocsPortal::start(|_| {});
    let config = d.t.portal.documents.tsa.clone().unwrap();
    let stamper = HttpTimeStamper::new(&config, d.t.portal.trust.clone(), d.t.clock.clone());
    let token = stamper.stamp(b"a signature value").unwrap();
    assert_eq!(token.tsa, "C=KZ,CN=TEST TSA");
    assert_eq!(token.certificate, d.tsa.cert.der, "the openssl TSA's certificate");
    let info = ca_core::cms::signature_values(&token.der).map(|v| v.len());
    assert_eq!(info.unwrap(), 1, "a token with one signer");

    let own = d.t.holder(
        "own-tsa-2",
        ca_core::profile::ProfileId::TimeStamping,
        ca_core::identity::Subject::Service { common_name: "OWN TSA".into(), organisation: None },
        vec![],
    );
    let authority = ca_core::tsa::TimeStampAuthority::new(
        &own.cert.der,
        std::sync::Arc::new(own.key),
        d.t.clock.clone(),
        ca_core::tsa::TsaSettings::default(),
    )
    .unwrap();
    *d.slot.ours.lock().unwrap() = Some(std::sync::Arc::new(authority));
    let token = stamper.stamp(b"another signature value").unwrap();
    assert_eq!((token.tsa.as_str(), &token.certificate), ("C=KZ,CN=OWN TSA", &own.cert.der));
}
