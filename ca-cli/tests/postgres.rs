//! The `ca` command on a PostgreSQL store, in one throwaway cluster (`fixtures::postgres`):
//! `ca store copy` of the demo CA, then `ca audit verify` and openssl on a CRL published from
//! PostgreSQL; `ca init --store`; four `ca` processes issuing and revoking at once on one
//! database while a `ca serve` on the same database answers OCSP.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{issue_individual, openssl, openssl_csr, CaRunner, Server, IIN};
use fixtures::postgres::PgCluster;

fn cluster() -> &'static PgCluster {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    CLUSTER
        .get_or_init(|| PgCluster::start().expect("a PostgreSQL test cluster (scripts/setup.sh installs PostgreSQL)"))
}

/// A new empty database; its URL (without the password).
fn database() -> String {
    let cluster = cluster();
    cluster.url(&cluster.create_database(None).unwrap())
}

fn runner(dir: &Path) -> CaRunner {
    CaRunner::new(dir).env("CA_STORE_PASSWORD", cluster().password())
}

fn pem_of(ca: &CaRunner, serial: &str, out: &Path) -> PathBuf {
    let shown = ca.json(&["show", serial, "--pem"]);
    std::fs::write(out, shown["pem"].as_str().unwrap()).unwrap();
    out.to_owned()
}

/// `openssl verify -crl_check` of `leaf` against the chain and the CA's published full CRL.
fn verify_with_crl(ca: &CaRunner, work: &Path, leaf: &Path) -> (bool, String) {
    let (ok, crl_pem) =
        openssl(&["crl", "-inform", "DER", "-in", ca.dir.join("publish/crl/nca.crl").to_str().unwrap()]);
    assert!(ok, "{crl_pem}");
    let (ok, root_crl) =
        openssl(&["crl", "-inform", "DER", "-in", ca.dir.join("publish/crl/root.crl").to_str().unwrap()]);
    assert!(ok, "{root_crl}");
    let crls = work.join("crls.pem");
    std::fs::write(&crls, format!("{crl_pem}{root_crl}")).unwrap();
    let chain = ca.chain_bundle(&work.join("chain.pem"));
    openssl(&[
        "verify",
        "-crl_check_all",
        "-CAfile",
        chain.to_str().unwrap(),
        "-CRLfile",
        crls.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ])
}

#[test]
fn store_copy_moves_the_demo_ca_without_reissuing_and_its_crls_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = runner(&dir);
    ca.ok(&["demo", "--ca-key", "p256"]);
    let before = ca.json(&["list"]);
    let head_before = ca.json(&["audit", "verify"]);
    let url = database();

    // The password never rides in the URL.
    let with_password = url.replace("ca@", &format!("ca:{}@", cluster().password()));
    let out = ca.run(&["store", "copy", "--to", &with_password]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("carries a password"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(cluster().password()), "the password is not echoed");
    assert!(!std::fs::read_to_string(dir.join("ca.toml")).unwrap().contains("[store]"), "nothing changed");

    let copied = ca.json(&["store", "copy", "--to", &url]);
    assert_eq!(copied["audit_head"], head_before["head"], "{copied}");
    let config = std::fs::read_to_string(dir.join("ca.toml")).unwrap();
    assert!(config.contains(&format!("url = \"{url}\"")), "{config}");
    assert!(!config.contains(cluster().password()), "no password in ca.toml");

    // The same certificates, the same journal (plus the copy's own entry), still under its
    // signed checkpoint.
    assert_eq!(ca.json(&["list"]), before);
    let verified = ca.json(&["audit", "verify"]);
    assert_eq!(verified["entries"].as_u64(), head_before["entries"].as_u64().map(|n| n + 1), "{verified}");
    assert_eq!(ca.run(&["store", "copy", "--to", &url]).status.code(), Some(6), "already moved");

    // A revocation on PostgreSQL, a CRL published from it, checked by openssl.
    let issued: Vec<&serde_json::Value> =
        before.as_array().unwrap().iter().filter(|r| r["status"] == "issued").collect();
    let victim = issued[0]["serial"].as_str().unwrap();
    let survivor = issued[1]["serial"].as_str().unwrap();
    let victim_pem = pem_of(&ca, victim, &tmp.path().join("victim.pem"));
    let survivor_pem = pem_of(&ca, survivor, &tmp.path().join("survivor.pem"));
    ca.ok(&["revoke", victim, "--reason", "keyCompromise"]);
    let published = ca.json(&["crl", "publish"]);
    assert!(published[0]["number"].as_u64() > Some(2), "CRL numbers go on from the SQLite ones: {published}");
    let (ok, text) = verify_with_crl(&ca, tmp.path(), &victim_pem);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify_with_crl(&ca, tmp.path(), &survivor_pem);
    assert!(ok, "{text}");
    ca.ok(&["audit", "verify"]);

    // A second CA cannot be copied into a database that holds one.
    let other = runner(&tmp.path().join("other"));
    other.ok(&["demo", "--ca-key", "p256"]);
    let out = other.run(&["store", "copy", "--to", &url]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("copy into an empty one"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn store_migrate_reports_the_schema_version() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = runner(&tmp.path().join("ca"));
    let url = database();
    ca.ok(&["init", "--root-key", "p256", "--issuing-key", "p256", "--store", &url]);
    assert!(!ca.dir.join("ca.db").exists(), "the store is in PostgreSQL");
    let report = ca.json(&["store", "migrate"]);
    assert_eq!(
        (report["store"].as_str(), report["version_before"].as_i64()),
        (Some("postgres"), report["version"].as_i64())
    );
    // A database that holds a CA is not given to a second one.
    let out = runner(&tmp.path().join("second")).run(&[
        "init",
        "--root-key",
        "p256",
        "--issuing-key",
        "p256",
        "--store",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    // Without the password the store cannot be opened, and says where it failed.
    let out = CaRunner::new(&ca.dir).run(&["list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PostgreSQL"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Four `ca` processes at a time issue and revoke on one database; after each revocation the
/// OCSP responder of a `ca serve` on the same database answers "revoked" at once. Each worker
/// has its own copy of the CA directory (keys, ca.toml), as on separate machines: concurrent
/// `ca issue` runs in one directory share its `issued/.pending` markers, which is the file
/// layer's business, not the store's.
#[test]
fn four_processes_issue_and_revoke_on_one_database() {
    const WORKERS: usize = 4;
    const EACH: usize = 3;
    let tmp = tempfile::tempdir().unwrap();
    let ca = runner(&tmp.path().join("ca"));
    ca.ok(&["init", "--root-key", "p256", "--issuing-key", "p256", "--store", &database()]);
    ca.ok(&["ocsp", "init", "--key-algorithm", "p256"]);
    let bundle = ca.chain_bundle(&tmp.path().join("chain.pem"));
    let (server, port) = ca.serve();
    let _server = Server(server);

    let serials: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (bundle, work) = (&bundle, tmp.path().join(format!("w{w}")));
                std::fs::create_dir_all(&work).unwrap();
                let copy = work.join("ca");
                let copied = std::process::Command::new("cp").arg("-a").arg(&ca.dir).arg(&copy).status().unwrap();
                assert!(copied.success());
                let ca = runner(&copy);
                s.spawn(move || {
                    let ca = &ca;
                    let mut mine = Vec::new();
                    for i in 0..EACH {
                        // From a CSR: concurrent `--generate-key` deliveries in one CA directory
                        // are a matter of the file layer (issued/.pending), not of the store.
                        let csr = openssl_csr(
                            &work,
                            &format!("k{i}"),
                            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                        );
                        let args = issue_individual("individual-sign", IIN, &["--csr", csr.to_str().unwrap()]);
                        let issued = ca.json(&args);
                        let serial = issued["serial"].as_str().unwrap().to_owned();
                        ca.ok(&["revoke", &serial, "--reason", "keyCompromise"]);
                        let cert = pem_of(ca, &serial, &work.join(format!("{serial}.pem")));
                        let (_, text) = ca.openssl_ocsp(port, &cert, bundle, &[]);
                        assert!(text.contains(": revoked"), "OCSP right after the revocation: {text}");
                        mine.push(serial);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    drop(_server);

    let mut unique = serials.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), WORKERS * EACH, "no serial twice");
    let listed = ca.json(&["list", "--iin", IIN]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), WORKERS * EACH, "every certificate recorded, and nothing else");
    assert!(listed.iter().all(|r| r["status"] == "revoked"), "no certificate without its record: {listed:?}");
    ca.ok(&["audit", "verify"]);
}
