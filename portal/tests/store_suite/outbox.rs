//! The SMS and mail outboxes: claimed with a lease, one sender per message.

use portal::account::AccountState;
use portal::store::phone::{NewSms, PhoneStore};
use portal::store::{NewMail, PasswordChange, PortalStore};
use time::Duration;

use crate::backends::Backend;
use crate::common::{account, concurrently, now, IIN};

fn sms(id: &str) -> NewSms {
    NewSms {
        message_id: id.into(),
        to: "+77010000001".into(),
        body: "b".into(),
        purpose: "phone-notice".into(),
        login: None,
        expires_at: None,
    }
}

pub fn a_claimed_sms_waits_for_its_lease_and_is_sent_once(b: &impl Backend) {
    let store = b.store();
    let now = now();
    store.queue_sms(&sms("m"), now).unwrap();
    store.queue_sms(&sms("gone"), now).unwrap();
    let lease = Duration::seconds(60);
    let claimed = store.claim_sms(now, lease, 10).unwrap();
    assert_eq!(claimed.iter().map(|s| s.message_id.as_str()).collect::<Vec<_>>(), ["m", "gone"], "oldest first");
    assert!(store.claim_sms(now + Duration::seconds(59), lease, 10).unwrap().is_empty(), "leased");
    store.sms_expired(claimed[1].id, now).unwrap();
    let again = store.claim_sms(now + Duration::seconds(61), lease, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].message_id.as_str(), again[0].id), ("m", claimed[0].id), "due again, same id");
    store.sms_failed(again[0].id, "gateway down", now + Duration::seconds(120)).unwrap();
    assert!(store.claim_sms(now + Duration::seconds(119), lease, 10).unwrap().is_empty(), "not before its retry");
    let retry = store.claim_sms(now + Duration::seconds(120), lease, 10).unwrap();
    assert_eq!(retry[0].attempts, 1);
    store.sms_sent(retry[0].id, now, Some("ref")).unwrap();
    assert!(store.claim_sms(now + Duration::hours(1), lease, 10).unwrap().is_empty());
    let outbox = store.sms_outbox(10).unwrap();
    assert_eq!((outbox[0].state.as_str(), outbox[0].attempts, outbox[0].last_error.as_deref()), ("sent", 2, None));
    assert_eq!(outbox[1].state, "expired");
    assert_eq!(b.scalar("SELECT count(*) FROM sms_outbox WHERE body <> ''"), 0, "bodies erased once sent or dropped");
}

pub fn concurrent_senders_never_claim_the_same_sms(b: &impl Backend) {
    let now = now();
    for i in 0..40 {
        b.store().queue_sms(&sms(&format!("m{i}")), now).unwrap();
    }
    let claims = concurrently(b, 4, 8, |store, _| store.claim_sms(now, Duration::seconds(60), 10).unwrap());
    let mut ids: Vec<i64> = claims.iter().flatten().map(|s| s.id).collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((ids.len(), total), (40, 40), "every message claimed exactly once");
}

fn queue_mail(store: &impl PortalStore, account_id: i64, body: &str) {
    store
        .change_password(&PasswordChange {
            account_id,
            password_hash: "generated".into(),
            state: AccountState::MustChangePassword,
            at: now(),
            end_sessions: false,
            mail: Some(NewMail { to: "a@b.kz".into(), subject: "s".into(), body: body.into() }),
        })
        .unwrap();
}

pub fn mail_is_leased_retried_and_its_body_erased_once_sent(b: &impl Backend) {
    let store = b.store();
    let now = now();
    let lease = Duration::minutes(1);
    queue_mail(store, account(store, IIN), "password: secret");
    let mail = store.claim_mail(now, lease).unwrap();
    assert_eq!((mail.len(), mail[0].to.as_str(), mail[0].created_at, mail[0].attempts), (1, "a@b.kz", now, 0));
    assert_eq!(mail[0].body, "password: secret");
    assert!(store.claim_mail(now + Duration::seconds(59), lease).unwrap().is_empty(), "leased");
    let again = store.claim_mail(now + lease, lease).unwrap();
    assert_eq!(again[0].id, mail[0].id, "a mailer that died: due again after the lease");
    store.mail_failed(mail[0].id, "smtp down", now + Duration::minutes(5)).unwrap();
    assert!(store.claim_mail(now + Duration::minutes(4), lease).unwrap().is_empty(), "not before its retry");
    let retry = store.claim_mail(now + Duration::minutes(5), lease).unwrap();
    assert_eq!(retry[0].attempts, 1);
    assert_eq!(b.scalar("SELECT count(*) FROM outbox WHERE body <> ''"), 1);
    store.mail_sent(retry[0].id, now).unwrap();
    assert!(store.claim_mail(now + Duration::hours(1), lease).unwrap().is_empty());
    assert_eq!(b.scalar("SELECT count(*) FROM outbox WHERE body <> ''"), 0, "the generated password is erased");
}

pub fn concurrent_mailers_never_claim_the_same_message(b: &impl Backend) {
    let now = now();
    let id = account(b.store(), IIN);
    for i in 0..30 {
        queue_mail(b.store(), id, &format!("message {i}"));
    }
    let claims = concurrently(b, 4, 8, |store, _| store.claim_mail(now, Duration::minutes(5)).unwrap());
    let mut ids: Vec<i64> = claims.iter().flatten().map(|m| m.id).collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((ids.len(), total), (30, 30), "every message claimed exactly once");
}
