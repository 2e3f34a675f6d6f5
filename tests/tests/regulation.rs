//! The regulation's clock with an injected clock: the card flow's own steps and the counter's
//! 20 minutes, the operator's time from the presentation of the form (not from the online
//! registration), budgets and holidays from `[regulation]`, and the open applications already
//! overdue (`ca report sla --open`).

use std::sync::Mutex;

use ca_core::clock::Clock;
use ca_core::ra::application::{ActorRole, ApplicationKind as K, ApplicationState as S, Step};
use ca_core::ra::budget::Budget;
use ca_core::ra::counter::CounterSteps;
use ca_core::ra::regulation::{overdue, Regulation, Timing};
use ca_core::ra::store::{NewEvent, RaStore, Transition};
use ca_core::ra::{
    ApplicationEvent, Expectation, RaError, RegistrationAuthority, SignatureCheck, SignatureProblem, SignedPayload,
    SignerFacts, StoreRegistry, Submission,
};
use ca_core::store::SqliteStore;
use fixtures::TestCa;
use hsm::KeyAlgorithm;
use time::{Duration, OffsetDateTime};

/// No step here is signed.
struct NoSignatures;

impl SignatureCheck for NoSignatures {
    fn check(&self, _: &SignedPayload, _: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        Err(SignatureProblem::Invalid("no signature in these tests".into()))
    }
}

struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

struct Env {
    ca: TestCa,
    clock: TestClock,
}

impl Env {
    /// Monday 2026-03-16, 10:00 in Astana.
    fn new() -> Self {
        let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
        let import = ca_core::ra::csv::parse(&fixtures::registry::registry_csv()).unwrap();
        ca.store.import_registry(&import, "test").unwrap();
        Self { ca, clock: TestClock(Mutex::new(time::macros::datetime!(2026-03-16 05:00 UTC))) }
    }
}

macro_rules! ra {
    ($env:expr) => {{
        let registry = Box::leak(Box::new(StoreRegistry(&$env.ca.store)));
        RegistrationAuthority {
            store: &$env.ca.store,
            certificates: &$env.ca.store,
            registry,
            signatures: &NoSignatures,
            clock: &$env.clock,
            install_url: "https://pki.test.kz",
            install_ttl: time::Duration::hours(72),
        }
    }};
}

fn submission(kind: ca_core::ra::ApplicationKind, n: u32) -> Submission {
    Submission {
        channel: ca_core::ra::Channel::ServiceProvider,
        kind,
        iin: fixtures::person(n).iin,
        bin: None,
        serials: Vec::new(),
        revocation_reason: None,
        signature: None,
        operator: (kind == K::RevokeCounter).then(|| "operator-1".to_owned()),
        email: None,
        csrs: None,
        roles: Vec::new(),
    }
}

fn events(store: &SqliteStore, n: &ca_core::ra::ApplicationNumber) -> Vec<ApplicationEvent> {
    store.application_events(Some(n)).unwrap()
}

fn event(events: &[ApplicationEvent], step: Step) -> &ApplicationEvent {
    events.iter().find(|e| e.step == step).unwrap_or_else(|| panic!("no {step} in {events:?}"))
}

/// A step the system records without the RA (the claim and the writing of a card are tested
/// with a real token in `card_resume.rs`; here only their times matter).
fn system_step(env: &Env, n: &ca_core::ra::ApplicationNumber, from: S, to: S, step: Step) {
    let transition = Transition {
        from: vec![from],
        to,
        event: NewEvent {
            step,
            actor_role: ActorRole::Operator,
            actor: "operator-1".into(),
            signer_serial: None,
            at: env.clock.now(),
            details: serde_json::Value::Null,
        },
        serials: None,
        refusal: None,
        notice: None,
        token: None,
    };
    env.ca.store.transition(n, &transition).unwrap();
}

#[test]
fn the_card_flow_times_each_step_and_the_whole_stay_at_the_counter() {
    let env = Env::new();
    let ra = ra!(env);
    let arrived = env.clock.now();
    // Identification took 2 minutes (budget 1), the forms 4 (budget 5), the registration 1 (2).
    env.clock.advance(Duration::minutes(7));
    let steps = CounterSteps {
        operator: "operator-1".into(),
        arrived_at: arrived,
        identified_at: Some(arrived + Duration::minutes(2)),
        form_filled_at: Some(arrived + Duration::minutes(6)),
    };
    let a = ra.submit_at_counter(&submission(K::Card, 70), &steps).unwrap().application().clone();
    assert_eq!(a.state, S::AwaitingOperator);
    let e = events(&env.ca.store, &a.number);
    let timed: Vec<(Step, i64, bool)> =
        e.iter().map(|e| (e.step, (e.at - e.started_at).whole_minutes(), e.breached)).collect();
    assert_eq!(
        timed,
        [(Step::Present, 0, false), (Step::Identify, 2, true), (Step::FillForm, 4, false), (Step::Register, 1, false)]
    );
    assert_eq!(event(&e, Step::Identify).budget, Some(Budget::Minutes(1)));

    // Steps out of order are refused and change nothing.
    assert!(matches!(ra.counter_step(&a.number, Step::ApplicantSign, "operator-1"), Err(RaError::Invalid(_))));
    env.clock.advance(Duration::seconds(50));
    ra.counter_step(&a.number, Step::EnterPin, "operator-1").unwrap();
    env.clock.advance(Duration::seconds(90)); // budget 1 min
    ra.counter_step(&a.number, Step::ApplicantSign, "operator-1").unwrap();
    env.clock.advance(Duration::minutes(3));
    system_step(&env, &a.number, S::AwaitingOperator, S::Confirmed, Step::OperatorVerifyConfirm);
    system_step(&env, &a.number, S::Confirmed, S::Issuing, Step::Claim);
    env.clock.advance(Duration::minutes(4));
    system_step(&env, &a.number, S::Issuing, S::Issued, Step::Issue);
    let e = events(&env.ca.store, &a.number);
    assert!(!event(&e, Step::EnterPin).breached);
    assert!(event(&e, Step::ApplicantSign).breached, "90 s against 1 min");
    let confirm = event(&e, Step::OperatorVerifyConfirm);
    assert_eq!((confirm.budget, confirm.breached), (Some(Budget::Minutes(4)), false));
    let write = event(&e, Step::Issue);
    assert_eq!((write.budget, write.breached), (Some(Budget::Minutes(4)), false));
    // 7 + 0:50 + 1:30 + 3 + 4 = 16 min 20 s at the counter: within 20.
    let total = event(&e, Step::CounterTotal);
    assert_eq!((total.started_at, total.at - total.started_at), (arrived, Duration::seconds(16 * 60 + 20)));
    assert_eq!((total.budget, total.breached), (Some(Budget::Minutes(20)), false));

    // A slower visit: the writing takes 8 minutes, and the stay at the counter 21.
    let b = ra
        .submit_at_counter(
            &submission(K::Card, 71),
            &CounterSteps { arrived_at: env.clock.now() - Duration::minutes(12), ..steps.clone() },
        )
        .unwrap_err();
    assert!(matches!(b, RaError::Invalid(_)), "identification before the arrival: {b:?}");
    let arrived = env.clock.now();
    env.clock.advance(Duration::minutes(7));
    let steps = CounterSteps {
        arrived_at: arrived,
        identified_at: Some(arrived + Duration::minutes(1)),
        form_filled_at: Some(arrived + Duration::minutes(6)),
        ..steps
    };
    let b = ra.submit_at_counter(&submission(K::Card, 71), &steps).unwrap().application().clone();
    for step in [Step::EnterPin, Step::ApplicantSign] {
        env.clock.advance(Duration::minutes(1));
        ra.counter_step(&b.number, step, "operator-1").unwrap();
    }
    env.clock.advance(Duration::minutes(4));
    system_step(&env, &b.number, S::AwaitingOperator, S::Confirmed, Step::OperatorVerifyConfirm);
    system_step(&env, &b.number, S::Confirmed, S::Issuing, Step::Claim);
    env.clock.advance(Duration::minutes(8));
    system_step(&env, &b.number, S::Issuing, S::Issued, Step::Issue);
    let e = events(&env.ca.store, &b.number);
    let breached: Vec<Step> = e.iter().filter(|e| e.breached).map(|e| e.step).collect();
    assert_eq!(breached, [Step::Issue, Step::CounterTotal]);
    let total = event(&e, Step::CounterTotal);
    assert_eq!(total.at - total.started_at, Duration::minutes(21));
    assert!(total.breached);
}

#[test]
fn the_operators_time_runs_from_the_presentation_of_the_form() {
    let env = Env::new();
    let ra = ra!(env);
    // Registered online on Monday; the applicant comes on Tuesday.
    let a = ra.submit(&submission(K::NewIndividual, 72)).unwrap().application().clone();
    let timing = Timing::default();
    let open = |now| {
        overdue(&timing, &env.ca.store.application(&a.number).unwrap().unwrap(), &events(&env.ca.store, &a.number), now)
    };
    assert_eq!(open(env.clock.now() + Duration::days(3)), None, "no clock runs until the form is presented");
    env.clock.advance(Duration::hours(23));
    ra.present(&a.number, "operator-1").unwrap();
    env.clock.advance(Duration::minutes(12));
    ra.verify_identity(&a.number, "operator-1").unwrap();
    let e = events(&env.ca.store, &a.number);
    let verify = event(&e, Step::OperatorVerify);
    assert_eq!((verify.at - verify.started_at, verify.breached), (Duration::minutes(12), false));

    // Presented and left waiting: overdue once the 20 minutes are over.
    let b = ra.submit(&submission(K::NewIndividual, 73)).unwrap().application().clone();
    env.clock.advance(Duration::hours(30));
    ra.present(&b.number, "operator-2").unwrap();
    let b_now = env.ca.store.application(&b.number).unwrap().unwrap();
    let b_events = events(&env.ca.store, &b.number);
    assert_eq!(overdue(&timing, &b_now, &b_events, env.clock.now() + Duration::minutes(19)), None);
    let late = overdue(&timing, &b_now, &b_events, env.clock.now() + Duration::minutes(21)).unwrap();
    assert_eq!((late.waiting_for, late.budget), (Step::OperatorVerify, Budget::Minutes(20)));
    env.clock.advance(Duration::minutes(25));
    ra.verify_identity(&b.number, "operator-2").unwrap();
    assert!(event(&events(&env.ca.store, &b.number), Step::OperatorVerify).breached);

    // Without a recorded presentation the operator's step is not timed from the registration.
    let c = ra.submit(&submission(K::NewIndividual, 74)).unwrap().application().clone();
    env.clock.advance(Duration::days(1));
    ra.verify_identity(&c.number, "operator-1").unwrap();
    let verify = event(&events(&env.ca.store, &c.number), Step::OperatorVerify).clone();
    assert_eq!((verify.started_at, verify.breached), (verify.at, false));
    // Only applications presented at a counter are presented.
    let counter = ra.submit(&submission(K::RevokeCounter, 75)).unwrap().application().clone();
    assert!(matches!(ra.present(&counter.number, "operator-1"), Err(RaError::Invalid(_))));
}

#[test]
fn budgets_and_holidays_come_from_the_configuration() {
    let env = Env::new();
    let section = Regulation {
        budgets: [
            ("revoke-counter.operator-verify-confirm".to_owned(), "30 min".to_owned()),
            ("revoke".to_owned(), "2 working days".to_owned()),
        ]
        .into(),
        holidays: vec!["2026-03-17".into()],
        ..Regulation::default()
    };
    env.ca.store.set_timing(section.timing().unwrap());
    let ra = ra!(env);
    let a = ra.submit(&submission(K::RevokeCounter, 76)).unwrap().application().clone();
    let a_now = || env.ca.store.application(&a.number).unwrap().unwrap();
    let timing = env.ca.store.timing();
    // 25 minutes: within the configured 30 (the document says 20).
    assert_eq!(
        overdue(&timing, &a_now(), &events(&env.ca.store, &a.number), env.clock.now() + Duration::minutes(25)),
        None
    );
    env.clock.advance(Duration::minutes(25));
    system_step(&env, &a.number, S::AwaitingOperator, S::Confirmed, Step::OperatorVerifyConfirm);
    let e = events(&env.ca.store, &a.number);
    assert_eq!(event(&e, Step::OperatorVerifyConfirm).budget, Some(Budget::Minutes(30)));
    assert!(!event(&e, Step::OperatorVerifyConfirm).breached);
    // Confirmed on Monday; Tuesday is a holiday here: two working days run to Thursday.
    let overdue_at =
        |days| overdue(&timing, &a_now(), &events(&env.ca.store, &a.number), env.clock.now() + Duration::days(days));
    assert_eq!(overdue_at(2), None, "Wednesday: one working day gone");
    let late = overdue_at(4).unwrap();
    assert_eq!((late.waiting_for, late.budget), (Step::Revoke, Budget::WorkingDays(2)));
    assert_eq!(late.deadline, env.clock.now() + Duration::days(3));
}
