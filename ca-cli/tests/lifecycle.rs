//! The CA's own lifecycle: the OCSP responder's and the system certificate renewed while
//! `ca serve` runs (it switches on SIGHUP, openssl sees responses signed by the new responder),
//! expiry warnings in `ca status` and `/metrics`, and bearer tokens listed and revoked with the
//! running server refusing a revoked token at once.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{http, issue_individual, openssl, openssl_csr, CaRunner, Server, SoftHsm, BIN, IIN, MODULE};

fn serve(ca: &CaRunner) -> (Server, u16) {
    let (child, port) = ca.serve();
    (Server(child), port)
}

fn stop(server: Server) {
    drop(server);
}

fn hangup(server: &Server) {
    let out = std::process::Command::new("kill").args(["-HUP", &server.0.id().to_string()]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Ask until `done` holds for the answer (the server reloads in the background after SIGHUP).
fn eventually<T>(what: &str, mut ask: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ask();
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The key hash that names a responder (`ResponderID byKey`), from its certificate.
fn responder_key_hash(cert: &Path) -> String {
    let (ok, text) = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-ocspid"]);
    assert!(ok, "{text}");
    let line = text.lines().find(|l| l.trim_start().starts_with("Public key OCSP hash")).expect("-ocspid output");
    line.rsplit(' ').next().unwrap().trim().to_ascii_uppercase()
}

/// `openssl ocsp` for `cert`, verified against the CA bundle; the whole output.
fn ask_ocsp(ca: &CaRunner, port: u16, cert: &Path, bundle: &Path) -> String {
    let (ok, text) = ca.openssl_ocsp(port, cert, bundle, &["-resp_text"]);
    assert!(ok && text.contains("Response verify OK") && text.contains(": good"), "{text}");
    text
}

fn responder_id(ocsp_text: &str) -> String {
    let line = ocsp_text.lines().find(|l| l.trim_start().starts_with("Responder Id:")).expect("responder id");
    line.rsplit(' ').next().unwrap().trim().to_ascii_uppercase()
}

fn holder(ca: &CaRunner, work: &Path) -> PathBuf {
    let csr = openssl_csr(work, "holder", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let cert = work.join("holder.pem");
    ca.ok(&issue_individual(
        "individual-sign",
        IIN,
        &["--csr", csr.to_str().unwrap(), "--out", cert.to_str().unwrap()],
    ));
    cert
}

fn expiry_gauge(port: u16, role: &str) -> i64 {
    let (status, text) = http(port, "GET", "/metrics", None, "");
    assert_eq!(status, 200);
    let prefix = format!("ca_certificate_expiry_seconds{{role=\"{role}\",");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {prefix}: {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn ocsp_renewal_is_picked_up_by_the_running_server() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let ca = CaRunner::new(&work.join("ca"));
    ca.ok(&["init", "--root-key", "p384", "--issuing-key", "p384"]);
    let out = ca.run(&["ocsp", "renew"]);
    assert_eq!(out.status.code(), Some(4), "nothing to renew yet: {out:?}");
    ca.ok(&["ocsp", "init", "--key-algorithm", "p256"]);
    let cert = holder(&ca, work);
    let bundle = ca.chain_bundle(&work.join("bundle.pem"));
    let ocsp_pem = ca.dir.join("certs/ocsp.pem");
    let first = responder_key_hash(&ocsp_pem);

    // A responder from `ca issue` would never be used by the server: refused, with the way.
    let out = ca.run(&["issue", "--profile", "ocsp-responder", "--generate-key"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ca ocsp renew"), "{out:?}");

    let (server, port) = serve(&ca);
    assert_eq!(responder_id(&ask_ocsp(&ca, port, &cert, &bundle)), first);
    let before = expiry_gauge(port, "ocsp");
    assert!((89 * 86400..=90 * 86400).contains(&before), "90 days: {before}");

    // A wrong passphrase renews nothing.
    let key_before = std::fs::read(ca.dir.join("private/ocsp.key.pem")).unwrap();
    let out = CaRunner::new(&ca.dir).env("CA_PASSPHRASE", "wrong").run(&["ocsp", "renew"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(responder_key_hash(&ocsp_pem), first);

    // New key (the default), 30 days; the server switches on SIGHUP without a restart.
    let renewed = ca.json(&["ocsp", "renew", "--validity-days", "30"]);
    let second = responder_key_hash(&ocsp_pem);
    assert_ne!(second, first, "a new key");
    assert_ne!(std::fs::read(ca.dir.join("private/ocsp.key.pem")).unwrap(), key_before);
    let stray: Vec<_> = std::fs::read_dir(ca.dir.join("certs"))
        .unwrap()
        .chain(std::fs::read_dir(ca.dir.join("private")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "no temporary files: {stray:?}");
    hangup(&server);
    let text = eventually("new responder", || ask_ocsp(&ca, port, &cert, &bundle), |t| responder_id(t) == second);
    assert!(text.contains("Response verify OK"), "{text}");
    let after = expiry_gauge(port, "ocsp");
    assert!((29 * 86400..=30 * 86400).contains(&after), "30 days after the reload: {after}");
    assert!(renewed["serial"].is_string());

    // --keep-key: a new certificate for the same key.
    let serial_before = std::fs::read_to_string(&ocsp_pem).unwrap();
    ca.ok(&["ocsp", "renew", "--keep-key"]);
    assert_eq!(responder_key_hash(&ocsp_pem), second);
    assert_ne!(std::fs::read_to_string(&ocsp_pem).unwrap(), serial_before);
    hangup(&server);
    let text = eventually("kept key", || ask_ocsp(&ca, port, &cert, &bundle), |_| expiry_gauge(port, "ocsp") > after);
    assert_eq!(responder_id(&text), second);
    stop(server);
}

#[test]
fn status_warns_before_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaRunner::new(&tmp.path().join("ca"));
    ca.ok(&["init", "--root-key", "p384", "--issuing-key", "p384"]);
    ca.ok(&["ocsp", "init", "--key-algorithm", "p256"]);
    let status = ca.json(&["status"]);
    let roles: Vec<&str> =
        status["certificates"].as_array().unwrap().iter().map(|c| c["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["root", "issuing", "ocsp"]);
    assert_eq!(status["warnings"].as_array().unwrap().len(), 0, "{status}");
    let ocsp = &status["certificates"][2];
    assert!((89..=90).contains(&ocsp["days_left"].as_i64().unwrap()), "{ocsp}");

    // A threshold above the responder's 90 days warns, and names the remedy.
    let config = ca.dir.join("ca.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("service_warn_days = 21"), "ca init writes the default: {text}");
    std::fs::write(&config, text.replace("service_warn_days = 21", "service_warn_days = 100")).unwrap();
    let status = ca.json(&["status"]);
    let warnings = status["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{status}");
    assert!(warnings[0].as_str().unwrap().contains("ca ocsp renew"), "{status}");
    assert!(ca.ok(&["status"]).contains("warning: the OCSP responder certificate"));
}

fn sign(port: u16, token: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "data": base64::engine::general_purpose::STANDARD.encode("ответ") }).to_string();
    let (status, text) = http(port, "POST", "/api/v1/cms/sign", Some(token), &body);
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// The signer certificate of a SignedData, as PEM, by openssl.
fn signer_of(cms_b64: &str, work: &Path, bundle: &Path) -> String {
    let cms = work.join("signed.p7s");
    std::fs::write(&cms, base64::engine::general_purpose::STANDARD.decode(cms_b64).unwrap()).unwrap();
    let signer = work.join("signer.pem");
    let (ok, text) = openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        cms.to_str().unwrap(),
        "-CAfile",
        bundle.to_str().unwrap(),
        "-purpose",
        "any",
        "-signer",
        signer.to_str().unwrap(),
        "-out",
        "/dev/null",
    ]);
    assert!(ok, "{text}");
    std::fs::read_to_string(signer).unwrap()
}

#[test]
fn tokens_are_listed_and_revoked_and_the_system_certificate_renewed() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let ca = CaRunner::new(&work.join("ca"));
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
        "--patronymic",
        "ТЕСТОВИЧ",
        "--bin",
        BIN,
        "--org",
        "ТОО ПОРТАЛ",
        "--role",
        "signing-right",
        "--key-algorithm",
        "p256",
    ]);
    let portal = ca.json(&["system", "token", "--label", "portal"]);
    let counter = ca.json(&["system", "token", "--label", "counter 7"]);
    let (portal_token, counter_token) = (portal["token"].as_str().unwrap(), counter["token"].as_str().unwrap());
    let listed = ca.json(&["system", "token", "list"]);
    let labels: Vec<&str> = listed.as_array().unwrap().iter().map(|t| t["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["portal", "counter 7"]);
    assert_eq!(listed[0]["id"], portal["id"]);
    assert!(listed[0]["created"].is_string() && listed[0]["revoked"].is_null());
    let file = std::fs::read_to_string(ca.dir.join("system/api-tokens")).unwrap();
    assert!(!file.contains(portal_token) && !file.contains(counter_token), "only hashes are kept");

    let (server, port) = serve(&ca);
    assert_eq!(sign(port, portal_token).0, 200);
    assert_eq!(sign(port, counter_token).0, 200);

    // Revoked: refused from the next request on, without a restart; the other still works.
    let id = portal["id"].as_str().unwrap();
    let revoked = ca.json(&["system", "token", "revoke", id]);
    assert!(revoked["revoked"].is_string(), "{revoked}");
    assert_eq!(sign(port, portal_token).0, 403);
    assert_eq!(sign(port, counter_token).0, 200);
    assert_eq!(ca.run(&["system", "token", "revoke", id]).status.code(), Some(6), "already revoked");
    assert_eq!(ca.run(&["system", "token", "revoke", "0123456789ab"]).status.code(), Some(4), "unknown id");
    assert_eq!(ca.json(&["system", "token", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(ca.json(&["system", "token", "list", "--all"]).as_array().unwrap().len(), 2);
    // A new token works at once too.
    let later = ca.json(&["system", "token", "--label", "later"]);
    assert_eq!(sign(port, later["token"].as_str().unwrap()).0, 200);
    let db = rusqlite::Connection::open(ca.dir.join("ca.db")).unwrap();
    let target: String =
        db.query_row("SELECT target FROM audit WHERE action = 'system.token.revoke'", [], |r| r.get(0)).unwrap();
    assert_eq!(target, id, "the revocation is in the audit journal");

    // The system certificate renewed: same subject and roles, new key; the server switches.
    let bundle = ca.chain_bundle(&work.join("bundle.pem"));
    let (_, answer) = sign(port, counter_token);
    let old_signer = signer_of(answer["cms"].as_str().unwrap(), work, &bundle);
    let old_subject = subject_of(&ca.dir.join("system/system.pem"));
    ca.ok(&["system", "renew"]);
    assert_eq!(subject_of(&ca.dir.join("system/system.pem")), old_subject);
    hangup(&server);
    let new_pem = std::fs::read_to_string(ca.dir.join("system/system.pem")).unwrap();
    let new_signer = eventually(
        "new system certificate",
        || {
            let (status, answer) = sign(port, counter_token);
            assert_eq!(status, 200, "{answer}");
            signer_of(answer["cms"].as_str().unwrap(), work, &bundle)
        },
        |signer| signer.trim() == new_pem.trim(),
    );
    assert_ne!(new_signer, old_signer);
    stop(server);
}

fn subject_of(cert: &Path) -> String {
    let (ok, text) = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-subject", "-nameopt", "RFC2253"]);
    assert!(ok, "{text}");
    text
}

/// On a token the renewal makes the new key there (ca.toml points at it), and the running
/// server signs OCSP responses with it after SIGHUP.
#[test]
fn ocsp_renewal_on_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let softhsm = SoftHsm::new();
    softhsm.init_token("ocsp-hsm", "1234");
    let ca = CaRunner::new(&tmp.path().join("ca")).env("SOFTHSM2_CONF", &softhsm.conf).env("CA_HSM_PIN", "1234");
    ca.ok(&["init", "--root-key", "p384", "--issuing-key", "p384"]);
    ca.ok(&["ocsp", "init", "--key-algorithm", "p256", "--hsm-module", MODULE, "--hsm-token", "ocsp-hsm"]);
    let cert = holder(&ca, tmp.path());
    let bundle = ca.chain_bundle(&tmp.path().join("bundle.pem"));
    let ocsp_pem = ca.dir.join("certs/ocsp.pem");
    let first = responder_key_hash(&ocsp_pem);
    let config_before = std::fs::read_to_string(ca.dir.join("ca.toml")).unwrap();
    let (server, port) = serve(&ca);
    assert_eq!(responder_id(&ask_ocsp(&ca, port, &cert, &bundle)), first);

    ca.ok(&["ocsp", "renew"]);
    let second = responder_key_hash(&ocsp_pem);
    assert_ne!(second, first);
    let config = std::fs::read_to_string(ca.dir.join("ca.toml")).unwrap();
    assert_ne!(config, config_before, "ca.toml names the new key");
    assert!(config.contains("ocsp-hsm"), "{config}");
    assert!(!ca.dir.join("private/ocsp.key.pem").exists(), "still no key file");
    hangup(&server);
    eventually("new responder on the token", || ask_ocsp(&ca, port, &cert, &bundle), |t| responder_id(t) == second);
    stop(server);
}
