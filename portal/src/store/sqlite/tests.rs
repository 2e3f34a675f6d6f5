use time::{Duration, OffsetDateTime};

use super::*;
use crate::store::{AttemptGate, CounterOutcome, FailedAttempt, NewMail, NewSession, SessionLookup};

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
fn accounts_are_unique_per_login_and_the_counter_resets_or_creates() {
    let store = SqlitePortalStore::open_in_memory().unwrap();
    let id = store.create_account(&account("900101300017")).unwrap().expect("created");
    assert_eq!(store.create_account(&account("900101300017")).unwrap(), None, "duplicate");
    let a = store.account_by_login("900101300017").unwrap().unwrap();
    assert_eq!((a.id, a.state, a.created_by), (id, AccountState::Active, CreatedBy::SelfService));
    let reset =
        NewAccount { password_hash: "h2".into(), state: AccountState::MustChangePassword, ..account("900101300017") };
    assert_eq!(store.create_or_reset_account(&reset).unwrap(), CounterOutcome::Reset, "existing: reset");
    let a = store.account_by_id(id).unwrap().unwrap();
    assert_eq!((a.password_hash.as_str(), a.state), ("h2", AccountState::MustChangePassword));
    assert_eq!(store.create_or_reset_account(&account("900101300025")).unwrap(), CounterOutcome::Created);
}

#[test]
fn the_gate_counts_before_checking_locks_at_the_limit_and_lifts_after_the_time() {
    let store = SqlitePortalStore::open_in_memory().unwrap();
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let lock = Duration::minutes(15);
    for n in 1..=10 {
        assert_eq!(store.begin_password_attempt("x", now, 10, lock).unwrap(), AttemptGate::Allowed { failures: n });
    }
    let until = match store.begin_password_attempt("x", now, 10, lock).unwrap() {
        AttemptGate::Locked { until } => until,
        other => panic!("{other:?}"),
    };
    assert_eq!((until - now).whole_seconds(), lock.whole_seconds());
    assert!(matches!(
        store.begin_password_attempt("x", until - Duration::seconds(1), 10, lock).unwrap(),
        AttemptGate::Locked { .. }
    ));
    assert_eq!(store.begin_password_attempt("x", until, 10, lock).unwrap(), AttemptGate::Allowed { failures: 1 });
    store.password_attempt_succeeded("x").unwrap();
    assert_eq!(store.begin_password_attempt("x", until, 10, lock).unwrap(), AttemptGate::Allowed { failures: 1 });
}

#[test]
fn fifty_concurrent_attempts_from_separate_connections_let_exactly_ten_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portal.db");
    let stores: Vec<SqlitePortalStore> = (0..10).map(|_| SqlitePortalStore::open(&path).unwrap()).collect();
    let now = OffsetDateTime::now_utc();
    let allowed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let store = &stores[i % stores.len()];
                s.spawn(move || store.begin_password_attempt("x", now, 10, Duration::minutes(15)).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| matches!(h.join().unwrap(), AttemptGate::Allowed { .. }) as usize).sum()
    });
    assert_eq!(allowed, 10);
}

#[test]
fn the_journal_is_append_only() {
    let store = SqlitePortalStore::open_in_memory().unwrap();
    let entry = FailedAttempt {
        at: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
        login: "900101300017".into(),
        method: "password".into(),
        client_address: Some("10.0.0.1".into()),
        user_agent: Some("test".into()),
        reason: "wrong-password".into(),
    };
    store.journal_failure(&entry).unwrap();
    assert_eq!(store.failed_attempts(Some("900101300017"), 10).unwrap(), vec![entry]);
    let conn = store.lock();
    assert!(conn.execute("UPDATE failed_logins SET reason = 'x'", []).is_err());
    assert!(conn.execute("DELETE FROM failed_logins", []).is_err());
}

#[test]
fn the_cabinet_journal_is_newest_first_with_ended_logins() {
    let store = SqlitePortalStore::open_in_memory().unwrap();
    let id = store.create_account(&account("900101300017")).unwrap().unwrap();
    let other = store.create_account(&account("900101300028")).unwrap().unwrap();
    let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let session = |account_id: i64, hash: u8, method: &str| NewSession {
        token_hash: [hash; 32],
        account_id,
        method: method.into(),
        created_at: t0 + Duration::minutes(i64::from(hash)),
        expires_at: t0 + Duration::hours(8),
        client_address: Some("10.0.0.1".into()),
        user_agent: None,
    };
    let first = store.create_session(&session(id, 1, "password")).unwrap();
    store.create_session(&session(other, 2, "password")).unwrap();
    let second = store.create_session(&session(id, 3, "eds")).unwrap();
    assert!(store.end_session(id, first, t0 + Duration::minutes(10)).unwrap());
    let logins = store.logins_of(id, 10).unwrap();
    assert_eq!(logins.iter().map(|l| l.session.id).collect::<Vec<_>>(), vec![second, first]);
    assert_eq!(logins[0].ended_at, None);
    assert_eq!(logins[1].ended_at, Some(t0 + Duration::minutes(10)));
    assert_eq!(logins[0].session.method, "eds");
    assert_eq!(store.logins_of(id, 1).unwrap().len(), 1);

    let failure = |login: &str, minute: i64, reason: &str| FailedAttempt {
        at: t0 + Duration::minutes(minute),
        login: login.into(),
        method: "password".into(),
        client_address: None,
        user_agent: None,
        reason: reason.into(),
    };
    for (login, minute, reason) in
        [("900101300017", 1, "wrong-password"), ("900101300028", 2, "wrong-password"), ("900101300017", 3, "locked")]
    {
        store.journal_failure(&failure(login, minute, reason)).unwrap();
    }
    let mine = store.recent_failed_attempts("900101300017", 10).unwrap();
    assert_eq!(mine, vec![failure("900101300017", 3, "locked"), failure("900101300017", 1, "wrong-password")]);
    assert_eq!(store.recent_failed_attempts("900101300017", 1).unwrap().len(), 1);
}

#[test]
fn sessions_expire_idle_out_and_end_with_a_recovery_that_queues_mail() {
    let store = SqlitePortalStore::open_in_memory().unwrap();
    let id = store.create_account(&account("900101300017")).unwrap().unwrap();
    let now = OffsetDateTime::now_utc();
    let idle = Duration::minutes(30);
    let open = |hash: u8| {
        store
            .create_session(&NewSession {
                token_hash: [hash; 32],
                account_id: id,
                method: "password".into(),
                created_at: now,
                expires_at: now + Duration::hours(8),
                client_address: None,
                user_agent: None,
            })
            .unwrap()
    };
    open(1);
    open(2);
    assert!(matches!(
        store.touch_session(&[1; 32], now + Duration::minutes(29), idle).unwrap(),
        SessionLookup::Active(_)
    ));
    assert_eq!(store.touch_session(&[2; 32], now + Duration::minutes(31), idle).unwrap(), SessionLookup::Expired);
    assert_eq!(store.touch_session(&[2; 32], now + Duration::minutes(31), idle).unwrap(), SessionLookup::Unknown);
    assert_eq!(
        store.touch_session(&[1; 32], now + Duration::hours(9), idle).unwrap(),
        SessionLookup::Expired,
        "past expiry"
    );
    open(3);
    assert_eq!(store.sessions_of(id, now, idle).unwrap().len(), 1);
    store
        .change_password(&PasswordChange {
            account_id: id,
            password_hash: "new".into(),
            state: AccountState::MustChangePassword,
            at: now,
            end_sessions: true,
            mail: Some(NewMail { to: "a@b.kz".into(), subject: "s".into(), body: "secret".into() }),
        })
        .unwrap();
    assert!(store.sessions_of(id, now, idle).unwrap().is_empty());
    let mail = store.pending_mail(now).unwrap();
    assert_eq!(mail.len(), 1);
    store.mail_sent(mail[0].id, now).unwrap();
    assert!(store.pending_mail(now).unwrap().is_empty());
    let body: String = store.lock().query_row("SELECT body FROM outbox", [], |r| r.get(0)).unwrap();
    assert_eq!(body, "", "a delivered message's body (the password) is erased");
}

#[test]
fn the_challenge_key_is_made_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portal.db");
    let key = SqlitePortalStore::open(&path).unwrap().challenge_key().unwrap();
    assert_eq!(SqlitePortalStore::open(&path).unwrap().challenge_key().unwrap(), key, "a restart keeps it");
    assert_ne!(SqlitePortalStore::open_in_memory().unwrap().challenge_key().unwrap(), key);
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
