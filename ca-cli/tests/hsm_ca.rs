//! A CA whose root and issuing keys live in a PKCS#11 token (SoftHSM2 here; any module works
//! unchanged): init, issue, CRL publication, all signing on the token; OpenSSL accepts the
//! results; a wrong PIN issues nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "1234-5678";
const IIN: &str = "880101300010";

struct Hsm {
    _tmp: tempfile::TempDir,
    conf: PathBuf,
    dir: PathBuf,
}

fn hsm() -> Hsm {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = tmp.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = tmp.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", "ca-hsm", "--so-pin", "87654321", "--pin", PIN])
        .output()
        .expect("softhsm2-util is installed by scripts/setup.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tmp.path().join("ca");
    Hsm { _tmp: tmp, conf, dir }
}

fn ca(h: &Hsm, pin: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ca"))
        .arg("--dir")
        .arg(&h.dir)
        .args(args)
        .env("SOFTHSM2_CONF", &h.conf)
        .env("CA_HSM_PIN", pin)
        .env_remove("CA_PASSPHRASE")
        .env_remove("CA_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ca")
}

fn ok(h: &Hsm, args: &[&str]) -> String {
    let out = ca(h, PIN, args);
    assert!(
        out.status.success(),
        "ca {args:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn csr(dir: &Path) -> PathBuf {
    let csr = dir.join("leaf.csr");
    let key = dir.join("leaf.key");
    let (made, text) = openssl(&[
        "req",
        "-new",
        "-nodes",
        "-subj",
        "/CN=x",
        "-newkey",
        "rsa:2048",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        csr.to_str().unwrap(),
    ]);
    assert!(made, "{text}");
    csr
}

#[test]
fn a_ca_with_keys_in_softhsm_issues_certificates_openssl_accepts() {
    let h = hsm();
    let out = ok(
        &h,
        &["init", "--root-key", "rsa2048", "--issuing-key", "p256", "--hsm-module", MODULE, "--hsm-token", "ca-hsm"],
    );
    assert!(out.contains("on the token"), "{out}");
    assert!(!h.dir.join("private/root.key.pem").exists(), "no key file when the key is on the token");
    let config = std::fs::read_to_string(h.dir.join("ca.toml")).unwrap();
    assert!(config.contains("type = \"pkcs11\""), "{config}");

    // The keys are on the token, private and never extractable.
    let list = Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", &h.conf)
        .args(["--module", MODULE, "--token-label", "ca-hsm", "--pin", PIN, "--list-objects"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.matches("Private Key Object").count(), 2, "{text}");
    assert!(text.contains("never extractable"), "{text}");

    let work = h.dir.parent().unwrap();
    let request = csr(work);
    let issued = ok(
        &h,
        &[
            "--json",
            "issue",
            "--profile",
            "individual-auth",
            "--iin",
            IIN,
            "--surname",
            "Тестов",
            "--given-name",
            "Тест",
            "--csr",
            request.to_str().unwrap(),
        ],
    );
    let issued: serde_json::Value = serde_json::from_str(&issued).unwrap();
    let leaf = issued["certificate"].as_str().unwrap();
    let chain = work.join("chain.pem");
    let mut bundle = std::fs::read_to_string(h.dir.join("certs/root.pem")).unwrap();
    bundle.push_str(&std::fs::read_to_string(h.dir.join("certs/nca.pem")).unwrap());
    std::fs::write(&chain, bundle).unwrap();
    let (v, text) = openssl(&["verify", "-CAfile", chain.to_str().unwrap(), leaf]);
    assert!(v, "{text}");

    // CRLs are signed on the token too.
    ok(&h, &["revoke", issued["serial"].as_str().unwrap(), "--reason", "keyCompromise"]);
    ok(&h, &["crl", "publish"]);
    let nca = h.dir.join("certs/nca.pem");
    let crl = h.dir.join("publish/crl/nca.crl");
    let (v, text) =
        openssl(&["crl", "-inform", "DER", "-in", crl.to_str().unwrap(), "-CAfile", nca.to_str().unwrap(), "-noout"]);
    assert!(v && text.contains("verify OK"), "{text}");

    // A wrong PIN: exit 5, a clear message without the PIN, nothing issued.
    let before = ok(&h, &["--json", "list"]);
    let out = ca(
        &h,
        "0000-0000",
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
            request.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.to_lowercase().contains("pin"), "{stderr}");
    assert!(!stderr.contains("0000-0000"), "the PIN never appears: {stderr}");
    assert_eq!(ok(&h, &["--json", "list"]), before);
}
