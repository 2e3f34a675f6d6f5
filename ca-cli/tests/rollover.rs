//! Issuing-CA rollover through the `ca` command and the real openssl: certificates of both
//! generations verify under the root, the old generation stays manageable (show, list, revoke),
//! its CRLs keep being published with their own numbers until its certificates have expired,
//! and a revocation made after the rollover reaches relying parties through them.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::{http, issue_individual, openssl, openssl_csr, CaRunner, Server, SoftHsm, IIN, MODULE};

const TOKEN_PIN: &str = "1234-5678";

struct Ca {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    run: CaRunner,
}

impl Ca {
    fn init() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().to_owned();
        let run = CaRunner::new(&work.join("ca"));
        run.ok(&["init", "--root-key", "p256", "--issuing-key", "p256", "--base-url", "http://pki.test.kz"]);
        Self { _tmp: tmp, work, run }
    }

    /// A CA whose keys are on a SoftHSM2 token.
    fn init_on_token(softhsm: &SoftHsm) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().to_owned();
        let run = CaRunner::new(&work.join("ca"))
            .env("SOFTHSM2_CONF", &softhsm.conf)
            .env("CA_HSM_PIN", TOKEN_PIN)
            .env("CA_PASSPHRASE", "");
        let args = ["init", "--root-key", "p256", "--issuing-key", "p256", "--base-url", "http://pki.test.kz"];
        run.ok(&[&args[..], &["--hsm-module", MODULE, "--hsm-token", "ca-hsm"]].concat());
        Self { _tmp: tmp, work, run }
    }

    fn cert(&self, name: &str) -> PathBuf {
        self.run.dir.join("certs").join(format!("{name}.pem"))
    }

    /// Issue an individual SIGN certificate from an openssl CSR: (serial, certificate path).
    fn issue(&self, name: &str) -> (String, String) {
        let csr = openssl_csr(&self.work, name, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        let r = self.run.json(&issue_individual("individual-sign", IIN, &["--csr", csr.to_str().unwrap()]));
        (r["serial"].as_str().unwrap().to_owned(), r["certificate"].as_str().unwrap().to_owned())
    }

    /// `openssl verify` of `leaf` with the root trusted and `issuing` as the intermediate,
    /// optionally against a CRL of that issuing CA.
    fn verify(&self, leaf: &str, issuing: &str, crl: Option<&Path>) -> (bool, String) {
        let root = self.cert("root");
        let issuing = self.cert(issuing);
        let mut args = vec!["verify", "-CAfile", root.to_str().unwrap(), "-untrusted", issuing.to_str().unwrap()];
        let crl_pem;
        if let Some(crl) = crl {
            crl_pem = self.work.join("check.crl.pem");
            let (ok, text) =
                openssl(&["crl", "-inform", "DER", "-in", crl.to_str().unwrap(), "-out", crl_pem.to_str().unwrap()]);
            assert!(ok, "{text}");
            args.extend(["-crl_check", "-CRLfile", crl_pem.to_str().unwrap()]);
        }
        args.push(leaf);
        openssl(&args)
    }

    fn crl(&self, name: &str) -> PathBuf {
        self.run.dir.join("publish/crl").join(format!("{name}.crl"))
    }

    /// `openssl crl -verify` of a published CRL against the certificate of `ca`: its number.
    fn crl_number(&self, file: &str, ca: &str) -> u64 {
        let (ok, text) = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            self.crl(file).to_str().unwrap(),
            "-CAfile",
            self.cert(ca).to_str().unwrap(),
            "-noout",
            "-crlnumber",
        ]);
        assert!(ok && text.contains("verify OK"), "{file} against {ca}: {text}");
        let hex = text.lines().find_map(|l| l.strip_prefix("crlNumber=0x")).expect("crlNumber");
        u64::from_str_radix(hex.trim(), 16).unwrap()
    }
}

#[test]
fn both_generations_verify_under_the_root_and_stay_manageable() {
    let ca = Ca::init();
    let (old_serial, old_cert) = ca.issue("before");
    // `ca init` made the audit key; a checkpoint now names the old generation.
    ca.run.ok(&["audit", "checkpoint"]);

    let out = ca.run.ok(&["rollover", "issuing"]);
    // The journal and its checkpoint (made under the old generation's name) still verify.
    let v = ca.run.json(&["audit", "verify"]);
    assert!(v["intact"] == true && v["checkpoint"]["seq"].is_i64(), "{v}");
    assert!(out.contains("New issuing CA nca-2"), "{out}");
    let config = std::fs::read_to_string(ca.run.dir.join("ca.toml")).unwrap();
    assert!(config.contains("[[retired]]\nname = \"nca\""), "{config}");
    assert!(ca.cert("nca-2").exists() && ca.run.dir.join("private/nca-2.key.pem").exists());

    let (new_serial, new_cert) = ca.issue("after");
    // Each certificate chains to the root through the generation that signed it, and only it.
    for (leaf, issuing, other) in [(&old_cert, "nca", "nca-2"), (&new_cert, "nca-2", "nca")] {
        let (ok, text) = ca.verify(leaf, issuing, None);
        assert!(ok, "{leaf} under {issuing}: {text}");
        let (ok, text) = ca.verify(leaf, other, None);
        assert!(!ok, "{leaf} must not verify under {other}: {text}");
    }
    let (ok, text) =
        openssl(&["x509", "-in", &new_cert, "-noout", "-ext", "authorityInfoAccess,crlDistributionPoints"]);
    assert!(ok && text.contains("/ca/nca-2.cer") && text.contains("/crl/nca-2"), "{text}");

    // show, list and revoke work for both.
    assert_eq!(ca.run.json(&["show", &old_serial])["issuer"], "nca");
    assert_eq!(ca.run.json(&["show", &new_serial])["issuer"], "nca-2");
    let listed = ca.run.json(&["list", "--issuer", "nca"]);
    assert!(listed.as_array().unwrap().iter().any(|r| r["serial"] == old_serial.as_str()), "{listed}");
    let listed = ca.run.json(&["list", "--issuer", "nca-2"]);
    let serials: Vec<_> = listed.as_array().unwrap().iter().map(|r| r["serial"].as_str().unwrap()).collect();
    assert_eq!(serials, [new_serial.as_str()]);

    // A revocation of an old-generation certificate after the rollover: the old CA's own CRL
    // (its own number sequence) lists it; the new CA's does not.
    ca.run.ok(&["revoke", &old_serial, "--reason", "keyCompromise"]);
    let published = ca.run.json(&["crl", "publish"]);
    let files: Vec<_> = published.as_array().unwrap().iter().map(|p| p["file"].as_str().unwrap().to_owned()).collect();
    assert!(
        files.iter().any(|f| f.ends_with("/nca.crl")) && files.iter().any(|f| f.ends_with("/nca-2.crl")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.ends_with("/nca_d.crl")) && files.iter().any(|f| f.ends_with("/nca-2_d.crl")));
    assert_eq!(ca.crl_number("nca-2", "nca-2"), 1, "the new generation numbers its CRLs from 1");
    assert!(ca.crl_number("nca", "nca") >= 1);
    let (ok, text) = ca.verify(&old_cert, "nca", Some(&ca.crl("nca")));
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = ca.verify(&new_cert, "nca-2", Some(&ca.crl("nca-2")));
    assert!(ok, "{text}");

    // A second rollover: nca-3; both earlier generations are retired.
    let out = ca.run.json(&["rollover", "issuing"]);
    assert_eq!(out["issuing"], "nca-3");
    assert_eq!(out["retired"], "nca-2");
}

#[test]
fn a_retired_generation_stops_publishing_once_its_certificates_expired() {
    let ca = Ca::init();
    ca.issue("before");
    ca.run.ok(&["rollover", "issuing"]);
    ca.run.ok(&["crl", "publish", "--which", "full"]);
    let before = ca.crl_number("nca", "nca");
    ca.run.ok(&["crl", "publish", "--which", "full"]);
    assert_eq!(ca.crl_number("nca", "nca"), before + 1, "published while its certificates are valid");

    // Its last certificate expired (until in the past): no more CRLs for it, the new one goes on.
    let path = ca.run.dir.join("ca.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let until = config.lines().find(|l| l.starts_with("until = ")).expect("until").to_owned();
    std::fs::write(&path, config.replace(&until, "until = \"2020-01-01T00:00:00Z\"")).unwrap();
    let published = ca.run.json(&["crl", "publish", "--which", "full"]);
    let files: Vec<_> = published.as_array().unwrap().iter().map(|p| p["file"].as_str().unwrap().to_owned()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("/nca-2.crl"), "{files:?}");
    assert_eq!(ca.crl_number("nca", "nca"), before + 1);
}

#[test]
fn rollover_refuses_a_ca_that_would_not_outlive_its_certificates() {
    let ca = Ca::init();
    let out = ca.run.run(&["rollover", "issuing", "--validity-days", "365"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not longer than the 365 days"), "{err}");
    let out = ca.run.run(&["rollover", "issuing", "--validity-days", "40000"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the root CA's certificate expires"), "{err}");
    // Nothing changed.
    let config = std::fs::read_to_string(ca.run.dir.join("ca.toml")).unwrap();
    assert!(!config.contains("[[retired]]"));
    assert!(!ca.cert("nca-2").exists() && !ca.run.dir.join("private/nca-2.key.pem").exists());
}

#[test]
fn ocsp_answers_for_each_generation_with_its_own_responder() {
    let ca = Ca::init();
    ca.run.ok(&["ocsp", "init", "--key-algorithm", "p256"]);
    let (old_serial, old_cert) = ca.issue("before");
    ca.run.ok(&["rollover", "issuing"]);
    // The old responder now belongs to the retired generation; the new one gets its own.
    assert!(ca.cert("ocsp-nca").exists() && ca.run.dir.join("private/ocsp-nca.key.pem").exists());
    assert!(!ca.cert("ocsp").exists() && !ca.run.dir.join("private/ocsp.key.pem").exists());
    ca.run.ok(&["ocsp", "init", "--key-algorithm", "p256"]);
    let (_, new_cert) = ca.issue("after");
    let out = ca.run.run(&["ocsp", "renew", "--ca", "nca-9"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("generations: nca-2, nca"), "{out:?}");
    ca.run.ok(&["ocsp", "renew", "--ca", "nca", "--validity-days", "30"]);
    ca.run.ok(&["revoke", &old_serial, "--reason", "superseded"]);

    let (server, port) = ca.run.serve();
    let _server = Server(server);
    let bundle = ca.work.join("bundle.pem");
    let text: String = ["root", "nca", "nca-2"].iter().map(|n| std::fs::read_to_string(ca.cert(n)).unwrap()).collect();
    std::fs::write(&bundle, text).unwrap();
    let ask = |cert: &str, issuing: &str| {
        let (ok, text) = openssl(&[
            "ocsp",
            "-issuer",
            ca.cert(issuing).to_str().unwrap(),
            "-cert",
            cert,
            "-url",
            &format!("http://127.0.0.1:{port}/ocsp"),
            "-CAfile",
            bundle.to_str().unwrap(),
            "-resp_text",
        ]);
        assert!(ok && text.contains("Response verify OK"), "{cert} of {issuing}: {text}");
        text
    };
    let old = ask(&old_cert, "nca");
    assert!(old.contains(": revoked") && old.contains("Reason: superseded"), "{old}");
    let new = ask(&new_cert, "nca-2");
    assert!(new.contains(": good"), "{new}");
    // Each answer is signed by the responder its own CA certified (the responder certificate's
    // authority key identifier is that CA's key identifier).
    let ski = |ca_name: &str| {
        let (ok, text) =
            openssl(&["x509", "-in", ca.cert(ca_name).to_str().unwrap(), "-noout", "-ext", "subjectKeyIdentifier"]);
        assert!(ok, "{text}");
        text.lines().nth(1).unwrap().trim().to_owned()
    };
    let (old_ski, new_ski) = (ski("nca"), ski("nca-2"));
    assert!(old.contains(&old_ski) && !old.contains(&new_ski), "{old}");
    assert!(new.contains(&new_ski) && !new.contains(&old_ski), "{new}");
    // A CertID that mixes the generations (new certificate's issuer name, old CA's key) is no
    // responder's: unauthorized, not an answer from a responder of the wrong CA.
    let (_, crossed) = openssl(&[
        "ocsp",
        "-issuer",
        ca.cert("nca").to_str().unwrap(),
        "-cert",
        &new_cert,
        "-url",
        &format!("http://127.0.0.1:{port}/ocsp"),
        "-CAfile",
        bundle.to_str().unwrap(),
    ]);
    assert!(crossed.contains("unauthorized"), "{crossed}");

    // The verification API knows both generations as this CA's: the store says the old
    // certificate is revoked, the new one is good.
    let verify = |cert: &str| {
        let pem = std::fs::read_to_string(cert).unwrap();
        let (_, der) = der::pem::decode_vec(pem.as_bytes()).unwrap();
        let body = serde_json::json!({ "certificate": base64::engine::general_purpose::STANDARD.encode(der) });
        let (status, text) = http(port, "POST", "/api/v1/x509/verify", None, &body.to_string());
        assert_eq!(status, 200, "{text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let v = verify(&old_cert);
    assert_eq!(v["chain_trusted"], true, "{v:#}");
    assert_eq!(v["revocation"]["source"], "store", "{v:#}");
    assert_eq!(v["revocation"]["state"], "revoked", "{v:#}");
    let v = verify(&new_cert);
    assert_eq!(v["valid"], true, "{v:#}");
    assert_eq!(v["revocation"]["source"], "store", "{v:#}");
}

#[test]
fn a_ca_with_keys_on_a_token_rolls_over_on_the_token() {
    let softhsm = SoftHsm::new();
    softhsm.init_token("ca-hsm", TOKEN_PIN);
    let ca = Ca::init_on_token(&softhsm);
    let (_, old_cert) = ca.issue("before");
    ca.run.ok(&["rollover", "issuing"]);
    assert!(!ca.run.dir.join("private/nca-2.key.pem").exists(), "no key file: the new key is on the token too");
    let config = std::fs::read_to_string(ca.run.dir.join("ca.toml")).unwrap();
    let issuing = &config[config.find("[issuing]").unwrap()..];
    assert!(issuing.contains("name = \"nca-2\"") && issuing.contains("type = \"pkcs11\""), "{config}");
    let list = softhsm.tool("ca-hsm", TOKEN_PIN, &["--list-objects", "--type", "privkey"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.matches("Private Key Object").count(), 4, "root, nca, nca-2 and the audit key: {text}");
    assert!(text.contains("nca-2 CA key"), "{text}");

    let (_, new_cert) = ca.issue("after");
    for (leaf, issuing) in [(&old_cert, "nca"), (&new_cert, "nca-2")] {
        let (ok, text) = ca.verify(leaf, issuing, None);
        assert!(ok, "{leaf} under {issuing}: {text}");
    }
    // Both generations' CRLs are signed on the token.
    ca.run.ok(&["crl", "publish"]);
    assert!(ca.crl_number("nca", "nca") >= 1 && ca.crl_number("nca-2", "nca-2") == 1);
}

#[test]
fn a_rollover_killed_before_ca_toml_is_replaced_is_finished_by_running_it_again() {
    let ca = Ca::init();
    ca.run.ok(&["ocsp", "init", "--key-algorithm", "p256"]);
    let (_, old_cert) = ca.issue("before");
    let config_before = std::fs::read_to_string(ca.run.dir.join("ca.toml")).unwrap();
    let out = ca.run.command(&["rollover", "issuing"]).env("CA_FAILPOINT", "rollover.prepared").output().unwrap();
    assert_eq!(out.status.code(), Some(86), "{out:?}");
    // Killed: ca.toml still names nca as the issuing CA, and issuance goes on under it.
    assert_eq!(std::fs::read_to_string(ca.run.dir.join("ca.toml")).unwrap(), config_before);
    let (_, during) = ca.issue("during");
    assert!(ca.verify(&during, "nca", None).0);

    // Run again: a new generation (the half-made one's name is not reused), the old responder
    // found where the first run left it.
    let out = ca.run.json(&["rollover", "issuing"]);
    assert_eq!(out["issuing"], "nca-3", "{out}");
    let config = std::fs::read_to_string(ca.run.dir.join("ca.toml")).unwrap();
    assert!(config.contains("[[retired]]\nname = \"nca\""), "{config}");
    ca.run.ok(&["ocsp", "init", "--key-algorithm", "p256"]);
    let (server, port) = ca.run.serve();
    let _server = Server(server);
    let bundle = ca.work.join("bundle.pem");
    let text: String = ["root", "nca"].iter().map(|n| std::fs::read_to_string(ca.cert(n)).unwrap()).collect();
    std::fs::write(&bundle, text).unwrap();
    let (ok, text) = openssl(&[
        "ocsp",
        "-issuer",
        ca.cert("nca").to_str().unwrap(),
        "-cert",
        &old_cert,
        "-url",
        &format!("http://127.0.0.1:{port}/ocsp"),
        "-CAfile",
        bundle.to_str().unwrap(),
    ]);
    assert!(ok && text.contains("Response verify OK") && text.contains(": good"), "{text}");
}

#[test]
fn a_new_root_is_reached_through_its_cross_certificate_and_directly() {
    let ca = Ca::init();
    let (_, old_cert) = ca.issue("before");
    let out = ca.run.json(&["rollover", "root"]);
    assert_eq!(out["root"], "root-2", "{out}");
    // Until an issuing CA is under the new root, key stores carry the old root in their chain.
    assert_eq!(p12_chain(&ca), ["nca", "root"]);
    let out = ca.run.json(&["rollover", "issuing"]);
    assert_eq!(out["issuing"], "nca-2", "{out}");
    assert_eq!(p12_chain(&ca), ["nca-2", "root-2", "root-2-cross"]);
    let (_, new_cert) = ca.issue("after");
    let path = |name: &str| ca.cert(name).to_str().unwrap().to_owned();
    let verify = |args: &[&str], leaf: &str| {
        let mut all = vec!["verify"];
        all.extend_from_slice(args);
        all.push(leaf);
        openssl(&all)
    };
    // A relying party that trusts only the old root reaches the new hierarchy by the cross
    // certificate; one that trusts the new root, directly; without the cross certificate the
    // old root alone does not reach it.
    let (old_root, new_root, cross, nca, nca2) =
        (path("root"), path("root-2"), path("root-2-cross"), path("nca"), path("nca-2"));
    let (ok, text) = verify(&["-CAfile", &old_root, "-untrusted", &cross, "-untrusted", &nca2], &new_cert);
    assert!(ok, "{text}");
    let (ok, text) = verify(&["-CAfile", &new_root, "-untrusted", &nca2], &new_cert);
    assert!(ok, "{text}");
    let (ok, text) = verify(&["-CAfile", &old_root, "-untrusted", &nca2], &new_cert);
    assert!(!ok, "{text}");
    // The old hierarchy goes on under the old root.
    let (ok, text) = verify(&["-CAfile", &old_root, "-untrusted", &nca], &old_cert);
    assert!(ok, "{text}");
    let (ok, text) = openssl(&["x509", "-in", &nca2, "-noout", "-ext", "crlDistributionPoints,authorityInfoAccess"]);
    assert!(ok && text.contains("/crl/root-2.crl") && text.contains("/ca/root-2.cer"), "{text}");
    let (ok, text) = openssl(&["x509", "-in", &cross, "-noout", "-text"]);
    assert!(ok && text.contains("CA:TRUE") && !text.contains("pathlen") && text.contains("/crl/root.crl"), "{text}");

    // Both roots publish their CRLs, each its own numbers; revoking the cross certificate lists
    // it on the old root's CRL.
    let cross_serial = out_serial(&cross);
    ca.run.ok(&["revoke", &cross_serial, "--reason", "superseded"]);
    let published = ca.run.json(&["crl", "publish", "--root"]);
    assert_eq!(published.as_array().unwrap().len(), 2, "{published}");
    ca.crl_number("root-2", "root-2");
    ca.crl_number("root", "root");
    let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", ca.crl("root").to_str().unwrap(), "-noout", "-text"]);
    assert!(ok && text.to_uppercase().contains(&cross_serial.to_uppercase()), "{text}");
}

/// The serial (hex) of a PEM certificate.
fn out_serial(pem: &str) -> String {
    let (ok, text) = openssl(&["x509", "-in", pem, "-noout", "-serial"]);
    assert!(ok, "{text}");
    text.trim().trim_start_matches("serial=").to_lowercase()
}

/// The CA certificates in the PKCS#12 key store of a newly issued certificate, by the names of
/// their files under `certs/`.
fn p12_chain(ca: &Ca) -> Vec<String> {
    let r = ca.run.json(&issue_individual("individual-auth", IIN, &["--generate-key", "--key-algorithm", "p256"]));
    let p12 = r["pkcs12"].as_str().expect("a key store").to_owned();
    let password = format!("pass:{}", common::P12_PASSWORD);
    let (ok, text) = openssl(&["pkcs12", "-in", &p12, "-passin", &password, "-nokeys", "-cacerts"]);
    assert!(ok, "{text}");
    let der_of = |pem: &str| der::pem::decode_vec(pem.as_bytes()).map(|(_, d)| d).unwrap();
    let blocks: Vec<Vec<u8>> = text
        .split_inclusive("-----END CERTIFICATE-----")
        .filter_map(|b| b.find("-----BEGIN CERTIFICATE-----").map(|i| der_of(&b[i..])))
        .collect();
    let names = ["nca", "nca-2", "root", "root-2", "root-2-cross"];
    blocks
        .iter()
        .map(|d| {
            let name = names.iter().find(|n| std::fs::read_to_string(ca.cert(n)).is_ok_and(|p| der_of(&p) == *d));
            name.expect("a CA certificate of this directory").to_string()
        })
        .collect()
}
