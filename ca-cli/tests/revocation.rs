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
    init_with(partitions, &[])
}

fn init_with(partitions: u32, extra: &[&str]) -> Ca {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let args = ["init", "--root-key", "p256", "--issuing-key", "p256", "--base-url", "http://pki.test.kz"];
    ok(&dir, &[&args[..], extra].concat());
    if partitions > 0 {
        let config = dir.join("ca.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replace("partitions = 0", &format!("partitions = {partitions}"))).unwrap();
    }
    let chain = CaRunner::new(&dir).chain_bundle(&tmp.path().join("chain.pem"));
    Ca { _tmp: tmp, dir, chain }
}

/// `ca --json issue` of an individual SIGN certificate from a new openssl CSR.
fn try_issue(ca_: &Ca, name: &str) -> Output {
    let csr = openssl_csr(ca_.dir.parent().unwrap(), name, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let csr = csr.to_str().unwrap();
    let args = ["--json", "issue", "--profile", "individual-sign", "--iin", IIN, "--surname", "Тестов"];
    ca(&ca_.dir, &[&args[..], &["--given-name", "Тест", "--csr", csr]].concat())
}

/// Issue from an openssl CSR; returns (serial, certificate path).
fn issue(ca_: &Ca, name: &str) -> (String, String) {
    let out = try_issue(ca_, name);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (r["serial"].as_str().unwrap().to_owned(), r["certificate"].as_str().unwrap().to_owned())
}

/// `openssl crl -text` of a DER CRL, checked against `ca_pem`.
fn crl_text(crl: &Path, ca_pem: &Path) -> (bool, String) {
    openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-CAfile",
        ca_pem.to_str().unwrap(),
        "-noout",
        "-text",
    ])
}

fn verify(ca_: &Ca, leaf: &str, crls: &[&Path], deltas: bool) -> (bool, String) {
    verify_with(ca_, leaf, crls, if deltas { &["-crl_check", "-use_deltas"] } else { &["-crl_check"] })
}

/// `openssl verify <flags> -CAfile chain -CRLfile crls leaf`.
fn verify_with(ca_: &Ca, leaf: &str, crls: &[&Path], flags: &[&str]) -> (bool, String) {
    // OpenSSL wants one file with the CRLs for -CRLfile; concatenate PEM copies.
    let bundle = ca_.dir.parent().unwrap().join("crls.pem");
    let mut text = String::new();
    for c in crls {
        let (ok_, pem) = openssl(&["crl", "-inform", "DER", "-in", c.to_str().unwrap()]);
        assert!(ok_, "{pem}");
        text.push_str(&pem);
    }
    std::fs::write(&bundle, text).unwrap();
    let mut args = vec!["verify"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["-CAfile", ca_.chain.to_str().unwrap()]);
    if !crls.is_empty() {
        args.extend_from_slice(&["-CRLfile", bundle.to_str().unwrap()]);
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
        let (v, text) = crl_text(f, &nca);
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
        let (v, text) = crl_text(&crl, &nca);
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

fn crl_number(path: &Path) -> u64 {
    let (ok_, text) = openssl(&["crl", "-inform", "DER", "-in", path.to_str().unwrap(), "-noout", "-crlnumber"]);
    assert!(ok_, "{text}");
    let hex = text.trim().strip_prefix("crlNumber=0x").unwrap_or_else(|| panic!("{text}"));
    u64::from_str_radix(hex, 16).unwrap()
}

/// `openssl x509 -ext <name>` of a certificate.
fn extension(cert: &str, name: &str) -> String {
    openssl(&["x509", "-in", cert, "-noout", "-ext", name]).1
}

/// The file a certificate's CRL distribution point (or FreshestCRL) names.
fn pointer(leaf: &str, name: &str) -> String {
    let text = extension(leaf, name);
    let url = text.lines().find_map(|l| l.trim().strip_prefix("URI:")).expect("URI").to_owned();
    url.rsplit('/').next().unwrap().to_owned()
}

#[test]
fn partition_deltas_pair_with_their_base_in_openssl_extended_crl_checks() {
    let c = init(3);
    let (held_serial, held) = issue(&c, "held");
    let (late_serial, late) = issue(&c, "late");
    ok(&c.dir, &["revoke", &held_serial, "--reason", "certificateHold"]);
    ok(&c.dir, &["crl", "publish"]);
    ok(&c.dir, &["release", &held_serial]);
    ok(&c.dir, &["revoke", &late_serial, "--reason", "superseded"]);
    ok(&c.dir, &["crl", "publish", "--which", "delta"]);

    let flags = ["-crl_check", "-extended_crl", "-use_deltas"];
    let crls = c.dir.join("publish/crl");
    for (leaf, revoked) in [(&held, false), (&late, true)] {
        let (full, delta) =
            (crls.join(pointer(leaf, "crlDistributionPoints")), crls.join(pointer(leaf, "freshestCRL")));
        // RFC 5280 5.2.5: the delta's Issuing Distribution Point is its base's, the certificate's CDP.
        let idp = |f: &Path| {
            let (_, text) = openssl(&["crl", "-inform", "DER", "-in", f.to_str().unwrap(), "-noout", "-text"]);
            let after = text.split("Issuing Distribution Point").nth(1).unwrap_or_else(|| panic!("no IDP: {text}"));
            let uri = after.split("URI:").nth(1).expect("IDP URI");
            uri.split_whitespace().next().unwrap().to_owned()
        };
        assert_eq!(idp(&delta), idp(&full));
        assert!(idp(&full).ends_with(&pointer(leaf, "crlDistributionPoints")), "{}", idp(&full));
        let (v, text) = verify_with(&c, leaf, &[&full, &delta], &flags);
        if revoked {
            assert!(!v && text.contains("certificate revoked"), "a revocation only in the delta: {text}");
        } else {
            assert!(v, "the delta's removeFromCRL lifts the hold of the full CRL: {text}");
            let (v, text) = verify_with(&c, leaf, &[&full], &flags[..2]);
            assert!(!v && text.contains("certificate revoked"), "the full CRL alone still has the hold: {text}");
        }
    }
}

#[cfg(unix)]
#[test]
fn published_files_are_public_current_and_known_to_the_store() {
    use std::os::unix::fs::PermissionsExt;
    let c = init(0);
    let out = c.dir.join("publish/crl");
    let (serial, _) = issue(&c, "one");
    ok(&c.dir, &["crl", "publish", "--pem"]);
    for f in ["nca.crl", "nca_d.crl", "nca.pem", "nca_d.pem", "root.crl"] {
        let mode = std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{f} is public");
    }

    // A run killed mid-write leaves a temporary file; the next run removes it. Without --pem
    // the PEM copies of the older CRLs go too.
    std::fs::write(out.join(".publishing-abandoned"), b"half a CRL").unwrap();
    ok(&c.dir, &["revoke", &serial, "--reason", "keyCompromise"]);
    ok(&c.dir, &["crl", "publish"]);
    assert!(!out.join(".publishing-abandoned").exists());
    assert!(!out.join("nca.pem").exists() && !out.join("nca_d.pem").exists(), "no stale PEM copy");

    // A fault between writing the full CRL and recording it (the store refuses the record).
    let db = rusqlite::Connection::open(c.dir.join("ca.db")).unwrap();
    db.execute_batch("CREATE TRIGGER fault BEFORE INSERT ON crls BEGIN SELECT RAISE(ABORT, 'injected fault'); END;")
        .unwrap();
    let failed = ca(&c.dir, &["crl", "publish", "--which", "full"]);
    assert!(!failed.status.success());
    let orphan = crl_number(&out.join("nca.crl"));
    let recorded = |kind: &str| -> Vec<u64> {
        let mut stmt = db
            .prepare(
                "SELECT number FROM crls WHERE issuer = 'nca' AND crl_partition = -1 AND kind = ?1 ORDER BY number",
            )
            .unwrap();
        stmt.query_map([kind], |r| r.get::<_, i64>(0)).unwrap().map(|n| n.unwrap() as u64).collect()
    };
    assert!(!recorded("full").contains(&orphan), "the fault struck before the record");
    db.execute_batch("DROP TRIGGER fault;").unwrap();

    // The next run, even a delta-only one, replaces the CRL the store does not know.
    let published = json(&c.dir, &["crl", "publish", "--which", "delta"]);
    let numbers: Vec<u64> = published.as_array().unwrap().iter().map(|p| p["number"].as_u64().unwrap()).collect();
    assert_eq!(published[0]["kind"], "full", "{published}");
    assert!(numbers.iter().all(|n| *n > orphan), "no number is reused for other content: {numbers:?} vs {orphan}");
    let full = crl_number(&out.join("nca.crl"));
    assert_eq!(recorded("full").last(), Some(&full), "the published full CRL is the store's last");
    assert_eq!(recorded("delta").last(), Some(&crl_number(&out.join("nca_d.crl"))));
    assert_eq!(published[1]["base_number"], full);
}

fn serial_of(cert: &Path) -> String {
    let (_, text) = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"]);
    text.trim().strip_prefix("serial=").unwrap().to_lowercase()
}

#[test]
fn a_revoked_issuing_ca_is_in_the_root_crl_and_issues_nothing() {
    let c = init(0);
    let crls = c.dir.join("publish/crl");
    let root_crl = crls.join("root.crl");
    // `ca init` publishes the root's first CRL: the issuing CA's CDP is not a 404.
    assert_eq!(pointer(c.dir.join("certs/nca.pem").to_str().unwrap(), "crlDistributionPoints"), "root.crl");
    let root_pem = c.dir.join("certs/root.pem");
    let (v, text) = crl_text(&root_crl, &root_pem);
    assert!(v && text.contains("verify OK") && text.contains("No Revoked Certificates"), "{text}");
    let first_root_number = crl_number(&root_crl);

    let (_, leaf) = issue(&c, "leaf");
    ok(&c.dir, &["crl", "publish"]);
    let nca = crls.join("nca.crl");
    let (v, text) = verify_with(&c, &leaf, &[&root_crl, &nca], &["-crl_check_all"]);
    assert!(v, "{text}");

    let nca_serial = serial_of(&c.dir.join("certs/nca.pem"));
    let out = ok(&c.dir, &["revoke", &nca_serial, "--reason", "cACompromise"]);
    assert!(out.contains("CA certificate") && out.contains("ca crl publish --root"), "{out}");

    // The CA refuses to issue under its revoked certificate, and says why.
    let refused = try_issue(&c, "after");
    let error: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(refused.status.code(), Some(8), "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("revoked") && message.contains("signs nothing more"), "{message}");
    assert!(json(&c.dir, &["list", "--status", "reserved"]).as_array().unwrap().is_empty(), "nothing reserved");

    // The root's CRL lists it once published with the root key; openssl then rejects the leaf.
    let published = json(&c.dir, &["crl", "publish", "--root"]);
    assert_eq!(published[0]["entries"], 1);
    assert!(published[0]["number"].as_u64().unwrap() > first_root_number, "the root's own sequence");
    let (_, text) = openssl(&["crl", "-inform", "DER", "-in", root_crl.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains(&nca_serial.to_uppercase()) && text.contains("CA Compromise"), "{text}");
    let (v, text) = verify_with(&c, &leaf, &[&root_crl, &nca], &["-crl_check_all"]);
    assert!(!v && text.contains("certificate revoked"), "{text}");

    // An offline root key: a clear message, nothing published.
    let key = c.dir.join("private/root.key.pem");
    std::fs::rename(&key, c.dir.join("root.key.offline")).unwrap();
    let out = ca(&c.dir, &["crl", "publish", "--root"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("offline") && stderr.contains("ca crl publish --root"), "{stderr}");
    assert_eq!(crl_number(&root_crl), published[0]["number"].as_u64().unwrap());
}

#[test]
fn chains_pass_openssl_explicit_policy_checks() {
    for ca_policies in ["end-entity", "any-policy"] {
        let c = init_with(0, &["--ca-policies", ca_policies]);
        let text = extension(c.dir.join("certs/nca.pem").to_str().unwrap(), "certificatePolicies");
        assert_eq!(text.contains("X509v3 Any Policy"), ca_policies == "any-policy", "{text}");
        let (_, leaf) = issue(&c, "policy");
        for policy in ["1.2.398.3.3.2.3", "1.2.398.3.3.2.4"] {
            let (v, text) = verify_with(&c, &leaf, &[], &["-policy", policy, "-explicit_policy"]);
            // The SIGN leaf carries .3: the chain is valid for it and not for the AUTH policy .4.
            assert_eq!(v, policy.ends_with(".3"), "{ca_policies}, {policy}: {text}");
        }
    }
}
