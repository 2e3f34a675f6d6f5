//! The audit journal through the `ca` command: signed checkpoints catch what the hash chain
//! alone cannot (the newest entries deleted, every entry deleted, an entry edited and the chain
//! recomputed after it, a forged checkpoint); `audit list|export` by time range and actor.

mod common;

use std::path::PathBuf;

use ca_core::store::audit::entry_hash;
use ca_core::store::AuditEvent;
use common::{openssl_csr, CaRunner, IIN};
use time::OffsetDateTime;

struct Ca {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Ca {
    fn ca(&self) -> CaRunner {
        CaRunner::new(&self.dir)
    }

    fn issue(&self, actor: &str) {
        let csr =
            openssl_csr(self.dir.parent().unwrap(), "k", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        let csr = csr.to_str().unwrap();
        self.ca().ok(&[
            "--actor",
            actor,
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
            csr,
        ]);
    }

    /// `ca audit verify`: exit code and stdout.
    fn verify(&self) -> (Option<i32>, String) {
        let out = self.ca().run(&["audit", "verify"]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Open the store as an attacker with write access to the file would: without the triggers.
    fn db(&self) -> rusqlite::Connection {
        let db = rusqlite::Connection::open(self.dir.join("ca.db")).unwrap();
        db.execute_batch("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;").unwrap();
        db
    }
}

/// A new CA (P-256 keys).
fn new_ca() -> Ca {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    CaRunner::new(&dir).ok(&[
        "init",
        "--root-key",
        "p256",
        "--issuing-key",
        "p256",
        "--base-url",
        "http://pki.test.kz",
    ]);
    Ca { _tmp: tmp, dir }
}

#[test]
fn a_new_ca_is_protected_by_a_checkpoint_from_its_first_entries() {
    let ca = new_ca();
    let v = ca.ca().json(&["audit", "verify"]);
    assert_eq!(v["intact"], true, "{v}");
    let entries = v["entries"].as_i64().unwrap();
    assert!(entries >= 3, "root, issuing CA and audit key: {v}");
    assert_eq!(v["checkpoint"]["seq"].as_i64(), Some(entries), "init's checkpoint covers all of init: {v}");
    assert_eq!(v["unprotected_entries"], 0, "{v}");
    assert!(ca.dir.join("private/audit.key.pem").exists());
    assert!(ca.dir.join("certs/audit.pub.pem").exists());
    // The key follows the CA key policy: encrypted under the CA passphrase.
    let wrong = ca.ca().env("CA_PASSPHRASE", "not the passphrase").run(&["audit", "checkpoint"]);
    assert_eq!(wrong.status.code(), Some(5), "{}", String::from_utf8_lossy(&wrong.stderr));
    // Already made: init-key changes nothing.
    assert_eq!(ca.ca().run(&["audit", "init-key"]).status.code(), Some(6));
    // Truncating init's own entries is caught.
    ca.db().execute("DELETE FROM audit WHERE seq = ?1", [entries]).unwrap();
    assert_eq!(ca.verify().0, Some(7));
}

#[test]
fn a_ca_without_any_checkpoint_is_a_warning_with_its_own_exit_code() {
    let ca = new_ca();
    // A CA made before init made the audit key: nothing protects the head.
    for f in ["certs/audit.pub.pem", "private/audit.key.pem", "publish/crl/audit-checkpoint.json"] {
        std::fs::remove_file(ca.dir.join(f)).unwrap();
    }
    let out = ca.ca().run(&["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("audit journal intact"), "{stdout}");
    assert!(stdout.contains("WARNING: no audit key and no signed checkpoint"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no signed checkpoint"));
    let out = ca.ca().run(&["--json", "audit", "verify"]);
    assert_eq!(out.status.code(), Some(4));
    let v: serde_json::Value = serde_json::Deserializer::from_slice(&out.stdout).into_iter().next().unwrap().unwrap();
    assert!(v["warning"].as_str().unwrap().contains("no signed checkpoint"), "{v}");
    // init-key puts it right.
    ca.ca().ok(&["audit", "init-key"]);
    assert_eq!(ca.verify().0, Some(0));
}

/// A CA with some journal, an audit key and a checkpoint, and an entry after the checkpoint.
fn checkpointed() -> Ca {
    let ca = new_ca();
    ca.issue("alice");
    ca.ca().ok(&["audit", "checkpoint"]);
    ca.issue("bob");
    let v = ca.ca().json(&["audit", "verify"]);
    assert_eq!(v["intact"], true, "{v}");
    assert!(v["checkpoint_age_seconds"].as_i64().unwrap() < 60, "{v}");
    assert!(v["unprotected_entries"].as_i64().unwrap() > 0, "the entries after the checkpoint: {v}");
    ca
}

fn checkpoint_seq(ca: &Ca) -> i64 {
    ca.ca().json(&["audit", "verify"])["checkpoint"]["seq"].as_i64().unwrap()
}

#[test]
fn deleting_the_newest_entries_is_detected_against_the_checkpoint() {
    let ca = checkpointed();
    let seq = checkpoint_seq(&ca);
    ca.db().execute("DELETE FROM audit WHERE seq >= ?1", [seq - 1]).unwrap();
    let (code, out) = ca.verify();
    assert_eq!(code, Some(7), "{out}");
    assert!(out.contains("truncated"), "{out}");
}

#[test]
fn deleting_every_entry_is_detected() {
    let ca = checkpointed();
    ca.db().execute("DELETE FROM audit", []).unwrap();
    let (code, out) = ca.verify();
    assert_eq!(code, Some(7), "{out}");
    assert!(out.contains("missing"), "{out}");
}

#[test]
fn an_edited_entry_with_a_recomputed_chain_is_detected() {
    let ca = checkpointed();
    {
        let db = ca.db();
        let rows: Vec<(i64, i64, String, String, Option<String>, String)> = db
            .prepare("SELECT seq, at_ns, actor, action, target, details FROM audit ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // Rewrite who issued, and every hash from there on, as a careful attacker would.
        let mut prev = [0u8; 32];
        for (seq, at_ns, actor, action, target, details) in rows {
            let actor = if actor == "alice" { "mallory".to_owned() } else { actor };
            let event =
                AuditEvent { actor: actor.clone(), action, target, details: serde_json::from_str(&details).unwrap() };
            let at = OffsetDateTime::from_unix_timestamp_nanos(at_ns.into()).unwrap();
            let hash = entry_hash(seq, at, &event, &prev);
            db.execute(
                "UPDATE audit SET actor = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?1",
                rusqlite::params![seq, actor, &prev[..], &hash[..]],
            )
            .unwrap();
            prev = hash;
        }
    }
    // The chain alone holds: only the checkpoint tells.
    let v = ca.ca().run(&["--json", "audit", "verify"]);
    assert_eq!(v.status.code(), Some(7));
    // The report, then the error document.
    let v: serde_json::Value = serde_json::Deserializer::from_slice(&v.stdout).into_iter().next().unwrap().unwrap();
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    assert!(problems[0].as_str().unwrap().contains("rewritten"), "{v}");
}

#[test]
fn a_forged_or_missing_checkpoint_is_a_failure() {
    let ca = checkpointed();
    let path = ca.dir.join("publish/crl/audit-checkpoint.json");
    let file = std::fs::read_to_string(&path).unwrap();
    let seq = checkpoint_seq(&ca);
    std::fs::write(&path, file.replace(&format!(r#"\"seq\":{seq}"#), r#"\"seq\":1"#)).unwrap();
    let (code, out) = ca.verify();
    assert_eq!(code, Some(7), "{out}");
    assert!(out.contains("signature does not verify"), "{out}");
    std::fs::remove_file(&path).unwrap();
    let (code, out) = ca.verify();
    assert_eq!(code, Some(7), "{out}");
    assert!(out.contains("no checkpoint"), "{out}");
    // A new checkpoint from the CA's key puts it right (the journal itself is intact).
    ca.ca().ok(&["audit", "checkpoint"]);
    assert_eq!(ca.verify().0, Some(0));
    // A second init-key changes nothing.
    assert_eq!(ca.ca().run(&["audit", "init-key"]).status.code(), Some(6));
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_journal_is_listed_and_exported_by_time_range_and_actor() {
    let ca = checkpointed();
    let all = lines(&ca.ca().ok(&["--json", "audit", "list"]));
    let entries = ca.ca().json(&["audit", "verify"])["entries"].as_u64().unwrap();
    assert_eq!(all.len() as u64, entries);
    assert!(all.windows(2).all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()));

    let alice = lines(&ca.ca().ok(&["--json", "audit", "list", "--by", "alice"]));
    assert!(!alice.is_empty() && alice.iter().all(|e| e["event"]["actor"] == "alice"), "{alice:?}");

    // From the first of bob's entries on: bob's, and nothing of alice's.
    let bob_from = all.iter().find(|e| e["event"]["actor"] == "bob").unwrap()["at"].as_str().unwrap().to_owned();
    let later = lines(&ca.ca().ok(&["--json", "audit", "list", "--from", &bob_from]));
    assert!(!later.is_empty() && later.iter().all(|e| e["event"]["actor"] != "alice"), "{later:?}");
    let earlier = lines(&ca.ca().ok(&["--json", "audit", "list", "--until", &bob_from]));
    assert_eq!(earlier.len() + later.len(), all.len());

    let out = ca.dir.parent().unwrap().join("export.jsonl");
    ca.ca().ok(&["audit", "export", "--by", "alice", "--out", out.to_str().unwrap()]);
    assert_eq!(lines(&std::fs::read_to_string(&out).unwrap()), alice);
    // Never over an existing file; a time that is not RFC 3339 is bad input.
    assert_eq!(ca.ca().run(&["audit", "export", "--out", out.to_str().unwrap()]).status.code(), Some(3));
    assert_eq!(ca.ca().run(&["audit", "list", "--from", "yesterday"]).status.code(), Some(3));
    assert!(ca.ca().ok(&["audit", "list", "--limit", "2"]).lines().count() == 2);
}

/// The `seq` of the published checkpoint file.
fn published_seq(ca: &Ca) -> Option<i64> {
    let file = std::fs::read(ca.dir.join("publish/crl/audit-checkpoint.json")).ok()?;
    let file: serde_json::Value = serde_json::from_slice(&file).ok()?;
    let signed: serde_json::Value = serde_json::from_str(file["checkpoint"].as_str()?).ok()?;
    signed["seq"].as_i64()
}

#[test]
fn ca_serve_signs_a_checkpoint_when_the_head_moved() {
    let ca = new_ca();
    let at_init = published_seq(&ca).unwrap();
    ca.issue("alice");
    let entries = ca.ca().json(&["audit", "verify"])["entries"].as_i64().unwrap();
    assert!(entries > at_init);
    let (mut server, _port) = ca.ca().serve();
    // The first tick is at start; later ones every [audit] checkpoint_minutes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while published_seq(&ca) != Some(entries) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(published_seq(&ca), Some(entries), "the server signed the moved head");
    let v = ca.ca().json(&["audit", "verify"]);
    assert_eq!(v["unprotected_entries"], 0, "{v}");

    // Off: checkpoint_minutes = 0 opens no audit key, signs nothing.
    let config = std::fs::read_to_string(ca.dir.join("ca.toml")).unwrap();
    assert!(config.contains("checkpoint_minutes = 60"), "the default is written: {config}");
    std::fs::write(ca.dir.join("ca.toml"), config.replace("checkpoint_minutes = 60", "checkpoint_minutes = 0"))
        .unwrap();
    ca.issue("bob");
    let (mut server, port) = ca.ca().env("CA_PASSPHRASE", "").serve();
    // The server answers (it needed no passphrase), and by then the first tick would have run.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut stream, b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(reply.ends_with("ok"), "{reply}");
    assert_eq!(published_seq(&ca), Some(entries));
}
