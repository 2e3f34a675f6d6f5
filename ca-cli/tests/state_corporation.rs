//! A State Corporation (ЦОН) counter from the command line: consent missing → refused and
//! nothing registered; an incomplete package → a numbered receipt of refusal (text and PDF,
//! read back by `pdftotext`); a complete one with a representative → a receipt of acceptance;
//! a CA operator cannot confirm it, the State Corporation operator does (openssl-made CMS);
//! `ca worker` issues it for the applicant's own keys; `openssl verify` passes; the receipts are
//! in the maildir.

mod common;

use common::{iin_where, openssl, openssl_csr, registry_csv, sign_statement, staff, CaRunner};

const NO_CONSENT: &str = "Отказано в приеме заявления: отсутствует письменное согласие услугополучателя на \
     использование сведений, составляющих охраняемую законом тайну, содержащихся в информационных системах";

#[test]
fn a_state_corporation_counter_from_consent_to_an_issued_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let work = tmp.path().to_path_buf();
    let ca = CaRunner::new(&dir);
    ca.ok(&["init", "--root-key", "p256", "--issuing-key", "p256"]);
    ca.ok(&["registry", "import", registry_csv().to_str().unwrap()]);
    let applicant = iin_where(common::eligible);
    let representative = iin_where(|f| common::eligible(f) && f[1] != applicant);
    let con_iin = iin_where(|f| common::eligible(f) && f[1] != applicant && f[1] != representative);
    let ca_iin =
        iin_where(|f| common::eligible(f) && ![&applicant, &representative, &con_iin].contains(&&f[1].to_owned()));
    let con = staff(&ca, &work, "individual-sign", &con_iin, "con", "state-corporation-operator");
    let provider = staff(&ca, &work, "individual-sign", &ca_iin, "provider", "ca-operator");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let (auth, sign) = (openssl_csr(&work, "auth", &ec), openssl_csr(&work, "sign", &ec));
    let base = [
        "--actor",
        "con-operator-1",
        "application",
        "new",
        "--kind",
        "new-individual",
        "--iin",
        &applicant,
        "--channel",
        "state-corporation",
        "--csr-auth",
        auth.to_str().unwrap(),
        "--csr-sign",
        sign.to_str().unwrap(),
        "--document",
        "identity-document",
    ];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [base, extra].concat()
    }

    // No consent: exit 8 with the document's wording, nothing registered.
    let out = ca.run(&with(&base, &["--document", "application-form"]));
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains(NO_CONSENT), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ca.json(&["application", "list"]), serde_json::json!([]));

    // The consent, but no application form: a receipt of refusal, still no application.
    let scan = work.join("consent-scan.pdf");
    std::fs::write(&scan, b"scanned consent").unwrap();
    let consent = ["--consent", "--consent-scan", scan.to_str().unwrap()];
    let out = ca.run(&with(&base, &consent));
    assert_eq!(out.status.code(), Some(8));
    let printed = String::from_utf8_lossy(&out.stdout);
    let year = printed.split("РАСПИСКА № R-").nth(1).map(|r| r[..4].to_owned()).expect("a numbered receipt");
    let refusal = format!("R-{year}-000001");
    assert!(printed.contains(&format!("РАСПИСКА № {refusal}\nоб отказе в приеме документов")), "{printed}");
    assert!(
        printed.contains("Отсутствуют документы:\n  1) заявление на выдачу регистрационных свидетельств"),
        "{printed}"
    );
    assert_eq!(ca.json(&["application", "list"]), serde_json::json!([]));

    // Printed again as text and as PDF; pdftotext reads the Cyrillic back.
    assert_eq!(ca.ok(&["application", "receipt", &refusal]), printed);
    let pdf = work.join("refusal.pdf");
    ca.ok(&["application", "receipt", &refusal, "--pdf", pdf.to_str().unwrap()]);
    let text = std::process::Command::new("pdftotext").args([pdf.to_str().unwrap(), "-"]).output().unwrap();
    assert!(text.status.success(), "pdftotext (poppler-utils, scripts/setup.sh) reads the receipt");
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(&format!("РАСПИСКА № {refusal}")) && text.contains("об отказе в приеме документов"),
        "{text}"
    );
    assert!(text.contains("заявление на выдачу регистрационных свидетельств"), "{text}");
    let out = ca.run(&["application", "receipt", "R-2020-999999"]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));

    // Complete, with a representative by power of attorney: registered, receipt of acceptance.
    let by_proxy = [
        "--document",
        "application-form",
        "--document",
        "representative-identity",
        "--document",
        "power-of-attorney",
        "--representative-iin",
        &representative,
        "--representative-name",
        "Ахметов Асхат Серикович",
        "--poa-number",
        "НД-117",
        "--poa-date",
        "2026-01-05",
        "--poa-issuer",
        "нотариус г. Астаны",
    ];
    let a = ca.json(&with(&base, &[&consent[..], &by_proxy[..]].concat()));
    let number = a["application"]["number"].as_str().unwrap().to_owned();
    assert_eq!(
        (a["application"]["channel"].as_str(), a["application"]["state"].as_str()),
        (Some("state-corporation"), Some("awaiting-operator"))
    );
    let paperwork = &a["application"]["paperwork"];
    let acceptance = format!("R-{year}-000002");
    assert_eq!(paperwork["receipt"], acceptance.as_str(), "{a}");
    assert_eq!(paperwork["representative"]["iin"], representative.as_str());
    assert_eq!(paperwork["consent"]["taken_by"], "con-operator-1");
    let scan_sha = openssl(&["dgst", "-sha256", "-r", scan.to_str().unwrap()]).1;
    assert_eq!(paperwork["consent"]["scan_sha256"], &scan_sha[..64]);
    assert_eq!(
        a["events"][0]["details"]["state_corporation"]["representative"]["power_of_attorney"]["number"],
        "НД-117"
    );
    let shown = ca.ok(&["application", "show", &number]);
    assert!(
        shown.contains("(state-corporation)") && shown.contains(&format!("receipt of acceptance {acceptance}")),
        "{shown}"
    );
    let receipt = ca.ok(&["application", "receipt", &acceptance]);
    assert!(
        receipt.contains(&format!("Номер заявки: {number}")) && receipt.contains("по доверенности № НД-117"),
        "{receipt}"
    );

    // The service provider's operator may not confirm it; the State Corporation's does.
    let sig = sign_statement(&ca, &work, &number, &provider.key, &provider.cert);
    let out =
        ca.run(&["--actor", "operator-1", "application", "confirm", &number, "--signature", sig.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(8));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("state-corporation-operator"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ca.json(&["application", "show", &number])["application"]["state"], "awaiting-operator");
    let sig = sign_statement(&ca, &work, &number, &con.key, &con.cert);
    let confirmed = ca.json(&[
        "--actor",
        "con-operator-1",
        "application",
        "confirm",
        &number,
        "--signature",
        sig.to_str().unwrap(),
    ]);
    assert_eq!(confirmed["application"]["state"], "confirmed", "{confirmed}");
    let confirm = confirmed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["step"] == "operator-verify-confirm")
        .unwrap()
        .clone();
    assert_eq!(confirm["signer_serial"], con.serial.as_str());

    // The worker issues it for the applicant's own keys (no key generated here).
    let round = ca.json(&["worker", "--once", "--no-crl"]);
    assert_eq!(round["issued"], serde_json::json!([number]), "{round}");
    let issued = ca.json(&["application", "show", &number]);
    assert_eq!(issued["application"]["state"], "issued");
    let issue = issued["events"].as_array().unwrap().iter().find(|e| e["step"] == "issue").unwrap().clone();
    assert_eq!(issue["budget"], serde_json::json!({ "unit": "working-days", "value": 1 }), "{issue}");
    let bundle = ca.chain_bundle(&work.join("chain.pem"));
    for serial in issued["application"]["serials"].as_array().unwrap() {
        let shown = ca.json(&["show", serial.as_str().unwrap(), "--pem"]);
        let leaf = work.join(format!("{}.pem", serial.as_str().unwrap()));
        std::fs::write(&leaf, shown["pem"].as_str().unwrap()).unwrap();
        let (ok, out) = openssl(&["verify", "-CAfile", bundle.to_str().unwrap(), leaf.to_str().unwrap()]);
        assert!(ok && out.contains(": OK"), "{out}");
    }
    // Both receipts reached the applicant's mailbox; the SLA report shows the channel.
    let mail: Vec<String> = std::fs::read_dir(dir.join("mail/new"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    assert!(mail.len() >= 4, "two receipts, the application form, the issuance: {}", mail.len());
    let report = ca.json(&["report", "sla"]);
    let rows: Vec<&serde_json::Value> =
        report.as_array().unwrap().iter().filter(|r| r["application"] == number.as_str()).collect();
    assert!(rows.iter().all(|r| r["channel"] == "state-corporation"), "{report}");
    ca.ok(&["audit", "verify"]);
}
