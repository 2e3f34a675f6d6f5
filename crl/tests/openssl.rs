//! CRLs we build, checked by the real openssl; and a CRL openssl builds, read by our parser.

mod support;

use std::path::{Path, PathBuf};

use ca_core::issuer::{IssuanceRequest, IssuedCertificate};
use ca_core::profile::ProfileId;
use ca_core::revocation::RevocationReason;
use ca_core::signer::Signer;
use crl::{build_crl, parse, parse_and_verify, CrlEntry, CrlParams, IssuingDistributionPoint};
use der::DecodePem;
use fixtures::{fixed_now, individual, TestCa};
use hsm::{KeyAlgorithm, SoftwareKey};
use support::{openssl, openssl_ok, path_str, revocation_field, write_pem, OpensslCa};
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).expect("whole seconds")
}

fn params(ca: &TestCa, crl_number: u64) -> CrlParams {
    let now = now();
    CrlParams {
        issuer: ca.issuing.subject().clone(),
        authority_key_id: ca.issuing.key_id().to_vec(),
        crl_number,
        this_update: now - Duration::minutes(5),
        next_update: now + Duration::days(1),
        delta_base: None,
        issuing_distribution_point: None,
        freshest_crl: Some(format!("{}/crl/nca_d.crl", "http://pki.test.kz")),
    }
}

fn entry(serial: &[u8], reason: RevocationReason, invalidity: Option<OffsetDateTime>) -> CrlEntry<Vec<u8>> {
    CrlEntry {
        serial: serial.to_vec(),
        revoked_at: now() - Duration::minutes(10),
        reason: Some(reason),
        invalidity_date: invalidity,
    }
}

fn issue(ca: &TestCa, n: u32) -> IssuedCertificate {
    let clock = fixed_now();
    let key = SoftwareKey::generate(KeyAlgorithm::P256).expect("leaf key");
    ca.issuer(&clock)
        .issue(&IssuanceRequest {
            profile: ProfileId::IndividualAuth,
            subject: individual(n),
            roles: vec![],
            public_key: key.public_key().clone(),
        })
        .expect("issued")
}

fn crl_text(dir: &Path, name: &str, der: &[u8], ca_file: &Path) -> String {
    let path = dir.join(name);
    std::fs::write(&path, der).expect("write CRL");
    let text =
        openssl_ok(&["crl", "-inform", "DER", "-in", path_str(&path), "-noout", "-text", "-CAfile", path_str(ca_file)]);
    assert!(text.contains("verify OK"), "{name}: {text}");
    text
}

fn bundle(ca: &TestCa) -> PathBuf {
    let dir = ca.dir.path();
    let root = write_pem(dir, "root.pem", "CERTIFICATE", &ca.root.certificate_der);
    let issuing = write_pem(dir, "issuing.pem", "CERTIFICATE", &ca.issuing.certificate_der);
    let both = format!("{}{}", std::fs::read_to_string(root).unwrap(), std::fs::read_to_string(issuing).unwrap());
    let path = dir.join("bundle.pem");
    std::fs::write(&path, both).unwrap();
    path
}

#[test]
fn openssl_verifies_full_delta_and_partition_crls_and_reads_their_extensions() {
    for (root_alg, issuing_alg) in
        [(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048), (KeyAlgorithm::P256, KeyAlgorithm::P256)]
    {
        let ca = TestCa::new(root_alg, issuing_alg);
        let dir = ca.dir.path();
        let issuing = write_pem(dir, "issuing.pem", "CERTIFICATE", &ca.issuing.certificate_der);
        let signer = ca.issuing.signer();

        let invalid_since = now() - Duration::days(3);
        let full_entries = vec![
            entry(&[0x10; 20], RevocationReason::KeyCompromise, Some(invalid_since)),
            entry(&[0x11; 20], RevocationReason::CertificateHold, None),
            entry(&[0x12; 20], RevocationReason::Unspecified, None),
            entry(&[0x13; 20], RevocationReason::CessationOfOperation, None),
        ];
        let full = build_crl(&params(&ca, 20), full_entries, signer).expect("full CRL");
        let text = crl_text(dir, "full.crl", &full, &issuing);
        for needle in [
            "Version 2 (0x1)",
            "X509v3 CRL Number",
            "X509v3 Authority Key Identifier",
            "X509v3 Freshest CRL",
            "URI:http://pki.test.kz/crl/nca_d.crl",
            "Key Compromise",
            "Certificate Hold",
            "Cessation Of Operation",
            "Invalidity Date",
            "10101010101010101010101010101010",
        ] {
            assert!(text.contains(needle), "full CRL lacks {needle:?}:\n{text}");
        }
        assert!(!text.contains("Unspecified"), "unspecified is left out:\n{text}");

        let mut delta_params = params(&ca, 21);
        delta_params.delta_base = Some(20);
        delta_params.freshest_crl = None;
        let delta_entries = vec![
            entry(&[0x11; 20], RevocationReason::RemoveFromCrl, None),
            entry(&[0x14; 20], RevocationReason::Superseded, None),
        ];
        let delta = build_crl(&delta_params, delta_entries, signer).expect("delta CRL");
        let text = crl_text(dir, "delta.crl", &delta, &issuing);
        for needle in ["X509v3 Delta CRL Indicator: critical", "20", "Remove From CRL", "Superseded"] {
            assert!(text.contains(needle), "delta CRL lacks {needle:?}:\n{text}");
        }

        let mut part_params = params(&ca, 22);
        part_params.issuing_distribution_point = Some(IssuingDistributionPoint {
            uri: "http://pki.test.kz/crl/nca_p7.crl".into(),
            only_contains_user_certs: true,
        });
        let part = build_crl(&part_params, Vec::<CrlEntry<Vec<u8>>>::new(), signer).expect("partition CRL");
        let text = crl_text(dir, "part.crl", &part, &issuing);
        for needle in [
            "X509v3 Issuing Distribution Point: critical",
            "URI:http://pki.test.kz/crl/nca_p7.crl",
            "Only User Certificates",
            "No Revoked Certificates.",
        ] {
            assert!(text.contains(needle), "partition CRL lacks {needle:?}:\n{text}");
        }

        // A CRL signed by another key does not verify against the issuing CA.
        let other = SoftwareKey::generate(issuing_alg).unwrap();
        let forged = build_crl(&params(&ca, 23), Vec::<CrlEntry<Vec<u8>>>::new(), &other).unwrap();
        let path = dir.join("forged.crl");
        std::fs::write(&path, forged).unwrap();
        let out = openssl(&["crl", "-inform", "DER", "-in", path_str(&path), "-noout", "-CAfile", path_str(&issuing)]);
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success() || all.contains("verify failure"), "{all}");
        assert!(!all.contains("verify OK"), "{all}");
    }
}

fn verify_leaf(bundle: &Path, crls: &[&Path], leaf: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["verify", "-crl_check"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-CAfile", path_str(bundle)]);
    for crl in crls {
        args.extend_from_slice(&["-CRLfile", path_str(crl)]);
    }
    args.push(path_str(leaf));
    let out = openssl(&args);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn openssl_verify_crl_check_rejects_revoked_and_accepts_good_leaves() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let dir = ca.dir.path();
    let bundle = bundle(&ca);
    let revoked = issue(&ca, 1);
    let good = issue(&ca, 2);
    let delta_only = issue(&ca, 3);
    let revoked_pem = write_pem(dir, "revoked.pem", "CERTIFICATE", &revoked.der);
    let good_pem = write_pem(dir, "good.pem", "CERTIFICATE", &good.der);
    let delta_pem = write_pem(dir, "delta-only.pem", "CERTIFICATE", &delta_only.der);

    let signer = ca.issuing.signer();
    let full = build_crl(
        &params(&ca, 5),
        vec![entry(revoked.serial.as_bytes(), RevocationReason::KeyCompromise, None)],
        signer,
    )
    .unwrap();
    let full_pem = write_pem(dir, "full.crl.pem", "X509 CRL", &full);

    let (ok, text) = verify_leaf(&bundle, &[&full_pem], &revoked_pem, &[]);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify_leaf(&bundle, &[&full_pem], &good_pem, &[]);
    assert!(ok && text.contains(": OK"), "{text}");

    // A revocation that so far appears only in the delta CRL.
    let mut delta_params = params(&ca, 6);
    delta_params.delta_base = Some(5);
    delta_params.freshest_crl = None;
    let delta =
        build_crl(&delta_params, vec![entry(delta_only.serial.as_bytes(), RevocationReason::Superseded, None)], signer)
            .unwrap();
    let delta_crl_pem = write_pem(dir, "delta.crl.pem", "X509 CRL", &delta);
    let (ok, text) = verify_leaf(&bundle, &[&full_pem, &delta_crl_pem], &delta_pem, &[]);
    assert!(ok, "without -use_deltas the delta is ignored: {text}");
    let (ok, text) = verify_leaf(&bundle, &[&full_pem, &delta_crl_pem], &delta_pem, &["-use_deltas"]);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify_leaf(&bundle, &[&full_pem, &delta_crl_pem], &good_pem, &["-use_deltas"]);
    assert!(ok, "{text}");
}

#[test]
fn our_parser_reads_and_verifies_a_crl_made_by_openssl_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = OpensslCa::new(dir.path(), &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let revoked_at = now() - Duration::hours(1);
    let invalid_since = now() - Duration::days(2);
    ca.write_index([
        ("0A1B2C".to_owned(), revocation_field(revoked_at, Some("keyCompromise"), None)),
        ("7F".repeat(20), revocation_field(revoked_at, None, Some(invalid_since))),
        ("00FF".to_owned(), revocation_field(revoked_at, Some("certificateHold"), None)),
        ("0123".to_owned(), revocation_field(revoked_at, None, None)),
        // openssl's hold instruction form adds a non-critical entry extension we do not know.
        (
            "0456".to_owned(),
            format!("{},holdInstruction,holdInstructionReject", revocation_field(revoked_at, None, None)),
        ),
    ]);
    let out = dir.path().join("ossl.crl.pem");
    let args = ca.gencrl_args(&out);
    openssl_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let der_path = dir.path().join("ossl.crl");
    openssl_ok(&["crl", "-in", path_str(&out), "-outform", "DER", "-out", path_str(&der_path)]);
    let der = std::fs::read(&der_path).unwrap();

    let cert = x509_cert::Certificate::from_pem(std::fs::read(&ca.certificate).unwrap()).unwrap();
    let spki = cert.tbs_certificate.subject_public_key_info.clone();
    let crl = parse_and_verify(&der, &spki).expect("openssl's CRL parses and verifies");
    assert_eq!(crl.version, 2);
    assert_eq!(crl.issuer, cert.tbs_certificate.subject);
    assert_eq!(crl.crl_number, Some(0x1000));
    assert!(crl.authority_key_id.is_some());
    assert!(crl.next_update.is_some());
    let entries: Vec<_> = crl.entries().collect();
    assert_eq!(entries.len(), 5);
    let find = |serial: &[u8]| entries.iter().find(|e| e.serial == serial).copied().expect("entry present");
    assert_eq!(find(&[0x0a, 0x1b, 0x2c]).reason, Some(RevocationReason::KeyCompromise));
    assert_eq!(find(&[0x0a, 0x1b, 0x2c]).revoked_at, revoked_at);
    let key_time = find(&[0x7f; 20]);
    assert_eq!(key_time.reason, Some(RevocationReason::KeyCompromise));
    assert_eq!(key_time.invalidity_date, Some(invalid_since));
    assert_eq!(find(&[0xff]).reason, Some(RevocationReason::CertificateHold));
    assert_eq!(find(&[0x01, 0x23]).reason, None);
    assert_eq!(find(&[0x04, 0x56]).reason, Some(RevocationReason::CertificateHold));

    // Our verifier refuses it with a different key; the parser refuses it truncated.
    let other = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    assert!(crl::verify(&crl, other.public_key()).is_err());
    assert!(parse(&der[..der.len() - 1]).is_err());
}
