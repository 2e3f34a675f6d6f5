//! The regulation's clock from the command line: counter steps with their times, the card
//! flow's PIN and signature steps, `ca report sla --open` listing the open applications that
//! are past their deadline (and not the ones whose clock has not started), and a bad
//! `[regulation]` section named.

mod common;

use common::{eligible, iin_where, registry_csv, CaRunner};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn at(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

#[test]
fn report_sla_open_lists_what_is_overdue() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = CaRunner::new(&dir);
    ca.ok(&["init", "--root-key", "p256", "--issuing-key", "p256"]);
    ca.ok(&["registry", "import", registry_csv().to_str().unwrap()]);
    let people: Vec<String> = {
        let mut found = Vec::new();
        for _ in 0..4 {
            found.push(iin_where(|f| eligible(f) && !found.iter().any(|p: &String| p == f[1])));
        }
        found
    };
    let now = OffsetDateTime::now_utc();

    // A card application at the counter: identification took 3 minutes (budget 1).
    let card = ca.json(&[
        "--actor",
        "operator-1",
        "application",
        "new",
        "--kind",
        "card",
        "--iin",
        &people[0],
        "--arrived-at",
        &at(now - Duration::minutes(9)),
        "--identified-at",
        &at(now - Duration::minutes(6)),
        "--form-filled-at",
        &at(now - Duration::minutes(2)),
    ]);
    let card_number = card["application"]["number"].as_str().unwrap().to_owned();
    let steps: Vec<(&str, bool)> = card["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["step"].as_str().unwrap(), e["breached"].as_bool().unwrap()))
        .collect();
    assert_eq!(steps, [("present", false), ("identify", true), ("fill-form", false), ("register", false)]);
    let out = ca.run(&["application", "step", &card_number, "applicant-sign"]);
    assert_eq!(out.status.code(), Some(3), "the PIN comes first: {}", String::from_utf8_lossy(&out.stderr));
    ca.ok(&["application", "step", &card_number, "enter-pin"]);
    // Times out of order are refused.
    let out = ca.run(&[
        "application",
        "new",
        "--kind",
        "card",
        "--iin",
        &people[1],
        "--arrived-at",
        &at(now),
        "--identified-at",
        &at(now - Duration::minutes(1)),
        "--form-filled-at",
        &at(now),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));

    // Registered online and not presented: no clock runs. Presented: the operator's 20 minutes.
    let online = ca.json(&["application", "new", "--kind", "new-individual", "--iin", &people[2]]);
    let online = online["application"]["number"].as_str().unwrap().to_owned();
    let presented = ca.json(&["application", "new", "--kind", "new-individual", "--iin", &people[3]]);
    let presented = presented["application"]["number"].as_str().unwrap().to_owned();
    let shown = ca.json(&["application", "step", &presented, "present"]);
    assert_eq!(shown["events"][1]["step"], "present");

    assert_eq!(ca.json(&["report", "sla", "--open"]), serde_json::json!([]), "nothing late yet");
    let later = ca.json(&["report", "sla", "--open", "--at", &at(now + Duration::minutes(30))]);
    let late: Vec<(&str, &str)> = later
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["number"].as_str().unwrap(), o["waiting_for"].as_str().unwrap()))
        .collect();
    assert!(late.contains(&(card_number.as_str(), "applicant-sign")), "{later}");
    assert!(late.contains(&(presented.as_str(), "operator-verify")), "{later}");
    assert!(!late.iter().any(|(n, _)| *n == online), "{later}");
    let text = ca.ok(&["report", "sla", "--open", "--at", &at(now + Duration::minutes(30))]);
    assert!(text.contains("2 open applications overdue"), "{text}");

    // A budget from ca.toml: 2 hours for the operator at the counter.
    let config = dir.join("ca.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    assert!(toml.contains("[regulation.budgets]\n"), "ca init writes the section: {toml}");
    toml = toml.replace("[regulation.budgets]\n", "[regulation.budgets]\n\"operator-verify\" = \"2 h\"\n");
    std::fs::write(&config, &toml).unwrap();
    let later = ca.json(&["report", "sla", "--open", "--at", &at(now + Duration::minutes(30))]);
    assert!(!later.to_string().contains(&presented), "{later}");
    std::fs::write(&config, toml.replace("\"2 h\"", "\"soon\"")).unwrap();
    let out = ca.run(&["report", "sla", "--open"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("budgets.operator-verify"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
