//! NIST PKITS through `POST /api/v1/x509/verify`, as a relying party would use it: a server
//! whose trust store holds only the PKITS trust anchor, and every entry of the manifest
//! (fixtures/pkits) sent as one JSON request with the entry's intermediates, its CRLs and its
//! RFC 5280 §6.1.1 policy inputs, revocation required (the default). The answer's `valid` and
//! `user_constrained_policy_set` must be the manifest's. Then what a relying party can demand
//! of revocation, `strict`, and the shape of the answer.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use ca_core::clock::FixedClock;
use ca_core::pkix::AlgorithmPolicy;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pkits")
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("manifest.json")).expect("manifest")).expect("json")
}

fn b64_file(path: PathBuf) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
}

fn policy(name: &str) -> String {
    match name {
        "anyPolicy" => "2.5.29.32.0".into(),
        other => format!("2.16.840.1.101.3.2.1.48.{}", other.strip_prefix("NIST-test-policy-").expect("NIST policy")),
    }
}

struct Server {
    port: u16,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// A verification server trusting the PKITS anchor alone, accepting the suite's 2011-era
/// algorithms (RSA-1024, DSA, SHA-1 before 2012: the historical-document exception).
fn server() -> Server {
    let at = OffsetDateTime::parse(manifest()["validation_time"].as_str().unwrap(), &Rfc3339).unwrap();
    let anchor = std::fs::read(dir().join("certs/TrustAnchorRootCertificate.crt")).unwrap();
    let verifier = ca_server::Verifier::new(&[anchor], &[], Vec::new(), Arc::new(FixedClock(at)))
        .unwrap()
        .with_algorithms(AlgorithmPolicy {
            min_rsa_bits: 1024,
            allow_dsa: true,
            sha1_accepted_before: Some(time::macros::datetime!(2012-01-01 0:00 UTC)),
        });
    let tmp = tempfile::tempdir().unwrap();
    let mut services = ca_server::Services::new(None, None, "pkits", tmp.path().join("crl"), tmp.path().join("certs"));
    services.verifier = Some(Arc::new(verifier));
    services.clock = Arc::new(FixedClock(at));
    let (port, runtime) = ca_tests::serve(Arc::new(services));
    Server { port, _runtime: runtime, _dir: tmp }
}

fn verify(server: &Server, body: &Value) -> Value {
    let (status, answer) = ca_tests::http(
        server.port,
        "POST",
        "/api/v1/x509/verify",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    let answer: Value = serde_json::from_slice(&answer).expect("a JSON answer");
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The request for one manifest entry: the end entity, the certificates between it and the
/// anchor as intermediates, the entry's CRLs and policy inputs.
fn request(test: &Value, validation_time: &str) -> Value {
    let names = |key: &str| -> Vec<String> {
        test[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    let certs = names("certs");
    let s = &test["settings"];
    json!({
        "certificate": b64_file(dir().join(format!("certs/{}.crt", certs.last().unwrap()))),
        "intermediates": certs[1..certs.len() - 1]
            .iter()
            .map(|n| b64_file(dir().join(format!("certs/{n}.crt"))))
            .collect::<Vec<_>>(),
        "crls": names("crls").iter().map(|n| b64_file(dir().join(format!("crls/{n}.crl")))).collect::<Vec<_>>(),
        "validation_time": validation_time,
        "initial_policy_set": s["initial_policy_set"].as_array().unwrap().iter().map(|p| policy(p.as_str().unwrap())).collect::<Vec<_>>(),
        "initial_explicit_policy": s["initial_explicit_policy"],
        "initial_policy_mapping_inhibit": s["initial_policy_mapping_inhibit"],
        "initial_inhibit_any_policy": s["initial_inhibit_any_policy"],
    })
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    out.sort();
    out
}

fn reasons(v: &Value) -> Vec<String> {
    v["findings"].as_array().unwrap().iter().map(|f| f["reason"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn every_pkits_entry_over_http_gets_the_expected_answer() {
    let manifest = manifest();
    let at = manifest["validation_time"].as_str().unwrap();
    let tests = manifest["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 249, "the manifest has 249 entries");
    let server = server();
    let mut wrong = Vec::new();
    let mut sections = std::collections::BTreeSet::new();
    for test in tests {
        let id = test["id"].as_str().unwrap();
        sections.insert(test["section"].as_str().unwrap().to_owned());
        let answer = verify(&server, &request(test, at));
        let expected_valid = test["expected"] == "VALID";
        let valid = answer["valid"].as_bool().unwrap();
        if valid != expected_valid {
            wrong.push(format!("{id}: expected {}, got {valid}: {:?}", test["expected"], answer["findings"]));
            continue;
        }
        if valid {
            let mut want: Vec<String> =
                strings(&test["user_constrained_policy_set"]).iter().map(|p| policy(p)).collect();
            want.sort();
            let got = strings(&answer["user_constrained_policy_set"]);
            if got != want {
                wrong.push(format!("{id}: user-constrained policy set {got:?}, expected {want:?}"));
            }
            // Revocation was required, and had: every certificate of the path has a status.
            assert_eq!(answer["revocation"]["state"], "good", "{id}: {answer}");
        }
    }
    assert_eq!(sections.len(), 16, "every PKITS section 4.1-4.16 is exercised: {sections:?}");
    assert!(wrong.is_empty(), "{} of 249 entries answered wrongly over HTTP:\n{}", wrong.len(), wrong.join("\n"));
}

/// 4.1.1 (a valid path) without its CRLs: what the relying party demands decides.
#[test]
fn a_required_revocation_status_that_cannot_be_had_is_not_valid() {
    let manifest = manifest();
    let at = manifest["validation_time"].as_str().unwrap();
    let test = manifest["tests"].as_array().unwrap().iter().find(|t| t["id"] == "4.1.1").unwrap();
    let server = server();
    let mut body = request(test, at);
    body["crls"] = json!([]);

    let required = verify(&server, &body);
    assert_eq!(required["valid"], false, "{required}");
    assert!(reasons(&required).contains(&"RevocationUnavailable".into()), "{required}");
    assert_eq!(required["revocation"]["state"], "unavailable");
    // Both the end entity and its CA lack a status; each is named.
    let unavailable: Vec<&Value> =
        required["findings"].as_array().unwrap().iter().filter(|f| f["reason"] == "RevocationUnavailable").collect();
    assert_eq!(unavailable.len(), 2, "{required}");
    assert!(unavailable.iter().all(|f| f["fatal"] == true));
    assert!(unavailable[1]["message"].as_str().unwrap().contains("Good CA"), "{required}");

    body["revocation"] = json!("prefer");
    let preferred = verify(&server, &body);
    assert_eq!(preferred["valid"], true, "{preferred}");
    assert!(reasons(&preferred).contains(&"RevocationNotChecked".into()), "{preferred}");
    assert_eq!(preferred["revocation"]["state"], "not-checked");

    body["revocation"] = json!("none");
    let none = verify(&server, &body);
    assert_eq!(none["valid"], true, "{none}");
    assert!(reasons(&none).is_empty(), "{none}");

    // A revoked end entity (4.4.3, "Invalid Revoked EE") is refused under `prefer` too, and
    // passes only when the relying party asks for no revocation check at all.
    let revoked = manifest["tests"].as_array().unwrap().iter().find(|t| t["id"] == "4.4.3").unwrap();
    let mut body = request(revoked, at);
    body["revocation"] = json!("prefer");
    let answer = verify(&server, &body);
    assert_eq!(answer["valid"], false, "{answer}");
    assert_eq!(reasons(&answer), vec!["Revoked"], "{answer}");
    assert_eq!(answer["revocation"]["state"], "revoked");
    body["revocation"] = json!("none");
    assert_eq!(verify(&server, &body)["valid"], true);
}

#[test]
fn the_answer_names_the_validated_path_and_its_policies() {
    let manifest = manifest();
    let at = manifest["validation_time"].as_str().unwrap();
    let test = manifest["tests"].as_array().unwrap().iter().find(|t| t["id"] == "4.1.1").unwrap();
    let server = server();
    let answer = verify(&server, &request(test, at));
    assert_eq!(answer["valid"], true, "{answer}");
    let path = answer["path"].as_array().unwrap();
    let names: Vec<&str> = test["certs"].as_array().unwrap().iter().rev().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(path.len(), names.len(), "end entity, CA, anchor: {answer}");
    for (entry, name) in path.iter().zip(&names) {
        let der = std::fs::read(dir().join(format!("certs/{name}.crt"))).unwrap();
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&der));
        assert_eq!(entry["sha256"], sha256.as_str(), "{name}");
        assert!(!entry["serial"].as_str().unwrap().is_empty());
        assert!(entry["subject"].as_str().unwrap().contains("CN="), "{entry}");
    }
    assert_eq!(strings(&answer["user_constrained_policy_set"]), vec![policy("NIST-test-policy-1")]);
    assert!(answer["profile_findings"].as_array().unwrap().is_empty(), "{answer}");

    // The relying party's own policy set is applied: policy 2 only is not what 4.1.1 asserts.
    let mut body = request(test, at);
    body["initial_policy_set"] = json!([policy("NIST-test-policy-2")]);
    body["initial_explicit_policy"] = json!(true);
    let answer = verify(&server, &body);
    assert_eq!(answer["valid"], false, "{answer}");

    // A required purpose the end entity's (absent) extendedKeyUsage allows, and a path length
    // the path exceeds.
    let mut body = request(test, at);
    body["extended_key_usage"] = json!(["clientAuth"]);
    assert_eq!(verify(&server, &body)["valid"], true);
    body["max_path_length"] = json!(0);
    let answer = verify(&server, &body);
    assert_eq!(answer["valid"], false, "{answer}");
    assert!(answer["findings"].to_string().contains("intermediate"), "{answer}");
}

/// No valid PKITS certificate breaks a CA-side obligation, so OpenSSL makes one: an end
/// entity with serial number 0 (RFC 5280 §4.1.2.2: positive). Reported, and fatal only when the
/// relying party asks for `strict`.
#[test]
fn strict_turns_profile_findings_into_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut root = vec!["req", "-x509", "-subj", "/CN=Strict Root", "-days", "30", "-keyout"];
    let (root_key, root_pem) = (path("root.key"), path("root.pem"));
    root.extend([root_key.as_str(), "-out", root_pem.as_str()]);
    root.extend(ec);
    ca_tests::openssl_ok(&root);
    let (leaf_key, leaf_csr) = (path("leaf.key"), path("leaf.csr"));
    let mut csr =
        vec!["req", "-new", "-subj", "/CN=Serial Zero", "-keyout", leaf_key.as_str(), "-out", leaf_csr.as_str()];
    csr.extend(ec);
    ca_tests::openssl_ok(&csr);
    ca_tests::openssl_ok(&[
        "x509",
        "-req",
        "-in",
        &leaf_csr,
        "-CA",
        &root_pem,
        "-CAkey",
        &root_key,
        "-set_serial",
        "0",
        "-days",
        "10",
        "-outform",
        "DER",
        "-out",
        &path("leaf.der"),
    ]);
    ca_tests::openssl_ok(&["x509", "-in", &root_pem, "-outform", "DER", "-out", &path("root.der")]);
    let anchor = std::fs::read(path("root.der")).unwrap();
    let now = OffsetDateTime::now_utc();
    let verifier = ca_server::Verifier::new(&[anchor], &[], Vec::new(), Arc::new(FixedClock(now))).unwrap();
    let mut services = ca_server::Services::new(None, None, "x", tmp.path().join("crl"), tmp.path().join("certs"));
    services.verifier = Some(Arc::new(verifier));
    let (port, _runtime) = ca_tests::serve(Arc::new(services));
    let server = Server { port, _runtime, _dir: tempfile::tempdir().unwrap() };

    let certificate = b64_file(tmp.path().join("leaf.der"));
    let answer = verify(&server, &json!({"certificate": certificate, "revocation": "none"}));
    assert_eq!(answer["valid"], true, "{answer}");
    let finding = &answer["profile_findings"][0];
    assert_eq!(finding["certificate"], "CN=Serial Zero", "the finding names the certificate: {answer}");
    assert!(finding["message"].as_str().unwrap().contains("serial number is zero"), "{finding}");

    let strict = verify(&server, &json!({"certificate": certificate, "revocation": "none", "strict": true}));
    assert_eq!(strict["valid"], false, "{strict}");
    assert_eq!(reasons(&strict), vec!["ProfileViolation"], "{strict}");
}
