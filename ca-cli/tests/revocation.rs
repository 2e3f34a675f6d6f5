//! Revocation that relying parties see, through the `ca` command and the real openssl:
//! published full, delta and partition CRLs verify; `openssl verify -crl_check` rejects a revoked
//! certificate and accepts a good one; `-use_deltas` sees a revocation only in the delta; holds
//! and their release; the CRL number in which a revocation first appeared.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{openssl, openssl_csr, CaRunner, IIN};

fn ca(dir: &Path, args: &[&str]) -> Output {
    CaRunner::new(dir).run(args)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    CaRunner::new(dir).ok(args)
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    CaRunner::new(dir).json(args)
}

struct Ca {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    chain: PathBuf,
}

fn init(partitions: u32) -> Ca {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    ok(&dir, &["init", "--root-key", "p256", "--issuing-key", "p256", "--base-url", "http://pki.test.kz"]);
    if partitions > 0 {
        let config = dir.join("ca.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replace("partitions = 0", &format!("partitions = {partitions}"))).unwrap();
    }
    let chain = CaRunner::new(&dir).chain_bundle(&tmp.path().join("chain.pem"));
    Ca { _tmp: tmp, dir, chain }
}

/// Issue from an openssl CSR; returns (serial, certificate path).
fn issue(ca_: &Ca, name: &str) -> (String, String) {
    let csr = openssl_csr(ca_.dir.parent().unwrap(), name, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let r = json(
        &ca_.dir,
        &[
            "issue",
            "--profile",
            "individual-sign",
            "--iin",
            IIN,
            "--surname",
            "Тестов",
            "--given-name",
            "Тест",
            "--csr",
            csr.to_str().unwrap(),
        ],
    );
    (r["serial"].as_str().unwrap().to_owned(), r["certificate"].as_str().unwrap().to_owned())
}

fn verify(ca_: &Ca, leaf: &str, crls: &[&Path], deltas: bool) -> (bool, String) {
    // OpenSSL wants one file with the CRLs for -CRLfile; concatenate PEM copies.
    let bundle = ca_.dir.parent().unwrap().join("crls.pem");
    let mut text = String::new();
    for c in crls {
        let (ok_, pem) = openssl(&["crl", "-inform", "DER", "-in", c.to_str().unwrap()]);
        assert!(ok_, "{pem}");
        text.push_str(&pem);
    }
    std::fs::write(&bundle, text).unwrap();
    let mut args =
        vec!["verify", "-crl_check", "-CAfile", ca_.chain.to_str().unwrap(), "-CRLfile", bundle.to_str().unwrap()];
    if deltas {
        args.push("-use_deltas");
    }
    args.push(leaf);
    openssl(&args)
}

#[test]
fn full_and_delta_crls_are_seen_by_openssl() {
    let c = init(0);
    let (good_serial, good) = issue(&c, "good");
    let (bad_serial, bad) = issue(&c, "bad");
    let (late_serial, late) = issue(&c, "late");
    let _ = good_serial;
    ok(&c.dir, &["revoke", &bad_serial, "--reason", "keyCompromise"]);
    let published = json(&c.dir, &["crl", "publish", "--pem"]);
    let files: Vec<&str> = published.as_array().unwrap().iter().map(|p| p["file"].as_str().unwrap()).collect();
    assert!(files[0].ends_with("publish/crl/nca.crl") && files[1].ends_with("publish/crl/nca_d.crl"), "{files:?}");
    assert_eq!(published[0]["entries"], 1);
    assert_eq!(published[1]["entries"], 0);
    assert!(published[1]["number"].as_u64() > published[0]["number"].as_u64());
    assert!(c.dir.join("publish/crl/nca.pem").exists());
    let full = c.dir.join("publish/crl/nca.crl");
    let delta = c.dir.join("publish/crl/nca_d.crl");

    // openssl crl -verify on both, and the delta names its base.
    let nca = c.dir.join("certs/nca.pem");
    for f in [&full, &delta] {
        let (v, text) = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            f.to_str().unwrap(),
            "-CAfile",
            nca.to_str().unwrap(),
            "-noout",
            "-text",
        ]);
        assert!(v && text.contains("verify OK"), "{text}");
    }
    let (_, text) = openssl(&["crl", "-inform", "DER", "-in", delta.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("Delta CRL Indicator"), "{text}");
    let (_, text) = openssl(&["crl", "-inform", "DER", "-in", full.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("Key Compromise") && text.contains(&bad_serial.to_uppercase()), "{text}");
    assert!(text.contains("Freshest CRL") && text.contains("http://pki.test.kz/crl/nca_d.crl"), "{text}");

    // verify -crl_check: the revoked one fails, the good one passes.
    let (v, text) = verify(&c, &bad, &[&full], false);
    assert!(!v && text.contains("certificate revoked"), "{text}");
    let (v, text) = verify(&c, &good, &[&full], false);
    assert!(v, "{text}");

    // `ca show` names the CRL that first listed the revocation.
    let first = published[0]["number"].as_u64().unwrap();
    assert_eq!(json(&c.dir, &["show", &bad_serial])["first_crl_number"], first);

    // A revocation that so far is only in a delta.
    ok(&c.dir, &["revoke", &late_serial, "--reason", "superseded"]);
    assert!(json(&c.dir, &["show", &late_serial])["first_crl_number"].is_null());
    let published = json(&c.dir, &["crl", "publish", "--which", "delta"]);
    assert_eq!(published.as_array().unwrap().len(), 1, "only a delta");
    assert_eq!(published[0]["entries"], 1);
    assert_eq!(published[0]["base_number"], first);
    let (v, text) = verify(&c, &late, &[&full], false);
    assert!(v, "the full CRL does not know it yet: {text}");
    let (v, text) = verify(&c, &late, &[&full, &delta], true);
    assert!(!v && text.contains("certificate revoked"), "{text}");
    assert_eq!(json(&c.dir, &["show", &late_serial])["first_crl_number"], published[0]["number"]);
    assert!(ok(&c.dir, &["audit", "verify"]).contains("intact"));
}

#[test]
fn hold_and_release_travel_through_delta_crls() {
    let c = init(0);
    let (serial, leaf) = issue(&c, "held");
    ok(&c.dir, &["revoke", &serial, "--reason", "certificateHold"]);
    ok(&c.dir, &["crl", "publish"]);
    let full = c.dir.join("publish/crl/nca.crl");
    let delta = c.dir.join("publish/crl/nca_d.crl");
    let (v, text) = verify(&c, &leaf, &[&full], false);
    assert!(!v && text.contains("certificate revoked"), "{text}");

    let out = ok(&c.dir, &["release", &serial]);
    assert!(out.contains("valid again"), "{out}");
    let again = ca(&c.dir, &["release", &serial]);
    assert_eq!(again.status.code(), Some(6), "releasing twice says so");
    ok(&c.dir, &["crl", "publish", "--which", "delta"]);
    let (_, text) = openssl(&["crl", "-inform", "DER", "-in", delta.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("Remove From CRL"), "{text}");
    let (v, text) = verify(&c, &leaf, &[&full, &delta], true);
    assert!(v, "removeFromCRL in the delta lifts the hold of the full CRL: {text}");

    // The next full CRL no longer lists it.
    ok(&c.dir, &["crl", "publish", "--which", "full"]);
    let (_, text) = openssl(&["crl", "-inform", "DER", "-in", full.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("No Revoked Certificates"), "{text}");
}

#[test]
fn partitioned_crls_cover_their_certificates() {
    let c = init(4);
    let mut leaves = Vec::new();
    for i in 0..6 {
        leaves.push(issue(&c, &format!("p{i}")));
    }
    let (revoked_serial, revoked_leaf) = leaves[0].clone();
    ok(&c.dir, &["revoke", &revoked_serial, "--reason", "affiliationChanged"]);
    let published = json(&c.dir, &["crl", "publish"]);
    // The unpartitioned pair plus a full and a delta per partition.
    assert_eq!(published.as_array().unwrap().len(), 2 + 4 * 2);
    let numbers: Vec<u64> = published.as_array().unwrap().iter().map(|p| p["number"].as_u64().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "one increasing sequence: {numbers:?}");

    for (serial, leaf) in &leaves {
        // The certificate's own CDP names its partition CRL.
        let (_, text) = openssl(&["x509", "-in", leaf, "-noout", "-ext", "crlDistributionPoints"]);
        let url = text.lines().find_map(|l| l.trim().strip_prefix("URI:")).expect("CDP URI").to_owned();
        let file = url.rsplit('/').next().unwrap();
        assert!(file.starts_with("nca_p") && file.ends_with(".crl"), "{url}");
        let crl = c.dir.join("publish/crl").join(file);
        let nca = c.dir.join("certs/nca.pem");
        let (v, text) = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            crl.to_str().unwrap(),
            "-CAfile",
            nca.to_str().unwrap(),
            "-noout",
            "-text",
        ]);
        assert!(v && text.contains("verify OK") && text.contains("Issuing Distribution Point"), "{text}");
        let (v, text) = verify(&c, leaf, &[&crl], false);
        if *serial == revoked_serial {
            assert!(!v && text.contains("certificate revoked"), "{text}");
        } else {
            assert!(v, "{text}");
        }
    }
    let _ = revoked_leaf;
}
