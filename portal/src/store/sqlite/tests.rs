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

#[test]
fn a_login_commits_without_fsync_and_leaves_the_connection_at_full() {
    let store = SqlitePortalStore::open_in_memory().unwrap();
    let id = store.create_account(&account("900101300017")).unwrap().unwrap();
    let now = OffsetDateTime::now_utc();
    let session = NewSession {
        token_hash: [7; 32],
        account_id: id,
        method: "eds".into(),
        created_at: now,
        expires_at: now + Duration::hours(8),
        client_address: None,
        user_agent: None,
    };
    let synchronous =
        |store: &SqlitePortalStore| -> i64 { store.lock().query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap() };
    assert_eq!(synchronous(&store), 2, "FULL");
    assert!(store.open_session_using(&[1; 32], now + Duration::hours(1), &session).unwrap().is_some());
    assert_eq!(synchronous(&store), 2, "back to FULL after a session was opened");
    assert_eq!(store.open_session_using(&[1; 32], now + Duration::hours(1), &session).unwrap(), None, "replay");
    assert_eq!(synchronous(&store), 2, "back to FULL after a refused replay");
    assert!(matches!(store.touch_session(&[7; 32], now, Duration::minutes(30)).unwrap(), SessionLookup::Active(_)));
    assert_eq!(synchronous(&store), 2, "back to FULL after a session was touched");
}
