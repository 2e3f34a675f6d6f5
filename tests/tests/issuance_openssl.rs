//! Certificates we issue, checked by the real openssl: chain verification, the national
//! profile's subject and extensions, and PKCS#12 key stores.

use ca_core::csr::parse_and_verify;
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::{ProfileId, Role};
use ca_tests::{openssl, openssl_csr, openssl_ok, write_pem};
use fixtures::{employee, fixed_now, individual, TestCa};
use hsm::KeyAlgorithm;

fn chain_files(ca: &TestCa) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = ca.dir.path();
    (
        write_pem(dir, "root.pem", "CERTIFICATE", &ca.root.certificate_der),
        write_pem(dir, "issuing.pem", "CERTIFICATE", &ca.issuing.certificate_der),
    )
}

fn verify(root: &std::path::Path, issuing: &std::path::Path, leaf: &std::path::Path) -> std::process::Output {
    openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        issuing.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ])
}

#[test]
fn openssl_verifies_chain_for_rsa_and_ec_csrs() {
    let ca = TestCa::new(KeyAlgorithm::P384, KeyAlgorithm::Rsa2048);
    let clock = fixed_now();
    let issuer = ca.issuer(&clock);
    let (root, issuing) = chain_files(&ca);
    for (name, key_args) in [
        ("rsa", vec!["-newkey", "rsa:2048"]),
        ("ec", vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        ("ec384", vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]),
    ] {
        let csr = parse_and_verify(&openssl_csr(ca.dir.path(), name, &key_args)).expect("openssl CSR accepted");
        let cert = issuer
            .issue(&IssuanceRequest {
                profile: ProfileId::IndividualSign,
                subject: individual(1),
                roles: vec![],
                public_key: csr.public_key,
            })
            .expect("issued");
        let leaf = write_pem(ca.dir.path(), &format!("{name}.pem"), "CERTIFICATE", &cert.der);
        let out = verify(&root, &issuing, &leaf);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"));
    }
    // The CA certificates themselves: root self-signed, issuing under it.
    let out = verify(&root, &root, &issuing);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn openssl_rejects_a_certificate_from_a_foreign_ca() {
    let ours = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let theirs = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
    let clock = fixed_now();
    let csr = parse_and_verify(&openssl_csr(theirs.dir.path(), "k", &["-newkey", "rsa:2048"])).unwrap();
    let cert = theirs
        .issuer(&clock)
        .issue(&IssuanceRequest {
            profile: ProfileId::IndividualAuth,
            subject: individual(2),
            roles: vec![],
            public_key: csr.public_key,
        })
        .unwrap();
    let (root, issuing) = chain_files(&ours);
    let leaf = write_pem(ours.dir.path(), "foreign.pem", "CERTIFICATE", &cert.der);
    assert!(!verify(&root, &issuing, &leaf).status.success());
}

#[test]
fn openssl_text_shows_the_national_profile() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let clock = fixed_now();
    let issuer = ca.issuer(&clock);
    let csr = parse_and_verify(&openssl_csr(ca.dir.path(), "k", &["-newkey", "rsa:2048"])).unwrap();
    let subject = employee(7, 3);
    let iin = subject.iin().unwrap();
    let bin = subject.bin().unwrap();

    let sign = issuer
        .issue(&IssuanceRequest {
            profile: ProfileId::LegalSign,
            subject: subject.clone(),
            roles: vec![Role::FirstHead, Role::Hr],
            public_key: csr.public_key.clone(),
        })
        .unwrap();
    let path = write_pem(ca.dir.path(), "legal-sign.pem", "CERTIFICATE", &sign.der);
    let text = openssl_ok(&["x509", "-in", path.to_str().unwrap(), "-noout", "-text", "-nameopt", "RFC2253,-esc_msb"]);
    assert!(text.contains(&format!("serialNumber=IIN{iin}")), "{text}");
    assert!(text.contains(&format!("OU=BIN{bin}")), "{text}");
    assert!(text.contains("C=KZ"), "{text}");
    assert!(text.contains("Digital Signature, Non Repudiation"), "{text}");
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert!(text.contains("E-mail Protection"), "{text}");
    for role in ["1.2.398.3.3.4.1.2", "1.2.398.3.3.4.1.2.1", "1.2.398.3.3.4.1.2.4"] {
        assert!(text.contains(role), "role {role} missing:\n{text}");
    }
    assert!(text.contains("Policy: 1.2.398.3.3.2.1"), "{text}");
    assert!(text.contains("CPS: http://pki.test.kz/cps"), "{text}");
    assert!(text.contains("URI:http://pki.test.kz/crl/nca.crl"), "{text}");
    assert!(text.contains("X509v3 Freshest CRL"), "{text}");
    assert!(text.contains("URI:http://pki.test.kz/crl/nca_d.crl"), "{text}");
    assert!(text.contains("OCSP - URI:http://pki.test.kz/ocsp"), "{text}");
    assert!(text.contains("CA Issuers - URI:http://pki.test.kz/ca/nca.cer"), "{text}");
    assert!(text.contains("email:person7@example.kz"), "{text}");
    // Extension order of the profile: KU, EKU, AKI, SKI, policies, CDP, FreshestCRL, AIA.
    let order = [
        "X509v3 Key Usage",
        "X509v3 Extended Key Usage",
        "X509v3 Authority Key Identifier",
        "X509v3 Subject Key Identifier",
        "X509v3 Certificate Policies",
        "X509v3 CRL Distribution Points",
        "X509v3 Freshest CRL",
        "Authority Information Access",
    ];
    let positions: Vec<usize> = order.iter().map(|o| text.find(o).unwrap_or_else(|| panic!("{o} missing"))).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "extension order: {positions:?}");

    let auth = issuer
        .issue(&IssuanceRequest {
            profile: ProfileId::IndividualAuth,
            subject: individual(8),
            roles: vec![],
            public_key: csr.public_key,
        })
        .unwrap();
    let path = write_pem(ca.dir.path(), "ind-auth.pem", "CERTIFICATE", &auth.der);
    let text = openssl_ok(&["x509", "-in", path.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("Digital Signature, Key Encipherment"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("1.2.398.3.3.4.1.1"), "{text}");
    assert!(text.contains("Policy: 1.2.398.3.3.2.4"), "{text}");
    assert!(!text.contains("BIN"), "an individual has no BIN: {text}");

    // Serial: 20 octets.
    let serial = openssl_ok(&["x509", "-in", path.to_str().unwrap(), "-noout", "-serial"]);
    assert_eq!(serial.trim().trim_start_matches("serial=").len(), 40, "{serial}");
}

#[test]
fn openssl_opens_our_pkcs12_with_its_password_only() {
    let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::Rsa2048);
    let clock = fixed_now();
    let key = hsm::SoftwareKey::generate(KeyAlgorithm::Rsa2048).unwrap();
    let cert = ca
        .issuer(&clock)
        .issue(&IssuanceRequest {
            profile: ProfileId::IndividualAuth,
            subject: individual(9),
            roles: vec![],
            public_key: ca_core::signer::Signer::public_key(&key).clone(),
        })
        .unwrap();
    let ski = cert.ski_hex();
    let chain = vec![ca.issuing.certificate_der.clone(), ca.root.certificate_der.clone()];
    let p12 = hsm::build_pkcs12(&key, &cert.der, &chain, "correct horse", &ski).unwrap();
    let path = ca.dir.path().join(format!("AUTH_RSA256_{ski}.p12"));
    std::fs::write(&path, &p12).unwrap();
    let p = path.to_str().unwrap();
    let out = openssl_ok(&["pkcs12", "-in", p, "-passin", "pass:correct horse", "-nodes"]);
    assert!(out.contains("BEGIN PRIVATE KEY"), "{out}");
    assert_eq!(out.matches("BEGIN CERTIFICATE").count(), 3, "certificate and chain: {out}");
    assert!(out.contains(&format!("friendlyName: {ski}")), "{out}");
    let wrong = openssl(&["pkcs12", "-in", p, "-passin", "pass:wrong", "-nodes"]);
    assert!(!wrong.status.success());
    let none = openssl(&["pkcs12", "-in", p, "-passin", "pass:", "-nodes"]);
    assert!(!none.status.success());
}
