//! The `ca` command end to end: init, issue, show, list, revoke, audit verify, and every bad
//! input of the issue: a clear error, a meaningful non-zero exit code, and an unchanged store.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{openssl_csr, openssl_output as openssl, CaRunner, BIN, IIN};

struct Ca {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

fn ca_cmd(dir: &Path, args: &[&str]) -> Command {
    CaRunner::new(dir).command(args)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    CaRunner::new(dir).run(args)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    CaRunner::new(dir).ok(args)
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    CaRunner::new(dir).json(args)
}

fn init(issuing_key: &str) -> Ca {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    ok(&dir, &["init", "--root-key", "p384", "--issuing-key", issuing_key, "--base-url", "http://pki.test.kz"]);
    Ca { _tmp: tmp, dir }
}

/// Number of certificate rows and audit entries: what "changes nothing" is checked against.
fn state(dir: &Path) -> (usize, u64) {
    let certs = json(dir, &["list", "--limit", "100000"]).as_array().unwrap().len();
    let audit = json(dir, &["audit", "verify"])["entries"].as_u64().unwrap();
    (certs, audit)
}

fn person_args(profile: &str) -> Vec<&str> {
    vec![
        "issue",
        "--profile",
        profile,
        "--iin",
        IIN,
        "--surname",
        "Тестов",
        "--given-name",
        "Тест",
        "--patronymic",
        "Тестович",
    ]
}

#[test]
fn lifecycle_issue_show_list_revoke_audit() {
    let ca = init("p256");
    let work = ca.dir.parent().unwrap().to_path_buf();
    let csr = openssl_csr(&work, "rsa", &["-newkey", "rsa:2048"]);
    let mut args = person_args("legal-sign");
    args.extend_from_slice(&[
        "--bin",
        BIN,
        "--org",
        "ТОО \"ТЕСТ\"",
        "--role",
        "first-head",
        "--csr",
        csr.to_str().unwrap(),
    ]);
    let mut full = vec!["--json"];
    full.extend_from_slice(&args);
    let issued: serde_json::Value = serde_json::from_str(&ok(&ca.dir, &full)).unwrap();
    let serial = issued["serial"].as_str().unwrap().to_owned();
    assert_eq!(issued["bin"], BIN);
    assert_eq!(issued["roles"], serde_json::json!(["legal-entity", "first-head"]));

    // The certificate written to disk chains to the CA in OpenSSL.
    let cert = issued["certificate"].as_str().unwrap();
    let root = ca.dir.join("certs/root.pem");
    let nca = ca.dir.join("certs/nca.pem");
    let v = openssl(&["verify", "-CAfile", root.to_str().unwrap(), "-untrusted", nca.to_str().unwrap(), cert]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));

    let shown = json(&ca.dir, &["show", &serial]);
    assert_eq!(shown["status"], "issued");
    assert_eq!(shown["identity"]["iin"], IIN);
    assert_eq!(shown["identity"]["key_type"], "SIGN");
    assert_eq!(json(&ca.dir, &["list", "--bin", BIN]).as_array().unwrap().len(), 1);
    assert_eq!(json(&ca.dir, &["list", "--iin", IIN]).as_array().unwrap().len(), 1);

    let human = ok(&ca.dir, &["revoke", &serial, "--reason", "keyCompromise"]);
    assert!(human.contains("Revoked"), "{human}");
    assert_eq!(json(&ca.dir, &["show", &serial])["revocation"]["reason"], "keyCompromise");
    assert_eq!(json(&ca.dir, &["list", "--status", "revoked"]).as_array().unwrap().len(), 1);

    // Revoking again is idempotent, says so, and exits 6.
    let before = state(&ca.dir);
    let again = run(&ca.dir, &["revoke", &serial, "--reason", "superseded"]);
    assert_eq!(again.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already revoked"));
    assert_eq!(json(&ca.dir, &["show", &serial])["revocation"]["reason"], "keyCompromise");
    assert_eq!(state(&ca.dir), before);

    assert!(ok(&ca.dir, &["audit", "verify"]).contains("intact"));
}

#[test]
fn generated_key_is_delivered_as_pkcs12_named_by_the_profile() {
    let ca = init("rsa2048");
    for (profile, prefix) in [("individual-auth", "AUTH_RSA256_"), ("individual-sign", "RSA256_")] {
        let mut args = person_args(profile);
        args.extend_from_slice(&["--generate-key", "--email", "test@example.kz"]);
        let mut full = vec!["--json"];
        full.extend_from_slice(&args);
        let report: serde_json::Value = serde_json::from_str(&ok(&ca.dir, &full)).unwrap();
        let ski = report["ski"].as_str().unwrap();
        let p12 = PathBuf::from(report["pkcs12"].as_str().expect("a key store was written"));
        assert_eq!(p12.file_name().unwrap().to_str().unwrap(), format!("{prefix}{ski}.p12"));
        let p = p12.to_str().unwrap();
        let out = openssl(&["pkcs12", "-in", p, "-passin", "pass:p12 password", "-nodes"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(concat!("BEGIN ", "PRIVATE KEY")) && text.contains(&format!("friendlyName: {ski}")),
            "{text}"
        );
        assert!(!openssl(&["pkcs12", "-in", p, "-passin", "pass:guess", "-nodes"]).status.success());
    }
    // Without a PKCS#12 password nothing is generated or issued.
    let before = state(&ca.dir);
    let mut args = person_args("individual-auth");
    args.push("--generate-key");
    let out = ca_cmd(&ca.dir, &args).env_remove("CA_P12_PASSWORD").stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no PKCS#12 password"));
    assert_eq!(state(&ca.dir), before);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let ca = init("p256");
    let work = ca.dir.parent().unwrap().to_path_buf();
    let good_csr = openssl_csr(&work, "good", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let weak_csr = openssl_csr(&work, "weak", &["-newkey", "rsa:1024"]);
    let good = std::fs::read(&good_csr).unwrap();
    let der = Command::new("openssl")
        .args(["req", "-in", good_csr.to_str().unwrap(), "-outform", "DER"])
        .output()
        .unwrap()
        .stdout;
    let truncated = work.join("truncated.csr");
    std::fs::write(&truncated, &der[..der.len() / 2]).unwrap();
    let garbage = work.join("garbage.csr");
    std::fs::write(&garbage, b"this is not a CSR").unwrap();
    let mut tampered = der.clone();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x01; // inside the signature
    let bad_sig = work.join("badsig.csr");
    std::fs::write(&bad_sig, &tampered).unwrap();
    // A CSR whose signature is valid but over a different key: swap in another key's SPKI.
    let other = openssl_csr(&work, "other", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    assert_ne!(std::fs::read(&other).unwrap(), good);

    let before = state(&ca.dir);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec![
                "issue",
                "--profile",
                "individual-sign",
                "--iin",
                "880101300011",
                "--surname",
                "A",
                "--given-name",
                "B",
                "--csr",
                good_csr.to_str().unwrap(),
            ],
            3,
            "check digit",
        ),
        (
            vec![
                "issue",
                "--profile",
                "legal-sign",
                "--iin",
                IIN,
                "--surname",
                "A",
                "--given-name",
                "B",
                "--bin",
                "121340012340",
                "--org",
                "X",
                "--role",
                "employee",
                "--csr",
                good_csr.to_str().unwrap(),
            ],
            3,
            "invalid BIN",
        ),
        (
            vec![
                "issue",
                "--profile",
                "gold",
                "--iin",
                IIN,
                "--surname",
                "A",
                "--given-name",
                "B",
                "--csr",
                good_csr.to_str().unwrap(),
            ],
            3,
            "unknown profile",
        ),
        (
            vec![
                "issue",
                "--profile",
                "individual-sign",
                "--iin",
                IIN,
                "--surname",
                "A",
                "--given-name",
                "B",
                "--csr",
                truncated.to_str().unwrap(),
            ],
            3,
            "malformed CSR",
        ),
        (
            vec![
                "issue",
                "--profile",
                "individual-sign",
                "--iin",
                IIN,
                "--surname",
                "A",
                "--given-name",
                "B",
                "--csr",
                garbage.to_str().unwrap(),
            ],
            3,
            "malformed CSR",
        ),
        (
            vec![
                "issue",
                "--profile",
                "individual-sign",
                "--iin",
                IIN,
                "--surname",
                "A",
                "--given-name",
                "B",
                "--csr",
                bad_sig.to_str().unwrap(),
            ],
            3,
            "proof of possession",
        ),
        (
            vec![
                "issue",
                "--profile",
                "individual-sign",
                "--iin",
                IIN,
                "--surname",
                "A",
                "--given-name",
                "B",
                "--csr",
                weak_csr.to_str().unwrap(),
            ],
            3,
            "1024 bits is too weak",
        ),
        (
            vec![
                "issue",
                "--profile",
                "legal-sign",
                "--iin",
                IIN,
                "--surname",
                "A",
                "--given-name",
                "B",
                "--bin",
                BIN,
                "--org",
                "X",
                "--csr",
                good_csr.to_str().unwrap(),
            ],
            3,
            "needs one of the roles",
        ),
        (
            vec![
                "issue",
                "--profile",
                "individual-sign",
                "--iin",
                IIN,
                "--surname",
                "A",
                "--given-name",
                "B",
                "--email",
                "not-an-email",
                "--csr",
                good_csr.to_str().unwrap(),
            ],
            3,
            "email",
        ),
        (vec!["revoke", "1122334455", "--reason", "keyCompromise"], 4, "no certificate with serial"),
        (vec!["revoke", "zz-not-hex", "--reason", "keyCompromise"], 3, "hexadecimal"),
        (vec!["show", "1122334455"], 4, "no certificate with serial"),
    ];
    for (args, code, message) in cases {
        let out = run(&ca.dir, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "ca {args:?}: {stderr}");
        assert!(stderr.contains(message), "ca {args:?}: expected {message:?} in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(state(&ca.dir), before, "bad input changed the store");

    // Wrong CA passphrase: exit 5, nothing issued.
    let out = ca_cmd(
        &ca.dir,
        &[
            "issue",
            "--profile",
            "individual-sign",
            "--iin",
            IIN,
            "--surname",
            "A",
            "--given-name",
            "B",
            "--csr",
            good_csr.to_str().unwrap(),
        ],
    )
    .env("CA_PASSPHRASE", "not the passphrase")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"));
    assert_eq!(state(&ca.dir), before);

    // JSON errors are one JSON document with a machine-readable kind.
    let out = run(&ca.dir, &["--json", "show", "1122334455"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert_eq!(v["error"], "not-found");

    // A second init on the same directory refuses and keeps the CA.
    let out = run(&ca.dir, &["init"]);
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(state(&ca.dir), before);
}

#[test]
fn tampering_with_one_audit_row_is_detected() {
    let ca = init("p256");
    let work = ca.dir.parent().unwrap().to_path_buf();
    let csr = openssl_csr(&work, "k", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let mut args = person_args("individual-sign");
    args.extend_from_slice(&["--csr", csr.to_str().unwrap()]);
    ok(&ca.dir, &args);
    assert!(ok(&ca.dir, &["audit", "verify"]).contains("intact"));

    // An attacker with write access to the database file edits one entry.
    let db = rusqlite::Connection::open(ca.dir.join("ca.db")).unwrap();
    let refused = db.execute("UPDATE audit SET actor = 'nobody' WHERE seq = 3", []);
    assert!(refused.is_err(), "the journal refuses updates through SQL");
    db.execute_batch("DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'nobody' WHERE seq = 3;").unwrap();
    drop(db);

    let out = run(&ca.dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(7));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("entry 3"), "{stdout}");
    assert!(stdout.contains("BROKEN"), "{stdout}");
}
