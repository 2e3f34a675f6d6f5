//! OCSP responses sent with a verification request (`ocsp_responses`) as a revocation source:
//! made by our own `ca_core::ocsp::Responder` for a foreign trusted CA whose CRL distribution
//! point cannot be reached, so the response is the only status for the end-entity certificate.

use std::sync::Arc;

use base64::Engine;
use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::issuer::IssuanceRequest;
use ca_core::ocsp::Responder;
use ca_core::profile::ProfileId;
use ca_core::revocation::{revoke, RevocationReason};
use ca_core::signer::Signer;
use ca_core::store::SqliteStore;
use ca_tests::{openssl_ok, write_pem};
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use serde_json::{json, Value};
use time::Duration;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The OCSP response `responder` gives for `cert` (DER) of `ca`'s issuing CA, asked with a
/// request made by `openssl ocsp`.
fn ocsp_response(ca: &TestCa, responder: &Responder, cert: &[u8]) -> Vec<u8> {
    let dir = ca.dir.path();
    let issuer = write_pem(dir, "issuing.pem", "CERTIFICATE", &ca.issuing.certificate_der);
    let leaf = write_pem(dir, "leaf.pem", "CERTIFICATE", cert);
    let request = dir.join("request.der");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    openssl_ok(&["ocsp", "-no_nonce", "-issuer", &path(&issuer), "-cert", &path(&leaf), "-reqout", &path(&request)]);
    responder.respond(&std::fs::read(&request).unwrap()).0
}

/// A responder answering for `ca`'s issuing CA from its store, signing with a fresh key
/// certified (id-kp-OCSPSigning) by `certifier`'s issuing CA.
fn responder(ca: &TestCa, certifier: &TestCa) -> Responder {
    let (key, cert) = certifier.ocsp_responder(KeyAlgorithm::P256);
    let store = Arc::new(SqliteStore::open(&ca.dir.path().join("ca.db")).unwrap());
    Responder::new("nca", &ca.issuing.certificate_der, &cert.der, Arc::new(key), store, Arc::new(SystemClock)).unwrap()
}

/// An empty CRL of `ca`'s root, current for a day from `now`: the status of the issuing CA's
/// own certificate.
fn root_crl(ca: &TestCa, now: time::OffsetDateTime) -> Vec<u8> {
    let params = crl::CrlParams {
        issuer: ca.root.subject().clone(),
        authority_key_id: ca.root.key_id().to_vec(),
        crl_number: 1,
        this_update: now,
        next_update: now + Duration::days(1),
        delta_base: None,
        issuing_distribution_point: None,
        freshest_crl: None,
    };
    crl::build_crl(&params, std::iter::empty::<crl::CrlEntry<Vec<u8>>>(), ca.root.signer()).unwrap()
}

#[test]
fn ocsp_responses_sent_with_the_request_answer_for_a_foreign_ca() {
    let now = SystemClock.now();
    // The foreign CA's distribution points are on port 1 of the loopback: refused at once.
    let urls = ca_core::config::PublicationUrls::under("http://127.0.0.1:1");
    let foreign = TestCa::with_urls(KeyAlgorithm::P256, KeyAlgorithm::P256, &FixedClock(now), urls);
    let ours = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let request = IssuanceRequest {
        profile: ProfileId::IndividualSign,
        subject: individual(60),
        roles: vec![],
        public_key: key.public_key().clone(),
    };
    let cert = foreign.issuer(&FixedClock(now)).issue(&request).unwrap();

    let mut services =
        ca_server::Services::new(None, None, "nca", ours.dir.path().join("crl"), ours.dir.path().join("certs"));
    let anchors = [ours.root.certificate_der.clone(), foreign.root.certificate_der.clone()];
    let intermediates = [ours.issuing.certificate_der.clone(), foreign.issuing.certificate_der.clone()];
    let ours_cas = vec![ours.issuing.certificate_der.clone(), ours.root.certificate_der.clone()];
    let verifier = ca_server::Verifier::new(&anchors, &intermediates, ours_cas, Arc::new(SystemClock)).unwrap();
    services.verifier = Some(Arc::new(verifier));
    let (port, _runtime) = ca_tests::serve(Arc::new(services));
    // The root's CRL answers for the issuing CA's certificate; the OCSP response for the leaf.
    let root_crl = root_crl(&foreign, now);
    let verify_at = |responses: &[Vec<u8>], at: time::OffsetDateTime| -> Value {
        let at = at.format(&time::format_description::well_known::Rfc3339).unwrap();
        let body = json!({
            "validation_time": at,
            "certificate": b64(&cert.der),
            "crls": [b64(&root_crl)],
            "ocsp_responses": responses.iter().map(|r| b64(r)).collect::<Vec<_>>(),
        });
        let headers = [("Content-Type", "application/json")];
        let (status, answer) =
            ca_tests::http(port, "POST", "/api/v1/x509/verify", &headers, body.to_string().as_bytes());
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(status, 200, "{answer}");
        answer
    };
    let verify = |responses: &[Vec<u8>]| verify_at(responses, SystemClock.now());
    let reasons =
        |v: &Value| v["findings"].as_array().unwrap().iter().map(|f| f["reason"].to_string()).collect::<Vec<_>>();

    let v = verify(&[]);
    assert_eq!(v["valid"], false, "no status for the leaf without a response: {v:#}");
    assert!(reasons(&v).iter().any(|r| r.contains("RevocationUnavailable")), "{v}");

    let delegated = responder(&foreign, &foreign);
    let good = ocsp_response(&foreign, &delegated, &cert.der);
    let v = verify(std::slice::from_ref(&good));
    assert_eq!(v["valid"], true, "{v:#}");
    assert_eq!(v["revocation"]["source"], "OCSP", "{v}");
    // How fresh the status is: the response's thisUpdate, made just now.
    let as_of = v["revocation"]["as_of"].as_str().unwrap_or_else(|| panic!("as_of in {v}"));
    let as_of = time::OffsetDateTime::parse(as_of, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(as_of <= SystemClock.now() && v["revocation"]["age_secs"].as_u64().is_some_and(|age| age < 60), "{v}");
    // The response's nextUpdate (ten minutes on) does not reach a validation time an hour on.
    let v = verify_at(std::slice::from_ref(&good), SystemClock.now() + Duration::hours(1));
    assert_eq!(v["valid"], false, "{v:#}");
    assert!(reasons(&v).iter().any(|r| r.contains("RevocationUnavailable")), "{v}");

    // A responder with the right name and id-kp-OCSPSigning, certified by another CA's key
    // (of the same name): its response is ignored.
    let other = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let impostor = responder(&foreign, &other);
    let forged = ocsp_response(&foreign, &impostor, &cert.der);
    let v = verify(std::slice::from_ref(&forged));
    assert_eq!(v["valid"], false, "{v:#}");
    assert!(reasons(&v).iter().any(|r| r.contains("RevocationUnavailable")), "{v}");

    let serial = cert.serial.clone();
    revoke(&foreign.store, &FixedClock(now), &serial, RevocationReason::KeyCompromise, None, "t").unwrap();
    let revoked = ocsp_response(&foreign, &delegated, &cert.der);
    let v = verify(std::slice::from_ref(&revoked));
    assert_eq!(v["valid"], false, "{v:#}");
    assert!(reasons(&v).iter().any(|r| r.contains("\"Revoked\"")), "{v}");
    assert_eq!(v["revocation"]["state"], "revoked", "{v}");

    // A response for another certificate (CertID) says nothing about this one.
    let request = IssuanceRequest { subject: individual(61), ..request };
    let neighbour = foreign.issuer(&FixedClock(now)).issue(&request).unwrap();
    let v = verify(&[ocsp_response(&foreign, &delegated, &neighbour.der)]);
    assert_eq!(v["valid"], false, "{v:#}");
    assert!(reasons(&v).iter().any(|r| r.contains("RevocationUnavailable")), "{v}");
}

#[test]
fn malformed_ocsp_responses_are_refused_by_index() {
    let ours = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let mut services =
        ca_server::Services::new(None, None, "nca", ours.dir.path().join("crl"), ours.dir.path().join("certs"));
    let verifier = ca_server::Verifier::new(
        std::slice::from_ref(&ours.root.certificate_der),
        std::slice::from_ref(&ours.issuing.certificate_der),
        Vec::new(),
        Arc::new(SystemClock),
    )
    .unwrap();
    services.verifier = Some(Arc::new(verifier));
    let (port, _runtime) = ca_tests::serve(Arc::new(services));
    let too_many: Vec<String> = (0..65).map(|_| "MAMCAQE=".to_string()).collect();
    for (responses, needle) in [(json!(["MAMCAQE="]), "ocsp_responses[0]"), (json!(too_many), "64 OCSP responses")] {
        let body = json!({ "certificate": b64(&ours.issuing.certificate_der), "ocsp_responses": responses });
        let headers = [("Content-Type", "application/json")];
        let (status, answer) =
            ca_tests::http(port, "POST", "/api/v1/x509/verify", &headers, body.to_string().as_bytes());
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains(needle), "{answer}");
    }
}

/// A clock the test moves.
#[derive(Default)]
struct ShiftedClock(std::sync::atomic::AtomicI64);

impl Clock for ShiftedClock {
    fn now(&self) -> time::OffsetDateTime {
        SystemClock.now() + Duration::seconds(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// A foreign CA whose CRL cannot be had (its distribution point answers 404) runs its OCSP
/// responder in a loopback `ca-server`; the verifier asks it (the AIA's URL, by POST), keeps
/// the answer until its nextUpdate, and then asks again.
#[test]
fn the_ocsp_responder_in_a_foreign_certificates_aia_is_asked_and_cached_until_next_update() {
    use ca_core::cms::{self, PathOptions, Requirements};
    let clock = Arc::new(ShiftedClock::default());
    let mut foreign = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, clock.as_ref());
    let (responder_key, responder_cert) = foreign.ocsp_responder(KeyAlgorithm::P256);
    let store = Arc::new(SqliteStore::open(&foreign.dir.path().join("ca.db")).unwrap());
    let responder = Responder::new(
        "nca",
        &foreign.issuing.certificate_der,
        &responder_cert.der,
        Arc::new(responder_key),
        store.clone(),
        clock.clone(),
    )
    .unwrap();
    let dir = foreign.dir.path();
    let mut services =
        ca_server::Services::new(Some(Arc::new(responder)), Some(store), "nca", dir.join("crl"), dir.join("certs"));
    services.clock = clock.clone();
    let (port, _runtime) = ca_tests::serve(Arc::new(services));
    // Certificates issued from now on name this server for CRLs (none published: 404) and OCSP.
    foreign.urls = ca_core::config::PublicationUrls::under(&format!("http://127.0.0.1:{port}"));
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let request = IssuanceRequest {
        profile: ProfileId::IndividualSign,
        subject: individual(62),
        roles: vec![],
        public_key: key.public_key().clone(),
    };
    let cert = foreign.issuer(clock.as_ref()).issue(&request).unwrap();

    let verifier = ca_server::Verifier::new(
        std::slice::from_ref(&foreign.root.certificate_der),
        std::slice::from_ref(&foreign.issuing.certificate_der),
        Vec::new(),
        clock.clone(),
    )
    .unwrap();
    let now = clock.now();
    // The issuing CA's own certificate: the root's CRL, sent.
    let root_crl = root_crl(&foreign, now);
    let options = PathOptions {
        crls: vec![Arc::new(ca_core::pkix::PkixCrl::from_der(&root_crl).unwrap())],
        ..PathOptions::default()
    };
    let check = || {
        let now = clock.now();
        verifier.with_context(None, now, Some(now), Requirements::default(), options.clone(), |ctx| {
            cms::verify_certificate(&cert.der, ctx).unwrap()
        })
    };

    let v = check();
    assert!(v.valid, "{:?}", v.findings);
    assert_eq!(v.revocation.source.as_deref(), Some("OCSP"));

    // Revoked at the CA: the cached good answer stands until its nextUpdate (ten minutes).
    revoke(&foreign.store, clock.as_ref(), &cert.serial, RevocationReason::KeyCompromise, None, "t").unwrap();
    assert!(check().valid, "the cached response");
    clock.0.store(11 * 60, std::sync::atomic::Ordering::Relaxed);
    let v = check();
    assert!(!v.valid && v.findings.iter().any(|f| f.reason == ca_core::cms::Reason::Revoked), "{:?}", v.findings);
}

/// A CRL of `ca`'s issuing CA (its name and key identifier) signed by `signer`, current for a
/// day from `now`, listing `revoked`; scoped to `partition` (an Issuing Distribution Point for
/// end-entity certificates) when given.
fn issuing_crl(
    ca: &TestCa,
    signer: &dyn ca_core::signer::Signer,
    now: time::OffsetDateTime,
    revoked: &[&ca_core::serial::SerialNumber],
    partition: Option<&str>,
) -> Vec<u8> {
    let params = crl::CrlParams {
        issuer: ca.issuing.subject().clone(),
        authority_key_id: ca.issuing.key_id().to_vec(),
        crl_number: 1,
        this_update: now,
        next_update: now + Duration::days(1),
        delta_base: None,
        issuing_distribution_point: partition
            .map(|uri| crl::IssuingDistributionPoint { uri: uri.to_owned(), only_contains_user_certs: true }),
        freshest_crl: None,
    };
    let entries = revoked.iter().map(|s| crl::CrlEntry {
        serial: s.as_bytes(),
        revoked_at: now,
        reason: Some(RevocationReason::KeyCompromise),
        invalidity_date: None,
    });
    crl::build_crl(&params, entries, signer).unwrap()
}

/// A foreign CA whose CRL distribution point and OCSP responder are one loopback `ca-server`
/// (the responder certified by `certifier`'s issuing CA: the foreign CA itself, or an
/// impostor's of the same name), and a certificate it issued that names both.
struct Published {
    ca: TestCa,
    leaf: ca_core::issuer::IssuedCertificate,
    _runtime: tokio::runtime::Runtime,
}

fn published(n: u32, certifier: Option<&TestCa>) -> Published {
    let mut ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let responder = responder(&ca, certifier.unwrap_or(&ca));
    let dir = ca.dir.path();
    std::fs::create_dir_all(dir.join("crl")).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("ca.db")).unwrap());
    let services =
        ca_server::Services::new(Some(Arc::new(responder)), Some(store), "nca", dir.join("crl"), dir.join("certs"));
    let (port, runtime) = ca_tests::serve(Arc::new(services));
    ca.urls = ca_core::config::PublicationUrls::under(&format!("http://127.0.0.1:{port}"));
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let request = IssuanceRequest {
        profile: ProfileId::IndividualSign,
        subject: individual(n),
        roles: vec![],
        public_key: key.public_key().clone(),
    };
    let leaf = ca.issuer(&SystemClock).issue(&request).unwrap();
    Published { ca, leaf, _runtime: runtime }
}

impl Published {
    /// Publish `der` as the issuing CA's CRL at the distribution point the leaf names.
    fn publish_crl(&self, der: &[u8]) {
        std::fs::write(self.ca.dir.path().join("crl").join("nca.crl"), der).unwrap();
    }

    /// Verify the leaf now with a new verifier (empty caches), the root's CRL sent.
    fn verify(&self) -> ca_core::cms::CertificateVerification {
        use ca_core::cms::{self, PathOptions, Requirements};
        let verifier = ca_server::Verifier::new(
            std::slice::from_ref(&self.ca.root.certificate_der),
            std::slice::from_ref(&self.ca.issuing.certificate_der),
            Vec::new(),
            Arc::new(SystemClock),
        )
        .unwrap();
        let now = SystemClock.now();
        let root_crl = root_crl(&self.ca, now);
        let options = PathOptions {
            crls: vec![Arc::new(ca_core::pkix::PkixCrl::from_der(&root_crl).unwrap())],
            ..PathOptions::default()
        };
        verifier.with_context(None, now, Some(now), Requirements::default(), options, |ctx| {
            cms::verify_certificate(&self.leaf.der, ctx).unwrap()
        })
    }
}

/// A fetched CRL that decides nothing (signed by a key that is not the CA's) does not end
/// the search: the certificate's OCSP responder (AIA) is asked before the answer becomes
/// RevocationUnavailable; with both broken it is not valid.
#[test]
fn an_unusable_fetched_crl_falls_back_to_the_ocsp_responder() {
    use ca_core::cms::Reason;
    let unrelated = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let now = SystemClock.now();

    let f = published(70, None);
    f.publish_crl(&issuing_crl(&f.ca, unrelated.issuing.signer(), now, &[], None));
    let v = f.verify();
    assert!(v.valid, "{:?}", v.findings);
    assert_eq!(v.revocation.source.as_deref(), Some("OCSP"));
    // The responder answers from the CA's store: a revocation there is seen through it.
    revoke(&f.ca.store, &SystemClock, &f.leaf.serial, RevocationReason::KeyCompromise, None, "t").unwrap();
    let v = f.verify();
    assert!(!v.valid && v.has(Reason::Revoked), "{:?}", v.findings);

    // The responder's certificate is an impostor's too: nothing usable, and the answer says
    // what each source lacked.
    let f = published(71, Some(&unrelated));
    f.publish_crl(&issuing_crl(&f.ca, unrelated.issuing.signer(), now, &[], None));
    let v = f.verify();
    assert!(!v.valid && v.has(Reason::RevocationUnavailable), "{:?}", v.findings);

    // The other way round: the responder is broken and the CRL is the CA's own: the CRL answers.
    f.publish_crl(&issuing_crl(&f.ca, f.ca.issuing.signer(), now, &[], None));
    let v = f.verify();
    assert!(v.valid, "{:?}", v.findings);
    assert_eq!(v.revocation.source.as_deref(), Some("CRL"));
}

/// RFC 6960 §4.2.2.2.1: a delegated responder whose certificate lacks id-pkix-ocsp-nocheck is
/// checked for revocation by the CA's CRL; when it is revoked, or its status cannot be had, its
/// responses are not used.
#[test]
fn a_revoked_delegated_responder_without_nocheck_is_not_believed() {
    use der::{Decode, Encode};
    use x509_cert::ext::pkix::crl::dp::DistributionPoint;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    use x509_cert::ext::pkix::CrlDistributionPoints;
    let now = SystemClock.now();
    // The leaf's own distribution point cannot be reached: the OCSP response sent is its only
    // status.
    let urls = ca_core::config::PublicationUrls::under("http://127.0.0.1:1");
    let ca = TestCa::with_urls(KeyAlgorithm::P256, KeyAlgorithm::P256, &FixedClock(now), urls);
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let request = IssuanceRequest {
        profile: ProfileId::IndividualSign,
        subject: individual(72),
        roles: vec![],
        public_key: key.public_key().clone(),
    };
    let leaf = ca.issuer(&FixedClock(now)).issue(&request).unwrap();

    // The responder's certificate re-issued without nocheck, in a CRL partition of its own.
    let partition = "http://127.0.0.1:1/crl/responders.crl";
    let (responder_key, issued) = ca.ocsp_responder(KeyAlgorithm::P256);
    let mut cert = x509_cert::Certificate::from_der(&issued.der).unwrap();
    let extensions = cert.tbs_certificate.extensions.get_or_insert_with(Vec::new);
    let nocheck = der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");
    assert!(extensions.iter().any(|e| e.extn_id == nocheck), "the profile writes nocheck");
    extensions.retain(|e| e.extn_id != nocheck);
    let uri = der::asn1::Ia5String::new(partition).unwrap();
    let dp = CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![GeneralName::UniformResourceIdentifier(uri)])),
        reasons: None,
        crl_issuer: None,
    }]);
    extensions.push(x509_cert::ext::Extension {
        extn_id: der::asn1::ObjectIdentifier::new_unwrap("2.5.29.31"),
        critical: false,
        extn_value: der::asn1::OctetString::new(dp.to_der().unwrap()).unwrap(),
    });
    let signature = ca.issuing.signer().sign(&cert.tbs_certificate.to_der().unwrap()).unwrap();
    cert.signature = der::asn1::BitString::from_bytes(&signature).unwrap();
    let responder_der = cert.to_der().unwrap();
    let store = Arc::new(SqliteStore::open(&ca.dir.path().join("ca.db")).unwrap());
    let responder = Responder::new(
        "nca",
        &ca.issuing.certificate_der,
        &responder_der,
        Arc::new(responder_key),
        store,
        Arc::new(SystemClock),
    )
    .unwrap();
    let response = ocsp_response(&ca, &responder, &leaf.der);
    // Validated after the response was signed: its thisUpdate (whole seconds of the responder's
    // clock) may be in the second after `now`.
    let at = SystemClock.now();

    let verifier = ca_server::Verifier::new(
        std::slice::from_ref(&ca.root.certificate_der),
        std::slice::from_ref(&ca.issuing.certificate_der),
        Vec::new(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let root_crl = root_crl(&ca, now);
    let verify = |responder_crl: Option<Vec<u8>>| {
        use ca_core::cms::{self, PathOptions, Requirements};
        let crls = std::iter::once(root_crl.clone()).chain(responder_crl);
        let options = PathOptions {
            crls: crls.map(|c| Arc::new(ca_core::pkix::PkixCrl::from_der(&c).unwrap())).collect(),
            ocsp_responses: vec![Arc::new(ca_core::pkix::OcspResponse::from_der(&response).unwrap())],
            ..PathOptions::default()
        };
        verifier.with_context(None, at, Some(at), Requirements::default(), options, |ctx| {
            cms::verify_certificate(&leaf.der, ctx).unwrap()
        })
    };
    let signer = ca.issuing.signer();

    let v = verify(Some(issuing_crl(&ca, signer, now, &[], Some(partition))));
    assert!(v.valid, "the responder is not revoked: {:?}", v.findings);
    assert_eq!(v.revocation.source.as_deref(), Some("OCSP"));

    let v = verify(Some(issuing_crl(&ca, signer, now, &[&issued.serial], Some(partition))));
    assert!(!v.valid && v.has(ca_core::cms::Reason::RevocationUnavailable), "{:?}", v.findings);

    let v = verify(None);
    assert!(
        !v.valid && v.has(ca_core::cms::Reason::RevocationUnavailable),
        "no status for the responder: {:?}",
        v.findings
    );
}
