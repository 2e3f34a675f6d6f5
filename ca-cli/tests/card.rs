//! Card personalization at the counter on a SoftHSM2 token: keys generated on the card and
//! non-extractable, both certificates and the chain written with matching IDs, a signature made
//! on the card verifies with the recorded certificate, OpenSSL accepts what is read back, and a
//! wrong PIN issues nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{openssl, CaRunner, SoftHsm, IIN, MODULE};

const CARD_PIN: &str = "2468";

struct Setup {
    softhsm: SoftHsm,
    dir: PathBuf,
}

fn setup() -> Setup {
    let softhsm = SoftHsm::new();
    softhsm.init_token("ID-CARD", CARD_PIN);
    let s = Setup { dir: softhsm.tmp.path().join("ca"), softhsm };
    ok(&s, CARD_PIN, &["init", "--root-key", "p256", "--issuing-key", "rsa2048"]);
    s
}

fn runner(s: &Setup, pin: &str) -> CaRunner {
    CaRunner::new(&s.dir).env("SOFTHSM2_CONF", &s.softhsm.conf).env("CA_CARD_PIN", pin)
}

fn ca(s: &Setup, pin: &str, args: &[&str]) -> Output {
    runner(s, pin).run(args)
}

fn ok(s: &Setup, pin: &str, args: &[&str]) -> String {
    runner(s, pin).ok(args)
}

fn tool(s: &Setup, args: &[&str]) -> Output {
    s.softhsm.tool("ID-CARD", CARD_PIN, args)
}

fn personalize(s: &Setup, pin: &str) -> Output {
    ca(
        s,
        pin,
        &[
            "--json",
            "card",
            "personalize",
            "--module",
            MODULE,
            "--token",
            "ID-CARD",
            "--iin",
            IIN,
            "--surname",
            "Тестов",
            "--given-name",
            "Тест",
            "--patronymic",
            "Тестович",
        ],
    )
}

#[test]
fn personalize_a_card_and_check_it_with_pkcs11_tool_and_openssl() {
    let s = setup();
    let work: &Path = s.dir.parent().unwrap();

    // The reader's token is listed.
    let tokens = ok(&s, CARD_PIN, &["card", "tokens", "--module", MODULE]);
    assert!(tokens.contains("ID-CARD") && tokens.contains("SoftHSM"), "{tokens}");

    // A wrong PIN: exit 5, nothing issued, nothing on the card.
    let before = ok(&s, CARD_PIN, &["--json", "list"]);
    let out = personalize(&s, "1111");
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("1111"));
    assert_eq!(ok(&s, CARD_PIN, &["--json", "list"]), before);

    let out = personalize(&s, CARD_PIN);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let certs = report["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0]["profile"], "individual-auth");
    assert_eq!(certs[1]["profile"], "individual-sign");

    // pkcs11-tool: two private keys, two public keys, four certificates (own two + chain).
    let listing = String::from_utf8_lossy(&tool(&s, &["--list-objects"]).stdout).into_owned();
    assert_eq!(listing.matches("Private Key Object").count(), 2, "{listing}");
    assert_eq!(listing.matches("Public Key Object").count(), 2, "{listing}");
    assert_eq!(listing.matches("Certificate Object").count(), 4, "{listing}");

    // Keys and certificates share their ID (the SKI); private keys never left the card.
    let inspected: serde_json::Value = serde_json::from_str(&ok(
        &s,
        CARD_PIN,
        &["--json", "card", "inspect", "--module", MODULE, "--token", "ID-CARD"],
    ))
    .unwrap();
    let keys = inspected["keys"].as_array().unwrap();
    let own: Vec<&serde_json::Value> =
        inspected["certificates"].as_array().unwrap().iter().filter(|c| c["identity"]["iin"] == IIN).collect();
    assert_eq!(own.len(), 2);
    for c in &own {
        assert_eq!(c["status"], "issued");
        let id = c["id"].as_str().unwrap();
        let private =
            keys.iter().find(|k| k["id"] == id && k["private_key"].is_object()).expect("private key with the same ID");
        assert_eq!(private["private_key"]["extractable"], false);
        assert_eq!(private["private_key"]["never_extractable"], true);
        assert_eq!(private["private_key"]["decrypt"], false);
    }

    // A signature made on the card verifies with the certificate the CA recorded.
    let sign = own.iter().find(|c| c["identity"]["key_type"] == "SIGN").unwrap();
    let serial = sign["serial"].as_str().unwrap();
    let recorded = work.join("recorded.pem");
    std::fs::write(
        &recorded,
        ok(&s, CARD_PIN, &["show", serial, "--pem"])
            .split_once("-----BEGIN")
            .map(|(_, b)| format!("-----BEGIN{b}"))
            .unwrap(),
    )
    .unwrap();
    let data = work.join("data.txt");
    std::fs::write(&data, "заявление на подпись").unwrap();
    let sig = work.join("data.sig");
    let out = tool(
        &s,
        &[
            "--sign",
            "--id",
            sign["id"].as_str().unwrap(),
            "--mechanism",
            "SHA256-RSA-PKCS",
            "-i",
            data.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = work.join("pub.pem");
    let (made, text) =
        openssl(&["x509", "-in", recorded.to_str().unwrap(), "-pubkey", "-noout", "-out", public.to_str().unwrap()]);
    assert!(made, "{text}");
    let (v, text) = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        public.to_str().unwrap(),
        "-signature",
        sig.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    assert!(v && text.contains("Verified OK"), "{text}");

    // The certificates read back from the card chain to the CA in OpenSSL.
    let chain = runner(&s, CARD_PIN).chain_bundle(&work.join("chain.pem"));
    for c in &own {
        let der = work.join(format!("{}.der", c["id"].as_str().unwrap()));
        let out = tool(
            &s,
            &["--read-object", "--type", "cert", "--id", c["id"].as_str().unwrap(), "-o", der.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (v, text) =
            openssl(&["verify", "-CAfile", chain.to_str().unwrap(), "-inform", "DER", der.to_str().unwrap()]);
        if !v && text.contains("-inform") {
            // Older openssl verify cannot read DER: convert.
            let pem = work.join("card-cert.pem");
            openssl(&["x509", "-inform", "DER", "-in", der.to_str().unwrap(), "-out", pem.to_str().unwrap()]);
            let (v, text) = openssl(&["verify", "-CAfile", chain.to_str().unwrap(), pem.to_str().unwrap()]);
            assert!(v, "{text}");
        } else {
            assert!(v, "{text}");
        }
    }

    // Running it again changes nothing: same keys, same certificates, nothing new issued.
    let issued_before = ok(&s, CARD_PIN, &["--json", "list", "--iin", IIN]);
    let again = personalize(&s, CARD_PIN);
    assert!(again.status.success());
    assert_eq!(ok(&s, CARD_PIN, &["--json", "list", "--iin", IIN]), issued_before);
    let listing = String::from_utf8_lossy(&tool(&s, &["--list-objects"]).stdout).into_owned();
    assert_eq!(listing.matches("Private Key Object").count(), 2, "{listing}");
}

#[test]
fn the_counter_flow_personalizes_a_card_for_a_confirmed_application() {
    let s = setup();
    let ca_ = runner(&s, CARD_PIN);
    let work = s.dir.parent().unwrap();
    ca_.ok(&["registry", "import", common::registry_csv().to_str().unwrap()]);
    let holder = common::iin_where(common::eligible);
    let operator_iin = common::iin_where(|f| common::eligible(f) && f[1] != holder);
    let op = common::operator(&ca_, work, "individual-sign", &operator_iin, "op");

    // Registered at the counter, identity checked, confirmed with the operator's EDS.
    let a = ca_.json(&["application", "new", "--kind", "card", "--iin", &holder]);
    let number = a["application"]["number"].as_str().unwrap().to_owned();
    ca_.ok(&["--actor", "operator-1", "application", "verify", &number]);
    let sig = common::sign_statement(&ca_, work, &number, &op.key, &op.cert);
    ca_.ok(&["--actor", "operator-1", "application", "confirm", &number, "--signature", sig.to_str().unwrap()]);

    // The applicant mistypes the PIN: nothing issued, the application says why and waits.
    let before = ca_.ok(&["--json", "list", "--iin", &holder]);
    let out = runner(&s, "9999").run(&[
        "card",
        "personalize",
        "--module",
        MODULE,
        "--token",
        "ID-CARD",
        "--application",
        &number,
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ca_.ok(&["--json", "list", "--iin", &holder]), before);
    let shown = ca_.json(&["application", "show", &number]);
    assert_eq!(shown["application"]["state"], "confirmed");
    assert!(shown.to_string().contains("the card refused the PIN"), "{shown}");

    // The right PIN: keys on the card, both certificates issued and written, application issued.
    let report = ca_.json(&["card", "personalize", "--module", MODULE, "--token", "ID-CARD", "--application", &number]);
    assert_eq!(report["application"], number.as_str());
    assert_eq!(report["certificates"].as_array().unwrap().len(), 2);
    let shown = ca_.json(&["application", "show", &number]);
    assert_eq!(shown["application"]["state"], "issued");
    assert_eq!(ca_.json(&["list", "--iin", &holder]).as_array().unwrap().len(), 2);
    let listing = String::from_utf8_lossy(&tool(&s, &["--list-objects"]).stdout).into_owned();
    assert_eq!(listing.matches("Private Key Object").count(), 2, "{listing}");

    // Running it again for an issued application refuses (exit 6) and changes nothing.
    let again = ca_.run(&["card", "personalize", "--module", MODULE, "--token", "ID-CARD", "--application", &number]);
    assert_eq!(again.status.code(), Some(6), "{}", String::from_utf8_lossy(&again.stderr));
    ca_.ok(&["audit", "verify"]);
}
