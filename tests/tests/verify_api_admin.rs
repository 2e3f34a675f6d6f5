//! Administration over HTTP: requests signed by a CA operator, single use, audited; anonymous
//! junk adds a bounded number of audit rows.

use std::sync::atomic::Ordering;

use ca_core::clock::{Clock, SystemClock};
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use ca_core::store::SqliteStore;
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

mod common;
use common::*;

fn holder_with_roles(ca: &TestCa, profile: ProfileId, n: u32, roles: Vec<ca_core::profile::Role>) -> Holder {
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let clock = SystemClock;
    let cert = ca
        .issuer(&clock)
        .issue(&IssuanceRequest { profile, subject: individual(n), roles, public_key: key.public_key().clone() })
        .unwrap();
    Holder { key, cert }
}

fn signed_by(r: &Running, h: &Holder, content: &[u8]) -> Vec<u8> {
    signed_at(r, h, content, SystemClock.now())
}

/// A request signed with signingTime `at`: two signatures over the same content in the same
/// second are the same request (single use).
fn signed_at(r: &Running, h: &Holder, content: &[u8], at: OffsetDateTime) -> Vec<u8> {
    ca_core::cms::sign(content, false, &h.key, &h.cert.der, std::slice::from_ref(&r.ca.issuing.certificate_der), at)
        .unwrap()
}

/// The journal entries with `action`, oldest first.
fn journaled(store: &SqliteStore, action: &str) -> Vec<ca_core::store::AuditEntry> {
    use ca_core::store::Store;
    let mut found = Vec::new();
    store
        .audit_entries(&Default::default(), &mut |e| {
            if e.event.action == action {
                found.push(e);
            }
            Ok(())
        })
        .unwrap();
    found
}

fn admin(r: &Running, path: &str, body: &[u8]) -> (u16, Value) {
    http(r.port, "POST", path, &[("Content-Type", "application/pkcs7-mime")], body)
}

/// The RA's signature check is never reached for unsigned submissions.
struct NoSignatures;
impl ca_core::ra::SignatureCheck for NoSignatures {
    fn check(
        &self,
        _: &ca_core::ra::SignedPayload,
        _: &ca_core::ra::Expectation,
    ) -> Result<ca_core::ra::SignerFacts, ca_core::ra::SignatureProblem> {
        Err(ca_core::ra::SignatureProblem::Unavailable("not used in this test".into()))
    }
}

#[test]
fn administration_needs_an_operator_signature_and_is_audited() {
    use ca_core::profile::Role;
    use ca_core::ra::RaStore;
    use ca_core::store::Store;
    let r = start(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None);
    let clock = SystemClock;
    let target = issue(&r.ca, &clock, ProfileId::IndividualSign, 30, KeyAlgorithm::P256);
    let operator = holder_with_roles(&r.ca, ProfileId::IndividualSign, 31, vec![Role::CaOperator]);
    let operator_auth = holder_with_roles(&r.ca, ProfileId::IndividualAuth, 31, vec![Role::CaOperator]);
    let citizen = holder_with_roles(&r.ca, ProfileId::IndividualSign, 32, vec![]);
    let request = json!({ "action": "revoke", "serial": target.cert.serial.to_hex(), "reason": "keyCompromise" });
    let request = serde_json::to_vec(&request).unwrap();
    let audit_before = r.ca.store.verify_audit().unwrap().entries;

    // Unauthenticated and unauthorised calls change nothing.
    for (body, status) in [
        (Vec::new(), 401),
        (b"garbage".to_vec(), 401),
        (signed_by(&r, &citizen, &request), 403),
        (signed_by(&r, &operator_auth, &request), 403),
    ] {
        let (got, v) = admin(&r, "/api/v1/admin/revocations", &body);
        assert_eq!(got, status, "{v}");
        assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    }
    let record = r.ca.store.certificate(&target.cert.serial).unwrap().unwrap();
    assert_eq!(record.status, ca_core::store::CertificateStatus::Issued, "nothing was revoked");

    // The operator's signed request revokes, once; a second time says so.
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &signed_by(&r, &operator, &request));
    assert_eq!(got, 200, "{v}");
    assert_eq!(v["already"], false);
    assert_eq!(
        r.ca.store.certificate(&target.cert.serial).unwrap().unwrap().status,
        ca_core::store::CertificateStatus::Revoked
    );
    let again = signed_at(&r, &operator, &request, SystemClock.now() - Duration::seconds(2));
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &again);
    assert_eq!((got, v["already"].clone()), (200, json!(true)));

    // The two refusals of signers of this CA and the revocation are journaled one by one; the
    // anonymous ones (empty, garbage) are only counted until their minute is over.
    let audit = r.ca.store.verify_audit().unwrap();
    assert!(audit.is_intact());
    assert_eq!(audit.entries, audit_before + 3);
    assert_eq!(journaled(&r.ca.store, "admin.refused").len(), 2);

    // Confirming an application: the operator's signature over its statement.
    let import = ca_core::ra::csv::parse(&fixtures::registry::registry_csv()).unwrap();
    r.ca.store.import_registry(&import, "test").unwrap();
    let registry = ca_core::ra::StoreRegistry(&r.ca.store);
    let ra = ca_core::ra::RegistrationAuthority {
        store: &r.ca.store,
        certificates: &r.ca.store,
        registry: &registry,
        signatures: &NoSignatures,
        clock: &clock,
        install_url: "",
        install_ttl: time::Duration::hours(72),
    };
    let submission = ca_core::ra::Submission {
        channel: ca_core::ra::Channel::ServiceProvider,
        kind: ca_core::ra::ApplicationKind::NewIndividual,
        iin: fixtures::person(21).iin,
        bin: None,
        serials: Vec::new(),
        revocation_reason: None,
        signature: None,
        operator: None,
        email: None,
        csrs: None,
        roles: Vec::new(),
    };
    let a = ra.submit(&submission).unwrap().application().clone();
    ra.verify_identity(&a.number, "operator-1").unwrap();
    let path = format!("/api/v1/admin/applications/{}/confirm", a.number);
    let (got, v) = admin(&r, &path, &signed_by(&r, &operator, b"something else"));
    assert_eq!(got, 403, "{v}");
    let statement = ra.statement("operator-confirm", &a).canonical();
    let (got, v) = admin(&r, &path, &signed_by(&r, &citizen, &statement));
    assert_eq!(got, 403, "{v}");
    let (got, v) = admin(&r, &path, &signed_by(&r, &operator, &statement));
    assert_eq!(got, 200, "{v}");
    assert_eq!(v["application"]["state"], "confirmed");
    assert!(r.ca.store.verify_audit().unwrap().is_intact());
}

#[test]
fn an_admin_request_needs_signed_attributes_and_is_single_use() {
    use ca_core::profile::Role;
    use ca_core::store::{CertificateStatus, Store};
    let r = start(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None);
    let target = issue(&r.ca, &SystemClock, ProfileId::IndividualSign, 40, KeyAlgorithm::P256);
    let operator = holder_with_roles(&r.ca, ProfileId::IndividualSign, 41, vec![Role::CaOperator]);
    let hold = json!({ "action": "revoke", "serial": target.cert.serial.to_hex(), "reason": "certificateHold" });
    let hold = serde_json::to_vec(&hold).unwrap();
    let status = || r.ca.store.certificate(&target.cert.serial).unwrap().unwrap().status;

    // Without signed attributes there is no signingTime: such a request could be replayed forever.
    let bare = openssl_sign_with(&r.ca, &operator, "op-noattr", &hold, true, &["-noattr"]);
    for _ in 0..2 {
        let (got, v) = admin(&r, "/api/v1/admin/revocations", &bare);
        assert_eq!(got, 401, "{v}");
        assert!(v["message"].as_str().unwrap().contains("signed attributes"), "{v}");
    }
    assert_eq!(status(), CertificateStatus::Issued, "nothing was held");

    // With them (openssl's default), the hold is made once ...
    let signed = openssl_sign(&r.ca, &operator, "op-attr", &hold, true);
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &signed);
    assert_eq!((got, v["already"].clone()), (200, json!(false)), "{v}");
    assert_eq!(status(), CertificateStatus::Revoked);
    let release = ca_core::store::AuditEvent::new("test", "certificate.release").target(target.cert.serial.to_hex());
    r.ca.store.release_hold(&target.cert.serial, &release).unwrap();
    assert_eq!(status(), CertificateStatus::Issued);

    // ... and the same request sent again does not hold the released certificate again, now
    // or after the 10-minute window.
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &signed);
    assert_eq!((got, v["error"].as_str()), (401, Some("replayed")), "{v}");
    r.clock.0.store(11 * 60, Ordering::Relaxed);
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &signed);
    assert_eq!(got, 401, "{v}");
    assert!(v["message"].as_str().unwrap().contains("more than 10 minutes ago"), "{v}");
    assert_eq!(status(), CertificateStatus::Issued, "the release stands");

    // Each of these refusals names the operator in the journal; so does a malformed body under
    // a valid signature.
    r.clock.0.store(0, Ordering::Relaxed);
    let (got, v) = admin(&r, "/api/v1/admin/revocations", &signed_by(&r, &operator, b"{\"action\":\"revoke\"}"));
    assert_eq!(got, 400, "{v}");
    let refused = journaled(&r.ca.store, "admin.refused");
    let reasons: Vec<&str> = refused.iter().map(|e| e.event.details["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["no-signed-attributes", "no-signed-attributes", "replayed", "too-old", "malformed-request"]);
    assert!(refused.iter().all(|e| e.event.actor.contains(&operator.cert.serial.to_hex())), "{refused:?}");
    assert!(r.ca.store.verify_audit().unwrap().is_intact());
}

#[test]
fn a_confirmation_signed_for_another_application_is_refused() {
    use ca_core::profile::Role;
    use ca_core::ra::RaStore;
    let r = start(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None);
    let operator = holder_with_roles(&r.ca, ProfileId::IndividualSign, 42, vec![Role::CaOperator]);
    let import = ca_core::ra::csv::parse(&fixtures::registry::registry_csv()).unwrap();
    r.ca.store.import_registry(&import, "test").unwrap();
    let registry = ca_core::ra::StoreRegistry(&r.ca.store);
    let ra = ca_core::ra::RegistrationAuthority {
        store: &r.ca.store,
        certificates: &r.ca.store,
        registry: &registry,
        signatures: &NoSignatures,
        clock: &SystemClock,
        install_url: "",
        install_ttl: time::Duration::hours(72),
    };
    let submit = |n: u32| {
        let submission = ca_core::ra::Submission {
            channel: ca_core::ra::Channel::ServiceProvider,
            kind: ca_core::ra::ApplicationKind::NewIndividual,
            iin: fixtures::person(n).iin,
            bin: None,
            serials: Vec::new(),
            revocation_reason: None,
            signature: None,
            operator: None,
            email: None,
            csrs: None,
            roles: Vec::new(),
        };
        ra.submit(&submission).unwrap().application().clone()
    };
    let (a2, a3) = (submit(21), submit(22));
    let confirm = |a: &ca_core::ra::Application, statement_of: &ca_core::ra::Application, at: OffsetDateTime| {
        let statement = ra.statement("operator-confirm", statement_of).canonical();
        admin(
            &r,
            &format!("/api/v1/admin/applications/{}/confirm", a.number),
            &signed_at(&r, &operator, &statement, at),
        )
    };
    let now = SystemClock.now();
    let (got, v) = confirm(&a2, &a2, now);
    assert_eq!((got, v["application"]["state"].as_str()), (200, Some("confirmed")), "{v}");
    // A-2 is confirmed already; a signature over A-3 posted to A-2 is still a refusal.
    let (got, v) = confirm(&a2, &a3, now - Duration::seconds(1));
    assert_eq!(got, 403, "{v}");
    assert!(v["message"].as_str().unwrap().contains("not this application"), "{v}");
    // Its own statement, signed anew, is the harmless second confirmation.
    let (got, v) = confirm(&a2, &a2, now - Duration::seconds(2));
    assert_eq!((got, v["application"]["state"].as_str()), (200, Some("confirmed")), "{v}");
}

#[test]
fn anonymous_junk_to_the_admin_endpoints_adds_a_bounded_number_of_audit_rows() {
    use ca_core::store::Store;
    let r = start(TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256), None);
    let before = r.ca.store.verify_audit().unwrap().entries;
    let stranger = issue(
        &TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256),
        &SystemClock,
        ProfileId::IndividualSign,
        43,
        KeyAlgorithm::P256,
    );
    let foreign = signed_by(&r, &stranger, b"{}");
    let bodies: [&[u8]; 3] = [b"", b"junk", &foreign];
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for i in 0..10_000 {
        let (got, _) = admin(&r, "/api/v1/admin/revocations", bodies[i % 3]);
        *statuses.entry(got).or_default() += 1;
    }
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), [401, 429], "{statuses:?}");
    assert!(statuses[&429] > 9_000, "past its burst a client is turned away unverified: {statuses:?}");
    assert_eq!(r.ca.store.verify_audit().unwrap().entries, before, "no row per junk request");
    // The first refusal after the minute writes one entry with the sum.
    r.clock.0.store(61, Ordering::Relaxed);
    let _ = admin(&r, "/api/v1/admin/revocations", b"junk");
    let after = r.ca.store.verify_audit().unwrap();
    assert_eq!(after.entries, before + 1);
    let summed = journaled(&r.ca.store, "admin.refused.anonymous");
    assert_eq!(summed.len(), 1);
    assert_eq!(summed[0].event.details["count"], 10_001);
    let (_, metrics) = http(r.port, "GET", "/metrics", &[], b"");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(metrics.contains("ca_admin_refusals_total{signer=\"anonymous\",reason=\"rate-limited\"}"), "{metrics}");
}
