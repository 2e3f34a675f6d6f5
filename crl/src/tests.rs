//! Builder and parser together: round trips, the shapes RFC 5280 demands, and hostile input.

use std::str::FromStr;

use ca_core::revocation::RevocationReason;
use ca_core::signer::Signer;
use der::{Decode, Encode};
use hsm::{KeyAlgorithm, SoftwareKey};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

use crate::*;

const THIS_UPDATE: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

fn params(crl_number: u64) -> CrlParams {
    CrlParams {
        issuer: Name::from_str("CN=TEST NATIONAL CA,O=Test,C=KZ").unwrap(),
        authority_key_id: vec![0xab; 20],
        crl_number,
        this_update: THIS_UPDATE,
        next_update: THIS_UPDATE + Duration::days(1),
        delta_base: None,
        issuing_distribution_point: None,
        freshest_crl: None,
    }
}

fn serial(n: u32) -> [u8; 20] {
    let mut s = [0x42u8; 20];
    s[16..].copy_from_slice(&n.to_be_bytes());
    s
}

fn entries(n: u32) -> impl Iterator<Item = CrlEntry<[u8; 20]>> {
    let reasons = RevocationReason::all();
    (0..n).map(move |i| CrlEntry {
        serial: serial(i),
        revoked_at: THIS_UPDATE - Duration::minutes(i64::from(i)),
        reason: Some(reasons[i as usize % reasons.len()]),
        invalidity_date: (i % 3 == 0).then(|| THIS_UPDATE - Duration::days(2)),
    })
}

fn key(alg: KeyAlgorithm) -> SoftwareKey {
    SoftwareKey::generate(alg).expect("key")
}

#[test]
fn full_crl_round_trips_and_verifies() {
    for alg in [KeyAlgorithm::P256, KeyAlgorithm::Rsa2048] {
        let signer = key(alg);
        let mut p = params(7);
        p.freshest_crl = Some("http://pki.test.kz/crl/nca_d.crl".into());
        let der = build_crl(&p, entries(25), &signer).unwrap();
        let crl = parse_and_verify(&der, signer.public_key()).unwrap();
        assert_eq!(crl.version, 2);
        assert_eq!(crl.issuer, p.issuer);
        assert_eq!(crl.this_update, p.this_update);
        assert_eq!(crl.next_update, Some(p.next_update));
        assert_eq!(crl.authority_key_id.as_deref(), Some(&p.authority_key_id[..]));
        assert_eq!(crl.crl_number, Some(7));
        assert_eq!(crl.delta_base, None);
        assert_eq!(crl.freshest_crl, p.freshest_crl);
        assert_eq!(crl.signature_algorithm, signer.algorithm().oid());
        assert_eq!(crl.entry_count(), 25);
        assert_eq!(crl.entries().len(), 25);
        for (got, want) in crl.entries().zip(entries(25)) {
            assert_eq!(got.serial, &want.serial[..]);
            assert_eq!(got.revoked_at, want.revoked_at);
            assert_eq!(got.reason, want.reason.filter(|r| *r != RevocationReason::Unspecified));
            assert_eq!(got.invalidity_date, want.invalidity_date);
        }
        // An independent decoder agrees.
        let list = CertificateList::from_der(&der).unwrap();
        assert_eq!(list.tbs_cert_list.revoked_certificates.unwrap().len(), 25);
        assert_eq!(list.signature_algorithm, signer.algorithm().algorithm_identifier());
        // Another key does not verify it.
        assert!(matches!(verify(&crl, key(alg).public_key()), Err(VerifyError::Signature(_))));
    }
}

#[test]
fn empty_crl_has_no_revoked_certificates_field() {
    let signer = key(KeyAlgorithm::Rsa2048);
    let der = build_crl(&params(1), std::iter::empty::<CrlEntry<Vec<u8>>>(), &signer).unwrap();
    let list = CertificateList::from_der(&der).unwrap();
    assert!(list.tbs_cert_list.revoked_certificates.is_none());
    let crl = parse_and_verify(&der, signer.public_key()).unwrap();
    assert_eq!(crl.entry_count(), 0);
    assert_eq!(crl.entries().next(), None);
    // RSA PKCS#1 v1.5 is deterministic: the writer and the Vec paths give the same bytes.
    let mut written = Vec::new();
    let summary = write_crl(&params(1), std::iter::empty::<CrlEntry<Vec<u8>>>(), &signer, &mut written).unwrap();
    assert_eq!(written, der);
    assert_eq!(summary, CrlSummary { entries: 0, len: der.len() });
}

#[test]
fn every_length_form_of_the_headers_round_trips() {
    // 1, 3 and 2,000 entries: revokedCertificates and TBS lengths in short, 0x81/0x82 and 0x83 form.
    let signer = key(KeyAlgorithm::Rsa2048);
    for n in [1u32, 3, 2_000] {
        let der = build_crl(&params(2), entries(n), &signer).unwrap();
        let mut written = Vec::new();
        write_crl(&params(2), entries(n), &signer, &mut written).unwrap();
        assert_eq!(written, der, "{n} entries");
        assert_eq!(CertificateList::from_der(&der).unwrap().to_der().unwrap(), der);
        assert_eq!(parse_and_verify(&der, signer.public_key()).unwrap().entry_count(), u64::from(n));
    }
}

#[test]
fn delta_crl_with_partition_scope() {
    let signer = key(KeyAlgorithm::P256);
    let mut p = params(12);
    p.delta_base = Some(10);
    p.issuing_distribution_point = Some(IssuingDistributionPoint {
        uri: "http://pki.test.kz/crl/nca_p3_d.crl".into(),
        only_contains_user_certs: true,
    });
    let changes = [
        CrlEntry {
            serial: vec![0x11; 20],
            revoked_at: THIS_UPDATE,
            reason: Some(RevocationReason::CertificateHold),
            invalidity_date: None,
        },
        CrlEntry {
            serial: vec![0x12; 20],
            revoked_at: THIS_UPDATE,
            reason: Some(RevocationReason::RemoveFromCrl),
            invalidity_date: None,
        },
    ];
    let der = build_crl(&p, changes.clone(), &signer).unwrap();
    let crl = parse_and_verify(&der, signer.public_key()).unwrap();
    assert!(crl.is_delta());
    assert_eq!(crl.delta_base, Some(10));
    assert_eq!(crl.crl_number, Some(12));
    let idp = crl.issuing_distribution_point.clone().unwrap();
    assert_eq!(idp.uri.as_deref(), Some("http://pki.test.kz/crl/nca_p3_d.crl"));
    assert!(idp.only_contains_user_certs);
    let reasons: Vec<_> = crl.entries().map(|e| e.reason).collect();
    assert_eq!(reasons, [Some(RevocationReason::CertificateHold), Some(RevocationReason::RemoveFromCrl)]);
}

#[test]
fn inconsistent_parameters_are_refused() {
    let signer = key(KeyAlgorithm::P256);
    let mut p = params(5);
    p.next_update = p.this_update;
    assert!(matches!(CrlBuilder::new(&p, &signer), Err(BuildError::InvalidParams(_))));
    let mut p = params(5);
    p.delta_base = Some(5);
    assert!(matches!(CrlBuilder::new(&p, &signer), Err(BuildError::InvalidParams(_))));
    p.delta_base = Some(4);
    p.freshest_crl = Some("http://x/d.crl".into());
    assert!(matches!(CrlBuilder::new(&p, &signer), Err(BuildError::InvalidParams(_))));
    let mut p = params(5);
    p.authority_key_id.clear();
    assert!(matches!(CrlBuilder::new(&p, &signer), Err(BuildError::InvalidParams(_))));
    let mut p = params(5);
    p.issuer = Name::default();
    assert!(matches!(CrlBuilder::new(&p, &signer), Err(BuildError::InvalidParams(_))));
    let mut p = params(5);
    p.this_update = datetime!(1965-01-01 0:00 UTC);
    assert!(matches!(CrlBuilder::new(&p, &signer), Err(BuildError::CrlTime(_))));
}

#[test]
fn a_bad_entry_leaves_the_builder_usable() {
    let signer = key(KeyAlgorithm::P256);
    let mut b = CrlBuilder::new(&params(3), &signer).unwrap();
    let bad = CrlEntry { serial: vec![1u8; 21], revoked_at: THIS_UPDATE, reason: None, invalidity_date: None };
    assert!(matches!(b.push(&bad), Err(BuildError::InvalidSerial { index: 0, len: 21 })));
    b.push(&CrlEntry { serial: vec![1u8; 20], ..bad }).unwrap();
    assert_eq!(b.len(), 1);
    let der = b.finish().unwrap();
    assert_eq!(parse_and_verify(&der, signer.public_key()).unwrap().entry_count(), 1);
}

#[test]
fn truncated_and_corrupted_input_is_an_error_never_a_panic() {
    let signer = key(KeyAlgorithm::P256);
    let mut p = params(9);
    p.freshest_crl = Some("http://pki.test.kz/crl/nca_d.crl".into());
    let der = build_crl(&p, entries(4), &signer).unwrap();
    for len in 0..der.len() {
        assert!(parse(&der[..len]).is_err(), "prefix of {len} octets parsed");
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(parse(&trailing).is_err());
    // Flip every bit once: parse may fail or succeed, verification must then fail.
    for i in 0..der.len() {
        for bit in 0..8 {
            let mut bad = der.clone();
            bad[i] ^= 1 << bit;
            if let Ok(crl) = parse(&bad) {
                let _ = crl.entries().count();
                assert!(verify(&crl, signer.public_key()).is_err(), "flip at {i}.{bit} still verifies");
            }
        }
    }
    assert!(parse(b"").is_err());
    assert!(parse(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn unknown_critical_entry_extension_is_refused() {
    use der::asn1::{BitString, OctetString};
    use x509_cert::crl::RevokedCert;
    use x509_cert::ext::Extension;

    let signer = key(KeyAlgorithm::P256);
    let der = build_crl(&params(4), entries(1), &signer).unwrap();
    let mut list = CertificateList::from_der(&der).unwrap();
    let certificate_issuer = const_oid::db::rfc5280::ID_CE_CERTIFICATE_ISSUER;
    let revoked: &mut Vec<RevokedCert> = list.tbs_cert_list.revoked_certificates.as_mut().unwrap();
    revoked[0].crl_entry_extensions = Some(vec![Extension {
        extn_id: certificate_issuer,
        critical: true,
        extn_value: OctetString::new(vec![0x30, 0x00]).unwrap(),
    }]);
    list.signature = BitString::from_bytes(&[0]).unwrap();
    let err = parse(&list.to_der().unwrap()).unwrap_err();
    assert_eq!(err, ParseError::UnsupportedCriticalEntryExtension { index: 0, oid: certificate_issuer });
}
