//! Sessions: expiry, idle time, logout, the list; a signature login's single-use challenge.

use portal::account::AccountState;
use portal::store::{FailedAttempt, NewMail, NewSession, PasswordChange, PortalStore, SessionLookup};
use time::{Duration, OffsetDateTime};

use crate::backends::Backend;
use crate::common::{account, concurrently, now, IIN, OTHER_IIN};

fn session(account_id: i64, hash: u8, at: OffsetDateTime) -> NewSession {
    NewSession {
        token_hash: [hash; 32],
        account_id,
        method: "password".into(),
        created_at: at,
        expires_at: at + Duration::hours(8),
        client_address: Some("10.0.0.1".into()),
        user_agent: Some("test".into()),
    }
}

pub fn sessions_expire_idle_out_and_end_with_a_recovery_that_queues_mail(b: &impl Backend) {
    let store = b.store();
    let id = account(store, IIN);
    let now = now();
    let idle = Duration::minutes(30);
    let first = store.create_session(&session(id, 1, now)).unwrap();
    store.create_session(&session(id, 2, now)).unwrap();
    match store.touch_session(&[1; 32], now + Duration::minutes(29), idle).unwrap() {
        SessionLookup::Active(s) => {
            assert_eq!((s.id, s.account_id, s.last_seen_at), (first, id, now + Duration::minutes(29)));
            assert_eq!(s.client_address.as_deref(), Some("10.0.0.1"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.touch_session(&[2; 32], now + Duration::minutes(31), idle).unwrap(), SessionLookup::Expired);
    assert_eq!(store.touch_session(&[2; 32], now + Duration::minutes(31), idle).unwrap(), SessionLookup::Unknown);
    assert_eq!(store.touch_session(&[9; 32], now, idle).unwrap(), SessionLookup::Unknown, "never issued");
    assert_eq!(
        store.touch_session(&[1; 32], now + Duration::hours(9), idle).unwrap(),
        SessionLookup::Expired,
        "past expiry"
    );
    let third = store.create_session(&session(id, 3, now)).unwrap();
    let fourth = store.create_session(&session(id, 4, now)).unwrap();
    let listed: Vec<i64> = store.sessions_of(id, now, idle).unwrap().iter().map(|s| s.id).collect();
    assert_eq!(listed, vec![third, fourth]);
    assert!(store.end_session(id, fourth, now).unwrap(), "logout");
    assert!(!store.end_session(id, fourth, now).unwrap(), "already ended");
    assert!(!store.end_session(id + 1, third, now).unwrap(), "not another account's session");
    assert_eq!(store.touch_session(&[4; 32], now, idle).unwrap(), SessionLookup::Unknown, "logged out");
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
    assert!(store.sessions_of(id, now, idle).unwrap().is_empty(), "a recovery ends every session");
    let mail = store.claim_mail(now, Duration::minutes(5)).unwrap();
    assert_eq!((mail.len(), mail[0].body.as_str()), (1, "secret"), "queued with the change");
}

pub fn a_challenge_opens_one_session_even_under_concurrent_use(b: &impl Backend) {
    let store = b.store();
    let id = account(store, IIN);
    let now = now();
    let keep = now + Duration::hours(1);
    assert!(store.open_session_using(&[1; 32], keep, &session(id, 1, now)).unwrap().is_some());
    assert_eq!(store.open_session_using(&[1; 32], keep, &session(id, 2, now)).unwrap(), None, "replay");
    assert_eq!(store.touch_session(&[2; 32], now, Duration::minutes(30)).unwrap(), SessionLookup::Unknown);
    let opened = concurrently(b, 8, 16, |store, i| {
        store.open_session_using(&[7; 32], keep, &session(id, 10 + i as u8, now)).unwrap()
    });
    assert_eq!(opened.iter().flatten().count(), 1, "one session for one challenge");
    assert_eq!(store.sessions_of(id, now, Duration::minutes(30)).unwrap().len(), 2);
}

/// The cabinet's journal: the account's logins newest first, ended ones with their end, and the
/// failed attempts on its login newest first.
pub fn the_cabinet_journal_is_newest_first_with_ended_logins(b: &impl Backend) {
    let store = b.store();
    let id = account(store, IIN);
    let other = account(store, OTHER_IIN);
    let t0 = now();
    let opened = |account_id: i64, hash: u8, method: &str| NewSession {
        method: method.into(),
        ..session(account_id, hash, t0 + Duration::minutes(i64::from(hash)))
    };
    let first = store.create_session(&opened(id, 1, "password")).unwrap();
    store.create_session(&opened(other, 2, "password")).unwrap();
    let second = store.create_session(&opened(id, 3, "eds")).unwrap();
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
    for (login, minute, reason) in [(IIN, 1, "wrong-password"), (OTHER_IIN, 2, "wrong-password"), (IIN, 3, "locked")] {
        store.journal_failure(&failure(login, minute, reason)).unwrap();
    }
    let mine = store.recent_failed_attempts(IIN, 10).unwrap();
    assert_eq!(mine, vec![failure(IIN, 3, "locked"), failure(IIN, 1, "wrong-password")]);
    assert_eq!(store.recent_failed_attempts(IIN, 1).unwrap().len(), 1);
}
