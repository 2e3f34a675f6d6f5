//! A CA whose root and issuing keys live in a PKCS#11 token (SoftHSM2 here; any module works
//! unchanged): init, issue, CRL publication, all signing on the token; OpenSSL accepts the
//! results; a wrong PIN issues nothing.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{issue_individual, openssl, openssl_csr, CaRunner, SoftHsm, IIN, MODULE};

const PIN: &str = "1234-5678";

struct Hsm {
    softhsm: SoftHsm,
    dir: PathBuf,
}

fn hsm() -> Hsm {
    let softhsm = SoftHsm::new();
    softhsm.init_token("ca-hsm", PIN);
    let dir = softhsm.tmp.path().join("ca");
    Hsm { softhsm, dir }
}

fn runner(h: &Hsm, pin: &str) -> CaRunner {
    CaRunner::new(&h.dir).env("SOFTHSM2_CONF", &h.softhsm.conf).env("CA_HSM_PIN", pin).env("CA_PASSPHRASE", "")
}

fn ca(h: &Hsm, pin: &str, args: &[&str]) -> Output {
    runner(h, pin).run(args)
}

fn ok(h: &Hsm, args: &[&str]) -> String {
    runner(h, PIN).ok(args)
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
    let list = h.softhsm.tool("ca-hsm", PIN, &["--list-objects"]);
    let text = String::from_utf8_lossy(&list.stdout);
    // Root, issuing, and the audit key that signs journal checkpoints.
    assert_eq!(text.matches("Private Key Object").count(), 3, "{text}");
    assert!(text.contains("never extractable"), "{text}");
    assert!(text.contains("audit checkpoint key"), "{text}");
    assert!(config.contains("[server.audit_key]") || config.contains("audit_key = {"), "{config}");
    assert!(!h.dir.join("private/audit.key.pem").exists(), "the audit key is on the token too");
    assert!(ok(&h, &["audit", "verify"]).contains("checkpoint: entry"));
    ok(&h, &["audit", "checkpoint"]);

    let work = h.dir.parent().unwrap();
    let request = openssl_csr(work, "leaf", &["-newkey", "rsa:2048"]);
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
    let chain = runner(&h, PIN).chain_bundle(&work.join("chain.pem"));
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

/// The OCSP responder's key made on the token (the CA keys in files): `ca serve` signs OCSP
/// responses on the token, and openssl verifies them.
#[test]
fn an_ocsp_responder_key_on_the_token_answers_openssl() {
    let h = hsm();
    let ca = CaRunner::new(&h.dir).env("SOFTHSM2_CONF", &h.softhsm.conf).env("CA_HSM_PIN", PIN);
    ca.ok(&["init", "--root-key", "p384", "--issuing-key", "p384"]);
    ca.ok(&["ocsp", "init", "--key-algorithm", "p256", "--hsm-module", MODULE, "--hsm-token", "ca-hsm"]);
    assert!(!ca.dir.join("private/ocsp.key.pem").exists(), "no key file");
    let listed = h.softhsm.tool("ca-hsm", PIN, &["--list-objects", "--type", "privkey"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("OCSP responder key") && listed.contains("never extractable"), "{listed}");
    assert_eq!(ca.run(&["ocsp", "init"]).status.code(), Some(6), "a second responder changes nothing");

    let work = h.softhsm.tmp.path();
    let csr = openssl_csr(work, "holder", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let cert = work.join("holder.pem");
    ca.ok(&issue_individual(
        "individual-sign",
        IIN,
        &["--csr", csr.to_str().unwrap(), "--out", cert.to_str().unwrap()],
    ));
    let bundle = ca.chain_bundle(&work.join("bundle.pem"));
    let (mut server, port) = ca.serve();
    let (ok, text) = ca.openssl_ocsp(port, &cert, &bundle, &[]);
    server.kill().unwrap();
    let _ = server.wait();
    assert!(ok && text.contains("Response verify OK") && text.contains(": good"), "{text}");
}
