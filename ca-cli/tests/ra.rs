//! The RA commands end to end: registry import (with line errors) and show, applications with
//! refusals carrying the exact messages and exit code 8, idempotent submission, verification,
//! operator refusal, the signed steps refused until the CMS checker is wired, the SLA report,
//! the outbox, and the audit journal intact.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ca(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ca"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env("CA_PASSPHRASE", "test passphrase of the CA")
        .env_remove("CA_DIR")
        .output()
        .expect("run ca")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = ca(dir, args);
    assert!(
        out.status.success(),
        "ca {args:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(dir, &a)).expect("JSON")
}

fn registry_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/data/registry.csv")
}

/// The IIN of the first person line whose fields match `pick`.
fn iin_where(pick: impl Fn(&[&str]) -> bool) -> String {
    let text = std::fs::read_to_string(registry_csv()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("person,"))
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| pick(f))
        .map(|f| f[1].to_owned())
        .expect("such a person in the fixture")
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
    assert!(String::from_utf8_lossy(&out.stderr).contains("в ЦОН (код: 5)"));
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

    // Signed steps are refused until the CMS checker is wired; the application is unchanged.
    let sig = tmp.path().join("operator.cms");
    std::fs::write(&sig, b"not yet").unwrap();
    let out = ca(&dir, &["application", "confirm", &number, "--signature", sig.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not wired"));
    assert_eq!(json(&dir, &["application", "show", &number])["application"]["state"], "verified");

    let refused =
        json(&dir, &["--actor", "operator-1", "application", "refuse", &number, "--reason", "documents do not match"]);
    assert_eq!(refused["application"]["refusal"]["message"], "Отказ оператора: documents do not match");
    let out = ca(&dir, &["application", "refuse", &number, "--reason", "again"]);
    assert_eq!(out.status.code(), Some(3));

    let sla = json(&dir, &["report", "sla"]);
    assert!(sla.as_array().unwrap().iter().any(|r| r["step"] == "operator-verify" && r["budget"] == "20 min"));
    assert_eq!(json(&dir, &["outbox", "send"])["sent"], 0);
    assert_eq!(ca(&dir, &["application", "show", "A-1"]).status.code(), Some(3));
    ok(&dir, &["audit", "verify"]);
}
