//! Accounts, the counter's create-or-reset, the challenge key, the schema.

use portal::account::AccountState;
use portal::store::{CounterOutcome, NewAccount, PasswordChange, PortalStore};

use crate::backends::Backend;
use crate::common::{account, new_account, now, IIN, OTHER_IIN};

pub fn accounts_are_unique_per_login_and_the_counter_resets_or_creates(b: &impl Backend) {
    let store = b.store();
    let id = store.create_account(&new_account(IIN)).unwrap().expect("created");
    assert_eq!(store.create_account(&new_account(IIN)).unwrap(), None, "duplicate");
    let a = store.account_by_login(IIN).unwrap().unwrap();
    assert_eq!((a.id, a.state, a.created_at), (id, AccountState::Active, now()));
    assert_eq!(store.account_by_id(id).unwrap().unwrap(), a);
    assert_eq!(store.account_by_login(OTHER_IIN).unwrap(), None);
    let reset = NewAccount { password_hash: "h2".into(), state: AccountState::MustChangePassword, ..new_account(IIN) };
    assert_eq!(store.create_or_reset_account(&reset).unwrap(), CounterOutcome::Reset, "existing: reset");
    let a = store.account_by_id(id).unwrap().unwrap();
    assert_eq!((a.password_hash.as_str(), a.state), ("h2", AccountState::MustChangePassword));
    assert_eq!(store.create_or_reset_account(&new_account(OTHER_IIN)).unwrap(), CounterOutcome::Created);
    assert!(store.account_by_login(OTHER_IIN).unwrap().is_some());
}

pub fn a_blocked_account_is_not_unblocked_by_the_counter(b: &impl Backend) {
    let store = b.store();
    let id = account(store, IIN);
    store
        .change_password(&PasswordChange {
            account_id: id,
            password_hash: "blocked".into(),
            state: AccountState::Blocked,
            at: now(),
            end_sessions: true,
            mail: None,
        })
        .unwrap();
    let reset = NewAccount { password_hash: "new".into(), state: AccountState::MustChangePassword, ..new_account(IIN) };
    assert_eq!(store.create_or_reset_account(&reset).unwrap(), CounterOutcome::Blocked);
    let a = store.account_by_id(id).unwrap().unwrap();
    assert_eq!((a.password_hash.as_str(), a.state), ("blocked", AccountState::Blocked), "nothing changed");
    assert!(
        store
            .change_password(&PasswordChange {
                account_id: id + 1000,
                password_hash: "x".into(),
                state: AccountState::Active,
                at: now(),
                end_sessions: false,
                mail: None,
            })
            .is_err(),
        "no such account: an error, not a silent success"
    );
}

pub fn the_challenge_key_is_made_once_and_kept(b: &impl Backend) {
    let key = b.store().challenge_key().unwrap();
    assert_ne!(key, [0; 32]);
    assert_eq!(b.open().challenge_key().unwrap(), key, "another process, or a restart, keeps it");
}

pub fn the_schema_is_at_the_latest_version(b: &impl Backend) {
    assert_eq!(
        b.schema_version(),
        5,
        "accounts (1), phone binding (2), documents (3), logins by account (4), request ids by id (5)"
    );
    drop(b.open());
    assert_eq!(b.schema_version(), 5, "opening again migrates nothing");
}
