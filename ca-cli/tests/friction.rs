//! What a new administrator ran into (issue 18): weak RSA exponents, registry values issuance
//! would refuse, a closed pipe, EC AUTH key usage, revocation without a reason, PEM with
//! openssl's "Bag Attributes", CRL periods, and times as people read them.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{openssl, openssl_csr, CaRunner, BIN, IIN};

fn init() -> (tempfile::TempDir, CaRunner) {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaRunner::new(&tmp.path().join("ca"));
    ca.ok(&["init", "--root-key", "p256", "--issuing-key", "p256", "--base-url", "http://pki.test.kz"]);
    (tmp, ca)
}

fn person(profile: &str) -> Vec<String> {
    [
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
    .map(str::to_owned)
    .to_vec()
}

fn run(ca: &CaRunner, args: &[String]) -> (i32, String) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ca.run(&refs);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn certificates(ca: &CaRunner) -> usize {
    ca.json(&["list", "--limit", "100000"]).as_array().unwrap().len()
}

#[test]
fn rsa_key_with_exponent_3_is_refused() {
    let (tmp, ca) = init();
    let e3 = openssl_csr(tmp.path(), "e3", &["-newkey", "rsa:2048", "-pkeyopt", "rsa_keygen_pubexp:3"]);
    let before = certificates(&ca);
    let mut args = person("individual-sign");
    args.extend(["--csr".into(), e3.to_str().unwrap().into()]);
    let (code, text) = run(&ca, &args);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("RSA public exponent 3 is refused") && text.contains("65537"), "{text}");
    assert_eq!(certificates(&ca), before, "nothing was reserved or issued");
}

#[test]
fn registry_import_refuses_what_issuance_would_refuse_naming_the_line() {
    let (tmp, ca) = init();
    let csv = tmp.path().join("registry.csv");
    let good = format!("person,{IIN},Тестов,Тест,,1,0,1,0,N1,2020-01-01,,");
    let huge = format!("person,{IIN},{},Тест,,1,0,1,0,N1,2020-01-01,,", "A".repeat(5_000_000));
    std::fs::write(&csv, format!("# header\n{good}\n{huge}\n")).unwrap();
    let out = ca.run(&["registry", "import", csv.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("line 3: surname is too long (5000000 characters, at most 64)"), "{stderr}");
    assert!(stderr.len() < 2_000, "the huge value is not echoed back");
    // Nothing imported, not even the good line.
    assert_eq!(ca.run(&["registry", "show", IIN]).status.code(), Some(4));
}

/// `ca list | head -1`: the reader goes away before the command writes.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let (_tmp, ca) = init();
    for args in [&["list"][..], &["--json", "list"][..], &["audit", "verify"][..]] {
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        drop(reader);
        let out = ca.command(args).stdout(Stdio::from(writer)).stderr(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "ca {args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "ca {args:?}: {stderr}");
    }
}

#[test]
fn ec_legal_auth_certificate_has_key_agreement_not_key_encipherment() {
    let (tmp, ca) = init();
    let mut args = person("legal-auth");
    args.extend(
        [
            "--bin",
            BIN,
            "--org",
            "ТОО ТЕСТ",
            "--role",
            "employee",
            "--generate-key",
            "--key-algorithm",
            "p256",
            "--p12-dir",
        ]
        .map(str::to_owned),
    );
    args.push(tmp.path().to_str().unwrap().into());
    args.insert(0, "--json".into());
    let (code, text) = run(&ca, &args);
    assert_eq!(code, 0, "{text}");
    let issued: serde_json::Value = serde_json::from_str(&text).unwrap();
    let serial = issued["serial"].as_str().unwrap();
    let pem = ca.json(&["show", serial, "--pem"])["pem"].as_str().unwrap().to_owned();
    let file = tmp.path().join("auth.pem");
    std::fs::write(&file, pem).unwrap();
    let (ok, text) = openssl(&["x509", "-in", file.to_str().unwrap(), "-noout", "-ext", "keyUsage"]);
    assert!(ok, "{text}");
    assert!(text.contains("Digital Signature, Key Agreement"), "{text}");
    assert!(!text.contains("Encipherment"), "{text}");
}

#[test]
fn revoke_requires_a_reason_and_offers_only_reasons_it_accepts() {
    let (tmp, ca) = init();
    let csr = openssl_csr(tmp.path(), "k", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let mut args = person("individual-sign");
    args.extend(["--csr".into(), csr.to_str().unwrap().into()]);
    args.insert(0, "--json".into());
    let (code, text) = run(&ca, &args);
    assert_eq!(code, 0, "{text}");
    let serial = serde_json::from_str::<serde_json::Value>(&text).unwrap()["serial"].as_str().unwrap().to_owned();

    let out = ca.run(&["revoke", &serial]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--reason"), "{stderr}");
    assert_eq!(ca.json(&["show", &serial])["status"], "issued", "nothing revoked");

    let help = ca.ok(&["revoke", "--help"]);
    assert!(help.contains("keyCompromise") && !help.contains("removeFromCRL"), "{help}");
    let out = ca.run(&["revoke", &serial, "--reason", "nonsense"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("certificateHold") && !stderr.contains("removeFromCRL"), "{stderr}");
    ca.ok(&["revoke", &serial, "--reason", "unspecified"]);
}

#[test]
fn pem_after_openssl_bag_attributes_is_read() {
    let (tmp, ca) = init();
    let csr = openssl_csr(tmp.path(), "k", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let annotated = tmp.path().join("annotated.csr");
    let text = std::fs::read_to_string(&csr).unwrap();
    std::fs::write(&annotated, format!("Bag Attributes\n    friendlyName: k\nsubject=CN = x\n{text}")).unwrap();
    let mut args = person("individual-sign");
    args.extend(["--csr".into(), annotated.to_str().unwrap().into()]);
    let (code, text) = run(&ca, &args);
    assert_eq!(code, 0, "{text}");
}

fn edit_config(dir: &Path, from: &str, to: &str) -> PathBuf {
    let path = dir.join("ca.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

#[test]
fn crl_periods_that_make_no_sense_are_refused_at_load() {
    let (_tmp, ca) = init();
    for bad in ["delta_hours = 0", "delta_hours = 48"] {
        edit_config(&ca.dir, "delta_hours = 1", bad);
        let out = ca.run(&["crl", "publish"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{bad}: {stderr}");
        assert!(stderr.contains(bad), "{stderr}");
        edit_config(&ca.dir, bad, "delta_hours = 1");
    }
    ca.ok(&["crl", "publish"]);
}

#[test]
fn times_in_messages_are_rfc3339() {
    let (tmp, ca) = init();
    edit_config(&ca.dir, "validity_days = 365\n", "validity_days = 100000\n");
    let csr = openssl_csr(tmp.path(), "k", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let mut args = person("individual-sign");
    args.extend(["--csr".into(), csr.to_str().unwrap().into()]);
    let (code, text) = run(&ca, &args);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("after the issuing CA's own certificate expires"), "{text}");
    assert!(!text.contains("+00:00:00") && !text.contains(".0 "), "{text}");
    let rfc3339 = text.split_whitespace().any(|w| {
        let w = w.trim_matches(|c: char| c == '(' || c == ')' || c == ',' || c == ';');
        w.len() == 20 && w.ends_with('Z') && w.as_bytes()[10] == b'T'
    });
    assert!(rfc3339, "{text}");
}

/// `/cps` from ca.toml's cps_file; `/ocsp` without a responder says tryLater; logs into a file
/// or a pipe carry no colour codes.
#[test]
fn server_serves_the_configured_cps_and_logs_without_ansi_codes_off_a_terminal() {
    let (_tmp, ca) = init();
    // The CPS page named in ca.toml is what /cps serves.
    edit_config(&ca.dir, "[server]\n", "[server]\ncps_file = \"cps.html\"\n");
    std::fs::write(ca.dir.join("cps.html"), "<h1>CPS of the test CA</h1>").unwrap();
    let (mut server, port) = ca.serve_with_stderr(Stdio::piped());
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET /cps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.to_lowercase().contains("content-type: text/html"), "{response}");
    assert!(response.ends_with("<h1>CPS of the test CA</h1>"), "{response}");

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n0\x00").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let head = String::from_utf8_lossy(&response).to_lowercase();
    assert!(head.starts_with("http/1.1 200") && head.contains("application/ocsp-response"), "{head}");
    // OCSPResponse { responseStatus tryLater (3) }: 30 03 0a 01 03.
    assert!(response.ends_with(&[0x30, 0x03, 0x0a, 0x01, 0x03]), "{response:02x?}");
    server.kill().unwrap();
    let out = server.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("tryLater"), "the warning is logged: {log}");
    assert!(!log.contains('\x1b'), "ANSI escape codes in a log that is not a terminal: {log:?}");
}
