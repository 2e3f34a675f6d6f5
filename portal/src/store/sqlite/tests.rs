//! What only the SQLite store does; the behaviour both backends share is the suite in
//! `portal/tests/store_suite`, run on SQLite and PostgreSQL.

use time::{Duration, OffsetDateTime};

use super::*;
use crate::store::{NewSession, SessionLookup};

fn account(login: &str) -> NewAccount {
    NewAccount {
        login: login.into(),
        kind: AccountKind::Individual,
        iin: login.into(),
        bin: None,
        email: "a@b.kz".into(),
        password_hash: "h1".into(),
        state: AccountState::Active,
        created_by: CreatedBy::SelfService,
        at: OffsetDateTime::now_utc(),
    }
}

fn session(account_id: i64, token: u8, now: OffsetDateTime) -> NewSession {
    NewSession {
        token_hash: [token; 32],
        account_id,
        method: "eds".into(),
        created_at: now,
        expires_at: now + Duration::hours(8),
        client_address: None,
        user_agent: None,
    }
}

/// The writer's `synchronous` as it stands, without taking it for a write (which sets it).
fn synchronous_now(store: &SqlitePortalStore) -> i64 {
    store.writer.lock().unwrap().conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap()
}

const NORMAL: i64 = 1;
const FULL: i64 = 2;

#[test]
fn a_login_commits_without_fsync_and_every_other_write_at_full() {
    let store = SqlitePortalStore::open_in_memory().unwrap();
    let id = store.create_account(&account("900101300017")).unwrap().unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(synchronous_now(&store), FULL);
    assert!(store.open_session_using(&[1; 32], now + Duration::hours(1), &session(id, 7, now)).unwrap().is_some());
    assert_eq!(synchronous_now(&store), NORMAL, "the session was committed at NORMAL");
    assert_eq!(
        store.open_session_using(&[1; 32], now + Duration::hours(1), &session(id, 8, now)).unwrap(),
        None,
        "replay"
    );
    assert!(store.open_session_using(&[2; 32], now + Duration::hours(1), &session(id, 9, now)).unwrap().is_some());
    assert_eq!(synchronous_now(&store), NORMAL, "a run of logins stays at NORMAL");
    // A write that must survive a power cut sets FULL before it runs (and leaves it so).
    store.create_account(&account("900101300018")).unwrap().unwrap();
    assert_eq!(synchronous_now(&store), FULL, "an account was created at FULL");
    assert!(matches!(store.touch_session(&[7; 32], now, Duration::minutes(30)).unwrap(), SessionLookup::Active(_)));
    assert_eq!(synchronous_now(&store), NORMAL, "a touch is committed at NORMAL");
    store.end_session(id, 1, now).unwrap();
    assert_eq!(synchronous_now(&store), FULL, "a logout is committed at FULL");
}

#[test]
fn a_panic_while_relaxed_leaves_the_next_write_at_full() {
    let store = std::sync::Arc::new(SqlitePortalStore::open_in_memory().unwrap());
    let s = store.clone();
    let _ = std::thread::spawn(move || {
        let _writer = s.lock_relaxed().unwrap();
        panic!("a bug while the writer is held");
    })
    .join();
    assert!(store.writer.is_poisoned());
    store.create_account(&account("900101300017")).unwrap().unwrap();
    assert_eq!(synchronous_now(&store), FULL);
}

#[test]
fn accounts_are_read_beside_a_writer_that_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqlitePortalStore::open(&dir.path().join("portal.db")).unwrap());
    let id = store.create_account(&account("900101300017")).unwrap().unwrap();
    let writer = store.lock().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let s = store.clone();
    std::thread::spawn(move || {
        let by_login = s.account_by_login("900101300017").unwrap().map(|a| a.id);
        let by_id = s.account_by_id(id).unwrap().map(|a| a.login);
        tx.send((by_login, by_id)).unwrap();
    });
    let read = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the read waited for the writer");
    assert_eq!(read, (Some(id), Some("900101300017".to_owned())));
    drop(writer);
}

#[test]
fn used_request_ids_are_purged_at_most_once_a_second() {
    let store = SqlitePortalStore::open_in_memory().unwrap();
    let id = store.create_account(&account("900101300017")).unwrap().unwrap();
    let t0 = OffsetDateTime::now_utc();
    let count = |store: &SqlitePortalStore| -> i64 {
        store.lock().unwrap().query_row("SELECT count(*) FROM request_ids", [], |r| r.get(0)).unwrap()
    };
    // Two uses kept until t0 + 1 ms.
    for (n, used) in [[1u8; 32], [2; 32]].iter().enumerate() {
        let token = u8::try_from(n).unwrap();
        store.open_session_using(used, t0 + Duration::milliseconds(1), &session(id, token, t0)).unwrap().unwrap();
    }
    assert_eq!(count(&store), 2);
    // Expired 10 ms later, but the last purge (by the first login) is less than a second old.
    let t1 = t0 + Duration::milliseconds(10);
    store.open_session_using(&[3; 32], t1 + Duration::hours(1), &session(id, 3, t1)).unwrap().unwrap();
    assert_eq!(count(&store), 3, "no purge within the second");
    let t2 = t0 + Duration::milliseconds(1_500);
    store.open_session_using(&[4; 32], t2 + Duration::hours(1), &session(id, 4, t2)).unwrap().unwrap();
    assert_eq!(count(&store), 2, "the expired two are purged after a second");
    // A use kept until later is refused again however the purge goes.
    assert_eq!(store.open_session_using(&[3; 32], t2 + Duration::hours(1), &session(id, 5, t2)).unwrap(), None);
}

#[test]
fn a_version_4_database_keeps_its_used_request_ids_through_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portal.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;",
        )
        .unwrap();
        for m in &migrations::MIGRATIONS[..4] {
            conn.execute_batch(m.sql).unwrap();
            conn.execute("INSERT INTO schema_migrations VALUES (?1, ?2, 0)", params![m.version, m.name]).unwrap();
        }
        let later = millis(OffsetDateTime::now_utc() + Duration::hours(1));
        conn.execute("INSERT INTO request_ids VALUES (?1, 0, ?2)", params![&[9u8; 32][..], later]).unwrap();
    }
    let store = SqlitePortalStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrations::LATEST);
    let id = store.create_account(&account("900101300017")).unwrap().unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        store.open_session_using(&[9; 32], now + Duration::hours(1), &session(id, 1, now)).unwrap(),
        None,
        "a challenge used before the upgrade is still refused"
    );
    assert!(store.open_session_using(&[10; 32], now + Duration::hours(1), &session(id, 2, now)).unwrap().is_some());
}
