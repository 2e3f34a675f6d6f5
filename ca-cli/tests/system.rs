//! `ca system init` and `ca system token`: an administrator gives the server its own signing
//! identity and a calling system a token; `ca serve` then signs for that caller, openssl verifies
//! what it signed, and a caller without the token is turned away.

mod common;

use base64::Engine;
use common::{http, openssl, CaRunner, SoftHsm, BIN, IIN, MODULE};

fn post(port: u16, path: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let (status, text) = http(port, "POST", path, token, body);
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// `ca serve` signs for the holder of `token`; openssl verifies what it signed; no or an
/// unlisted token is turned away.
fn serve_and_sign(ca: &CaRunner, token: &str, work: &std::path::Path) {
    let (mut server, port) = ca.serve();
    let content = "{\"answer\":\"accepted\"}";
    let body = serde_json::json!({ "data": base64::engine::general_purpose::STANDARD.encode(content) }).to_string();
    let (status, _) = post(port, "/api/v1/cms/sign", None, &body);
    assert_eq!(status, 401);
    let (status, _) = post(port, "/api/v1/cms/sign", Some("not-a-listed-token"), &body);
    assert_eq!(status, 403);
    let (status, v) = post(port, "/api/v1/cms/sign", Some(token), &body);
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(status, 200, "{v}");
    let cms = base64::engine::general_purpose::STANDARD.decode(v["cms"].as_str().unwrap()).unwrap();
    let cms_path = work.join("answer.p7s");
    std::fs::write(&cms_path, cms).unwrap();
    let bundle = ca.chain_bundle(&work.join("bundle.pem"));
    let (ok, text) = openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        cms_path.to_str().unwrap(),
        "-CAfile",
        bundle.to_str().unwrap(),
        "-purpose",
        "any",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains(content), "{text}");
}

#[test]
fn system_key_and_tokens_for_cms_signing() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaRunner::new(&tmp.path().join("ca"));
    ca.ok(&["init", "--root-key", "p384", "--issuing-key", "p384"]);
    let person = ["--iin", IIN, "--surname", "ПОРТАЛОВ", "--given-name", "СЕРВИС"];
    let certificates = || ca.json(&["list"]).as_array().map(Vec::len);
    let before = certificates();

    // Refused before anything is issued: wrong profile, missing organisation, wrong passphrase.
    let mut args = vec!["system", "init", "--profile", "individual-auth"];
    args.extend(person);
    assert!(!ca.run(&args).status.success());
    let mut args = vec!["system", "init"];
    args.extend(person);
    let out = ca.run(&args);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--bin"), "{out:?}");
    args.extend(["--bin", BIN, "--org", "ТОО ПОРТАЛ", "--role", "signing-right", "--key-algorithm", "p256"]);
    let out = CaRunner::new(&ca.dir).env("CA_PASSPHRASE", "wrong").run(&args);
    assert_eq!(out.status.code(), Some(5), "wrong passphrase: {out:?}");
    assert!(!ca.dir.join("system/system.pem").exists());
    assert_eq!(certificates(), before, "nothing issued");

    ca.ok(&args);
    assert!(ca.dir.join("system/system.pem").exists() && ca.dir.join("system/system.key").exists());
    let key = std::fs::read_to_string(ca.dir.join("system/system.key")).unwrap();
    assert!(key.contains("ENCRYPTED PRIVATE KEY"), "the key is encrypted");
    assert_eq!(ca.run(&args).status.code(), Some(6), "a second init changes nothing");

    let token = ca.ok(&["system", "token", "--label", "counter workstation 7"]).trim().to_owned();
    assert_eq!(token.len(), 43, "32 random bytes, base64url: {token}");
    let listed = std::fs::read_to_string(ca.dir.join("system/api-tokens")).unwrap();
    assert!(!listed.contains(&token), "only the hash is kept");
    let line = listed.lines().find(|l| l.ends_with(" - counter workstation 7")).expect("hash, created, -, label");
    assert_eq!(line.split(' ').next().unwrap().len(), 64, "{line}");

    serve_and_sign(&ca, &token, tmp.path());

    // A certificate that is not the key's stops the server at start, not at the first request.
    std::fs::copy(ca.dir.join("certs/nca.pem"), ca.dir.join("system/system.pem")).unwrap();
    let out = ca.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not for the key"), "{out:?}");
}

/// The system key generated on a token (SoftHSM): never in a file, found by the id ca.toml
/// records, opened with the token PIN at start; a wrong PIN stops the start.
#[test]
fn system_key_on_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let softhsm = SoftHsm::new();
    softhsm.init_token("system-hsm", "1234");
    let ca = CaRunner::new(&tmp.path().join("ca")).env("SOFTHSM2_CONF", &softhsm.conf).env("CA_HSM_PIN", "1234");
    ca.ok(&["init", "--root-key", "p384", "--issuing-key", "p384"]);
    ca.ok(&[
        "system",
        "init",
        "--iin",
        IIN,
        "--surname",
        "ПОРТАЛОВ",
        "--given-name",
        "СЕРВИС",
        "--bin",
        BIN,
        "--org",
        "ТОО ПОРТАЛ",
        "--role",
        "signing-right",
        "--key-algorithm",
        "p256",
        "--hsm-module",
        MODULE,
        "--hsm-token",
        "system-hsm",
    ]);
    assert!(!ca.dir.join("system/system.key").exists(), "no key file");
    let config = std::fs::read_to_string(ca.dir.join("ca.toml")).unwrap();
    assert!(config.contains("[server.system_key]") && config.contains("system-hsm"), "{config}");
    let objects = softhsm.tool("system-hsm", "1234", &["--list-objects", "--type", "privkey"]);
    let listed = String::from_utf8_lossy(&objects.stdout);
    assert!(listed.contains("system signing key") && listed.contains("never extractable"), "{listed}");

    let token = ca.ok(&["system", "token", "--label", "portal"]).trim().to_owned();
    serve_and_sign(&ca, &token, tmp.path());

    let out = CaRunner::new(&ca.dir).env("SOFTHSM2_CONF", &softhsm.conf).env("CA_HSM_PIN", "9999").run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(5), "wrong PIN: {out:?}");
}
