//! One-time passwords: stored hashed, single use, attempts limited, replaced by a new one.

use portal::store::{NewOtp, OtpOutcome, PortalStore};
use time::{Duration, OffsetDateTime};

use crate::backends::Backend;
use crate::common::{concurrently, now};

fn otp(code: u8, at: OffsetDateTime) -> NewOtp {
    NewOtp {
        purpose: "login".into(),
        subject: "900101300017".into(),
        salt: [code; 16],
        code_hash: [code; 32],
        created_at: at,
        expires_at: at + Duration::minutes(5),
    }
}

/// `code` matches the stored OTP made with it.
fn is(code: u8) -> impl Fn(&[u8], &[u8]) -> bool {
    move |salt, hash| salt == [code; 16] && hash == [code; 32]
}

fn check(store: &impl PortalStore, at: OffsetDateTime, code: u8) -> OtpOutcome {
    store.check_otp("login", "900101300017", at, 3, &is(code)).unwrap()
}

pub fn a_code_is_single_use_and_a_new_one_replaces_the_old(b: &impl Backend) {
    let store = b.store();
    let now = now();
    assert_eq!(check(store, now, 1), OtpOutcome::NoValidCode, "never sent");
    store.issue_otp(&otp(1, now)).unwrap();
    store.issue_otp(&otp(2, now)).unwrap();
    assert_eq!(check(store, now, 1), OtpOutcome::Wrong { attempts_left: 2 }, "the first code was replaced");
    assert_eq!(check(store, now, 2), OtpOutcome::Accepted);
    assert_eq!(check(store, now, 2), OtpOutcome::NoValidCode, "used up");
    assert_eq!(
        store.check_otp("consent", "900101300017", now, 3, &is(2)).unwrap(),
        OtpOutcome::NoValidCode,
        "another purpose"
    );
}

pub fn wrong_codes_use_up_the_attempts_and_an_expired_code_is_refused(b: &impl Backend) {
    let store = b.store();
    let now = now();
    store.issue_otp(&otp(1, now)).unwrap();
    assert_eq!(check(store, now, 9), OtpOutcome::Wrong { attempts_left: 2 });
    assert_eq!(check(store, now, 9), OtpOutcome::Wrong { attempts_left: 1 });
    assert_eq!(check(store, now, 9), OtpOutcome::Wrong { attempts_left: 0 });
    assert_eq!(check(store, now, 1), OtpOutcome::NoValidCode, "the right code after the last attempt");
    store.issue_otp(&otp(3, now)).unwrap();
    assert_eq!(check(store, now + Duration::minutes(5), 3), OtpOutcome::NoValidCode, "expired");
    assert_eq!(check(store, now, 3), OtpOutcome::NoValidCode, "closed when found expired");
}

pub fn concurrent_checks_of_the_right_code_accept_it_once(b: &impl Backend) {
    let now = now();
    b.store().issue_otp(&otp(5, now)).unwrap();
    let outcomes = concurrently(b, 8, 16, |store, _| check(store, now, 5));
    assert_eq!(outcomes.iter().filter(|o| **o == OtpOutcome::Accepted).count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, OtpOutcome::Accepted | OtpOutcome::NoValidCode)));
}
