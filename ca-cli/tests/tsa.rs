//! `ca tsa init|renew|show` and the running server's `/tsa`: the certificate has the critical
//! timeStamping EKU, a second init changes nothing, the server stamps openssl's queries, a
//! renewal is picked up on SIGHUP, and init and renewal are in the audit journal.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{openssl, CaRunner, Server};

/// POST `body` as `application/timestamp-query`; (status, body).
fn post_query(port: u16, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /tsa HTTP/1.1\r\nHost: x\r\nContent-Type: application/timestamp-query\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    assert!(head.to_ascii_lowercase().contains("content-type: application/timestamp-reply"), "{head}");
    (head.split(' ').nth(1).unwrap().parse().unwrap(), buf[end..].to_vec())
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Stamp `data` through the server with `-cert`; the reply file, verified by openssl against
/// the CA bundle. Returns the TSA certificate the token carries (PEM).
fn stamp_and_verify(port: u16, work: &Path, data: &Path, bundle: &Path) -> String {
    let (query, reply, token) = (work.join("q.tsq"), work.join("r.tsr"), work.join("t.der"));
    let (ok, text) = openssl(&["ts", "-query", "-data", p(data), "-sha256", "-cert", "-out", p(&query)]);
    assert!(ok, "{text}");
    let (status, body) = post_query(port, &std::fs::read(&query).unwrap());
    assert_eq!(status, 200);
    std::fs::write(&reply, body).unwrap();
    let (ok, text) = openssl(&["ts", "-verify", "-in", p(&reply), "-queryfile", p(&query), "-CAfile", p(bundle)]);
    assert!(ok && text.contains("Verification: OK"), "{text}");
    let (ok, text) = openssl(&["ts", "-reply", "-in", p(&reply), "-token_out", "-out", p(&token)]);
    assert!(ok, "{text}");
    let (ok, certs) = openssl(&["pkcs7", "-inform", "DER", "-in", p(&token), "-print_certs"]);
    assert!(ok, "{certs}");
    certs
}

fn serial_of(pem: &str, work: &Path) -> String {
    let path = work.join("cert.pem");
    std::fs::write(&path, pem).unwrap();
    let (ok, text) = openssl(&["x509", "-in", p(&path), "-noout", "-serial"]);
    assert!(ok, "{text}");
    text.trim().to_owned()
}

#[test]
fn tsa_init_renew_show_and_the_server_stamps() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let ca = CaRunner::new(&work.join("ca"));
    ca.ok(&["init", "--root-key", "p384", "--issuing-key", "p384"]);
    assert_eq!(ca.run(&["tsa", "renew"]).status.code(), Some(4), "nothing to renew yet");
    assert_eq!(ca.run(&["tsa", "show"]).status.code(), Some(4));
    let made = ca.json(&["tsa", "init", "--key-algorithm", "p256"]);
    assert!(made["serial"].is_string(), "{made}");
    let again = ca.run(&["tsa", "init"]);
    assert_eq!(again.status.code(), Some(6), "a second TSA changes nothing: {again:?}");

    let tsa_pem = ca.dir.join("certs/tsa.pem");
    let (ok, text) = openssl(&["x509", "-in", p(&tsa_pem), "-noout", "-text"]);
    assert!(ok, "{text}");
    let eku = text.split("X509v3 Extended Key Usage:").nth(1).unwrap();
    assert!(eku.starts_with(" critical") && eku.lines().nth(1).unwrap().trim() == "Time Stamping", "{text}");
    assert!(ca.dir.join("private/tsa.key.pem").exists());

    let shown = ca.json(&["tsa", "show"]);
    assert_eq!(shown["serial"], made["serial"]);
    assert_eq!(shown["policy"], "1.2.398.3.3.1.2");
    assert_eq!(shown["accuracy_millis"], 1000);
    assert_eq!(shown["enabled"], true);
    let status = ca.ok(&["status"]);
    assert!(status.contains("tsa"), "ca status lists the TSA certificate: {status}");

    let bundle = ca.chain_bundle(&work.join("bundle.pem"));
    let data = work.join("data.txt");
    std::fs::write(&data, "a document").unwrap();
    let (child, port) = ca.serve();
    let server = Server(child);
    let first = serial_of(&stamp_and_verify(port, work, &data, &bundle), work);
    assert_eq!(first, serial_of(&std::fs::read_to_string(&tsa_pem).unwrap(), work));

    // Renewed with a new key: the running server switches on SIGHUP.
    ca.ok(&["tsa", "renew", "--validity-days", "30"]);
    let renewed = serial_of(&std::fs::read_to_string(&tsa_pem).unwrap(), work);
    assert_ne!(renewed, first);
    let out = std::process::Command::new("kill").args(["-HUP", &server.0.id().to_string()]).output().unwrap();
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while serial_of(&stamp_and_verify(port, work, &data, &bundle), work) != renewed {
        assert!(Instant::now() < deadline, "the server did not switch to the renewed TSA");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);

    // One JSON entry per line.
    let journal = ca.ok(&["--json", "audit", "list"]);
    let entries: Vec<serde_json::Value> = journal.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let actions: Vec<&str> =
        entries.iter().filter_map(|e| e["action"].as_str().or_else(|| e["event"]["action"].as_str())).collect();
    assert!(actions.contains(&"tsa.init") && actions.contains(&"tsa.renew"), "{actions:?}");
}
