//! `ca worker` end to end: a repeat issuance (flow 2) and a revocation on the applicant's
//! signed request (flow 4), both signed with openssl-made CMS and carried out by the worker
//! alone; the revocation in the next delta CRL as openssl reads it; the notices in the
//! maildir; a second round with nothing to do (on SQLite and on PostgreSQL); SIGTERM stops a
//! running worker.

mod common;

use std::path::{Path, PathBuf};

use common::{eligible, iin_where, openssl, operator, registry_csv, CaRunner};

/// `openssl cms -sign` over the statement of a submission (`ca application statement --action submit`).
fn sign_submission(ca: &CaRunner, work: &Path, kind: &str, iin: &str, key: &Path, cert: &Path) -> PathBuf {
    let statement = ca.run(&["application", "statement", "--action", "submit", "--kind", kind, "--iin", iin]);
    assert!(statement.status.success(), "{}", String::from_utf8_lossy(&statement.stderr));
    let input = work.join(format!("{kind}-{iin}.json"));
    std::fs::write(&input, &statement.stdout).unwrap();
    let sig = work.join(format!("{kind}-{iin}.cms"));
    common::cms_sign(&input, key, cert, &sig, &[]);
    sig
}

#[test]
fn the_worker_alone_issues_a_repeat_and_revokes_on_a_signed_request_with_a_delta_crl() {
    the_worker_alone(None);
}

/// The same on a PostgreSQL store (`ca init --store`): the RA, the outbox's delivery lease and
/// the worker's issuance and revocation go through the store traits, not SQLite.
#[test]
fn the_worker_alone_on_a_postgresql_store() {
    static CLUSTER: std::sync::OnceLock<fixtures::postgres::PgCluster> = std::sync::OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| {
        fixtures::postgres::PgCluster::start()
            .expect("a PostgreSQL test cluster (scripts/setup.sh installs PostgreSQL)")
    });
    let url = cluster.url(&cluster.create_database(None).unwrap());
    the_worker_alone(Some((&url, cluster.password())));
}

/// `store`: a PostgreSQL URL and its password, or `None` for the embedded SQLite store.
fn the_worker_alone(store: Option<(&str, &str)>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let work = tmp.path().to_path_buf();
    let mut ca = CaRunner::new(&dir);
    let mut init = vec!["init", "--root-key", "p256", "--issuing-key", "p256"];
    if let Some((url, password)) = store {
        ca = ca.env("CA_STORE_PASSWORD", password);
        init.extend(["--store", url]);
    }
    ca.ok(&init);
    assert_eq!(dir.join("ca.db").exists(), store.is_none(), "the store is where ca.toml says");
    ca.ok(&["registry", "import", registry_csv().to_str().unwrap()]);
    let renewing = iin_where(eligible);
    let revoking = iin_where(|f| eligible(f) && f[1] != renewing);
    // Each applicant's current SIGN certificate (the "ca-operator" role is irrelevant here).
    let old = operator(&ca, &work, "individual-sign", &renewing, "renewing");
    let leaving = operator(&ca, &work, "individual-sign", &revoking, "leaving");
    // A full CRL before the revocation: the worker's delta builds on it.
    ca.ok(&["crl", "publish"]);

    let sig = sign_submission(&ca, &work, "repeat", &renewing, &old.key, &old.cert);
    let repeat =
        ca.json(&["application", "new", "--kind", "repeat", "--iin", &renewing, "--signature", sig.to_str().unwrap()]);
    assert_eq!(repeat["application"]["state"], "confirmed", "{repeat}");
    let repeat = repeat["application"]["number"].as_str().unwrap().to_owned();
    // It came without the applicant's CSRs: the worker generates keys only on the staff's choice.
    let refused = ca.json(&["worker", "--once"]);
    assert_eq!(refused["issued"], serde_json::json!([]), "{refused}");
    assert_eq!(refused["failed"], serde_json::json!([]), "{refused}");
    assert!(refused["held"][0].as_str().unwrap().contains("--generate-keys"), "{refused}");
    assert_eq!(ca.json(&["application", "show", &repeat])["application"]["state"], "confirmed");
    let sig = sign_submission(&ca, &work, "revoke-signed", &revoking, &leaving.key, &leaving.cert);
    let revoke = ca.json(&[
        "application",
        "new",
        "--kind",
        "revoke-signed",
        "--iin",
        &revoking,
        "--reason",
        "keyCompromise",
        "--signature",
        sig.to_str().unwrap(),
    ]);
    assert_eq!(revoke["application"]["state"], "confirmed", "{revoke}");
    let revoke = revoke["application"]["number"].as_str().unwrap().to_owned();

    let keys = work.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let round = ca.json(&[
        "worker",
        "--once",
        "--generate-keys",
        "--p12-dir",
        keys.to_str().unwrap(),
        "--delta-after-revocation-minutes",
        "0",
    ]);
    assert_eq!(round["issued"], serde_json::json!([repeat]), "{round}");
    assert_eq!(round["revoked"], serde_json::json!([revoke]), "{round}");
    assert_eq!(round["failed"], serde_json::json!([]), "{round}");
    // The second applicant's application form (the first one's went out in the held round) and
    // the notices of what was done.
    assert_eq!(round["notices_sent"], 3, "{round}");
    assert_eq!(ca.json(&["application", "show", &repeat])["application"]["state"], "issued");
    assert_eq!(ca.json(&["application", "show", &revoke])["application"]["state"], "revoked");
    // The repeat issuance: two new certificates beside the old one, their key stores delivered.
    assert_eq!(ca.json(&["list", "--iin", &renewing]).as_array().unwrap().len(), 3);
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 2);
    assert_eq!(ca.json(&["show", &leaving.serial])["status"], "revoked");

    // The revocation is in the delta CRL the worker published, as openssl reads it.
    assert_eq!(round["crls"].as_array().unwrap().len(), 1, "one delta: {round}");
    assert!(round["crls"][0].as_str().unwrap().starts_with("delta"), "{round}");
    let delta = dir.join("publish/crl/nca_d.crl");
    let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", delta.to_str().unwrap(), "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains("Delta CRL Indicator"), "{text}");
    assert!(text.to_uppercase().contains(&format!("SERIAL NUMBER: {}", leaving.serial.to_uppercase())), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");

    // All four notices in the maildir.
    assert_eq!(std::fs::read_dir(dir.join("mail/new")).unwrap().count(), 4);

    // Nothing left: a second round does nothing and publishes nothing.
    let again = ca.json(&["worker", "--once", "--p12-dir", keys.to_str().unwrap()]);
    assert_eq!(again["issued"], serde_json::json!([]), "{again}");
    assert_eq!(again["revoked"], serde_json::json!([]), "{again}");
    assert_eq!(again["crls"], serde_json::json!([]), "{again}");
    assert_eq!(again["notices_sent"], 0, "{again}");
    ca.ok(&["audit", "verify"]);
}

#[test]
fn sigterm_stops_a_running_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = CaRunner::new(&dir);
    ca.ok(&["init", "--root-key", "p256", "--issuing-key", "p256"]);
    let mut child = ca.command(&["worker", "--no-crl"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // Wait until it runs (its banner on stderr), then stop it.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.contains("RA worker"), "{line}");
    let kill = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the worker did not stop");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn serve_with_the_worker_shows_its_progress_in_metrics_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = CaRunner::new(&dir);
    ca.ok(&["init", "--root-key", "p256", "--issuing-key", "p256"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = ca
        .command(&["serve", "--worker", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut server = common::Server(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // The first round publishes the first full CRL; wait for the server and that round.
    let metrics = loop {
        assert!(std::time::Instant::now() < deadline, "no worker round in /metrics");
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (status, body) = common::http(port, "GET", "/metrics", None, "");
            if status == 200 && body.contains("ca_worker_rounds_total 1") {
                break body;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(metrics.contains("ca_worker_crls_published_total 2"), "{metrics}");
    assert!(dir.join("publish/crl/nca.crl").exists());
    let kill = std::process::Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(10), "did not stop");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
