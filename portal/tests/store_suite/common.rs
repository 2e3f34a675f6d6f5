//! What the cases share: accounts, a fixed time, running a closure on many handles at once.

use portal::account::{AccountKind, AccountState, CreatedBy};
use portal::store::{NewAccount, PortalStore};
use time::OffsetDateTime;

use crate::backends::Backend;

pub const IIN: &str = "900101300017";
pub const OTHER_IIN: &str = "900101300025";

/// A fixed instant (2027-01-15), so no case depends on the clock.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

pub fn new_account(login: &str) -> NewAccount {
    NewAccount {
        login: login.into(),
        kind: AccountKind::Individual,
        iin: login.into(),
        bin: None,
        email: "a@b.kz".into(),
        password_hash: "h1".into(),
        state: AccountState::Active,
        created_by: CreatedBy::SelfService,
        at: now(),
    }
}

pub fn account(store: &impl PortalStore, login: &str) -> i64 {
    store.create_account(&new_account(login)).unwrap().expect("a new account")
}

/// Run `task` `n` times at once, on `handles` separate handles of the database (round robin);
/// the results in task order.
pub fn concurrently<B: Backend, T: Send>(
    b: &B,
    handles: usize,
    n: usize,
    task: impl Fn(&B::Store, usize) -> T + Sync,
) -> Vec<T> {
    let stores: Vec<B::Store> = (0..handles).map(|_| b.open()).collect();
    let task = &task;
    std::thread::scope(|s| {
        let running: Vec<_> = (0..n)
            .map(|i| {
                let store = &stores[i % stores.len()];
                s.spawn(move || task(store, i))
            })
            .collect();
        running.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
