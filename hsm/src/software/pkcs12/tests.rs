use std::path::Path;

use super::*;
use crate::software::test_support::{issued_cert, openssl, openssl_ok, self_signed_cert};
use crate::software::KeyAlgorithm;

const PASSWORD: &str = "Pfx-Pa55 word";
const SKI_HEX: &str = "3f2a9c0d5e6b7a8190a1b2c3d4e5f60718293a4b";

struct Fixture {
    dir: tempfile::TempDir,
    key: SoftwareKey,
    cert: Vec<u8>,
    ca: Vec<u8>,
}

fn fixture(alg: KeyAlgorithm) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    let ca = self_signed_cert(dir.path(), "Test CA", &ca_key);
    let key = SoftwareKey::generate(alg).unwrap();
    let cert = issued_cert(dir.path(), "Subscriber", &key, "Test CA");
    Fixture { dir, key, cert, ca }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

fn spaced_upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn openssl_reads_our_pkcs12() {
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::P256, KeyAlgorithm::P384] {
        let f = fixture(alg);
        let pfx = build_pkcs12(&f.key, &f.cert, std::slice::from_ref(&f.ca), PASSWORD, SKI_HEX).unwrap();
        let file = write(f.dir.path(), "subscriber.p12", &pfx);
        let pass = format!("pass:{PASSWORD}");

        let out = openssl_ok(&["pkcs12", "-in", &file, "-passin", &pass, "-nodes"]);
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{text}");
        assert_eq!(text.matches(concat!("-----BEGIN ", "PRIVATE KEY-----")).count(), 1, "{text}");
        assert_eq!(text.matches(&format!("friendlyName: {SKI_HEX}")).count(), 2);
        let key_id = digest(&SHA1_FOR_LEGACY_USE_ONLY, &f.cert);
        let key_id_line = format!("localKeyID: {}", spaced_upper_hex(key_id.as_ref()));
        assert_eq!(text.matches(&key_id_line).count(), 2, "{text}");
        assert!(text.contains("subject=CN = Test CA"), "{text}");

        // The key OpenSSL decrypted is ours.
        let key_pem = &text[text.find(concat!("-----BEGIN ", "PRIVATE KEY-----")).unwrap()..];
        let key_file = write(f.dir.path(), "out.key.pem", key_pem.as_bytes());
        let spki = openssl_ok(&["pkey", "-in", &key_file, "-pubout", "-outform", "DER"]);
        assert_eq!(spki.stdout, f.key.public_key().to_der().unwrap());

        let info = openssl_ok(&["pkcs12", "-in", &file, "-passin", &pass, "-info", "-noout"]);
        let info = String::from_utf8_lossy(&info.stderr);
        let iterations = PKCS12_ITERATIONS.to_string();
        assert!(info.contains(&format!("MAC: sha256, Iteration {iterations}")), "{info}");
        let pbes2 = format!("PBES2, PBKDF2, AES-256-CBC, Iteration {iterations}, PRF hmacWithSHA256");
        assert!(info.contains(&format!("Shrouded Keybag: {pbes2}")), "{info}");
        assert!(info.contains(&format!("PKCS7 Encrypted data: {pbes2}")), "{info}");
    }
}

#[test]
fn openssl_refuses_a_wrong_password() {
    let f = fixture(KeyAlgorithm::P256);
    let pfx = build_pkcs12(&f.key, &f.cert, &[], PASSWORD, SKI_HEX).unwrap();
    let file = write(f.dir.path(), "subscriber.p12", &pfx);
    let out = openssl(&["pkcs12", "-in", &file, "-passin", "pass:wrong", "-nodes"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mac verify error"));
}

#[test]
fn our_reader_round_trips() {
    let f = fixture(KeyAlgorithm::Rsa2048);
    let pfx = build_pkcs12(&f.key, &f.cert, std::slice::from_ref(&f.ca), PASSWORD, SKI_HEX).unwrap();
    let (key, certs) = read_pkcs12(&pfx, PASSWORD).unwrap();
    assert_eq!(key.key_algorithm(), KeyAlgorithm::Rsa2048);
    assert_eq!(key.public_key(), f.key.public_key());
    assert_eq!(certs, vec![f.cert.clone(), f.ca.clone()]);
    crate::software::tests::assert_signs_and_verifies(&key);
}

#[test]
fn our_reader_refuses_a_wrong_password() {
    let f = fixture(KeyAlgorithm::P256);
    let pfx = build_pkcs12(&f.key, &f.cert, &[], PASSWORD, SKI_HEX).unwrap();
    for wrong in ["", "wrong", "Pfx-Pa55 word "] {
        let err = read_pkcs12(&pfx, wrong).unwrap_err();
        assert!(matches!(err, KeyError::WrongPassphrase), "{err}");
    }
}

#[test]
fn we_read_what_openssl_writes_and_refuse_legacy() {
    let f = fixture(KeyAlgorithm::P256);
    let dir = f.dir.path();
    let key = dir.join("Subscriber.key.pem");
    let cert = dir.join("Subscriber.crt.pem");
    let ca = dir.join("Test CA.crt.pem");
    let export = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            key.to_str().unwrap(),
            "-in",
            cert.to_str().unwrap(),
            "-certfile",
            ca.to_str().unwrap(),
            "-passout",
            "pass:pw",
            "-out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        openssl_ok(&args);
        std::fs::read(out).unwrap()
    };

    let modern = export("modern.p12", &[]);
    let (key, certs) = read_pkcs12(&modern, "pw").unwrap();
    assert_eq!(key.public_key(), f.key.public_key());
    assert_eq!(certs[0], f.cert);
    assert!(certs.contains(&f.ca));

    let legacy_pbe = export("legacy-pbe.p12", &["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES"]);
    let err = read_pkcs12(&legacy_pbe, "pw").unwrap_err();
    assert!(matches!(err, KeyError::Unsupported(_)), "{err}");

    let sha1_mac = export("sha1-mac.p12", &["-macalg", "sha1"]);
    let err = read_pkcs12(&sha1_mac, "pw").unwrap_err();
    assert!(matches!(err, KeyError::Unsupported(_)), "{err}");
}

#[test]
fn refuses_bad_arguments() {
    let f = fixture(KeyAlgorithm::P256);
    let other = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
    assert!(matches!(build_pkcs12(&other, &f.cert, &[], PASSWORD, SKI_HEX), Err(KeyError::CertificateKeyMismatch)));
    assert!(matches!(build_pkcs12(&f.key, &f.cert, &[], "", SKI_HEX), Err(KeyError::EmptyPassphrase)));
    assert!(matches!(build_pkcs12(&f.key, b"not a certificate", &[], PASSWORD, SKI_HEX), Err(KeyError::Malformed(_))));
    assert!(matches!(
        build_pkcs12(&f.key, &f.cert, &[vec![0x30, 0x00]], PASSWORD, SKI_HEX),
        Err(KeyError::Malformed(_))
    ));
}

#[test]
fn malformed_pkcs12_is_an_error_not_a_panic() {
    let f = fixture(KeyAlgorithm::P256);
    let pfx = build_pkcs12(&f.key, &f.cert, &[], PASSWORD, SKI_HEX).unwrap();
    for bad in [&b""[..], b"\x30\x00", b"garbage", &pfx[..pfx.len() / 2]] {
        let err = read_pkcs12(bad, PASSWORD).unwrap_err();
        assert!(matches!(err, KeyError::Malformed(_)), "{err}");
    }
    // Flipping a byte anywhere must give an error (mostly a failed MAC), never a panic.
    for i in (0..pfx.len()).step_by(7) {
        let mut damaged = pfx.clone();
        damaged[i] ^= 0x55;
        assert!(read_pkcs12(&damaged, PASSWORD).is_err(), "byte {i}");
    }
}
