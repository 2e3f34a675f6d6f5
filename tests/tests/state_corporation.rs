//! The State Corporation (ЦОН) channel at the RA, with an injected clock: consent missing →
//! refused and nothing stored; an incomplete package → a numbered receipt of refusal and no
//! application; a complete one → registered with a receipt of acceptance, the representative in
//! the registration event; confirmation by a State Corporation operator only (and he cannot
//! confirm another channel's application); its budgets — issuance within one working day of the
//! confirmation across a weekend and a holiday, the counter's 20 minutes, the 3-minute card step.

use std::sync::Mutex;

use ca_core::clock::Clock;
use ca_core::identity::KeyType;
use ca_core::profile::Role;
use ca_core::ra::application::{ActorRole, ApplicationKind as K, ApplicationState as S, Channel, Step};
use ca_core::ra::budget::Budget;
use ca_core::ra::counter::CounterSteps;
use ca_core::ra::receipt::ReceiptKind;
use ca_core::ra::state_corporation::{Consent, Document, Intake, PowerOfAttorney, Representative, Taken, NO_CONSENT};
use ca_core::ra::store::{NewEvent, RaStore, Transition};
use ca_core::ra::{
    ApplicationEvent, ApplicationNumber, Expectation, RaError, RegistrationAuthority, SignatureCheck, SignatureProblem,
    SignedPayload, SignerFacts, StoreRegistry, Submission,
};
use ca_core::serial::SerialNumber;
use fixtures::TestCa;
use hsm::KeyAlgorithm;
use time::{Duration, OffsetDateTime};

/// A signer with `roles` (the CMS itself is checked in the CLI and HTTP tests).
struct SignerWith(Vec<Role>);

impl SignatureCheck for SignerWith {
    fn check(&self, _: &SignedPayload, _: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        Ok(SignerFacts {
            serial: SerialNumber::random(),
            iin: Some(fixtures::person(300).iin),
            bin: None,
            roles: self.0.clone(),
            key_type: Some(KeyType::Sign),
            signing_time: None,
            request_id: None,
            certificate_not_after: None,
        })
    }
}

struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
    fn set(&self, t: OffsetDateTime) {
        *self.0.lock().unwrap() = t;
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
    /// Thursday 2026-03-19, 10:00 in Astana (Nauryz is 21–23 March: Saturday to Monday).
    fn new() -> Self {
        let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
        let import = ca_core::ra::csv::parse(&fixtures::registry::registry_csv()).unwrap();
        ca.store.import_registry(&import, "test").unwrap();
        Self { ca, clock: TestClock(Mutex::new(time::macros::datetime!(2026-03-19 05:00 UTC))) }
    }

    fn ra<'a>(&'a self, registry: &'a StoreRegistry<'a>, check: &'a dyn SignatureCheck) -> RegistrationAuthority<'a> {
        RegistrationAuthority {
            store: &self.ca.store,
            certificates: &self.ca.store,
            registry,
            signatures: check,
            clock: &self.clock,
            install_url: "https://pki.test.kz",
            install_ttl: Duration::hours(72),
        }
    }

    fn events(&self, n: &ApplicationNumber) -> Vec<ApplicationEvent> {
        self.ca.store.application_events(Some(n)).unwrap()
    }

    /// A step the worker records (the issuance itself is tested with real keys in the CLI test).
    fn system_step(&self, n: &ApplicationNumber, from: S, to: S, step: Step) {
        let event = NewEvent {
            step,
            actor_role: ActorRole::System,
            actor: "worker".into(),
            signer_serial: None,
            at: self.clock.now(),
            details: serde_json::Value::Null,
        };
        let t = Transition { from: vec![from], to, event, serials: None, refusal: None, notice: None, token: None };
        self.ca.store.transition(n, &t).unwrap();
    }
}

fn submission(kind: ca_core::ra::ApplicationKind, n: u32, channel: Channel) -> Submission {
    Submission {
        channel,
        kind,
        iin: fixtures::person(n).iin,
        bin: None,
        serials: Vec::new(),
        revocation_reason: None,
        signature: None,
        operator: (kind == K::RevokeCounter).then(|| "con-operator-1".to_owned()),
        email: Some(format!("applicant{n}@mail.example.test")),
        csrs: None,
        roles: Vec::new(),
    }
}

fn intake(env: &Env, documents: &[Document]) -> Intake {
    Intake {
        operator: "con-operator-1".into(),
        consent: Some(Consent { taken_by: "con-operator-1".into(), taken_at: env.clock.now(), scan_sha256: None }),
        representative: None,
        documents: documents.to_vec(),
        steps: None,
    }
}

fn event(events: &[ApplicationEvent], step: Step) -> &ApplicationEvent {
    events.iter().find(|e| e.step == step).unwrap_or_else(|| panic!("no {step} in {events:?}"))
}

#[test]
fn consent_and_the_package_are_checked_before_anything_is_registered() {
    let env = Env::new();
    let registry = StoreRegistry(&env.ca.store);
    let nobody = SignerWith(vec![]);
    let ra = env.ra(&registry, &nobody);
    let full = [Document::IdentityDocument, Document::ApplicationForm];
    let s = submission(K::NewIndividual, 80, Channel::StateCorporation);

    // No consent: refused with the document's wording, nothing stored, nothing mailed.
    let no_consent = Intake { consent: None, ..intake(&env, &full) };
    match ra.submit_at_state_corporation(&s, &no_consent) {
        Err(RaError::Refused(r)) => assert_eq!(r.to_string(), NO_CONSENT),
        other => panic!("refused without consent: {other:?}"),
    }
    assert!(env.ca.store.applications(&Default::default()).unwrap().is_empty());
    assert!(env.ca.store.outbox(10).unwrap().is_empty());
    // A State Corporation application cannot bypass the counter's checks.
    assert!(matches!(ra.submit(&s), Err(RaError::Invalid(_))));
    // Nor come through a channel that does not serve its kind.
    let online_card = submission(K::Card, 80, Channel::Online);
    assert!(matches!(ra.submit(&online_card), Err(RaError::Invalid(_))));

    // A representative without his papers: a numbered receipt of refusal, no application.
    let representative = Representative {
        iin: fixtures::person(81).iin,
        name: "Ахметов Асхат Серикович".into(),
        power_of_attorney: PowerOfAttorney {
            number: "НД-2026-117".into(),
            date: time::macros::date!(2026 - 03 - 02),
            issuer: "нотариус г. Астаны Иванова И.И.".into(),
        },
    };
    let represented = Intake { representative: Some(representative.clone()), ..intake(&env, &full) };
    let Taken::Incomplete(refusal) = ra.submit_at_state_corporation(&s, &represented).unwrap() else {
        panic!("an incomplete package is refused");
    };
    assert_eq!(refusal.number.as_str(), "R-2026-000001");
    assert_eq!(refusal.details.kind, ReceiptKind::Refusal);
    assert_eq!(refusal.details.missing, [Document::RepresentativeIdentity, Document::PowerOfAttorney]);
    assert!(env.ca.store.applications(&Default::default()).unwrap().is_empty());
    let text = refusal.text();
    assert!(text.contains("РАСПИСКА № R-2026-000001\nоб отказе в приеме документов"), "{text}");
    assert!(text.contains("документ, удостоверяющий личность представителя"), "{text}");
    assert_eq!(env.ca.store.receipt(&refusal.number).unwrap().as_ref(), Some(&refusal));

    // With the papers: registered, with a receipt of acceptance numbered next.
    let papers = [&full[..], &[Document::RepresentativeIdentity, Document::PowerOfAttorney]].concat();
    let complete = Intake { documents: papers, ..represented };
    let Taken::Registered { registered, receipt } = ra.submit_at_state_corporation(&s, &complete).unwrap() else {
        panic!("a complete package is registered");
    };
    let a = registered.submitted.application().clone();
    let receipt = receipt.expect("a receipt of acceptance");
    assert_eq!((receipt.number.as_str(), receipt.application.as_ref()), ("R-2026-000002", Some(&a.number)));
    assert_eq!((a.channel, a.state), (Channel::StateCorporation, S::AwaitingOperator));
    let paperwork = a.paperwork.clone().unwrap();
    assert_eq!(paperwork.receipt.as_ref(), Some(&receipt.number));
    assert_eq!(paperwork.representative.as_ref(), Some(&representative));
    assert_eq!(paperwork.consent.unwrap().taken_by, "con-operator-1");
    // The representative is in the registration event; the application is still the applicant's.
    let register = event(&env.events(&a.number), Step::Register).clone();
    assert_eq!(register.details["state_corporation"]["representative"]["iin"], representative.iin.as_string());
    assert_eq!(a.iin, fixtures::person(80).iin);
    // Both receipts and the application form went to the applicant's address.
    let mailed = env.ca.store.outbox(10).unwrap();
    let subjects: Vec<&str> = mailed.iter().map(|m| m.subject.as_str()).collect();
    assert!(subjects.contains(&"Расписка № R-2026-000001 об отказе в приеме документов"), "{subjects:?}");
    assert!(subjects.contains(&"Расписка № R-2026-000002 о приеме документов"), "{subjects:?}");
    assert!(mailed.iter().all(|m| m.to == "applicant80@mail.example.test"));
}

#[test]
fn only_a_state_corporation_operator_confirms_its_applications() {
    let env = Env::new();
    let registry = StoreRegistry(&env.ca.store);
    let nobody = SignerWith(vec![]);
    let plain = env.ra(&registry, &nobody);
    let full = [Document::IdentityDocument, Document::RevocationForm];
    let con = submission(K::RevokeCounter, 82, Channel::StateCorporation);
    let Taken::Registered { registered, .. } = plain.submit_at_state_corporation(&con, &intake(&env, &full)).unwrap()
    else {
        panic!("registered");
    };
    let con = registered.submitted.application().number.clone();
    let provider = plain.submit(&submission(K::RevokeCounter, 83, Channel::ServiceProvider)).unwrap();
    let provider = provider.application().number.clone();

    let ca_operator = SignerWith(vec![Role::Individual, Role::CaOperator]);
    let con_operator = SignerWith(vec![Role::Individual, Role::StateCorporationOperator]);
    // A CA operator cannot confirm the State Corporation's application, nor its operator the
    // service provider's; neither refusal touches the application.
    for (ra, n) in [(env.ra(&registry, &ca_operator), &con), (env.ra(&registry, &con_operator), &provider)] {
        match ra.confirm(n, "someone", b"cms") {
            Err(RaError::Refused(r)) => assert!(r.to_string().contains("has none of the roles"), "{r}"),
            other => panic!("refused: {other:?}"),
        }
        assert_eq!(env.ca.store.application(n).unwrap().unwrap().state, S::AwaitingOperator);
    }
    let confirmed = env.ra(&registry, &con_operator).confirm(&con, "con-operator-1", b"cms").unwrap();
    assert_eq!(confirmed.application().state, S::Confirmed);
    let confirmed = env.ra(&registry, &ca_operator).confirm(&provider, "operator-1", b"cms").unwrap();
    assert_eq!(confirmed.application().state, S::Confirmed);
}

#[test]
fn issuance_is_due_a_working_day_after_the_confirmation_across_a_weekend_and_a_holiday() {
    let env = Env::new();
    let registry = StoreRegistry(&env.ca.store);
    let con_operator = SignerWith(vec![Role::StateCorporationOperator]);
    let ra = env.ra(&registry, &con_operator);
    let full = [Document::IdentityDocument, Document::ApplicationForm];
    // Friday 20 March, 16:00 in Astana: the counter takes it (arrived 12 minutes earlier) and
    // its operator confirms.
    env.clock.set(time::macros::datetime!(2026-03-20 11:00 UTC));
    let arrived = env.clock.now() - Duration::minutes(12);
    let steps = CounterSteps {
        operator: "con-operator-1".into(),
        arrived_at: arrived,
        identified_at: Some(arrived + Duration::minutes(3)),
        form_filled_at: None,
    };
    let mut numbers = Vec::new();
    for n in [84, 85] {
        let with_steps = Intake { steps: Some(steps.clone()), ..intake(&env, &full) };
        let s = submission(K::NewIndividual, n, Channel::StateCorporation);
        let Taken::Registered { registered, .. } = ra.submit_at_state_corporation(&s, &with_steps).unwrap() else {
            panic!("registered");
        };
        numbers.push(registered.submitted.application().number.clone());
    }
    env.clock.advance(Duration::minutes(5));
    for n in &numbers {
        ra.confirm(n, "con-operator-1", b"cms").unwrap();
        env.system_step(n, S::Confirmed, S::Issuing, Step::Claim);
    }
    let confirm = event(&env.events(&numbers[0]), Step::OperatorVerifyConfirm).clone();
    assert_eq!((confirm.budget, confirm.breached), (Some(Budget::Minutes(16)), false));
    // The stay at the counter, from the arrival to the confirmation: 17 minutes of 20.
    let total = event(&env.events(&numbers[0]), Step::CounterTotal).clone();
    assert_eq!((total.at - total.started_at, total.breached), (Duration::minutes(17), false));

    // Saturday, Sunday and Monday (Nauryz) are days off: issued on Tuesday 15:00, no breach
    // (a service provider's 7 hours would have run out on Friday night).
    env.clock.set(time::macros::datetime!(2026-03-24 10:00 UTC));
    env.system_step(&numbers[0], S::Issuing, S::Issued, Step::Issue);
    let issue = event(&env.events(&numbers[0]), Step::Issue).clone();
    assert_eq!(issue.budget, Some(Budget::WorkingDays(1)));
    assert_eq!(issue.deadline, Some(time::macros::datetime!(2026-03-24 11:05 UTC)));
    assert!(!issue.breached);
    // Issued on Wednesday: past the working day.
    env.clock.set(time::macros::datetime!(2026-03-25 06:00 UTC));
    env.system_step(&numbers[1], S::Issuing, S::Issued, Step::Issue);
    assert!(event(&env.events(&numbers[1]), Step::Issue).breached);
}

#[test]
fn the_card_step_at_a_state_corporation_counter_has_three_minutes() {
    let env = Env::new();
    let registry = StoreRegistry(&env.ca.store);
    let nobody = SignerWith(vec![]);
    let ra = env.ra(&registry, &nobody);
    let arrived = env.clock.now();
    env.clock.advance(Duration::minutes(8));
    let steps = CounterSteps {
        operator: "con-operator-1".into(),
        arrived_at: arrived,
        identified_at: Some(arrived + Duration::minutes(1)),
        form_filled_at: Some(arrived + Duration::minutes(6)),
    };
    let full = [Document::IdentityDocument, Document::CardOrSim];
    let mut timed = Vec::new();
    for (n, minutes) in [(86, 3), (87, 4)] {
        let with_steps = Intake { steps: Some(steps.clone()), ..intake(&env, &full) };
        let s = submission(K::Card, n, Channel::StateCorporation);
        let Taken::Registered { registered, .. } = ra.submit_at_state_corporation(&s, &with_steps).unwrap() else {
            panic!("registered");
        };
        let number = registered.submitted.application().number.clone();
        ra.counter_step(&number, Step::EnterPin, "con-operator-1").unwrap();
        env.clock.advance(Duration::minutes(minutes));
        ra.counter_step(&number, Step::ApplicantSign, "con-operator-1").unwrap();
        let sign = event(&env.events(&number), Step::ApplicantSign).clone();
        timed.push((sign.budget, sign.breached));
    }
    // Registered, printed and signed in 3 minutes: within; in 4: a breach.
    assert_eq!(timed, [(Some(Budget::Minutes(3)), false), (Some(Budget::Minutes(3)), true)]);
}
