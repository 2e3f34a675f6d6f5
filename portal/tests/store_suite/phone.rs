//! Phone binding: one current number per account and one account per number, history, send
//! limits, the counter's binding for a person without an account, the journal.

use portal::store::phone::{
    BindOutcome, BindingAccount, Channel, CodeIssue, NewBinding, NewPhoneCode, NewSms, PhoneAttempt, PhoneStore,
    SendLimits,
};
use portal::store::NewOtp;
use time::{Duration, OffsetDateTime};

use crate::backends::Backend;
use crate::common::{account, new_account, now, IIN, OTHER_IIN};

pub fn code(session: &str, account_id: Option<i64>, login: &str, phone: &str, now: OffsetDateTime) -> NewPhoneCode {
    NewPhoneCode {
        session_id: session.into(),
        account_id,
        login: login.into(),
        phone: phone.into(),
        channel: Channel::Portal,
        requested_by: String::new(),
        otp: NewOtp {
            purpose: "phone-binding".into(),
            subject: session.into(),
            salt: [0; 16],
            code_hash: [0; 32],
            created_at: now,
            expires_at: now + Duration::minutes(5),
        },
        sms: NewSms {
            message_id: format!("m-{session}"),
            to: phone.into(),
            body: "code".into(),
            purpose: "phone-code".into(),
            login: Some(login.into()),
            expires_at: None,
        },
        limits: SendLimits { resend_after: Duration::minutes(1), per_hour: 3 },
    }
}

fn binding(session: &str, account: BindingAccount, phone: &str, at: OffsetDateTime) -> NewBinding {
    NewBinding {
        session_id: session.into(),
        account,
        phone: phone.into(),
        channel: Channel::Portal,
        at,
        evidence: "{}".into(),
        signed_request: vec![1],
        old_number_notice: Some("notice".into()),
        mail: None,
    }
}

pub fn one_number_per_account_and_one_account_per_number_with_history(b: &impl Backend) {
    let store = b.store();
    let now = now();
    let (a, c) = (account(store, IIN), account(store, OTHER_IIN));
    let mine = |s: &str| BindingAccount::Existing(if s == "a" { a } else { c });
    assert_eq!(store.issue_phone_code(&code("s1", Some(a), IIN, "+77010000001", now), now).unwrap(), CodeIssue::Queued);
    let session = store.phone_session("s1").unwrap().unwrap();
    assert_eq!((session.login.as_str(), session.closed_at), (IIN, None));
    assert_eq!(
        store.bind_phone(&binding("s1", mine("a"), "+77010000001", now + Duration::seconds(42))).unwrap(),
        BindOutcome::Bound { account_id: a, created: false, previous: None }
    );
    assert_eq!(store.current_binding(a).unwrap().unwrap().service_seconds, 42, "from the code to the binding");
    assert_eq!(
        store.bind_phone(&binding("s1", mine("a"), "+77010000001", now)).unwrap(),
        BindOutcome::SessionClosed,
        "single use"
    );
    // Another account cannot have the number, neither a code nor a binding.
    assert_eq!(
        store.issue_phone_code(&code("s2", Some(c), OTHER_IIN, "+77010000001", now), now).unwrap(),
        CodeIssue::PhoneTaken
    );
    store.issue_phone_code(&code("s3", Some(c), OTHER_IIN, "+77010000002", now), now).unwrap();
    assert_eq!(store.bind_phone(&binding("s3", mine("c"), "+77010000001", now)).unwrap(), BindOutcome::PhoneTaken);
    // A change ends the old binding and queues the notice to the old number.
    let later = now + Duration::minutes(2);
    store.issue_phone_code(&code("s4", Some(a), IIN, "+77010000003", later), later).unwrap();
    assert!(matches!(
        store.bind_phone(&binding("s4", mine("a"), "+77010000003", later)).unwrap(),
        BindOutcome::Bound { previous: Some(ref p), .. } if p == "+77010000001"
    ));
    let history = store.binding_history(a).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].ended_at, history[1].end_reason.as_deref()), (None, Some("changed")));
    assert_eq!(history[1].ended_at, Some(later));
    assert_eq!(store.current_binding(a).unwrap().unwrap().phone, "+77010000003");
    assert_eq!(store.account_with_phone("+77010000003").unwrap(), Some(a));
    assert_eq!(store.account_with_phone("+77010000001").unwrap(), None, "free again");
    let outbox = store.sms_outbox(10).unwrap();
    assert!(outbox.iter().any(|m| m.to == "+77010000001" && m.purpose == "phone-notice"));
}

pub fn codes_are_throttled_per_login_and_number(b: &impl Backend) {
    let store = b.store();
    let now = now();
    let at = |s: i64| now + Duration::seconds(s);
    let phone = "+77010000001";
    assert_eq!(store.issue_phone_code(&code("s1", None, IIN, phone, at(0)), at(0)).unwrap(), CodeIssue::Queued);
    assert_eq!(
        store.issue_phone_code(&code("s2", None, IIN, phone, at(30)), at(30)).unwrap(),
        CodeIssue::Throttled { retry_at: at(60) },
        "too soon after the last code"
    );
    assert_eq!(
        store.issue_phone_code(&code("s2", None, OTHER_IIN, phone, at(30)), at(30)).unwrap(),
        CodeIssue::Throttled { retry_at: at(60) },
        "the number is limited too"
    );
    assert!(store.phone_session("s2").unwrap().is_none(), "nothing stored when throttled");
    assert_eq!(store.issue_phone_code(&code("s2", None, IIN, phone, at(61)), at(61)).unwrap(), CodeIssue::Queued);
    assert!(store.phone_session("s1").unwrap().unwrap().closed_at.is_some(), "a new code closes the earlier session");
    assert_eq!(store.issue_phone_code(&code("s3", None, IIN, phone, at(122)), at(122)).unwrap(), CodeIssue::Queued);
    assert_eq!(
        store.issue_phone_code(&code("s4", None, IIN, "+77010000002", at(185)), at(185)).unwrap(),
        CodeIssue::Throttled { retry_at: at(3600) },
        "three codes in the hour"
    );
}

pub fn the_counter_binds_for_a_person_without_an_account(b: &impl Backend) {
    let store = b.store();
    let now = now();
    store.issue_phone_code(&code("s1", None, IIN, "+77010000001", now), now).unwrap();
    let BindOutcome::Bound { account_id, created: true, previous: None } = store
        .bind_phone(&binding("s1", BindingAccount::CreateUnlessExists(new_account(IIN)), "+77010000001", now))
        .unwrap()
    else {
        panic!("bound with a new account")
    };
    assert_eq!(store.phone_session("s1").unwrap().unwrap().account_id, Some(account_id));
    store
        .issue_phone_code(&code("s2", Some(account_id), IIN, "+77010000001", now), now + Duration::minutes(1))
        .unwrap();
    assert_eq!(
        store
            .bind_phone(&binding("s2", BindingAccount::CreateUnlessExists(new_account(IIN)), "+77010000001", now))
            .unwrap(),
        BindOutcome::Bound { account_id, created: false, previous: None },
        "the account exists by then: the same number again, no notice"
    );
}

pub fn the_phone_journal_is_append_only(b: &impl Backend) {
    let store = b.store();
    let attempts: Vec<PhoneAttempt> = ["code-sent", "refused", "bound"]
        .iter()
        .enumerate()
        .map(|(i, outcome)| PhoneAttempt {
            at: now() + Duration::seconds(i as i64),
            login: IIN.into(),
            phone: Some("+77010000001".into()),
            channel: Channel::Counter,
            outcome: (*outcome).into(),
            reason: if *outcome == "refused" { "wrong-otp".into() } else { String::new() },
            actor: Some("operator".into()),
            session_id: Some("s1".into()),
            client_address: Some("10.0.0.1".into()),
        })
        .collect();
    for a in &attempts {
        store.journal_phone_attempt(a).unwrap();
    }
    assert_eq!(store.phone_attempts(Some(IIN), 10).unwrap(), attempts, "every field, in order");
    assert!(store.phone_attempts(Some(OTHER_IIN), 10).unwrap().is_empty());
    assert!(b.raw("UPDATE phone_attempts SET reason = ''").is_err());
    assert!(b.raw("DELETE FROM phone_attempts").is_err());
    assert_eq!(store.phone_attempts(None, 10).unwrap(), attempts);
}
