//! The password-login gate: 10 failures, then blocked for 15 minutes; the failed-login journal.

use portal::store::{AttemptGate, FailedAttempt, PortalStore};
use time::Duration;

use crate::backends::Backend;
use crate::common::{concurrently, now, IIN};

const LOCK: Duration = Duration::minutes(15);

pub fn the_gate_counts_before_checking_locks_at_the_limit_and_lifts_after_the_time(b: &impl Backend) {
    let store = b.store();
    let now = now();
    for n in 1..=10 {
        assert_eq!(store.begin_password_attempt(IIN, now, 10, LOCK).unwrap(), AttemptGate::Allowed { failures: n });
    }
    let until = match store.begin_password_attempt(IIN, now, 10, LOCK).unwrap() {
        AttemptGate::Locked { until } => until,
        other => panic!("{other:?}"),
    };
    assert_eq!(until - now, LOCK);
    assert!(matches!(
        store.begin_password_attempt(IIN, until - Duration::seconds(1), 10, LOCK).unwrap(),
        AttemptGate::Locked { .. }
    ));
    assert!(
        matches!(store.begin_password_attempt("900101300025", now, 10, LOCK).unwrap(), AttemptGate::Allowed { .. }),
        "another login is not locked"
    );
    assert_eq!(store.begin_password_attempt(IIN, until, 10, LOCK).unwrap(), AttemptGate::Allowed { failures: 1 });
    store.password_attempt_succeeded(IIN).unwrap();
    assert_eq!(store.begin_password_attempt(IIN, until, 10, LOCK).unwrap(), AttemptGate::Allowed { failures: 1 });
    // A lower limit than the count: locked from now.
    store.begin_password_attempt(IIN, until, 10, LOCK).unwrap();
    assert_eq!(store.begin_password_attempt(IIN, until, 2, LOCK).unwrap(), AttemptGate::Locked { until: until + LOCK });
}

pub fn fifty_concurrent_attempts_from_separate_connections_let_exactly_ten_through(b: &impl Backend) {
    let now = now();
    let gates = concurrently(b, 10, 50, |store, _| store.begin_password_attempt(IIN, now, 10, LOCK).unwrap());
    let mut allowed: Vec<u32> = gates
        .iter()
        .filter_map(|g| match g {
            AttemptGate::Allowed { failures } => Some(*failures),
            AttemptGate::Locked { .. } => None,
        })
        .collect();
    allowed.sort_unstable();
    assert_eq!(allowed, (1..=10).collect::<Vec<_>>(), "each count given once, none past the limit");
    assert!(matches!(b.store().begin_password_attempt(IIN, now, 10, LOCK).unwrap(), AttemptGate::Locked { .. }));
}

fn failure(n: i64, login: &str) -> FailedAttempt {
    FailedAttempt {
        at: now() + Duration::seconds(n),
        login: login.into(),
        method: "password".into(),
        client_address: Some(format!("10.0.0.{n}")),
        user_agent: Some("test".into()),
        reason: "wrong-password".into(),
    }
}

pub fn the_journal_keeps_every_failure_in_order_and_is_append_only(b: &impl Backend) {
    let store = b.store();
    let entries: Vec<FailedAttempt> =
        (0..5).map(|n| failure(n, if n % 2 == 0 { IIN } else { "900101300025" })).collect();
    for e in &entries {
        store.journal_failure(e).unwrap();
    }
    assert_eq!(store.failed_attempts(None, 100).unwrap(), entries, "every field, oldest first");
    let mine: Vec<_> = entries.iter().filter(|e| e.login == IIN).cloned().collect();
    assert_eq!(store.failed_attempts(Some(IIN), 100).unwrap(), mine);
    assert_eq!(store.failed_attempts(None, 2).unwrap(), entries[..2]);
    assert!(b.raw("UPDATE failed_logins SET reason = 'x'").is_err(), "no update");
    assert!(b.raw("DELETE FROM failed_logins").is_err(), "no delete");
    assert_eq!(store.failed_attempts(None, 100).unwrap(), entries, "unchanged");
}
