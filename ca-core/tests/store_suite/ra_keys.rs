//! What issue 13 added to the RA's store: applicants' own keys and certificates found by key,
//! single-use tokens, the outbox's delivery lease, legal-entity roles, counter steps and the
//! regulation's timing of recorded steps.

use std::sync::OnceLock;

use ca_core::identity::KeyType;
use ca_core::profile::Role;
use ca_core::ra::application::{ApplicationState, Step};
use ca_core::ra::csr_keys::spki_sha256;
use ca_core::ra::regulation::Regulation;
use ca_core::ra::store::{
    ApplicantKey, NewMessage, NewToken, RaStore, Submitted, TokenPurpose, TokenUse, Transition, Transitioned,
};
use ca_core::store::{CaStore, Issued, Store};
use der::{Decode, Encode};
use time::Duration;

use crate::backends::Backend;
use crate::common::*;
use crate::ra::{application, new_event};

/// A real certificate (a P-256 test root) and its SubjectPublicKeyInfo, made once per binary.
fn certificate() -> &'static (Vec<u8>, Vec<u8>) {
    static CERT: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    CERT.get_or_init(|| {
        let ca = fixtures::TestCa::new(hsm::KeyAlgorithm::P256, hsm::KeyAlgorithm::P256);
        let der = ca.root.certificate_der.clone();
        let cert = x509_cert::Certificate::from_der(&der).unwrap();
        let spki = cert.tbs_certificate.subject_public_key_info.to_der().unwrap();
        (der, spki)
    })
}

fn submit(store: &impl RaStore, a: &ca_core::ra::store::NewApplication) -> ca_core::ra::Application {
    match store.submit(a, &new_event(Step::Register, "op", t(1_760_000_000))).unwrap() {
        Submitted::New(a) => a,
        other => panic!("a new application, got {other:?}"),
    }
}

/// A key is in use while an open application holds it (not for that application itself), and
/// while a certificate of it is not revoked; a refused application gives it up.
pub fn a_key_is_in_use_by_an_open_application_or_a_live_certificate(b: &impl Backend) {
    let store = b.store();
    let (der, spki) = certificate();
    let digest = spki_sha256(spki);
    assert_eq!(store.key_in_use(&digest, None).unwrap(), None);
    let key = ApplicantKey { key_type: KeyType::Sign, spki: spki.clone() };
    let with_key = ca_core::ra::store::NewApplication {
        keys: vec![key.clone()],
        roles: vec![Role::FirstHead, Role::SigningRight],
        ..application("k1", ApplicationState::Confirmed)
    };
    let a = submit(store, &with_key);
    assert_eq!(a.roles, vec![Role::FirstHead, Role::SigningRight]);
    assert_eq!(store.application_keys(&a.number).unwrap(), vec![key]);
    assert_eq!(store.key_in_use(&digest, None).unwrap(), Some(format!("application {}", a.number)));
    assert_eq!(store.key_in_use(&digest, Some(&a.number)).unwrap(), None, "not in use by itself");
    let refuse = Transition {
        from: vec![ApplicationState::Confirmed],
        to: ApplicationState::Refused,
        event: new_event(Step::Refuse, "op", t(1_760_000_100)),
        serials: None,
        refusal: Some(ca_core::ra::application::StoredRefusal { code: "test".into(), message: "no".into() }),
        notice: None,
        token: None,
    };
    assert!(matches!(store.transition(&a.number, &refuse).unwrap(), Transitioned::Applied(_)));
    assert_eq!(store.key_in_use(&digest, None).unwrap(), None, "a refused application gave the key up");

    let serial = ca_core::serial::SerialNumber::random();
    store.reserve(&[reservation_with(serial.clone())], &[event("certificate.reserve", &serial)]).unwrap();
    store
        .record_issued(&[Issued { serial: serial.clone(), der: der.clone() }], &[event("certificate.issue", &serial)])
        .unwrap();
    assert_eq!(store.key_in_use(&digest, None).unwrap(), Some(format!("certificate {}", serial.to_hex())));
    store
        .revoke(
            &serial,
            &revocation(ca_core::revocation::RevocationReason::KeyCompromise),
            &event("certificate.revoke", &serial),
        )
        .unwrap();
    assert_eq!(store.key_in_use(&digest, None).unwrap(), None, "a revoked certificate's key is not in use");
}

fn reservation_with(serial: ca_core::serial::SerialNumber) -> ca_core::store::Reservation {
    ca_core::store::Reservation { serial, ..reservation(None, None) }
}

/// Certificates recorded before the key digest existed get it when the store is next opened.
pub fn certificates_recorded_without_a_key_digest_get_one_on_open(b: &impl Backend) {
    let store = b.store();
    let (der, spki) = certificate();
    let serial = ca_core::serial::SerialNumber::random();
    store.reserve(&[reservation_with(serial.clone())], &[event("certificate.reserve", &serial)]).unwrap();
    store
        .record_issued(&[Issued { serial: serial.clone(), der: der.clone() }], &[event("certificate.issue", &serial)])
        .unwrap();
    // As a database written before the schema version that added the digest.
    b.raw("UPDATE certificates SET spki_sha256 = NULL").unwrap();
    assert_eq!(store.key_in_use(&spki_sha256(spki), None).unwrap(), None);
    let reopened = b.open();
    assert_eq!(
        reopened.key_in_use(&spki_sha256(spki), None).unwrap(),
        Some(format!("certificate {}", serial.to_hex()))
    );
}

/// A status token is accepted until it expires; an install token is used once; a token of
/// another value is unknown; a transition's token replaces the one of its purpose.
pub fn tokens_are_single_use_and_expire(b: &impl Backend) {
    let store = b.store();
    let expires = t(1_760_003_600);
    let status = NewToken { purpose: TokenPurpose::Status, sha256: [1; 32], expires_at: expires };
    let install = NewToken { purpose: TokenPurpose::Install, sha256: [2; 32], expires_at: expires };
    let a = submit(
        store,
        &ca_core::ra::store::NewApplication {
            tokens: vec![status.clone(), install],
            ..application("k", ApplicationState::Confirmed)
        },
    );
    let n = &a.number;
    let before = t(1_760_000_100);
    assert_eq!(store.use_token(n, TokenPurpose::Status, &[1; 32], before, false).unwrap(), TokenUse::Accepted);
    assert_eq!(store.use_token(n, TokenPurpose::Status, &[1; 32], before, false).unwrap(), TokenUse::Accepted);
    assert_eq!(store.use_token(n, TokenPurpose::Status, &[9; 32], before, false).unwrap(), TokenUse::Unknown);
    assert_eq!(store.use_token(n, TokenPurpose::Status, &[1; 32], expires, false).unwrap(), TokenUse::Expired);
    assert_eq!(store.use_token(n, TokenPurpose::Install, &[1; 32], before, true).unwrap(), TokenUse::Unknown);
    // Several handles present the install token at once: one download.
    let handles: Vec<_> = (0..4).map(|_| b.open()).collect();
    let accepted: usize = std::thread::scope(|s| {
        let runs: Vec<_> = handles
            .iter()
            .map(|h| s.spawn(move || h.use_token(n, TokenPurpose::Install, &[2; 32], before, true).unwrap()))
            .collect();
        runs.into_iter().map(|r| usize::from(r.join().unwrap() == TokenUse::Accepted)).sum()
    });
    assert_eq!(accepted, 1);
    assert_eq!(store.use_token(n, TokenPurpose::Install, &[2; 32], before, true).unwrap(), TokenUse::Used);
    // A new install link replaces the used one.
    let claim = Transition {
        from: vec![ApplicationState::Confirmed],
        to: ApplicationState::Issuing,
        event: new_event(Step::Claim, "w", t(1_760_000_200)),
        serials: None,
        refusal: None,
        notice: None,
        token: Some(NewToken { purpose: TokenPurpose::Install, sha256: [3; 32], expires_at: expires }),
    };
    assert!(matches!(store.transition(n, &claim).unwrap(), Transitioned::Applied(_)));
    assert_eq!(store.use_token(n, TokenPurpose::Install, &[2; 32], before, true).unwrap(), TokenUse::Unknown);
    assert_eq!(store.use_token(n, TokenPurpose::Install, &[3; 32], before, true).unwrap(), TokenUse::Accepted);
    assert!(store.verify_audit().unwrap().is_intact());
}

/// The registration's notice is queued with the number; a worker's claim leases a message so
/// no other worker takes it until the lease ends, and of concurrent claims one wins.
pub fn a_claimed_message_is_leased_to_one_worker(b: &impl Backend) {
    let store = b.store();
    let notice =
        NewMessage { to: "a@example.kz".into(), subject: "Application {number}".into(), body: "{number}".into() };
    let a = submit(
        store,
        &ca_core::ra::store::NewApplication { notice: Some(notice), ..application("k", ApplicationState::Confirmed) },
    );
    let now = t(1_760_000_100);
    let due = store.due_messages(now, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].subject.clone(), due[0].body.clone()),
        (format!("Application {}", a.number), a.number.to_string())
    );
    let id = due[0].id;
    let lease = now + Duration::minutes(5);
    let workers: Vec<_> = (0..4).map(|_| b.open()).collect();
    let wins: usize = std::thread::scope(|s| {
        let runs: Vec<_> = workers.iter().map(|w| s.spawn(move || w.claim_message(id, now, lease).unwrap())).collect();
        runs.into_iter().map(|r| usize::from(r.join().unwrap())).sum()
    });
    assert_eq!(wins, 1);
    assert!(store.due_messages(now + Duration::minutes(4), 10).unwrap().is_empty(), "leased");
    assert!(!store.claim_message(id, now + Duration::minutes(4), lease).unwrap());
    // The worker died holding it: after the lease another takes it, and it is delivered once.
    assert_eq!(store.due_messages(lease, 10).unwrap().len(), 1);
    assert!(store.claim_message(id, lease, lease + Duration::minutes(5)).unwrap());
    assert!(store.mark_sent(id, lease).unwrap());
    assert!(!store.claim_message(id, lease + Duration::hours(1), lease + Duration::hours(2)).unwrap(), "sent");
}

/// Steps are timed by the timing the store was given (ca.toml's `[regulation]`), and counter
/// steps recorded before the registration come first.
pub fn steps_are_timed_by_the_configured_regulation(b: &impl Backend) {
    let store = b.store();
    let regulation = Regulation { budgets: [("issue".to_owned(), "2 min".to_owned())].into(), ..Default::default() };
    let timing = regulation.timing().unwrap();
    store.set_timing(regulation.timing().unwrap());
    let present = new_event(Step::Present, "op", t(1_759_999_000));
    let a = submit(
        store,
        &ca_core::ra::store::NewApplication { earlier: vec![present], ..application("k", ApplicationState::Confirmed) },
    );
    let mut step = Transition {
        from: vec![ApplicationState::Confirmed],
        to: ApplicationState::Issuing,
        event: new_event(Step::Claim, "w", t(1_760_000_200)),
        serials: None,
        refusal: None,
        notice: None,
        token: None,
    };
    assert!(matches!(store.transition(&a.number, &step).unwrap(), Transitioned::Applied(_)));
    step.from = vec![ApplicationState::Issuing];
    step.to = ApplicationState::Issued;
    step.event = new_event(Step::Issue, "w", t(1_760_000_300));
    assert!(matches!(store.transition(&a.number, &step).unwrap(), Transitioned::Applied(_)));
    let events = store.application_events(Some(&a.number)).unwrap();
    let steps: Vec<Step> = events.iter().map(|e| e.step).collect();
    assert_eq!(steps, vec![Step::Present, Step::Register, Step::Claim, Step::Issue]);
    let issued = &events[3];
    let budget = "2 min".parse().unwrap();
    assert_eq!(issued.budget, Some(budget), "the configured budget, not the document's");
    assert_eq!(issued.started_at, t(1_760_000_000), "timed from the registration, not the claim");
    assert_eq!(issued.deadline, Some(timing.deadline(budget, t(1_760_000_000))));
    assert!(issued.breached);
}
