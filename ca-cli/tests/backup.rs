//! Backup and restore: an online backup of a serving CA with issued and revoked certificates,
//! checked against its manifest (a changed or extra file is found), restored into a new
//! directory (never over an existing one), whose audit journal verifies and whose OCSP
//! responder answers good and revoked as before. Clear keys are never backed up.

mod common;

use std::path::Path;

use common::{issue_individual, openssl_csr, CaRunner, IIN};

fn issue_from_csr(ca: &CaRunner, work: &Path, name: &str) -> (String, std::path::PathBuf) {
    let csr = openssl_csr(work, name, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let cert = work.join(format!("{name}.pem"));
    let r = ca.json(&issue_individual(
        "individual-sign",
        IIN,
        &["--csr", csr.to_str().unwrap(), "--out", cert.to_str().unwrap()],
    ));
    (r["serial"].as_str().unwrap().to_owned(), cert)
}

fn ocsp_status(ca: &CaRunner, port: u16, cert: &Path, bundle: &Path) -> String {
    let (ok, text) = ca.openssl_ocsp(port, cert, bundle, &[]);
    assert!(ok && text.contains("Response verify OK"), "{text}");
    text
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_backup_of_a_serving_ca_restores_to_a_ca_that_verifies_and_answers_ocsp() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().to_path_buf();
    let ca = CaRunner::new(&tmp.path().join("ca"));
    ca.ok(&["init", "--root-key", "p256", "--issuing-key", "p256"]);
    ca.ok(&["ocsp", "init", "--key-algorithm", "p256"]);
    let (_, good) = issue_from_csr(&ca, &work, "good");
    let (revoked_serial, revoked) = issue_from_csr(&ca, &work, "revoked");
    ca.ok(&["revoke", &revoked_serial, "--reason", "keyCompromise"]);
    ca.ok(&issue_individual("individual-auth", IIN, &["--generate-key", "--key-algorithm", "p256"]));
    ca.ok(&["crl", "publish"]);
    #[cfg(unix)]
    assert_eq!(mode(&ca.dir.join("ca.db")), 0o600, "the store holds personal data");

    // Online: the server keeps the store open while the backup is taken.
    let (mut server, port) = ca.serve();
    let backup = work.join("backup-1");
    let made = ca.json(&["backup", backup.to_str().unwrap()]);
    let bundle = ca.chain_bundle(&work.join("bundle.pem"));
    assert!(ocsp_status(&ca, port, &good, &bundle).contains(": good"));
    server.kill().unwrap();
    let _ = server.wait();

    let files: Vec<&str> = made["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    for f in [
        "ca.db",
        "ca.toml",
        "certs/nca.pem",
        "certs/ocsp.pem",
        "private/nca.key.pem",
        "private/root.key.pem",
        "publish/crl/nca.crl",
    ] {
        assert!(files.contains(&f), "{f} is not in the backup: {files:?}");
    }
    assert!(files.iter().any(|f| f.ends_with(".p12")), "{files:?}");
    let key = std::fs::read_to_string(backup.join("private/nca.key.pem")).unwrap();
    assert!(key.contains("BEGIN ENCRYPTED PRIVATE KEY"), "CA keys stay encrypted");
    #[cfg(unix)]
    assert_eq!(mode(&backup.join("ca.db")), 0o600);
    ca.ok(&["backup", "verify", backup.to_str().unwrap()]);
    assert_eq!(ca.run(&["backup", backup.to_str().unwrap()]).status.code(), Some(3), "never over a backup");

    // A changed byte and a stray file are found; such a backup is not restored.
    let damaged = work.join("damaged");
    let copy = |from: &Path, to: &Path| {
        let (ok, text) =
            (std::process::Command::new("cp").args(["-a"]).arg(from).arg(to).status().unwrap().success(), "");
        assert!(ok, "{text}");
    };
    copy(&backup, &damaged);
    let mut toml = std::fs::read(damaged.join("ca.toml")).unwrap();
    toml[10] ^= 1;
    std::fs::write(damaged.join("ca.toml"), toml).unwrap();
    std::fs::write(damaged.join("certs/extra.pem"), "x").unwrap();
    let out = ca.run(&["backup", "verify", damaged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(7));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("ca.toml: SHA-256 differs") && said.contains("certs/extra.pem: not in the manifest"),
        "{said}"
    );
    let elsewhere = work.join("elsewhere");
    let out = CaRunner::new(&elsewhere).run(&["restore", damaged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(7));
    assert!(!elsewhere.exists(), "nothing restored from a damaged backup");

    // Restore: never over an existing directory; the restored CA verifies and answers OCSP.
    assert_eq!(CaRunner::new(&ca.dir).run(&["restore", backup.to_str().unwrap()]).status.code(), Some(3));
    let restored = CaRunner::new(&work.join("restored"));
    restored.ok(&["restore", backup.to_str().unwrap()]);
    let verified = restored.ok(&["audit", "verify"]);
    assert!(verified.contains(made["audit_head"].as_str().unwrap()), "{verified}");
    #[cfg(unix)]
    assert_eq!(mode(&restored.dir.join("private/nca.key.pem")), mode(&ca.dir.join("private/nca.key.pem")));
    let (mut server, port) = restored.serve();
    let good_answer = ocsp_status(&restored, port, &good, &bundle);
    let revoked_answer = ocsp_status(&restored, port, &revoked, &bundle);
    server.kill().unwrap();
    let _ = server.wait();
    assert!(good_answer.contains(": good"), "{good_answer}");
    assert!(
        revoked_answer.contains(": revoked") && revoked_answer.contains("Reason: keyCompromise"),
        "{revoked_answer}"
    );
}

#[test]
fn a_clear_private_key_in_the_ca_directory_stops_the_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaRunner::new(&tmp.path().join("ca"));
    ca.ok(&["init", "--root-key", "p256", "--issuing-key", "p256"]);
    openssl_csr(&ca.dir.join("issued"), "careless", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let backup = tmp.path().join("backup");
    let out = ca.run(&["backup", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(8), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("careless.key holds a private key in clear"));
    assert!(!backup.exists());
    assert!(std::fs::read_dir(tmp.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("partial")));
}
