//! Round trips through `sign` and `verify` with an in-crate CA (ca-core cannot depend on the
//! `hsm` crate's software keys, so a minimal P-256 test signer lives here).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use der::asn1::BitString;
use der::Any;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use time::Duration;

use super::*;
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::config::PublicationUrls;
use crate::identity::{Iin, KeyType, Person, Subject};
use crate::issuer::{CertificateAuthority, IssuanceRequest, Issuer};
use crate::profile::{CaPolicies, ProfileId};
use crate::signer::{SignatureAlgorithm, Signer, SignerError};
use crate::store::SqliteStore;

/// A P-256 key for tests in this crate (ca-core cannot use `hsm`'s software keys).
pub(crate) struct TestKey {
    pair: EcdsaKeyPair,
    spki: SubjectPublicKeyInfoOwned,
}

impl TestKey {
    pub(crate) fn new() -> Self {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                parameters: Some(Any::from(&const_oid::db::rfc5912::SECP_256_R_1)),
            },
            subject_public_key: BitString::from_bytes(pair.public_key().as_ref()).unwrap(),
        };
        Self { pair, spki }
    }
}

impl Signer for TestKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::EcdsaP256Sha256
    }
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let sig = self.pair.sign(&SystemRandom::new(), message).map_err(|_| SignerError::Failed("ecdsa".into()))?;
        Ok(sig.as_ref().to_vec())
    }
}

pub(crate) struct Setup {
    _dir: tempfile::TempDir,
    pub(crate) store: SqliteStore,
    pub(crate) root: CertificateAuthority,
    pub(crate) issuing: CertificateAuthority,
    pub(crate) urls: PublicationUrls,
}

fn setup(clock: &dyn Clock) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ca.db")).unwrap();
    let urls = PublicationUrls::under("http://pki.test.kz");
    let service = |cn: &str| Subject::Service { common_name: cn.into(), organisation: None };
    let root_key = TestKey::new();
    let root_cert = CertificateAuthority::create_root(
        "root",
        service("ROOT"),
        &root_key,
        Duration::days(3650),
        &store,
        clock,
        &urls,
        "t",
        CaPolicies::default(),
    )
    .unwrap();
    let root = CertificateAuthority::new("root", root_cert.der, Box::new(root_key)).unwrap();
    let key = TestKey::new();
    let cert = root
        .create_subordinate(
            service("NCA"),
            key.public_key().clone(),
            Duration::days(1825),
            &store,
            clock,
            &urls,
            "t",
            CaPolicies::default(),
        )
        .unwrap();
    let issuing = CertificateAuthority::new("nca", cert.der, Box::new(key)).unwrap();
    Setup { _dir: dir, store, root, issuing, urls }
}

fn person() -> Subject {
    Subject::Individual(Person {
        iin: Iin::with_check_digit("88010130001").unwrap(),
        surname: "Тестов".into(),
        given_name: "Тест".into(),
        patronymic: None,
        email: None,
    })
}

#[test]
fn sign_then_verify_attached_and_detached_with_report() {
    let clock = FixedClock(SystemClock.now());
    let (s, key, cert) = signer(&clock);
    let trust = TrustStore::new(std::slice::from_ref(&s.root.certificate_der), &[]).unwrap();
    // The store answers for both CAs: revocation is required for every certificate of the
    // path, the issuing CA's (issued by the root) too.
    let ours = [s.issuing.certificate_der.clone(), s.root.certificate_der.clone()];
    let store = StoreRevocationSource::new(&s.store, &ours).unwrap();
    let ctx = VerifyContext {
        trust: &trust,
        revocation: vec![&store],
        now: clock.0 + Duration::minutes(10),
        validation_time: None,
        requirements: Requirements { key_type: Some(KeyType::Sign), ..Default::default() },
        options: Default::default(),
    };
    let chain = vec![s.issuing.certificate_der.clone()];
    let signed_at = clock.0 + Duration::minutes(1);

    let attached = sign(b"hello", false, &key, &cert.der, &chain, signed_at).unwrap();
    let r = verify(&attached, None, &ctx).unwrap();
    assert!(r.valid, "{r:#?}");
    assert_eq!(r.content.as_deref(), Some(&b"hello"[..]));
    let signer = &r.signers[0];
    assert_eq!(signer.signing_time, Some(signed_at));
    assert_eq!(signer.validation_time, signed_at);
    assert_eq!(signer.digest_valid, Some(true));
    assert_eq!(signer.revocation.state, RevocationState::Good);
    assert_eq!(signer.identity().unwrap().iin, person().iin());
    assert!(signer.findings.is_empty(), "{:?}", signer.findings);

    let detached = sign(b"hello", true, &key, &cert.der, &chain, signed_at).unwrap();
    assert!(verify(&detached, Some(b"hello"), &ctx).unwrap().valid);
    let r = verify(&detached, Some(b"hellO"), &ctx).unwrap();
    assert!(!r.valid && r.has(Reason::DigestMismatch));

    // Requirements in the report are machine-readable.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["signers"][0]["findings"][0]["reason"], "DigestMismatch");
    assert_eq!(json["signers"][0]["certificate"]["identity"]["key_type"], "SIGN");

    // The signing certificate must be the one the key belongs to.
    let other = TestKey::new();
    assert!(matches!(sign(b"x", false, &other, &cert.der, &chain, signed_at), Err(CmsError::Certificate(_))));
    // A signingTime far in the future is refused.
    let future = sign(b"hello", false, &key, &cert.der, &chain, clock.0 + Duration::hours(1)).unwrap();
    assert!(verify(&future, None, &ctx).unwrap().has(Reason::SigningTimeInFuture));
}

/// A signer certificate issued by the test hierarchy, with its key and the setup.
pub(crate) fn signer(clock: &FixedClock) -> (Setup, TestKey, crate::issuer::IssuedCertificate) {
    issue_for(clock, ProfileId::IndividualSign, person())
}

/// A certificate of `profile` for `subject` issued by a new test hierarchy, with its key.
pub(crate) fn issue_for(
    clock: &FixedClock,
    profile: ProfileId,
    subject: Subject,
) -> (Setup, TestKey, crate::issuer::IssuedCertificate) {
    let s = setup(clock);
    let issuer = Issuer {
        ca: &s.issuing,
        store: &s.store,
        clock,
        urls: &s.urls,
        validity: Duration::days(365),
        actor: "t",
        crl_partitions: None,
    };
    let key = TestKey::new();
    let cert = issuer
        .issue(&IssuanceRequest { profile, subject, roles: vec![], public_key: key.public_key().clone() })
        .unwrap();
    (s, key, cert)
}

/// A DER CMS SignedData with a certificate chain, for codec tests.
pub(super) fn fixture_cms() -> Vec<u8> {
    let clock = FixedClock(SystemClock.now());
    let (s, key, cert) = signer(&clock);
    sign(b"hello", false, &key, &cert.der, std::slice::from_ref(&s.issuing.certificate_der), clock.0).unwrap()
}

#[test]
fn a_remembered_path_still_sees_revocation_and_time() {
    let clock = FixedClock(SystemClock.now());
    let (s, key, cert) = signer(&clock);
    let trust = TrustStore::new(std::slice::from_ref(&s.root.certificate_der), &[]).unwrap();
    // The store answers for both CAs: revocation is required for every certificate of the
    // path, the issuing CA's (issued by the root) too.
    let ours = [s.issuing.certificate_der.clone(), s.root.certificate_der.clone()];
    let store = StoreRevocationSource::new(&s.store, &ours).unwrap();
    let ctx = |now, validation_time| VerifyContext {
        trust: &trust,
        revocation: vec![&store],
        now,
        validation_time,
        requirements: Requirements::default(),
        options: Default::default(),
    };
    let chain = vec![s.issuing.certificate_der.clone()];
    let cms = sign(b"hello", false, &key, &cert.der, &chain, clock.0).unwrap();
    let now = clock.0 + Duration::minutes(1);

    assert!(verify(&cms, None, &ctx(now, None)).unwrap().valid);
    assert!(verify(&cms, None, &ctx(now, None)).unwrap().valid);
    let stats = trust.path_cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1), "the second verification reused the path");

    // Validity is checked on every request, remembered path or not.
    let late = cert.not_after + Duration::days(1);
    let r = verify(&cms, None, &ctx(late, Some(late))).unwrap();
    assert!(!r.valid && r.has(Reason::Expired), "{r:#?}");

    // So is revocation: a certificate revoked after the path was remembered is revoked.
    let revocation = crate::store::Revocation {
        reason: crate::revocation::RevocationReason::KeyCompromise,
        revoked_at: clock.0 - Duration::minutes(5),
        invalidity_date: None,
    };
    let audit = crate::store::AuditEvent::new("t", "certificate.revoke").target(cert.serial.to_hex());
    crate::store::Store::revoke(&s.store, &cert.serial, &revocation, &audit).unwrap();
    let r = verify(&cms, None, &ctx(now, None)).unwrap();
    assert!(!r.valid && r.has(Reason::Revoked), "{r:#?}");

    // With the cache off every verification builds the path and gets the same verdict.
    let uncached = TrustStore::new(std::slice::from_ref(&s.root.certificate_der), &[]).unwrap().with_path_cache(0);
    let ctx = VerifyContext { trust: &uncached, ..ctx(now, None) };
    let r = verify(&cms, None, &ctx).unwrap();
    assert!(!r.valid && r.has(Reason::Revoked));
    assert_eq!(uncached.path_cache_stats().entries, 0);
}

/// The SignedData is written with the certificates as they were handed over (not decoded and
/// encoded again) and is still the DER the `cms` crate reads and writes: decoding and encoding
/// it gives the same bytes, the certificate set in DER order.
#[test]
fn sign_carries_the_certificates_as_given_in_canonical_der() {
    use der::{Decode, Encode};
    let clock = FixedClock(SystemClock.now());
    let (s, key, cert) = signer(&clock);
    let chain = vec![s.issuing.certificate_der.clone(), s.root.certificate_der.clone()];
    for detached in [false, true] {
        let signed = sign(b"hello", detached, &key, &cert.der, &chain, clock.0).unwrap();
        let info = cms::content_info::ContentInfo::from_der(&signed).unwrap();
        assert_eq!(info.to_der().unwrap(), signed);
        let data: cms::signed_data::SignedData = info.content.decode_as().unwrap();
        let mut carried: Vec<Vec<u8>> = data
            .certificates
            .unwrap()
            .0
            .iter()
            .map(|c| match c {
                cms::cert::CertificateChoices::Certificate(c) => c.to_der().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        let mut given = vec![cert.der.clone(), chain[0].clone(), chain[1].clone()];
        carried.sort();
        given.sort();
        assert_eq!(carried, given);
        assert!(data.crls.is_none());
    }
    // What is not one DER SEQUENCE is refused as a chain certificate.
    for bad in [vec![0x04, 0x01, 0x00], vec![0x30, 0x05, 0x00], [chain[0].as_slice(), &[0]].concat()] {
        let refused = sign(b"x", false, &key, &cert.der, &[bad], clock.0);
        assert!(matches!(refused, Err(CmsError::Certificate(ref m)) if m.starts_with("chain")), "{refused:?}");
    }
}

#[test]
fn the_signer_certificate_read_for_a_signature_is_what_the_certificate_says() {
    use super::sign::SignerCertificate;
    use der::{Decode, Encode};
    let clock = FixedClock(SystemClock.now());
    let (s, _key, cert) = signer(&clock);
    let same = |der: &[u8]| {
        let full = x509_cert::Certificate::from_der(der).unwrap();
        let head = SignerCertificate::from_der(der).unwrap();
        assert_eq!(head.issuer, full.tbs_certificate.issuer);
        assert_eq!(head.serial_number, full.tbs_certificate.serial_number);
        assert_eq!(head.public_key, full.tbs_certificate.subject_public_key_info);
    };
    // v3 with extensions: the holder's, the CAs'.
    for der in [&cert.der, &s.issuing.certificate_der, &s.root.certificate_der] {
        same(der);
    }
    // v1: no version field, no extensions.
    let mut v1 = x509_cert::Certificate::from_der(&cert.der).unwrap();
    v1.tbs_certificate.version = x509_cert::certificate::Version::V1;
    v1.tbs_certificate.extensions = None;
    let v1 = v1.to_der().unwrap();
    let tbs = x509_cert::Certificate::from_der(&v1).unwrap().tbs_certificate.to_der().unwrap();
    let header = if tbs[1] & 0x80 != 0 { 2 + usize::from(tbs[1] & 0x7f) } else { 2 };
    assert_eq!(tbs[header], 0x02, "v1: the TBS starts with the serial number, no [0] version");
    same(&v1);
    // Anything cut short or with bytes after it is an error, never a panic.
    for len in 0..cert.der.len() {
        assert!(SignerCertificate::from_der(&cert.der[..len]).is_err(), "cut at {len}");
    }
    assert!(SignerCertificate::from_der(&[cert.der.as_slice(), &[0]].concat()).is_err());
}
