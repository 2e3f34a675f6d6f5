//! The RA commands end to end: registry import (with line errors) and show, applications with
//! refusals carrying the exact messages and exit code 8, idempotent submission, verification,
//! operator refusal, signed steps verified as CMS (openssl-made signatures accepted; AUTH keys,
//! revoked signers and signatures over another statement refused), the SLA report, the outbox,
//! and the audit journal intact.

mod common;

use std::path::Path;
use std::process::Output;

use common::{iin_where, operator, registry_csv, sign_statement, sign_statement_with, CaRunner};

fn ca(dir: &Path, args: &[&str]) -> Output {
    CaRunner::new(dir).run(args)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    CaRunner::new(dir).ok(args)
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    CaRunner::new(dir).json(args)
}

#[test]
fn registry_and_applications_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    ok(&dir, &["init", "--root-key", "p256", "--issuing-key", "p256", "--base-url", "http://pki.test.kz"]);

    // A bad file: nothing imported, every bad line named.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "person,880101300010,Тестов,Тест,,1,0,1,0,N1,2020-01-01,,\nperson,123\nentity,x\n").unwrap();
    let out = ca(&dir, &["registry", "import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.csv: line 2:") && err.contains("bad.csv: line 3:"), "{err}");
    assert!(!err.contains("line 1:"), "{err}");

    let file = registry_csv();
    let counts = json(&dir, &["registry", "import", file.to_str().unwrap()]);
    assert_eq!(counts["persons_added"], 299);
    let again = json(&dir, &["registry", "import", file.to_str().unwrap()]);
    assert_eq!((again["persons_added"].as_u64(), again["persons_unchanged"].as_u64()), (Some(0), Some(299)));

    let deceased = iin_where(|f| f[5] == "9");
    assert_eq!(json(&dir, &["registry", "show", &deceased])["life_status"], 9);

    // Refusals: exit code 8, the exact message, stored on the application.
    let out = ca(&dir, &["application", "new", "--kind", "new-individual", "--iin", &deceased]);
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "Невозможно создать учетную запись по введенному ИИН. За разъяснениями необходимо обратиться в отдел документирования населения в ЦОН (код:9)"
    ));
    let excluded = iin_where(|f| f[6] == "5");
    let out = ca(&dir, &["application", "new", "--kind", "new-individual", "--iin", &excluded]);
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("в ЦОН (код: 5 - признак исключения ИИН)"));
    let listed = json(&dir, &["application", "list", "--state", "refused"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // A good application; submitting it twice returns the same one.
    let good = iin_where(|f| f[5] == "1" && f[6] == "0" && f[7] == "1" && f[8] == "0");
    let a = json(&dir, &["application", "new", "--kind", "new-individual", "--iin", &good]);
    let number = a["application"]["number"].as_str().unwrap().to_owned();
    assert_eq!(a["application"]["state"], "awaiting-operator");
    let b = json(&dir, &["application", "new", "--kind", "new-individual", "--iin", &good]);
    assert_eq!(b["application"]["number"], number.as_str());
    ok(&dir, &["--actor", "operator-1", "application", "verify", &number]);

    // A signature that is not CMS is refused; the application is unchanged.
    let sig = tmp.path().join("operator.cms");
    std::fs::write(&sig, b"not a signature").unwrap();
    let out = ca(&dir, &["application", "confirm", &number, "--signature", sig.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(8));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a CMS signature"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&dir, &["application", "show", &number])["application"]["state"], "verified");

    let refused =
        json(&dir, &["--actor", "operator-1", "application", "refuse", &number, "--reason", "documents do not match"]);
    assert_eq!(refused["application"]["refusal"]["message"], "Отказ оператора: documents do not match");
    let out = ca(&dir, &["application", "refuse", &number, "--reason", "again"]);
    assert_eq!(out.status.code(), Some(3));

    let sla = json(&dir, &["report", "sla"]);
    assert!(sla.as_array().unwrap().iter().any(|r| r["step"] == "operator-verify" && r["budget"] == "20 min"));
    // Every refusal and application form went to the applicant, the operator's with its text.
    let outbox = json(&dir, &["outbox", "list"]);
    let outbox = outbox.as_array().unwrap();
    assert!(outbox.iter().any(|m| m["body"].as_str().unwrap().contains("\nОтказ оператора: documents do not match\n")));
    assert!(outbox.iter().any(|m| m["body"].as_str().unwrap().contains("(код: 5 - признак исключения ИИН)")));
    assert_eq!(json(&dir, &["outbox", "send"])["sent"].as_u64(), Some(outbox.len() as u64));
    assert_eq!(ca(&dir, &["application", "show", "A-1"]).status.code(), Some(3));
    ok(&dir, &["audit", "verify"]);
}

#[test]
fn operator_confirms_with_an_openssl_cms_signature_and_the_certificates_are_issued() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let work = tmp.path().to_path_buf();
    ok(&dir, &["init", "--root-key", "p256", "--issuing-key", "p256"]);
    ok(&dir, &["registry", "import", registry_csv().to_str().unwrap()]);
    let good = iin_where(|f| f[5] == "1" && f[6] == "0" && f[7] == "1" && f[8] == "0");
    let operator_iin = iin_where(|f| f[5] == "1" && f[6] == "0" && f[7] == "1" && f[8] == "0" && f[1] != good);
    let op = operator(&CaRunner::new(&dir), &work, "individual-sign", &operator_iin, "op");
    let auth = operator(&CaRunner::new(&dir), &work, "individual-auth", &operator_iin, "opauth");
    let rev = operator(&CaRunner::new(&dir), &work, "individual-sign", &operator_iin, "oprevoked");
    ok(&dir, &["revoke", &rev.serial, "--reason", "keyCompromise"]);

    let a = json(&dir, &["application", "new", "--kind", "new-individual", "--iin", &good]);
    let number = a["application"]["number"].as_str().unwrap().to_owned();
    ok(&dir, &["--actor", "operator-1", "application", "verify", &number]);

    // "Process 10": an operator's signature over the application's statement that fails the
    // check (an AUTH key, a revoked certificate) refuses that application, stored.
    let mut taken = vec![good.clone(), operator_iin.clone()];
    for (key, cert, expect) in [(&auth.key, &auth.cert, "AUTH"), (&rev.key, &rev.cert, "revoked")] {
        let iin = iin_where(|f| {
            f[5] == "1" && f[6] == "0" && f[7] == "1" && f[8] == "0" && !taken.contains(&f[1].to_owned())
        });
        taken.push(iin.clone());
        let a = json(&dir, &["application", "new", "--kind", "new-individual", "--iin", &iin]);
        let n = a["application"]["number"].as_str().unwrap().to_owned();
        let sig = sign_statement(&CaRunner::new(&dir), &work, &n, key, cert);
        let out = ca(&dir, &["application", "confirm", &n, "--signature", sig.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(8), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains(expect), "{}", String::from_utf8_lossy(&out.stderr));
        let shown = json(&dir, &["application", "show", &n]);
        assert_eq!(shown["application"]["state"], "refused", "{shown}");
        assert_eq!(shown["application"]["refusal"]["code"], "signature.refused", "{shown}");
    }
    // A signature over another application's statement refuses only the request.
    let other = json(&dir, &["application", "new", "--kind", "new-individual", "--iin", &operator_iin]);
    let other_number = other["application"]["number"].as_str().unwrap().to_owned();
    ok(&dir, &["application", "verify", &other_number]);
    let wrong = sign_statement(&CaRunner::new(&dir), &work, &other_number, &op.key, &op.cert);
    let out = ca(&dir, &["application", "confirm", &number, "--signature", wrong.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("content"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&dir, &["application", "show", &number])["application"]["state"], "verified");

    // Without signed attributes (no signingTime: nothing tells a replay from a new request).
    let bare = sign_statement_with(&CaRunner::new(&dir), &work, &number, &op.key, &op.cert, &["-noattr"]);
    let out = ca(&dir, &["application", "confirm", &number, "--signature", bare.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(8), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no signed attributes"));
    assert_eq!(json(&dir, &["application", "show", &number])["application"]["state"], "verified");

    // The operator's own valid SIGN certificate with the CA-operator role: confirmed, issued.
    let sig = sign_statement(&CaRunner::new(&dir), &work, &number, &op.key, &op.cert);
    let used = work.join("used.cms");
    std::fs::copy(&sig, &used).unwrap();
    let confirmed =
        json(&dir, &["--actor", "operator-1", "application", "confirm", &number, "--signature", sig.to_str().unwrap()]);
    assert_eq!(confirmed["application"]["state"], "confirmed");
    // The same CMS again is a replay; a new signature is a harmless second confirmation.
    let out = ca(&dir, &["application", "confirm", &number, "--signature", used.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(8), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already used"), "{}", String::from_utf8_lossy(&out.stderr));
    let again = sign_statement_with(&CaRunner::new(&dir), &work, &number, &op.key, &op.cert, &["-md", "sha384"]);
    let again = json(&dir, &["application", "confirm", &number, "--signature", again.to_str().unwrap()]);
    assert_eq!(again["application"]["state"], "confirmed");
    // Keys are generated here only on the staff's explicit choice.
    let out = ca(&dir, &["application", "issue", &number, "--p12-dir", work.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    let out = ca(&dir, &["application", "issue", &number]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--generate-keys"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued = json(&dir, &["application", "issue", &number, "--generate-keys", "--p12-dir", work.to_str().unwrap()]);
    assert_eq!(json(&dir, &["application", "show", &number])["application"]["state"], "issued", "{issued}");
    assert_eq!(json(&dir, &["list", "--iin", &good]).as_array().unwrap().len(), 2);

    // An operator never confirms his own application.
    let ca_ = CaRunner::new(&dir).env("CA_SIGNER_P12_PASSWORD", common::P12_PASSWORD);
    let p12 = op.p12.to_str().unwrap();
    let own = ca_.run(&["application", "confirm", &other_number, "--p12", p12]);
    assert_eq!(own.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&own.stderr).contains("his own application"));

    // The operator may sign right here with his PKCS#12 key store.
    let third = iin_where(|f| common::eligible(f) && f[1] != good && f[1] != operator_iin);
    let c = json(&dir, &["application", "new", "--kind", "new-individual", "--iin", &third]);
    let third_number = c["application"]["number"].as_str().unwrap().to_owned();
    ok(&dir, &["application", "verify", &third_number]);
    let wrong = CaRunner::new(&dir).env("CA_SIGNER_P12_PASSWORD", "not it").run(&[
        "application",
        "confirm",
        &third_number,
        "--p12",
        p12,
    ]);
    assert_eq!(wrong.status.code(), Some(5), "{}", String::from_utf8_lossy(&wrong.stderr));
    let confirmed = ca_.json(&["application", "confirm", &third_number, "--p12", p12]);
    assert_eq!(confirmed["application"]["state"], "confirmed");

    // The issuance notice goes out over SMTP (Python's debugging SMTP server stands in for the
    // mail relay) and is marked sent.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = std::process::Command::new("python3")
        .args(["-u", "-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is on the machine");
    let url = format!("smtp://127.0.0.1:{port}");
    let mut report = serde_json::Value::Null;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        report = json(&dir, &["outbox", "send", "--smtp-url", &url]);
        if report["sent"].as_u64() > Some(0) {
            break;
        }
        // A failed attempt is retried later; make it due again for this test.
        let db = rusqlite::Connection::open(dir.join("ca.db")).unwrap();
        db.execute("UPDATE outbox SET next_attempt_at = 0 WHERE sent_at IS NULL", []).unwrap();
    }
    server.kill().unwrap();
    let printed = String::from_utf8_lossy(&server.wait_with_output().unwrap().stdout).into_owned();
    assert!(report["sent"].as_u64() >= Some(1), "{report}");
    assert!(printed.contains("Message-ID: <outbox-"), "{printed}");
    assert_eq!(json(&dir, &["outbox", "send", "--smtp-url", &url])["sent"], 0, "sent once, not again");
    ok(&dir, &["audit", "verify"]);
}
