//! Signature timestamps (CAdES-T): a token from a time-stamping authority made by the real
//! `openssl ts -reply`, over the signature value, proves when the signature existed. With it a
//! signature made before a key compromise stays valid; without it (or with a token that does
//! not count) the signer's own signingTime cannot excuse a compromised key.

use std::path::Path;

use ca_core::clock::{Clock, FixedClock, SystemClock};
use ca_core::cms::{self, Reason, Requirements, StoreRevocationSource, TrustStore, VerifyContext};
use ca_core::identity::Subject;
use ca_core::issuer::{IssuanceRequest, IssuedCertificate};
use ca_core::profile::ProfileId;
use ca_core::revocation::{revoke, RevocationReason};
use ca_core::signer::Signer;
use ca_tests::{openssl_ok, write_pem};
use fixtures::{individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use time::{Duration, OffsetDateTime};

const CONTENT: &[u8] = b"{\"request\":\"re-issue\",\"nonce\":\"7a1f\"}";

struct Holder {
    key: SoftwareKey,
    cert: IssuedCertificate,
}

fn issue(ca: &TestCa, at: OffsetDateTime, profile: ProfileId, subject: Subject) -> Holder {
    let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let cert = ca
        .issuer(&FixedClock(at))
        .issue(&IssuanceRequest { profile, subject, roles: vec![], public_key: key.public_key().clone() })
        .unwrap();
    Holder { key, cert }
}

/// A time-stamping authority run by `openssl ts -reply` with a TSA certificate of `ca`.
struct Tsa {
    dir: tempfile::TempDir,
}

impl Tsa {
    fn new(ca: &TestCa, at: OffsetDateTime) -> Self {
        let tsa = issue(
            ca,
            at,
            ProfileId::TimeStamping,
            Subject::Service { common_name: "TEST TSA".into(), organisation: None },
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_pem(d, "tsa.pem", "CERTIFICATE", &tsa.cert.der);
        write_pem(d, "chain.pem", "CERTIFICATE", &ca.issuing.certificate_der);
        std::fs::write(d.join("tsa.key"), tsa.key.to_encrypted_pem(b"pw").unwrap()).unwrap();
        std::fs::write(d.join("serial"), "01\n").unwrap();
        let config = format!(
            "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = {dir}\nserial = $dir/serial\nsigner_cert = $dir/tsa.pem\n\
             certs = $dir/chain.pem\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n\
             default_policy = 1.2.398.3.3.2.1\ndigests = sha256, sha384, sha512\naccuracy = secs:1\n\
             ordering = no\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            dir = d.display()
        );
        std::fs::write(d.join("tsa.cnf"), config).unwrap();
        Self { dir }
    }

    /// A timestamp token (ContentInfo DER) over the SHA-256 of `message`, dated now.
    fn token(&self, message: &[u8]) -> Vec<u8> {
        let d = self.dir.path();
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(message));
        let (query, token) = (d.join("q.tsq"), d.join("token.der"));
        openssl_ok(&["ts", "-query", "-digest", &digest, "-sha256", "-cert", "-out", path(&query)]);
        openssl_ok(&[
            "ts",
            "-reply",
            "-config",
            path(&d.join("tsa.cnf")),
            "-queryfile",
            path(&query),
            "-token_out",
            "-out",
            path(&token),
            "-passin",
            "pass:pw",
        ]);
        std::fs::read(token).unwrap()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The signature value of the CMS's only signer.
fn signature_value(cms: &[u8]) -> Vec<u8> {
    cms::signature_values(cms).unwrap().remove(0)
}

/// Add `token` to the CMS's only signer as id-aa-signatureTimeStampToken, as a client
/// upgrading its signature to CAdES-T does (unsigned: the signature is untouched).
fn with_timestamp(cms: &[u8], token: &[u8]) -> Vec<u8> {
    cms::add_signature_timestamp(cms, 0, token).unwrap()
}

fn verify(ca: &TestCa, cms: &[u8], now: OffsetDateTime) -> cms::CmsVerification {
    let trust = TrustStore::new(std::slice::from_ref(&ca.root.certificate_der), &[]).unwrap();
    let store =
        StoreRevocationSource::new(&ca.store, &[ca.issuing.certificate_der.clone(), ca.root.certificate_der.clone()])
            .unwrap();
    let ctx = VerifyContext {
        trust: &trust,
        revocation: vec![&store],
        now,
        validation_time: None,
        requirements: Requirements::default(),
        options: Default::default(),
    };
    cms::verify(cms, None, &ctx).unwrap()
}

#[test]
fn a_timestamp_proves_a_signature_older_than_a_key_compromise() {
    let now = SystemClock.now();
    let ca = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &FixedClock(now - Duration::days(30)));
    let tsa = Tsa::new(&ca, now - Duration::days(30));
    let signer = issue(&ca, now - Duration::days(20), ProfileId::IndividualSign, individual(3));
    let chain = std::slice::from_ref(&ca.issuing.certificate_der);
    let plain = cms::sign(CONTENT, false, &signer.key, &signer.cert.der, chain, now - Duration::minutes(1)).unwrap();
    let stamped = with_timestamp(&plain, &tsa.token(&signature_value(&plain)));

    // Before anything is revoked, the stamped signature is valid and validated at genTime.
    let r = verify(&ca, &stamped, now + Duration::minutes(1));
    assert!(r.valid, "{:?}", r.reasons());
    let s = &r.signers[0];
    let ts = s.timestamp.as_ref().expect("timestamp reported");
    assert!(ts.valid, "{ts:?}");
    assert_eq!(ts.tsa.as_deref(), Some("C=KZ,CN=TEST TSA"));
    let gen_time = ts.time.unwrap();
    assert!((gen_time - now).abs() < Duration::minutes(1), "genTime {gen_time} is now");
    assert_eq!(s.validation_time, gen_time);
    assert_eq!(s.validation_time_source, cms::TimeSource::Timestamp);

    // The key is reported compromised an hour later.
    revoke(
        &ca.store,
        &FixedClock(now + Duration::hours(1)),
        &signer.cert.serial,
        RevocationReason::KeyCompromise,
        None,
        "t",
    )
    .unwrap();
    let later = now + Duration::hours(2);
    let r = verify(&ca, &stamped, later);
    assert!(r.valid && r.has(Reason::RevokedAfterSigning), "proven older than the compromise: {:?}", r.reasons());
    let r = verify(&ca, &plain, later);
    assert!(!r.valid && r.has(Reason::SigningTimeUnproven), "only claimed: {:?}", r.reasons());
    assert_eq!(r.signers[0].validation_time_source, cms::TimeSource::SigningTime);

    // A token for another signature does not count.
    let other = cms::sign(b"other", false, &signer.key, &signer.cert.der, chain, now - Duration::minutes(1)).unwrap();
    let wrong = with_timestamp(&plain, &tsa.token(&signature_value(&other)));
    let r = verify(&ca, &wrong, later);
    assert!(!r.valid && r.has(Reason::TimestampInvalid) && r.has(Reason::SigningTimeUnproven), "{:?}", r.reasons());
    let problem = r.signers[0].timestamp.as_ref().and_then(|t| t.problem.clone()).unwrap_or_default();
    assert!(problem.contains("messageImprint"), "{problem}");

    // Nor does a token from a TSA outside the trust store.
    let stranger = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &FixedClock(now - Duration::days(30)));
    let foreign = Tsa::new(&stranger, now - Duration::days(30));
    let r = verify(&ca, &with_timestamp(&plain, &foreign.token(&signature_value(&plain))), later);
    assert!(!r.valid && r.has(Reason::TimestampInvalid), "{:?}", r.reasons());

    // A compromise dated (invalidity date) before genTime defeats the timestamp too.
    let early = issue(&ca, now - Duration::days(20), ProfileId::IndividualSign, individual(4));
    let plain = cms::sign(CONTENT, false, &early.key, &early.cert.der, chain, now - Duration::minutes(1)).unwrap();
    let stamped = with_timestamp(&plain, &tsa.token(&signature_value(&plain)));
    revoke(
        &ca.store,
        &FixedClock(now + Duration::hours(1)),
        &early.cert.serial,
        RevocationReason::KeyCompromise,
        Some(now - Duration::days(1)),
        "t",
    )
    .unwrap();
    let r = verify(&ca, &stamped, later);
    assert!(!r.valid && r.has(Reason::Revoked), "{:?}", r.reasons());

    // openssl agrees the token is a valid TSA response over that signature.
    let d = tsa.dir.path();
    std::fs::write(d.join("check.der"), tsa.token(&signature_value(&plain))).unwrap();
    write_pem(d, "root.pem", "CERTIFICATE", &ca.root.certificate_der);
    openssl_ok(&[
        "ts",
        "-verify",
        "-in",
        path(&d.join("check.der")),
        "-token_in",
        "-digest",
        &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(signature_value(&plain))),
        "-CAfile",
        path(&d.join("root.pem")),
        "-untrusted",
        path(&d.join("chain.pem")),
    ]);
}
