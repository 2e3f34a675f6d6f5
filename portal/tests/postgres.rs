//! portal-server on PostgreSQL (`[store] url = "postgres://…"`, the password from a file):
//! registration by EDS, password login, the lockout and EDS login over HTTP, and a second portal
//! process on the same database seeing the same accounts, lock and journal.

mod common;

use common::TestPortal;
use fixtures::postgres::PgCluster;
use portal::messages;
use portal::setup::{build, Plugins};

const PASSWORD: &str = "Степной7Ветер";

#[test]
fn a_portal_on_postgresql_registers_logs_in_and_locks_out_across_processes() {
    let cluster = PgCluster::start().expect("starting a PostgreSQL test cluster (scripts/setup.sh installs it)");
    let secrets = tempfile::tempdir().unwrap();
    let store = common::postgres_store(&cluster, secrets.path());
    let t = TestPortal::start_with(|c| c.store = store.clone());
    assert!(t.config.store.sqlite_file().is_none());
    assert!(!t.dir.path().join("portal.db").exists(), "no SQLite file beside it");

    let holder = t.register_person(40, PASSWORD);
    let iin = fixtures::person(40).iin.to_string();
    let (status, body) = t.post("/api/v1/registration", t.registration(40, &t.person_auth(40), PASSWORD));
    assert_eq!(status, 409, "already registered: {body}");
    let (status, body) = t.login_password(&iin, PASSWORD);
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, sessions) = t.call("GET", "/api/v1/sessions", Some(&token), &serde_json::Value::Null);
    assert_eq!((status, sessions["sessions"].as_array().map(Vec::len)), (200, Some(1)), "{sessions}");

    for _ in 0..10 {
        let (status, body) = t.login_password(&iin, "Неверный1пароль");
        assert_eq!((status, body["message"].as_str().unwrap()), (401, messages::WRONG_LOGIN));
    }
    let (status, body) = t.login_password(&iin, PASSWORD);
    assert_eq!((status, body["message"].as_str().unwrap()), (429, messages::LOCKED));
    let (status, body) = t.login_eds(&holder);
    assert_eq!(status, 200, "EDS login stays open: {body}");

    // Another portal process on the same database: the same account, lock, journal and key.
    let other = build(&t.config, Plugins { clock: t.clock.clone(), phones: None, sms: None }).unwrap();
    let account = other.store.account_by_login(&iin).unwrap().expect("the account is shared");
    assert_eq!(account.email, "person40@example.kz");
    assert!(matches!(
        other
            .store
            .begin_password_attempt(&iin, ca_core::clock::Clock::now(&*t.clock), 10, time::Duration::minutes(15))
            .unwrap(),
        portal::store::AttemptGate::Locked { .. }
    ));
    assert_eq!(other.store.failed_attempts(Some(&iin), 100).unwrap().len(), 11, "10 wrong, 1 locked");
    assert_eq!(other.store.challenge_key().unwrap(), t.portal.store.challenge_key().unwrap());
}

#[test]
fn the_store_may_be_dropped_on_a_runtime_thread() {
    // portal-server's runtime may drop the last handle of the store on one of its workers (at
    // shutdown); a synchronous postgres client must not try to block that thread.
    let cluster = PgCluster::start().expect("starting a PostgreSQL test cluster (scripts/setup.sh installs it)");
    let database = cluster.create_database(None).unwrap();
    let store = portal::store::PgPortalStore::connect(&cluster.url(&database), Some(cluster.password())).unwrap();
    assert_eq!(portal::store::PortalStore::challenge_key(&store).unwrap().len(), 32, "a connection in the pool");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async move { tokio::spawn(async move { drop(store) }).await }).expect("dropped without a panic");
}
