//! Helpers for tests that check our files with the real `openssl` binary. A missing binary fails
//! the test: interoperability is the point of these tests, so they must not skip silently.

use std::path::Path;
use std::process::{Command, Output};

use der::pem::LineEnding;

use super::SoftwareKey;

pub(crate) const OPENSSL: &str = "/usr/bin/openssl";

/// Run `openssl` with `args` and return its output, whatever the exit status.
pub(crate) fn openssl(args: &[&str]) -> Output {
    Command::new(OPENSSL).args(args).output().unwrap_or_else(|e| panic!("cannot run {OPENSSL}: {e}"))
}

/// Run `openssl` and insist that it succeeds.
pub(crate) fn openssl_ok(args: &[&str]) -> Output {
    let out = openssl(args);
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Generate a key with `openssl genpkey` and return its PKCS#8 DER. (OpenSSL writes PKCS#8
/// only as PEM; its DER output is the traditional per-algorithm format.)
pub(crate) fn openssl_genpkey(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = dir.join("genpkey.pem");
    let mut all = vec!["genpkey"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-out", path_str(&out)]);
    openssl_ok(&all);
    let pem = std::fs::read_to_string(out).unwrap();
    let (label, doc) = der::Document::from_pem(&pem).unwrap();
    assert_eq!(label, "PRIVATE KEY");
    doc.into_vec()
}

/// Write `key` as an unencrypted PKCS#8 PEM, for `openssl req` to sign with.
pub(crate) fn write_plain_key_pem(dir: &Path, name: &str, key: &SoftwareKey) -> std::path::PathBuf {
    let der = key.to_pkcs8_der().unwrap();
    let pem = der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &der).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// A self-signed certificate for `key` (as DER), made by `openssl req -x509`.
pub(crate) fn self_signed_cert(dir: &Path, name: &str, key: &SoftwareKey) -> Vec<u8> {
    make_cert(dir, name, key, None)
}

/// A certificate for `key` issued by the certificate and key that [`self_signed_cert`] wrote
/// under the name `issuer`.
pub(crate) fn issued_cert(dir: &Path, name: &str, key: &SoftwareKey, issuer: &str) -> Vec<u8> {
    make_cert(dir, name, key, Some(issuer))
}

fn make_cert(dir: &Path, name: &str, key: &SoftwareKey, issuer: Option<&str>) -> Vec<u8> {
    let key_path = write_plain_key_pem(dir, &format!("{name}.key.pem"), key);
    let cert_path = dir.join(format!("{name}.crt.pem"));
    let subject = format!("/CN={name}");
    let mut args = vec![
        "req",
        "-x509",
        "-new",
        "-key",
        path_str(&key_path),
        "-subj",
        &subject,
        "-days",
        "1",
        "-out",
        path_str(&cert_path),
    ];
    let (issuer_cert, issuer_key) = match issuer {
        Some(issuer) => (dir.join(format!("{issuer}.crt.pem")), dir.join(format!("{issuer}.key.pem"))),
        None => Default::default(),
    };
    if issuer.is_some() {
        args.extend_from_slice(&["-CA", path_str(&issuer_cert), "-CAkey", path_str(&issuer_key)]);
    }
    openssl_ok(&args);
    let pem = std::fs::read_to_string(cert_path).unwrap();
    let (label, doc) = der::Document::from_pem(&pem).unwrap();
    assert_eq!(label, "CERTIFICATE");
    doc.into_vec()
}
