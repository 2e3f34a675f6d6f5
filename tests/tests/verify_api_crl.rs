//! Revocation of a foreign trusted CA's certificates over the verification API: no reachable
//! CRL is never good; CRLs carried in the signature or sent; fetched CRLs cached until
//! nextUpdate, through RFC 5280 §6.3 (cRLSign, scope, deltas, a past validation time).

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::profile::ProfileId;
use ca_core::store::SqliteStore;
use fixtures::TestCa;
use hsm::KeyAlgorithm;
use serde_json::json;
use time::{Duration, OffsetDateTime};

mod common;
use common::*;

#[test]
fn a_foreign_trusted_ca_without_a_reachable_crl_is_never_good() {
    let now = SystemClock.now();
    let ours = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &FixedClock(now));
    let foreign = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &FixedClock(now));
    let h = issue(&foreign, &FixedClock(now), ProfileId::IndividualSign, 10, KeyAlgorithm::P256);
    let store = Arc::new(SqliteStore::open(&ours.dir.path().join("ca.db")).unwrap());
    let mut services = ca_server::Services::new(
        None,
        Some(store as Arc<dyn ca_core::store::Store>),
        "nca",
        ours.dir.path().join("crl"),
        ours.dir.path().join("certs"),
    );
    // The foreign root is trusted; its CRL distribution point (http://pki.test.kz/…) is not reachable.
    let anchors = [ours.root.certificate_der.clone(), foreign.root.certificate_der.clone()];
    let intermediates = [ours.issuing.certificate_der.clone(), foreign.issuing.certificate_der.clone()];
    let ours_cas = vec![ours.issuing.certificate_der.clone(), ours.root.certificate_der.clone()];
    let verifier = ca_server::Verifier::new(&anchors, &intermediates, ours_cas, Arc::new(SystemClock)).unwrap();
    services.verifier = Some(Arc::new(verifier));
    let (port, _runtime) = ca_tests::serve(Arc::new(services));
    let (status, v) = http(
        port,
        "POST",
        "/api/v1/x509/verify",
        &[("Content-Type", "application/json")],
        json!({ "certificate": b64(&h.cert.der) }).to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], false, "{v:#}");
    assert!(reasons(&v).contains(&"RevocationUnavailable".into()), "{v}");
    assert_eq!(v["revocation"]["state"], "unavailable");
    assert_eq!(v["chain_trusted"], true);
}

/// A small HTTP server for CRLs: answers `GET /crl/<file>` with the bytes published under that
/// file name and counts the requests for each.
struct CrlServer {
    port: u16,
    files: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    hits: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl CrlServer {
    fn hits(&self, file: &str) -> usize {
        self.hits.lock().unwrap().get(file).copied().unwrap_or(0)
    }
}

fn crl_server() -> CrlServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let files: Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>> = Arc::default();
    let hits: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
    let (f, h) = (files.clone(), hits.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let file = request.split(' ').nth(1).unwrap_or("").rsplit('/').next().unwrap_or("").to_owned();
            *h.lock().unwrap().entry(file.clone()).or_default() += 1;
            let body = f.lock().unwrap().get(&file).cloned().unwrap_or_default();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    CrlServer { port, files, hits }
}

/// A CRL of `authority` (the issuing or the root CA) revoking `revoked` for a key compromise.
fn make_crl(
    authority: &ca_core::issuer::CertificateAuthority,
    number: u64,
    revoked: &[&ca_core::serial::SerialNumber],
    this: OffsetDateTime,
    next: OffsetDateTime,
) -> Vec<u8> {
    make_crl_with(authority, number, revoked, this, next, |_| {})
}

/// [`make_crl`] with its parameters changed by `tweak` (scope, delta base).
fn make_crl_with(
    authority: &ca_core::issuer::CertificateAuthority,
    number: u64,
    revoked: &[&ca_core::serial::SerialNumber],
    this: OffsetDateTime,
    next: OffsetDateTime,
    tweak: impl FnOnce(&mut crl::CrlParams),
) -> Vec<u8> {
    let mut params = crl::CrlParams {
        issuer: authority.subject().clone(),
        authority_key_id: authority.key_id().to_vec(),
        crl_number: number,
        this_update: this,
        next_update: next,
        delta_base: None,
        issuing_distribution_point: None,
        freshest_crl: None,
    };
    tweak(&mut params);
    let entries = revoked.iter().map(|s| crl::CrlEntry {
        serial: s.as_bytes(),
        revoked_at: this,
        reason: Some(ca_core::revocation::RevocationReason::KeyCompromise),
        invalidity_date: None,
    });
    crl::build_crl(&params, entries, authority.signer()).unwrap()
}

/// Publish `ca`'s CRL as `file` (signed by `authority`, the issuing or the root CA).
fn publish_crl(
    authority: &ca_core::issuer::CertificateAuthority,
    server: &CrlServer,
    file: &str,
    number: u64,
    revoked: &[&ca_core::serial::SerialNumber],
    this: OffsetDateTime,
    next: OffsetDateTime,
) {
    let der = make_crl(authority, number, revoked, this, next);
    server.files.lock().unwrap().insert(file.to_owned(), der);
}

/// `cms` with `crls` in its SignedData's RevocationInfoChoices (outside what the signer signed).
fn with_crls(cms: &[u8], crls: &[Vec<u8>]) -> Vec<u8> {
    use cms_types::content_info::ContentInfo;
    use cms_types::revocation::{RevocationInfoChoice, RevocationInfoChoices};
    use cms_types::signed_data::SignedData;
    use der::{Any, Decode, Encode};
    let mut info = ContentInfo::from_der(cms).unwrap();
    let mut signed: SignedData = info.content.decode_as().unwrap();
    let choices = crls
        .iter()
        .map(|der| RevocationInfoChoice::Crl(x509_cert::crl::CertificateList::from_der(der).unwrap()))
        .collect::<Vec<_>>();
    signed.crls = Some(RevocationInfoChoices::try_from(choices).unwrap());
    info.content = Any::encode_from(&signed).unwrap();
    info.to_der().unwrap()
}

/// A foreign trusted CA whose distribution points cannot be reached: without revocation
/// evidence its signer is refused (revocation is required by default); the CRLs the signer
/// carries in the SignedData, or the relying party sends, answer instead.
#[test]
fn crls_carried_in_the_signature_or_sent_answer_when_the_distribution_point_fails() {
    use ca_core::cms::{self, PathOptions, Requirements};
    let clock = Arc::new(ShiftedClock::default());
    // Port 1 on the loopback: the fetch is refused at once.
    let urls = ca_core::config::PublicationUrls::under("http://127.0.0.1:1");
    let foreign = TestCa::with_urls(KeyAlgorithm::P256, KeyAlgorithm::P256, clock.as_ref(), urls);
    let signer = issue(&foreign, clock.as_ref(), ProfileId::IndividualSign, 41, KeyAlgorithm::P256);
    let verifier = ca_server::Verifier::new(
        std::slice::from_ref(&foreign.root.certificate_der),
        std::slice::from_ref(&foreign.issuing.certificate_der),
        Vec::new(),
        clock.clone(),
    )
    .unwrap();
    let now = clock.now();
    let chain = std::slice::from_ref(&foreign.issuing.certificate_der);
    let signature = cms::sign(b"foreign", false, &signer.key, &signer.cert.der, chain, now).unwrap();
    let check = |cms: &[u8], options: PathOptions| {
        verifier.with_context(None, now, Some(now), Requirements::default(), options, |ctx| {
            cms::verify(cms, None, ctx).unwrap()
        })
    };
    let reasons = |v: &ca_core::cms::CmsVerification| format!("{:?}", v.signers[0].findings);

    let v = check(&signature, PathOptions::default());
    assert!(!v.valid && v.has(ca_core::cms::Reason::RevocationUnavailable), "{}", reasons(&v));

    let next = now + Duration::days(1);
    let root_crl = make_crl(&foreign.root, 1, &[], now, next);
    let good = [root_crl.clone(), make_crl(&foreign.issuing, 1, &[], now, next)];
    let v = check(&with_crls(&signature, &good), PathOptions::default());
    assert!(v.valid, "{}", reasons(&v));
    assert_eq!(v.signers[0].revocation.source.as_deref(), Some("CRL"));

    let revoked = [root_crl, make_crl(&foreign.issuing, 2, &[&signer.cert.serial], now, next)];
    let v = check(&with_crls(&signature, &revoked), PathOptions::default());
    assert!(!v.valid && v.has(ca_core::cms::Reason::Revoked), "{}", reasons(&v));

    // The same CRLs sent by the relying party instead.
    let sent = |crls: &[Vec<u8>]| PathOptions {
        crls: crls.iter().map(|c| Arc::new(ca_core::pkix::PkixCrl::from_der(c).unwrap())).collect(),
        ..PathOptions::default()
    };
    assert!(check(&signature, sent(&good)).valid);
    assert!(!check(&signature, sent(&revoked)).valid);
}

#[test]
fn a_foreign_cas_crl_is_fetched_cached_until_next_update_and_never_trusted_stale() {
    use ca_core::cms::{self, Requirements};
    let server = crl_server();
    let clock = Arc::new(ShiftedClock::default());
    let urls = ca_core::config::PublicationUrls::under(&format!("http://127.0.0.1:{}", server.port));
    let foreign = TestCa::with_urls(KeyAlgorithm::P256, KeyAlgorithm::P256, clock.as_ref(), urls);
    let ours = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let signer = issue(&foreign, clock.as_ref(), ProfileId::IndividualSign, 40, KeyAlgorithm::P256);
    let verifier = ca_server::Verifier::new(
        &[ours.root.certificate_der.clone(), foreign.root.certificate_der.clone()],
        &[ours.issuing.certificate_der.clone(), foreign.issuing.certificate_der.clone()],
        vec![ours.issuing.certificate_der.clone(), ours.root.certificate_der.clone()],
        clock.clone(),
    )
    .unwrap();
    let content = b"a request signed under a foreign CA";
    let signature = cms::sign(
        content,
        false,
        &signer.key,
        &signer.cert.der,
        std::slice::from_ref(&foreign.issuing.certificate_der),
        clock.now(),
    )
    .unwrap();
    let check = || {
        let now = clock.now();
        verifier.with_context(None, now, Some(now), Requirements::default(), Default::default(), |ctx| {
            cms::verify(&signature, None, ctx).unwrap()
        })
    };
    let reasons = |v: &ca_core::cms::CmsVerification| format!("{:?}", v.signers[0].findings);

    // A current CRL without the signer: good, fetched once and then served from the cache.
    // (The root's CRL, for the issuing CA's own certificate, is valid all along.)
    let now = clock.now();
    publish_crl(&foreign.root, &server, "root.crl", 1, &[], now, now + Duration::days(30));
    publish_crl(&foreign.issuing, &server, "nca.crl", 1, &[], now, now + Duration::hours(1));
    let v = check();
    assert!(v.valid, "{}", reasons(&v));
    assert_eq!(v.signers[0].revocation.source.as_deref(), Some("CRL"));
    let v = check();
    assert!(v.valid);
    assert_eq!(server.hits("nca.crl"), 1, "cached until nextUpdate");

    // The foreign CA revokes the signer; the cached CRL stands until its nextUpdate, then the
    // new one is fetched and the signer is revoked.
    publish_crl(&foreign.issuing, &server, "nca.crl", 2, &[&signer.cert.serial], now, now + Duration::hours(3));
    assert!(check().valid, "still the cached CRL");
    clock.0.store(3600 + 60, Ordering::Relaxed);
    let v = check();
    assert!(!v.valid);
    assert!(reasons(&v).contains("Revoked"), "{}", reasons(&v));
    assert_eq!(server.hits("nca.crl"), 2);

    // Past that CRL's nextUpdate the server only has a stale one: never "good".
    clock.0.store(4 * 3600, Ordering::Relaxed);
    publish_crl(&foreign.issuing, &server, "nca.crl", 3, &[], now, now + Duration::hours(3) + Duration::minutes(30));
    let v = check();
    assert!(!v.valid);
    assert!(reasons(&v).contains("RevocationUnavailable"), "{}", reasons(&v));
}

/// A foreign trusted CA publishing its CRLs on a loopback server, and a signature by one of
/// its subscribers.
struct Foreign {
    server: CrlServer,
    clock: Arc<ShiftedClock>,
    ca: TestCa,
    signer: Holder,
}

fn foreign_ca(n: u32) -> Foreign {
    let server = crl_server();
    let clock = Arc::new(ShiftedClock::default());
    let urls = ca_core::config::PublicationUrls::under(&format!("http://127.0.0.1:{}", server.port));
    let ca = TestCa::with_urls(KeyAlgorithm::P256, KeyAlgorithm::P256, clock.as_ref(), urls);
    let signer = issue(&ca, clock.as_ref(), ProfileId::IndividualSign, n, KeyAlgorithm::P256);
    let now = clock.now();
    // The root's CRL, for the issuing CA's own certificate, is good all along.
    publish_crl(&ca.root, &server, "root.crl", 1, &[], now, now + Duration::days(30));
    Foreign { server, clock, ca, signer }
}

impl Foreign {
    /// Verify a fresh signature through a new verifier (empty caches) that trusts the root and
    /// knows `intermediate` as the issuing CA's certificate; revocation is required.
    fn verify(&self, intermediate: &[u8]) -> ca_core::cms::CmsVerification {
        use ca_core::cms::{self, Requirements};
        let now = self.clock.now();
        let verifier = ca_server::Verifier::new(
            std::slice::from_ref(&self.ca.root.certificate_der),
            &[intermediate.to_vec()],
            Vec::new(),
            self.clock.clone(),
        )
        .unwrap();
        let chain = [intermediate.to_vec()];
        let signature = cms::sign(b"foreign", false, &self.signer.key, &self.signer.cert.der, &chain, now).unwrap();
        verifier.with_context(None, now, Some(now), Requirements::default(), Default::default(), |ctx| {
            cms::verify(&signature, None, ctx).unwrap()
        })
    }
}

/// RFC 5280 §6.3.3(f): a fetched CRL counts only when its issuer's certificate allows
/// cRLSign, even when the CRL is signed with the very key that issued the certificate.
#[test]
fn a_fetched_crl_whose_issuer_lacks_crl_sign_is_no_status() {
    use der::{Decode, Encode};
    use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
    let f = foreign_ca(50);
    let now = f.clock.now();
    publish_crl(&f.ca.issuing, &f.server, "nca.crl", 1, &[], now, now + Duration::days(1));
    assert!(f.verify(&f.ca.issuing.certificate_der).valid, "the CA's own certificate allows cRLSign");

    // The same name and key, certified by the root for keyCertSign only.
    let mut cert = x509_cert::Certificate::from_der(&f.ca.issuing.certificate_der).unwrap();
    let tbs = &mut cert.tbs_certificate;
    tbs.serial_number = x509_cert::serial_number::SerialNumber::new(&[0x42; 16]).unwrap();
    let usage = KeyUsage(KeyUsages::KeyCertSign.into()).to_der().unwrap();
    let ku =
        tbs.extensions.iter_mut().flatten().find(|e| e.extn_id == der::asn1::ObjectIdentifier::new_unwrap("2.5.29.15"));
    ku.expect("a CA certificate has keyUsage").extn_value = der::asn1::OctetString::new(usage).unwrap();
    let signature = f.ca.root.signer().sign(&tbs.to_der().unwrap()).unwrap();
    cert.signature = der::asn1::BitString::from_bytes(&signature).unwrap();
    let without_crl_sign = cert.to_der().unwrap();

    let v = f.verify(&without_crl_sign);
    let reasons = format!("{:?}", v.signers[0].findings);
    assert!(!v.valid && v.has(ca_core::cms::Reason::RevocationUnavailable), "{reasons}");
    assert!(reasons.contains("cRLSign"), "{reasons}");
}

/// RFC 5280 §6.3.3(b): a fetched CRL whose Issuing Distribution Point is another partition
/// does not cover the certificate.
#[test]
fn a_fetched_crl_scoped_to_another_distribution_point_is_no_status() {
    let f = foreign_ca(51);
    let now = f.clock.now();
    let other = format!("http://127.0.0.1:{}/crl/nca_p7.crl", f.server.port);
    let scoped = make_crl_with(&f.ca.issuing, 1, &[], now, now + Duration::days(1), |p| {
        p.issuing_distribution_point =
            Some(crl::IssuingDistributionPoint { uri: other, only_contains_user_certs: true })
    });
    f.server.files.lock().unwrap().insert("nca.crl".into(), scoped);
    let v = f.verify(&f.ca.issuing.certificate_der);
    let reasons = format!("{:?}", v.signers[0].findings);
    assert!(!v.valid && v.has(ca_core::cms::Reason::RevocationUnavailable), "{reasons}");
}

/// The delta CRL a certificate's FreshestCRL names is fetched with the complete CRL: a
/// revocation published only in the delta counts.
#[test]
fn a_revocation_only_in_the_fetched_delta_crl_counts() {
    let f = foreign_ca(52);
    let now = f.clock.now();
    publish_crl(&f.ca.issuing, &f.server, "nca.crl", 1, &[], now, now + Duration::days(1));
    let empty_delta = make_crl_with(&f.ca.issuing, 2, &[], now, now + Duration::hours(1), |p| p.delta_base = Some(1));
    f.server.files.lock().unwrap().insert("nca_d.crl".into(), empty_delta);
    let v = f.verify(&f.ca.issuing.certificate_der);
    assert!(v.valid, "{:?}", v.signers[0].findings);
    assert_eq!(f.server.hits("nca_d.crl"), 1);

    let serial = &f.signer.cert.serial;
    let delta = make_crl_with(&f.ca.issuing, 3, &[serial], now, now + Duration::hours(1), |p| p.delta_base = Some(1));
    f.server.files.lock().unwrap().insert("nca_d.crl".into(), delta);
    let v = f.verify(&f.ca.issuing.certificate_der);
    let reasons = format!("{:?}", v.signers[0].findings);
    assert!(!v.valid && v.has(ca_core::cms::Reason::Revoked), "{reasons}");
}

/// A signature checked at a past validation time against the CRL fetched today: the CRL
/// issued after that time is the evidence, and a revocation after it is reported, not fatal.
#[test]
fn a_past_signature_is_checked_against_todays_fetched_crl() {
    use ca_core::cms::{self, Reason, Requirements};
    let f = foreign_ca(53);
    let signed_at = f.clock.now();
    let chain = [f.ca.issuing.certificate_der.clone()];
    let signature = cms::sign(b"last week", false, &f.signer.key, &f.signer.cert.der, &chain, signed_at).unwrap();
    f.clock.0.store(2 * 86_400, Ordering::Relaxed);
    let now = f.clock.now();
    publish_crl(&f.ca.root, &f.server, "root.crl", 2, &[], now, now + Duration::days(30));
    let serial = &f.signer.cert.serial;
    publish_crl(&f.ca.issuing, &f.server, "nca.crl", 2, &[serial], now, now + Duration::days(1));
    let verifier =
        ca_server::Verifier::new(std::slice::from_ref(&f.ca.root.certificate_der), &chain, Vec::new(), f.clock.clone())
            .unwrap();
    let v = verifier.with_context(None, now, Some(signed_at), Requirements::default(), Default::default(), |ctx| {
        cms::verify(&signature, None, ctx).unwrap()
    });
    let reasons = format!("{:?}", v.signers[0].findings);
    assert!(v.valid && v.has(Reason::RevokedAfterSigning), "{reasons}");
}
