//! Single-use login challenges and request ids (ca_core's `NonceStore`, on the portal's tables).

use ca_core::store::{NonceOutcome, NonceStore};
use time::Duration;

use crate::backends::Backend;
use crate::common::{concurrently, now};

pub fn a_challenge_is_consumed_once_and_expires(b: &impl Backend) {
    let store = b.store();
    let now = now();
    let (a, c) = ([1u8; 32], [2u8; 32]);
    store.issue_nonce(&a, now, now + Duration::minutes(5), now - Duration::hours(1)).unwrap();
    store.issue_nonce(&c, now, now + Duration::minutes(5), now - Duration::hours(1)).unwrap();
    assert_eq!(store.consume_nonce(&a, now).unwrap(), NonceOutcome::Consumed);
    assert_eq!(store.consume_nonce(&a, now).unwrap(), NonceOutcome::AlreadyUsed);
    assert_eq!(store.consume_nonce(&c, now + Duration::minutes(6)).unwrap(), NonceOutcome::Expired);
    assert_eq!(store.consume_nonce(&[3u8; 32], now).unwrap(), NonceOutcome::Unknown);
    let later = now + Duration::hours(2);
    store.issue_nonce(&[4u8; 32], later, later + Duration::minutes(5), later - Duration::hours(1)).unwrap();
    assert_eq!(store.consume_nonce(&c, later).unwrap(), NonceOutcome::Unknown, "purged");
}

pub fn a_request_id_is_used_once_and_forgotten_after_it_expires(b: &impl Backend) {
    let store = b.store();
    let now = now();
    let keep = now + Duration::minutes(15);
    assert!(store.use_request_id(&[1u8; 32], now, keep).unwrap());
    assert!(!store.use_request_id(&[1u8; 32], now + Duration::minutes(14), keep).unwrap(), "a replay");
    assert!(store.use_request_id(&[2u8; 32], now, keep).unwrap(), "another request");
    let later = now + Duration::minutes(16);
    assert!(store.use_request_id(&[1u8; 32], later, later + Duration::minutes(15)).unwrap());
}

pub fn concurrent_consumers_of_one_challenge_see_one_success(b: &impl Backend) {
    let now = now();
    let nonce = [7u8; 32];
    b.store().issue_nonce(&nonce, now, now + Duration::minutes(5), now).unwrap();
    let outcomes = concurrently(b, 8, 8, |store, _| store.consume_nonce(&nonce, now).unwrap());
    assert_eq!(outcomes.iter().filter(|o| **o == NonceOutcome::Consumed).count(), 1);
    let ids =
        concurrently(b, 8, 8, |store, _| store.use_request_id(&[8u8; 32], now, now + Duration::hours(1)).unwrap());
    assert_eq!(ids.iter().filter(|used| **used).count(), 1);
}
