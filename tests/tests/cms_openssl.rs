//! CMS SignedData interoperability with the real openssl: what we sign, `openssl cms -verify`
//! accepts; what `openssl cms -sign` makes (attached, detached, streamed BER, PEM), we verify;
//! and every verdict a portal needs (tampered, expired, revoked before/after signing,
//! untrusted, wrong key type, person or role, several signers, garbage).

use std::path::{Path, PathBuf};

use ca_core::clock::FixedClock;
use ca_core::cms::{self, Reason, Requirements, RevocationState, StoreRevocationSource, TrustStore, VerifyContext};
use ca_core::identity::{KeyType, Subject};
use ca_core::issuer::{IssuanceRequest, IssuedCertificate};
use ca_core::profile::{ProfileId, Role};
use ca_core::revocation::{revoke, RevocationReason};
use ca_core::signer::Signer;
use ca_tests::{openssl, openssl_ok, write_pem};
use fixtures::{employee, fixed_now, individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use time::{Duration, OffsetDateTime};

const CONTENT: &[u8] = b"{\"request\":\"bind phone +77010000000\",\"nonce\":\"5f2c\"}";

struct Holder {
    key: SoftwareKey,
    cert: IssuedCertificate,
}

fn issue(
    ca: &TestCa,
    clock: &FixedClock,
    profile: ProfileId,
    subject: Subject,
    roles: Vec<Role>,
    alg: KeyAlgorithm,
) -> Holder {
    let key = SoftwareKey::generate(alg).unwrap();
    let cert = ca
        .issuer(clock)
        .issue(&IssuanceRequest { profile, subject, roles, public_key: key.public_key().clone() })
        .unwrap();
    Holder { key, cert }
}

fn sign_holder(ca: &TestCa, clock: &FixedClock, alg: KeyAlgorithm) -> Holder {
    issue(ca, clock, ProfileId::IndividualSign, individual(1), vec![], alg)
}

fn chain(ca: &TestCa) -> Vec<Vec<u8>> {
    vec![ca.issuing.certificate_der.clone()]
}

fn trust(ca: &TestCa) -> TrustStore {
    TrustStore::new(std::slice::from_ref(&ca.root.certificate_der), &[]).unwrap()
}

fn our_sign(ca: &TestCa, h: &Holder, detached: bool, at: OffsetDateTime) -> Vec<u8> {
    cms::sign(CONTENT, detached, &h.key, &h.cert.der, &chain(ca), at).unwrap()
}

/// Verify against `ca`'s root, with its store as revocation source.
fn check(
    ca: &TestCa,
    cms: &[u8],
    detached: Option<&[u8]>,
    req: Requirements,
    now: OffsetDateTime,
) -> cms::CmsVerification {
    check_at(ca, cms, detached, req, now, None)
}

fn check_at(
    ca: &TestCa,
    cms: &[u8],
    detached: Option<&[u8]>,
    requirements: Requirements,
    now: OffsetDateTime,
    validation_time: Option<OffsetDateTime>,
) -> cms::CmsVerification {
    let trust = trust(ca);
    let store =
        StoreRevocationSource::new(&ca.store, &[ca.issuing.certificate_der.clone(), ca.root.certificate_der.clone()])
            .unwrap();
    let ctx = VerifyContext {
        trust: &trust,
        revocation: vec![&store],
        now,
        validation_time,
        requirements,
        options: Default::default(),
    };
    cms::verify(cms, detached, &ctx).unwrap()
}

fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// The holder's key as a PEM file for openssl, through a PKCS#12 as a client would have it.
fn key_pem(ca: &TestCa, h: &Holder, name: &str) -> (PathBuf, PathBuf) {
    let dir = ca.dir.path();
    let p12 = hsm::build_pkcs12(&h.key, &h.cert.der, &chain(ca), "pw", name).unwrap();
    let p12_path = path(dir, &format!("{name}.p12"));
    std::fs::write(&p12_path, p12).unwrap();
    let key = path(dir, &format!("{name}.key"));
    openssl_ok(&[
        "pkcs12",
        "-in",
        p12_path.to_str().unwrap(),
        "-passin",
        "pass:pw",
        "-nodes",
        "-nocerts",
        "-out",
        key.to_str().unwrap(),
    ]);
    (write_pem(dir, &format!("{name}.pem"), "CERTIFICATE", &h.cert.der), key)
}

fn openssl_sign(ca: &TestCa, signers: &[(&Holder, &str)], extra: &[&str]) -> Vec<u8> {
    let issuing = write_pem(ca.dir.path(), "issuing.pem", "CERTIFICATE", &ca.issuing.certificate_der);
    openssl_sign_with(ca, signers, extra, &issuing)
}

fn openssl_sign_with(ca: &TestCa, signers: &[(&Holder, &str)], extra: &[&str], issuing: &Path) -> Vec<u8> {
    let dir = ca.dir.path();
    let data = path(dir, "data.bin");
    std::fs::write(&data, CONTENT).unwrap();
    let out = path(dir, "openssl.cms");
    let mut args: Vec<String> = ["cms", "-sign", "-binary", "-md", "sha256"].map(String::from).to_vec();
    for (h, name) in signers {
        let (cert, key) = key_pem(ca, h, name);
        args.extend(["-signer".into(), cert.display().to_string(), "-inkey".into(), key.display().to_string()]);
    }
    args.extend(["-certfile".into(), issuing.display().to_string(), "-in".into(), data.display().to_string()]);
    args.extend(["-out".into(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl_ok(&refs);
    std::fs::read(out).unwrap()
}

#[test]
fn openssl_verifies_what_we_sign_attached_and_detached_rsa_and_ecdsa() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let clock = fixed_now();
    let dir = ca.dir.path();
    let root = write_pem(dir, "root.pem", "CERTIFICATE", &ca.root.certificate_der);
    let data = path(dir, "content.bin");
    std::fs::write(&data, CONTENT).unwrap();
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256, KeyAlgorithm::P384] {
        let h = sign_holder(&ca, &clock, alg);
        for detached in [false, true] {
            let der = our_sign(&ca, &h, detached, clock.0);
            let file = path(dir, "ours.cms");
            std::fs::write(&file, &der).unwrap();
            let out = path(dir, "out.bin");
            let mut args = vec!["cms", "-verify", "-binary", "-inform", "DER", "-in", file.to_str().unwrap()];
            args.extend(["-CAfile", root.to_str().unwrap(), "-out", out.to_str().unwrap()]);
            if detached {
                args.extend(["-content", data.to_str().unwrap()]);
            }
            let result = openssl(&args);
            assert!(
                result.status.success(),
                "{alg:?} detached={detached}: {}",
                String::from_utf8_lossy(&result.stderr)
            );
            assert_eq!(std::fs::read(&out).unwrap(), CONTENT);
            // And openssl sees our CAdES attributes.
            let text = openssl_ok(&["cms", "-cmsout", "-print", "-inform", "DER", "-in", file.to_str().unwrap()]);
            assert!(text.contains("id-smime-aa-signingCertificateV2"), "{text}");
            assert!(text.contains("signingTime"), "{text}");
            // And we accept our own.
            let report = check(&ca, &der, detached.then_some(CONTENT), Requirements::default(), clock.0);
            assert!(report.valid, "{alg:?} detached={detached}: {report:#?}");
            assert_eq!(report.detached, detached);
        }
    }
}

#[test]
fn we_verify_what_openssl_signs_attached_detached_streamed_and_pem() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let clock = fixed_now();
    let rsa = sign_holder(&ca, &clock, KeyAlgorithm::Rsa2048);
    let ec = sign_holder(&ca, &clock, KeyAlgorithm::P256);
    let iin = individual(1).iin().unwrap();
    let require = Requirements { key_type: Some(KeyType::Sign), iin: Some(iin), ..Default::default() };
    for (holder, name) in [(&rsa, "rsa"), (&ec, "ec")] {
        let cases: [(&str, &[&str], bool); 5] = [
            ("attached", &["-nodetach", "-outform", "DER"], false),
            ("subjectKeyIdentifier", &["-nodetach", "-keyid", "-outform", "DER"], false),
            ("detached", &["-outform", "DER"], true),
            ("streamed BER", &["-nodetach", "-stream", "-outform", "DER"], false),
            ("PEM", &["-nodetach", "-outform", "PEM"], false),
        ];
        for (case, args, detached) in cases {
            let cms = openssl_sign(&ca, &[(holder, name)], args);
            if case == "streamed BER" {
                assert_eq!(&cms[..2], &[0x30, 0x80], "openssl -stream writes indefinite lengths");
            }
            let report = check(&ca, &cms, detached.then_some(CONTENT), require.clone(), OffsetDateTime::now_utc());
            assert!(report.valid, "{name} {case}: {report:#?}");
            assert_eq!(report.content.as_deref(), Some(CONTENT));
            let signer = &report.signers[0];
            let identity = signer.identity().unwrap();
            assert_eq!(identity.iin, Some(iin));
            assert_eq!(identity.key_type, Some(KeyType::Sign));
            assert!(signer.signing_time.is_some(), "openssl adds signingTime");
            assert_eq!(signer.revocation.state, RevocationState::Good);
            assert_eq!(signer.chain.len(), 2, "issuing CA and root");
        }
    }
}

#[test]
fn we_verify_openssl_signatures_without_signed_attributes() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let clock = fixed_now();
    for (alg, name) in [(KeyAlgorithm::Rsa2048, "rsa"), (KeyAlgorithm::P256, "ec")] {
        let h = sign_holder(&ca, &clock, alg);
        for (args, detached) in
            [(&["-nodetach", "-noattr", "-outform", "DER"][..], false), (&["-noattr", "-outform", "DER"][..], true)]
        {
            let cms = openssl_sign(&ca, &[(&h, name)], args);
            let now = OffsetDateTime::now_utc();
            let r = check(&ca, &cms, detached.then_some(CONTENT), Requirements::default(), now);
            assert!(r.valid, "{name}: {r:#?}");
            let s = &r.signers[0];
            assert_eq!((s.signing_time, s.digest_valid), (None, None), "no signed attributes");
            assert_eq!(s.validation_time, now, "validated at now without signingTime");
            let mut other = CONTENT.to_vec();
            other[1] ^= 1;
            let r = check(&ca, &cms, Some(&other), Requirements::default(), now);
            assert!(!r.valid && (r.has(Reason::SignatureInvalid) || r.has(Reason::Malformed)), "{:?}", r.reasons());
        }
    }
}

#[test]
fn one_flipped_bit_in_content_or_signature_is_rejected_with_its_reason() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256] {
        let h = sign_holder(&ca, &clock, alg);
        let der = our_sign(&ca, &h, false, clock.0);
        let at = der.windows(CONTENT.len()).position(|w| w == CONTENT).unwrap();
        let mut content_flip = der.clone();
        content_flip[at + 3] ^= 0x01;
        let r = check(&ca, &content_flip, None, Requirements::default(), clock.0);
        assert!(!r.valid && r.has(Reason::DigestMismatch), "{alg:?}: {:?}", r.reasons());
        // Our SignerInfo is the last element, its signature the last field.
        let mut sig_flip = der.clone();
        *sig_flip.last_mut().unwrap() ^= 0x01;
        let r = check(&ca, &sig_flip, None, Requirements::default(), clock.0);
        assert!(!r.valid && r.has(Reason::SignatureInvalid), "{alg:?}: {:?}", r.reasons());
        assert!(!r.has(Reason::DigestMismatch));
        // Detached with altered content.
        let detached = our_sign(&ca, &h, true, clock.0);
        let mut other = CONTENT.to_vec();
        other[0] ^= 0x80;
        let r = check(&ca, &detached, Some(&other), Requirements::default(), clock.0);
        assert!(!r.valid && r.has(Reason::DigestMismatch), "{:?}", r.reasons());
        let r = check(&ca, &detached, None, Requirements::default(), clock.0);
        assert!(!r.valid && r.has(Reason::ContentMissing), "{:?}", r.reasons());
    }
}

#[test]
fn expired_signer_is_a_verdict_and_signing_time_decides() {
    let now = fixed_now().0;
    let past = FixedClock(now - Duration::days(800));
    let ca = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &past);
    let h = sign_holder(&ca, &past, KeyAlgorithm::P256);
    // Signed "now", after the certificate expired.
    let late = our_sign(&ca, &h, false, now);
    let r = check(&ca, &late, None, Requirements::default(), now);
    assert!(!r.valid && r.has(Reason::Expired), "{:?}", r.reasons());
    assert!(!r.has(Reason::Untrusted), "the path itself is fine: {:?}", r.reasons());
    assert!(r.signers[0].signature_valid);
    // Signed while valid: valid at the signing time, but not at a validation time of "now".
    let early = our_sign(&ca, &h, false, past.0 + Duration::days(10));
    let r = check(&ca, &early, None, Requirements::default(), now);
    assert!(r.valid, "{:#?}", r);
    let r = check_at(&ca, &early, None, Requirements::default(), now, Some(now));
    assert!(!r.valid && r.has(Reason::Expired));
    // Not yet valid.
    let r = check_at(&ca, &early, None, Requirements::default(), now, Some(past.0 - Duration::days(1)));
    assert!(!r.valid && r.has(Reason::NotYetValid), "{:?}", r.reasons());
}

#[test]
fn revoked_before_signing_is_revoked_after_signing_is_valid_with_a_note() {
    let now = fixed_now().0;
    let issued_at = FixedClock(now - Duration::days(30));
    let ca = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &issued_at);
    let signed_at = now - Duration::days(10);
    for (reason, revoked_days_ago, expect_valid) in [
        (RevocationReason::KeyCompromise, 20, false),
        (RevocationReason::CertificateHold, 20, false),
        (RevocationReason::Superseded, 5, true),
    ] {
        let h = sign_holder(&ca, &issued_at, KeyAlgorithm::P256);
        let cms = our_sign(&ca, &h, false, signed_at);
        let revoked_at = FixedClock(now - Duration::days(revoked_days_ago));
        revoke(&ca.store, &revoked_at, &h.cert.serial, reason, None, "test").unwrap();
        let r = check(&ca, &cms, None, Requirements::default(), now);
        let s = &r.signers[0];
        assert_eq!(r.valid, expect_valid, "{reason:?}: {:?}", r.reasons());
        assert_eq!(s.revocation.reason, Some(reason));
        assert_eq!(s.revocation.revoked_at, Some(revoked_at.0));
        assert_eq!(s.revocation.source.as_deref(), Some("store"));
        if expect_valid {
            assert!(r.has(Reason::RevokedAfterSigning) && !r.has(Reason::Revoked));
            assert_eq!(s.revocation.state, RevocationState::RevokedLater);
        } else {
            assert!(r.has(Reason::Revoked), "{:?}", r.reasons());
            assert_eq!(s.revocation.state, RevocationState::Revoked);
        }
    }
}

/// A key revoked for compromise after the time a signature claims: the claim is the signer's
/// own, and whoever holds a compromised key can write any signingTime, so it is refused unless
/// the relying party vouches for the time itself. An invalidity date moves the cut-off back to
/// the suspected compromise.
#[test]
fn a_compromised_key_cannot_backdate_its_way_to_a_valid_signature() {
    let now = fixed_now().0;
    let issued_at = FixedClock(now - Duration::days(30));
    let ca = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &issued_at);
    let claimed = now - Duration::days(10);

    // Revoked 5 days ago for keyCompromise; the signature claims 10 days ago.
    let h = sign_holder(&ca, &issued_at, KeyAlgorithm::P256);
    let cms = our_sign(&ca, &h, false, claimed);
    revoke(&ca.store, &FixedClock(now - Duration::days(5)), &h.cert.serial, RevocationReason::KeyCompromise, None, "t")
        .unwrap();
    let r = check(&ca, &cms, None, Requirements::default(), now);
    assert!(!r.valid, "{:?}", r.reasons());
    assert!(r.has(Reason::RevokedAfterSigning) && r.has(Reason::SigningTimeUnproven), "{:?}", r.reasons());
    assert_eq!(r.signers[0].revocation.state, RevocationState::RevokedLater);
    // The relying party knows when it received the request (its own record): that time counts.
    let r = check_at(&ca, &cms, None, Requirements::default(), now, Some(claimed));
    assert!(r.valid && r.has(Reason::RevokedAfterSigning) && !r.has(Reason::SigningTimeUnproven), "{:?}", r.reasons());

    // Revoked 5 days ago, but compromised (invalidity date) 15 days ago: revoked at the claim.
    let h = sign_holder(&ca, &issued_at, KeyAlgorithm::P256);
    let cms = our_sign(&ca, &h, false, claimed);
    let compromised = now - Duration::days(15);
    revoke(
        &ca.store,
        &FixedClock(now - Duration::days(5)),
        &h.cert.serial,
        RevocationReason::KeyCompromise,
        Some(compromised),
        "t",
    )
    .unwrap();
    let r = check_at(&ca, &cms, None, Requirements::default(), now, Some(claimed));
    assert!(!r.valid && r.has(Reason::Revoked) && !r.has(Reason::RevokedAfterSigning), "{:?}", r.reasons());
    assert_eq!(r.signers[0].revocation.state, RevocationState::Revoked);

    // Not a compromise (superseded): the claimed time is believed, with a note.
    let h = sign_holder(&ca, &issued_at, KeyAlgorithm::P256);
    let cms = our_sign(&ca, &h, false, claimed);
    revoke(
        &ca.store,
        &FixedClock(now - Duration::days(5)),
        &h.cert.serial,
        RevocationReason::Superseded,
        Some(compromised),
        "t",
    )
    .unwrap();
    let r = check(&ca, &cms, None, Requirements::default(), now);
    assert!(r.valid && r.has(Reason::RevokedAfterSigning), "{:?}", r.reasons());
}
#[test]
fn untrusted_unknown_to_store_and_relying_party_requirements() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let other = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    let now = clock.0;

    let foreign = sign_holder(&other, &clock, KeyAlgorithm::P256);
    let r = check(&ca, &our_sign(&other, &foreign, false, now), None, Requirements::default(), now);
    assert!(!r.valid && r.has(Reason::Untrusted), "{:?}", r.reasons());
    assert_eq!(r.signers[0].revocation.state, RevocationState::NotChecked);
    assert!(r.signers[0].signature_valid, "the signature itself is fine");

    // A certificate of our CA that the store does not know (here: a different store).
    let ours = sign_holder(&ca, &clock, KeyAlgorithm::P256);
    let cms = our_sign(&ca, &ours, false, now);
    let trust = trust(&ca);
    let wrong_store =
        StoreRevocationSource::new(&other.store, std::slice::from_ref(&ca.issuing.certificate_der)).unwrap();
    let ctx = VerifyContext {
        trust: &trust,
        revocation: vec![&wrong_store],
        now,
        validation_time: None,
        requirements: Requirements::default(),
        options: Default::default(),
    };
    let r = cms::verify(&cms, None, &ctx).unwrap();
    assert!(!r.valid && r.has(Reason::UnknownToStore), "{:?}", r.reasons());

    // AUTH key where SIGN is required, and the other way round.
    let auth = issue(&ca, &clock, ProfileId::IndividualAuth, individual(2), vec![], KeyAlgorithm::P256);
    let auth_cms = our_sign(&ca, &auth, false, now);
    let need_sign = Requirements { key_type: Some(KeyType::Sign), ..Default::default() };
    let r = check(&ca, &auth_cms, None, need_sign.clone(), now);
    assert!(!r.valid && r.has(Reason::WrongKeyType), "{:?}", r.reasons());
    let need_auth = Requirements { key_type: Some(KeyType::Auth), ..Default::default() };
    assert!(check(&ca, &auth_cms, None, need_auth.clone(), now).valid);
    assert!(check(&ca, &cms, None, need_auth, now).has(Reason::WrongKeyType));

    // Wrong person.
    let someone_else = Requirements { iin: Some(individual(99).iin().unwrap()), ..Default::default() };
    let r = check(&ca, &cms, None, someone_else, now);
    assert!(!r.valid && r.has(Reason::WrongPerson), "{:?}", r.reasons());

    // Roles and organisation.
    let head = issue(&ca, &clock, ProfileId::LegalSign, employee(3, 4), vec![Role::FirstHead], KeyAlgorithm::P256);
    let staff = issue(&ca, &clock, ProfileId::LegalSign, employee(5, 4), vec![Role::Employee], KeyAlgorithm::P256);
    let need_head = Requirements { roles: vec![Role::FirstHead], bin: employee(3, 4).bin(), ..Default::default() };
    assert!(check(&ca, &our_sign(&ca, &head, false, now), None, need_head.clone(), now).valid);
    let r = check(&ca, &our_sign(&ca, &staff, false, now), None, need_head.clone(), now);
    assert!(!r.valid && r.has(Reason::MissingRole) && !r.has(Reason::WrongOrganisation), "{:?}", r.reasons());
    let r = check(&ca, &cms, None, need_head, now);
    assert!(r.has(Reason::MissingRole) && r.has(Reason::WrongOrganisation), "{:?}", r.reasons());
}

#[test]
fn several_signers_are_each_reported() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let other = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    let a = sign_holder(&ca, &clock, KeyAlgorithm::Rsa2048);
    let b = issue(&ca, &clock, ProfileId::IndividualSign, individual(7), vec![], KeyAlgorithm::P256);
    let cms = openssl_sign(&ca, &[(&a, "a"), (&b, "b")], &["-nodetach", "-outform", "DER"]);
    let r = check(&ca, &cms, None, Requirements::default(), OffsetDateTime::now_utc());
    assert!(r.valid, "{r:#?}");
    assert_eq!(r.signers.len(), 2);
    let mut iins: Vec<_> = r.signers.iter().map(|s| s.identity().unwrap().iin.unwrap()).collect();
    iins.sort();
    let mut expected = vec![individual(1).iin().unwrap(), individual(7).iin().unwrap()];
    expected.sort();
    assert_eq!(iins, expected);

    // One of two signers from an untrusted CA: the whole is invalid, the good signer still is.
    let stranger = sign_holder(&other, &clock, KeyAlgorithm::P256);
    // openssl takes one -certfile: put both issuing CAs into it.
    let both = ca.dir.path().join("both-issuing.pem");
    let pem = |der: &[u8]| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap();
    std::fs::write(&both, pem(&ca.issuing.certificate_der) + &pem(&other.issuing.certificate_der)).unwrap();
    let mixed = openssl_sign_with(&ca, &[(&a, "a"), (&stranger, "s")], &["-nodetach", "-outform", "DER"], &both);
    let r = check(&ca, &mixed, None, Requirements::default(), OffsetDateTime::now_utc());
    assert!(!r.valid);
    assert_eq!(r.signers.iter().filter(|s| s.valid).count(), 1, "{:?}", r.reasons());
    assert!(r.has(Reason::Untrusted));
}

#[test]
fn garbage_truncated_and_empty_input_is_an_error_never_a_panic() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    let h = sign_holder(&ca, &clock, KeyAlgorithm::P256);
    let der = our_sign(&ca, &h, false, clock.0);
    let trust = trust(&ca);
    let ctx = VerifyContext {
        trust: &trust,
        revocation: vec![],
        now: clock.0,
        validation_time: None,
        requirements: Requirements::default(),
        options: Default::default(),
    };
    for input in [&b""[..], b"   ", b"garbage, not base64!", &[0x30, 0x03, 0x02, 0x01, 0x01], &[0xde, 0xad, 0xbe, 0xef]]
    {
        let err = cms::verify(input, None, &ctx).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    // A certificate is DER, but not a CMS.
    let err = cms::verify(&h.cert.der, None, &ctx).unwrap_err().to_string();
    assert!(err.contains("not a CMS SignedData"), "{err}");
    // Every truncation of a real CMS.
    for n in 0..der.len() {
        assert!(cms::verify(&der[..n], None, &ctx).is_err(), "prefix of {n} bytes accepted");
    }
    // Bit flips anywhere: an error or a verdict, never a panic, never valid.
    for i in (0..der.len() * 8).step_by(7) {
        let mut m = der.clone();
        m[i / 8] ^= 1 << (i % 8);
        if let Ok(r) = cms::verify(&m, None, &ctx) {
            assert!(!r.valid || r.content.as_deref() == Some(CONTENT), "bit {i}");
        }
    }
}
