//! Revocation at login from the CA itself, through `ca_core::cms::fetch` like `ca-server`: the
//! CRL a certificate's distribution point names (fetched, cached until its nextUpdate), the
//! OCSP responder its AIA names, and no answer at all — refused, since the portal requires a
//! status for every certificate of the path. No CRL directory is configured here: everything
//! comes from a ca-server on the loopback that the test CA's certificates point at.

mod common;

use std::sync::Arc;

use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::config::PublicationUrls;
use ca_core::ocsp::Responder;
use ca_core::revocation::{revoke, RevocationReason};
use ca_core::store::{SqliteStore, Store};
use common::TestPortal;
use fixtures::TestCa;
use hsm::KeyAlgorithm;
use time::Duration;

const PASSWORD: &str = "Степной7Ветер";

/// A test CA whose certificates name `base` for CRLs and OCSP.
fn ca_at(base: &str) -> TestCa {
    let clock = FixedClock(SystemClock.now() - Duration::minutes(10));
    TestCa::with_urls(KeyAlgorithm::P256, KeyAlgorithm::P256, &clock, PublicationUrls::under(base))
}

/// A port on the loopback for a ca-server started later, and its runtime.
fn reserve_port() -> (tokio::runtime::Runtime, tokio::net::TcpListener, u16) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    (runtime, listener, port)
}

/// A portal without CRL directories, relying on `ca`.
fn portal_on(ca: TestCa) -> TestPortal {
    TestPortal::start_on(ca, |config| config.trust.crl_dirs.clear())
}

fn error_of(answer: &(u16, serde_json::Value)) -> (u16, String, String) {
    (answer.0, answer.1["error"].as_str().unwrap_or_default().into(), answer.1["message"].to_string())
}

#[test]
fn a_certificate_revoked_at_the_ca_is_refused_through_the_fetched_crl() {
    let (runtime, listener, port) = reserve_port();
    let t = portal_on(ca_at(&format!("http://127.0.0.1:{port}")));
    // The ca-server distributes the CRLs TestPortal publishes (root.crl, nca.crl); no OCSP.
    let services = ca_server::Services::new(None, None, "nca", t.crl_dir.clone(), t.ca.dir.path().join("certs"));
    runtime.spawn(ca_server::serve(listener, Arc::new(services)));

    let holder = t.register_person(40, PASSWORD);
    assert_eq!(t.login_eds(&holder).0, 200, "not revoked: the fetched CRLs say so");
    // Revoked, and a new CRL published; the cached one is used until its nextUpdate (30 days).
    t.publish_crls(&[&holder.cert.serial]);
    assert_eq!(t.login_eds(&holder).0, 200, "the cached CRL is current until its nextUpdate");
    t.clock.advance(Duration::days(31));
    t.publish_crls(&[&holder.cert.serial]);
    let (status, kind, message) = error_of(&t.login_eds(&holder));
    assert_eq!((status, kind.as_str()), (401, "signature-invalid"), "{message}");
    assert!(message.contains("revoked"), "{message}");
}

#[test]
fn a_certificate_revoked_at_the_ca_is_refused_through_its_ocsp_responder() {
    let (runtime, listener, port) = reserve_port();
    let t = portal_on(ca_at(&format!("http://127.0.0.1:{port}")));
    // The CA answers OCSP from its store; it publishes only the root's CRL (for the issuing
    // CA's own certificate): the leaf's distribution point answers 404.
    std::fs::remove_file(t.crl_dir.join("nca.crl")).unwrap();
    let store = Arc::new(SqliteStore::open(&t.ca.dir.path().join("ca.db")).unwrap());
    let (key, responder_cert) = t.ca.ocsp_responder(KeyAlgorithm::P256);
    let clock: Arc<dyn Clock> = t.clock.clone();
    let responder = Responder::new(
        "nca",
        &t.ca.issuing.certificate_der,
        &responder_cert.der,
        Arc::new(key),
        store.clone() as Arc<dyn Store>,
        clock.clone(),
    )
    .unwrap();
    let services = ca_server::Services::new(
        Some(Arc::new(responder)),
        Some(store.clone() as Arc<dyn Store>),
        "nca",
        t.crl_dir.clone(),
        t.ca.dir.path().join("certs"),
    );
    runtime.spawn(ca_server::serve(listener, Arc::new(services)));

    // The responder's certificate is issued at the real time, a little after the test clock's.
    t.clock.advance(Duration::minutes(1));
    let holder = t.register_person(41, PASSWORD);
    assert_eq!(t.login_eds(&holder).0, 200, "good by OCSP");
    // A second AUTH certificate of the same person, revoked at the CA before its first use.
    let second =
        t.holder("auth41-second", ca_core::profile::ProfileId::IndividualAuth, fixtures::individual(41), vec![]);
    revoke(store.as_ref(), clock.as_ref(), &second.cert.serial, RevocationReason::KeyCompromise, None, "test").unwrap();
    let (status, kind, message) = error_of(&t.login_eds(&second));
    assert_eq!((status, kind.as_str()), (401, "signature-invalid"), "{message}");
    assert!(message.contains("revoked"), "{message}");
    let again = t.login_eds(&holder);
    assert_eq!(again.0, 200, "the first certificate is still good: {}", again.1);
}

#[test]
fn no_revocation_answer_refuses_the_login() {
    // Port 1 of the loopback: connections are refused at once.
    let t = portal_on(ca_at("http://127.0.0.1:1"));
    let holder = t.person_auth(42);
    let (status, kind, message) = error_of(&t.login_eds(&holder));
    assert_eq!((status, kind.as_str()), (401, "signature-invalid"), "{message}");
    assert!(message.contains("revocation") || message.contains("CRL"), "{message}");
    let journal = t.portal.store.failed_attempts(None, 10).unwrap();
    assert!(journal.iter().any(|a| a.reason == "signature-invalid"), "{journal:?}");
}
