//! A kill between every step of `ca application issue` and `ca issue` (the process exits at a
//! failpoint: `CA_FAILPOINT`, debug builds) leaves a state that `ca application recover` or a
//! re-run of `ca issue` completes or revokes: never an issued certificate without its complete
//! key store, never a notice for certificates that were not delivered, never a notice twice.
#![cfg(debug_assertions)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ca_core::failpoint;
use common::{
    eligible, iin_where, issue_individual, openssl, operator, registry_csv, sign_statement, CaRunner, P12_PASSWORD,
};

/// A fresh CA with P-256 end-entity keys (fast to generate), the registry, and an operator.
struct Setup {
    _tmp: tempfile::TempDir,
    ca: CaRunner,
    work: PathBuf,
    op: common::Operator,
    people: Vec<String>,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let ca = CaRunner::new(&dir);
    ca.ok(&["init", "--root-key", "p256", "--issuing-key", "p256"]);
    let toml = std::fs::read_to_string(dir.join("ca.toml")).unwrap();
    std::fs::write(dir.join("ca.toml"), toml.replace("key_algorithm = \"rsa2048\"", "key_algorithm = \"p256\""))
        .unwrap();
    ca.ok(&["registry", "import", registry_csv().to_str().unwrap()]);
    let text = std::fs::read_to_string(registry_csv()).unwrap();
    let operator_iin = iin_where(eligible);
    let people: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("person,"))
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| eligible(f) && !f[11].is_empty() && f[1] != operator_iin)
        .map(|f| f[1].to_owned())
        .collect();
    let op = operator(&ca, &work, "individual-sign", &operator_iin, "op");
    Setup { _tmp: tmp, ca, work, op, people }
}

impl Setup {
    fn confirmed_application(&self, iin: &str) -> String {
        let a = self.ca.json(&["application", "new", "--kind", "new-individual", "--iin", iin]);
        let number = a["application"]["number"].as_str().unwrap().to_owned();
        self.ca.ok(&["application", "verify", &number]);
        let sig = sign_statement(&self.ca, &self.work, &number, &self.op.key, &self.op.cert);
        self.ca.ok(&["application", "confirm", &number, "--signature", sig.to_str().unwrap()]);
        number
    }

    /// `ca application issue` killed at failpoint `point`.
    fn issue_killed_at(&self, number: &str, p12_dir: &Path, point: &str) {
        let out = self
            .ca
            .command(&["application", "issue", number, "--generate-keys", "--p12-dir", p12_dir.to_str().unwrap()])
            .env("CA_FAILPOINT", point)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(failpoint::EXIT_CODE), "{point}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn state(&self, number: &str) -> String {
        self.ca.json(&["application", "show", number])["application"]["state"].as_str().unwrap().to_owned()
    }

    /// Serial → status of the person's certificates.
    fn certificates(&self, iin: &str) -> BTreeMap<String, String> {
        let list = self.ca.json(&["list", "--iin", iin]);
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| (c["serial"].as_str().unwrap().to_owned(), c["status"].as_str().unwrap().to_owned()))
            .collect()
    }

    /// The issuance notices of `number` (its registration notice went out at registration).
    fn notices(&self, number: &str) -> usize {
        let list = self.ca.json(&["outbox", "list"]);
        let issuance = |m: &&serde_json::Value| m["subject"].as_str().is_some_and(|s| s.contains("выпущены"));
        list.as_array().unwrap().iter().filter(|m| m["application"] == number).filter(issuance).count()
    }
}

/// Serial (lowercase hex) of every complete key store in `dir`, checked: it opens with the
/// password and its key is the certificate's key.
fn key_stores(dir: &Path, work: &Path) -> BTreeMap<String, PathBuf> {
    let pass = format!("pass:{P12_PASSWORD}");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("p12") {
            continue;
        }
        let (cert, key) = (work.join("ks-cert.pem"), work.join("ks-key.pem"));
        let p = path.to_str().unwrap();
        let (ok, text) =
            openssl(&["pkcs12", "-in", p, "-passin", &pass, "-clcerts", "-nokeys", "-out", cert.to_str().unwrap()]);
        assert!(ok, "{p} does not open: {text}");
        let (ok, text) =
            openssl(&["pkcs12", "-in", p, "-passin", &pass, "-nocerts", "-nodes", "-out", key.to_str().unwrap()]);
        assert!(ok, "{p}: {text}");
        let (_, cert_key) = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"]);
        let (_, own_key) = openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]);
        assert_eq!(cert_key, own_key, "{p}: the key is not the certificate's");
        let (_, serial) = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"]);
        let serial = serial.trim().trim_start_matches("serial=").to_lowercase();
        out.insert(serial, path);
        std::fs::remove_file(&key).unwrap();
    }
    out
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn a_kill_between_any_two_steps_of_application_issue_is_completed_or_revoked() {
    let s = setup();
    let steps: [(&str, bool); 9] = [
        (failpoint::CLAIMED, false),
        (failpoint::RESERVED, false),
        (failpoint::SIGNED, false),
        (failpoint::RECORDED, false),
        ("fs.before-rename", false),
        ("fs.renamed", false),
        ("fs.before-rename#2", false),
        // Both key stores in place: recovery completes the issuance.
        ("fs.renamed#2", true),
        (failpoint::COMPLETED, true),
    ];
    let mut people = s.people.iter();
    let mut iin = people.next().unwrap().clone();
    let mut number = s.confirmed_application(&iin);
    for (point, delivered) in steps {
        let p12_dir = s.work.join(format!("p12-{}", point.replace(['#', '.'], "-")));
        std::fs::create_dir(&p12_dir).unwrap();
        s.issue_killed_at(&number, &p12_dir, point);
        let before = s.certificates(&iin);

        let recover =
            ["application", "recover", &number, "--stale-minutes", "0", "--p12-dir", p12_dir.to_str().unwrap()];
        if point == failpoint::COMPLETED {
            // The worker finished everything but its own exit: nothing to recover.
            assert_eq!(s.state(&number), "issued", "{point}");
            assert_eq!(s.ca.run(&recover).status.code(), Some(3), "{point}");
        } else {
            assert_eq!(s.state(&number), "issuing", "{point}");
            if point == failpoint::RECORDED {
                // Looking in the wrong place would revoke delivered certificates: refused.
                let wrong = ["application", "recover", &number, "--stale-minutes", "0"];
                let out = s.ca.run(&wrong);
                assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
                assert!(String::from_utf8_lossy(&out.stderr).contains("--p12-dir"));
                assert_eq!(s.certificates(&iin), before, "nothing changed");
            }
            let r = s.ca.json(&recover);
            assert_eq!(r["application"]["state"], if delivered { "issued" } else { "confirmed" }, "{point}: {r}");
        }

        let after = s.certificates(&iin);
        let stores = key_stores(&p12_dir, &s.work);
        assert!(leftovers(&p12_dir).is_empty(), "{point}: {:?}", leftovers(&p12_dir));
        let issued: Vec<&String> = after.iter().filter(|(_, st)| *st == "issued").map(|(k, _)| k).collect();
        // Never an issued certificate without its key store, never a key store of a revoked one.
        assert_eq!(issued, stores.keys().collect::<Vec<_>>(), "{point}: {after:?}");
        if delivered {
            assert_eq!(issued.len(), 2, "{point}");
            assert_eq!(s.notices(&number), 1, "{point}: the notice is queued once");
            iin = people.next().unwrap().clone();
            number = s.confirmed_application(&iin);
        } else {
            assert_eq!(s.notices(&number), 0, "{point}: no notice for certificates not delivered");
            // Whatever was recorded before the kill is revoked now.
            let count = |m: &BTreeMap<String, String>, status: &str| m.values().filter(|st| *st == status).count();
            let recorded = count(&before, "issued");
            assert_eq!(count(&after, "revoked") - count(&before, "revoked"), recorded, "{point}: {after:?}");
            assert_eq!(
                recorded,
                if [failpoint::CLAIMED, failpoint::RESERVED, failpoint::SIGNED].contains(&point) { 0 } else { 2 },
                "{point}"
            );
        }
    }
    // The application given back last is issued normally.
    let p12_dir = s.work.join("p12-final");
    std::fs::create_dir(&p12_dir).unwrap();
    s.ca.ok(&["application", "issue", &number, "--generate-keys", "--p12-dir", p12_dir.to_str().unwrap()]);
    assert_eq!(key_stores(&p12_dir, &s.work).len(), 2);
    assert_eq!(s.notices(&number), 1);
    s.ca.ok(&["audit", "verify"]);
}

#[test]
fn recovery_acts_on_the_claims_serials_only_not_on_another_issuance_to_the_same_person() {
    let s = setup();
    // Killed before the key stores (revoke) and after both (complete): either way a `ca issue`
    // to the same person while the application was stuck is not the claim's and stays issued.
    for (point, delivered) in [(failpoint::RECORDED, false), ("fs.renamed#2", true)] {
        let iin = s.people.iter().find(|p| s.certificates(p).is_empty()).unwrap().clone();
        let number = s.confirmed_application(&iin);
        let p12_dir = s.work.join(format!("p12-other-{}", point.replace(['#', '.'], "-")));
        std::fs::create_dir(&p12_dir).unwrap();
        s.issue_killed_at(&number, &p12_dir, point);
        let claimed: Vec<String> = s.certificates(&iin).into_keys().collect();
        assert_eq!(claimed.len(), 2, "{point}");
        let other =
            s.ca.json(&issue_individual("individual-sign", &iin, &["--generate-key", "--key-algorithm", "p256"]));
        let other = other["serial"].as_str().unwrap().to_lowercase();

        let recover =
            ["application", "recover", &number, "--stale-minutes", "0", "--p12-dir", p12_dir.to_str().unwrap()];
        let r = s.ca.json(&recover);
        assert_eq!(r["application"]["state"], if delivered { "issued" } else { "confirmed" }, "{point}: {r}");
        let after = s.certificates(&iin);
        assert_eq!(after[&other], "issued", "{point}: the other issuance is untouched: {after:?}");
        for serial in &claimed {
            assert_eq!(after[serial], if delivered { "issued" } else { "revoked" }, "{point}: {after:?}");
        }
    }
}

#[test]
fn a_kill_between_any_two_steps_of_ca_issue_is_settled_by_the_next_run() {
    let s = setup();
    let dir = &s.ca.dir;
    let issued_dir = dir.join("issued");
    // (failpoint, what the next run finds): the marker is the first file written.
    let steps = [
        ("fs.renamed", "nothing-issued"),
        (failpoint::RESERVED, "nothing-issued"),
        (failpoint::SIGNED, "nothing-issued"),
        (failpoint::RECORDED, "revoked"),
        ("fs.before-rename#2", "revoked"),
        ("fs.renamed#2", "completed"),
        ("fs.before-rename#3", "completed"),
        ("fs.renamed#3", "completed"),
    ];
    let issue = |iin: &str| {
        issue_individual("individual-sign", iin, &["--generate-key", "--key-algorithm", "p256"])
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    for (i, (point, expected)) in steps.into_iter().enumerate() {
        let iin = &s.people[i];
        let args = issue(iin);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = s.ca.command(&args).env("CA_FAILPOINT", point).output().unwrap();
        assert_eq!(out.status.code(), Some(failpoint::EXIT_CODE), "{point}: {}", String::from_utf8_lossy(&out.stderr));

        // The next issuance (for someone else) settles the interrupted one first.
        let next = issue(&s.people[s.people.len() - 1 - i]);
        let next: Vec<&str> = next.iter().map(String::as_str).collect();
        let out = s.ca.run(&next);
        assert!(out.status.success(), "{point}: {}", String::from_utf8_lossy(&out.stderr));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(&format!(": {expected}")), "{point}: {said}");

        let certs = s.certificates(iin);
        let stores = key_stores(&issued_dir, &s.work);
        for (serial, status) in &certs {
            match status.as_str() {
                "issued" => {
                    assert!(stores.contains_key(serial), "{point}: issued {serial} without its key store");
                    let pem = issued_dir.join(format!("{serial}.pem"));
                    let (ok, text) = openssl(&["x509", "-in", pem.to_str().unwrap(), "-noout"]);
                    assert!(ok, "{point}: {text}");
                }
                _ => assert!(!stores.contains_key(serial), "{point}: a key store of a {status} certificate"),
            }
        }
        let issued = certs.values().filter(|st| *st == "issued").count();
        let revoked = certs.values().filter(|st| *st == "revoked").count();
        match expected {
            "nothing-issued" => assert_eq!((issued, revoked), (0, 0), "{point}"),
            "revoked" => assert_eq!((issued, revoked), (0, 1), "{point}"),
            _ => assert_eq!((issued, revoked), (1, 0), "{point}"),
        }
        assert!(!issued_dir.join(".pending").read_dir().unwrap().any(|_| true), "{point}: markers left");
    }
    s.ca.ok(&["audit", "verify"]);
}

/// `ca issue` arguments for a generated P-256 key.
fn issue_args(iin: &str) -> Vec<String> {
    issue_individual("individual-sign", iin, &["--generate-key", "--key-algorithm", "p256"])
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// A `ca issue` held at failpoint `point` (`CA_FAILPOINT_PAUSE`) until [`Held::resume`].
struct Held {
    child: std::process::Child,
    stderr: std::io::BufReader<std::process::ChildStderr>,
}

impl Held {
    // The child is waited for in `resume`, or killed and waited for by the test.
    #[allow(clippy::zombie_processes)]
    fn start(ca: &CaRunner, iin: &str, point: &str) -> Self {
        use std::io::BufRead;
        let args = issue_args(iin);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = ca
            .command(&args)
            .env("CA_FAILPOINT_PAUSE", point)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!("ca issue ended ({status}) before {point}");
            }
            let name = point.split('#').next().unwrap();
            if line.contains(&format!("failpoint {name}: paused")) {
                return Self { child, stderr };
            }
        }
    }

    /// Let it go on; its stderr, after it succeeded.
    fn resume(mut self) -> String {
        use std::io::{Read, Write};
        self.child.stdin.take().unwrap().write_all(b"\n").unwrap();
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the held run failed: {rest}");
        rest
    }
}

fn issued_with_files(s: &Setup, iin: &str, point: &str) {
    let issued_dir = s.ca.dir.join("issued");
    let certs = s.certificates(iin);
    assert_eq!(certs.values().collect::<Vec<_>>(), vec!["issued"], "{point}: {iin}: {certs:?}");
    let serial = certs.keys().next().unwrap();
    assert!(issued_dir.join(format!("{serial}.pem")).is_file(), "{point}: certificate file of {serial}");
}

#[test]
fn a_run_in_progress_is_not_settled_by_another_run_in_the_same_directory() {
    let s = setup();
    let pending = s.ca.dir.join("issued/.pending");
    // Held after the marker, after the record (key store not written), after the key store.
    for (i, point) in [failpoint::RESERVED, failpoint::RECORDED, "fs.renamed#2"].into_iter().enumerate() {
        let (a, b) = (&s.people[2 * i], &s.people[2 * i + 1]);
        let held = Held::start(&s.ca, a, point);
        // Another run in the same directory meanwhile: it must leave the held run's marker alone.
        let args = issue_args(b);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = s.ca.run(&args);
        assert!(out.status.success(), "{point}: {}", String::from_utf8_lossy(&out.stderr));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!said.contains("interrupted issuance"), "{point}: the run in progress was settled: {said}");
        held.resume();
        issued_with_files(&s, a, point);
        issued_with_files(&s, b, point);
        assert!(!pending.read_dir().unwrap().any(|_| true), "{point}: markers or locks left");
    }
    assert_eq!(key_stores(&s.ca.dir.join("issued"), &s.work).len(), 6);
    s.ca.ok(&["audit", "verify"]);
}

#[test]
fn several_ca_issue_processes_at_once_and_a_crashed_one_settled_after() {
    const AT_ONCE: usize = 6;
    let s = setup();
    let issued_dir = s.ca.dir.join("issued");
    // One run is held after recording (its key store not written), then killed.
    let crashed_iin = &s.people[AT_ONCE];
    let mut crashed = Held::start(&s.ca, crashed_iin, failpoint::RECORDED);
    let runs: Vec<std::process::Child> = s.people[..AT_ONCE]
        .iter()
        .map(|iin| {
            let args = issue_args(iin);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            s.ca.command(&args)
                .stderr(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(!said.contains("interrupted issuance"), "a run in progress was settled: {said}");
    }
    crashed.child.kill().unwrap();
    crashed.child.wait().unwrap();
    for iin in &s.people[..AT_ONCE] {
        issued_with_files(&s, iin, "concurrent");
    }
    // The next run settles the killed one: recorded without its key store, so revoked.
    let args = issue_args(&s.people[AT_ONCE + 1]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = s.ca.run(&args);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(": revoked"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.certificates(crashed_iin).values().collect::<Vec<_>>(), vec!["revoked"]);
    issued_with_files(&s, &s.people[AT_ONCE + 1], "after the crash");
    assert_eq!(key_stores(&issued_dir, &s.work).len(), AT_ONCE + 1, "one key store per issued certificate");
    assert!(!issued_dir.join(".pending").read_dir().unwrap().any(|_| true), "markers or locks left");
    s.ca.ok(&["audit", "verify"]);
}
