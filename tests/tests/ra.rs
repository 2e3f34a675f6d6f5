//! The registration authority end to end against SQLite: every flow of regulation 004, every
//! registry status code and refusal with its exact message, signatures that do not fit, the
//! race of two operators, notices that survive a crash, and the audit journal intact after all.

use std::sync::Mutex;

use ca_core::clock::Clock;
use ca_core::identity::{Bin, Iin, KeyType};
use ca_core::issuer::Issuer;
use ca_core::profile::Role;
use ca_core::ra::application::{ApplicationKind as K, ApplicationNumber, ApplicationState as S, Step};
use ca_core::ra::outbox::{send_due, Maildir, Transport};
use ca_core::ra::refusal::{message_excluded, MESSAGE_DECEASED, MESSAGE_SPECIAL_REGISTER};
use ca_core::ra::store::{OutboxMessage, RaStore, Submitted};
use ca_core::ra::{
    Application, Confirmed, Expectation, KeyStoreDelivery, NothingDelivered, RaError, RegistrationAuthority,
    SignatureCheck, SignatureProblem, SignedPayload, SignerFacts, Statement, StoreRegistry, Submission,
};
use ca_core::serial::SerialNumber;
use ca_core::store::{CertificateStatus, SqliteStore, Store};
use fixtures::registry as reg;
use fixtures::TestCa;
use hsm::{KeyAlgorithm, SoftwareKey};
use time::{Duration, OffsetDateTime};

// ---- test-only signature checker -------------------------------------------------------------

/// TEST ONLY: decodes `TEST-SIGNATURE:` + JSON instead of CMS. The real checker is the CMS
/// verifier of `ca_core::cms`; this one lets the tests say who "signed" and what.
struct FakeSignatureCheck;

#[derive(Clone)]
struct TestSigner {
    serial: SerialNumber,
    iin: Option<Iin>,
    bin: Option<Bin>,
    roles: Vec<Role>,
    key: KeyType,
    /// `expired` / `revoked`: what the real checker would find about the signer.
    problem: Option<&'static str>,
}

impl TestSigner {
    fn person(n: u32, key: KeyType) -> Self {
        let iin = fixtures::person(n).iin;
        Self {
            serial: SerialNumber::random(),
            iin: Some(iin),
            bin: None,
            roles: vec![Role::Individual],
            key,
            problem: None,
        }
    }

    fn operator(n: u32) -> Self {
        Self { roles: vec![Role::Individual, Role::CaOperator], ..Self::person(n, KeyType::Sign) }
    }

    fn sign(&self, content: &[u8]) -> Vec<u8> {
        let json = serde_json::json!({
            "content": String::from_utf8_lossy(content),
            "serial": self.serial.to_hex(),
            "iin": self.iin.map(|i| i.as_string()),
            "bin": self.bin.map(|b| b.as_string()),
            "roles": self.roles.iter().map(|r| r.name()).collect::<Vec<_>>(),
            "key": if self.key == KeyType::Sign { "SIGN" } else { "AUTH" },
            "problem": self.problem,
        });
        format!("TEST-SIGNATURE:{json}").into_bytes()
    }
}

impl SignatureCheck for FakeSignatureCheck {
    fn check(&self, signed: &SignedPayload, _expected: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        let text =
            std::str::from_utf8(&signed.cms).map_err(|_| SignatureProblem::Invalid("not a test token".into()))?;
        let json =
            text.strip_prefix("TEST-SIGNATURE:").ok_or_else(|| SignatureProblem::Invalid("not a test token".into()))?;
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| SignatureProblem::Invalid(e.to_string()))?;
        if v["content"].as_str().map(str::as_bytes) != Some(signed.content.as_slice()) {
            return Err(SignatureProblem::ContentMismatch);
        }
        let serial: SerialNumber = v["serial"].as_str().unwrap().parse().unwrap();
        match v["problem"].as_str() {
            Some("expired") => return Err(SignatureProblem::Expired(serial)),
            Some("revoked") => return Err(SignatureProblem::Revoked(serial)),
            _ => {}
        }
        Ok(SignerFacts {
            serial,
            iin: v["iin"].as_str().map(|s| s.parse().unwrap()),
            bin: v["bin"].as_str().map(|s| s.parse().unwrap()),
            roles: v["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().parse().unwrap()).collect(),
            key_type: Some(if v["key"] == "SIGN" { KeyType::Sign } else { KeyType::Auth }),
            signing_time: None,
            request_id: None,
            certificate_not_after: None,
        })
    }
}

// ---- harness ---------------------------------------------------------------------------------

/// A clock the test moves forward.
struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    fn new() -> Self {
        Self(Mutex::new(ca_core::clock::SystemClock.now()))
    }
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
    fn new() -> Self {
        let ca = TestCa::new(KeyAlgorithm::P256, KeyAlgorithm::P256);
        let import = ca_core::ra::csv::parse(&reg::registry_csv()).unwrap();
        ca.store.import_registry(&import, "test").unwrap();
        Self { ca, clock: TestClock::new() }
    }

    fn ra_on<'a>(&'a self, store: &'a SqliteStore, registry: &'a StoreRegistry<'a>) -> RegistrationAuthority<'a> {
        RegistrationAuthority {
            store,
            certificates: store,
            registry,
            signatures: &FakeSignatureCheck,
            clock: &self.clock,
            install_url: "https://pki.test.kz",
            install_ttl: time::Duration::hours(72),
        }
    }

    fn issuer_on<'a>(&'a self, store: &'a SqliteStore) -> Issuer<'a> {
        Issuer { store, clock: &self.clock, ..self.ca.issuer(&self.clock) }
    }
}

/// `ra!(env)` binds an RA over the environment's own store.
macro_rules! ra {
    ($env:expr) => {{
        let registry = Box::leak(Box::new(StoreRegistry(&$env.ca.store)));
        $env.ra_on(&$env.ca.store, registry)
    }};
}

fn new_app(kind: ca_core::ra::ApplicationKind, n: u32, bin: Option<Bin>) -> Submission {
    Submission {
        channel: ca_core::ra::Channel::ServiceProvider,
        kind,
        iin: fixtures::person(n).iin,
        bin,
        serials: Vec::new(),
        revocation_reason: None,
        signature: None,
        operator: None,
        email: None,
        csrs: None,
        roles: Vec::new(),
    }
}

fn statement(a: &Application, action: &'static str) -> Vec<u8> {
    Statement {
        action,
        number: Some(a.number.clone()),
        kind: a.kind,
        iin: a.iin,
        bin: a.bin,
        serials: a.serials.clone(),
        keys: Vec::new(),
    }
    .canonical()
}

fn submit_statement(s: &Submission) -> Vec<u8> {
    Statement {
        action: "submit",
        number: None,
        kind: s.kind,
        iin: s.iin,
        bin: s.bin,
        serials: s.serials.clone(),
        keys: Vec::new(),
    }
    .canonical()
}

fn keys() -> (SoftwareKey, SoftwareKey) {
    (SoftwareKey::generate(KeyAlgorithm::P256).unwrap(), SoftwareKey::generate(KeyAlgorithm::P256).unwrap())
}

fn issue(
    ra: &RegistrationAuthority<'_>,
    issuer: &Issuer<'_>,
    number: &ApplicationNumber,
) -> Result<ca_core::ra::Executed, RaError> {
    let (a, s) = keys();
    let pk = |k: &SoftwareKey| ca_core::signer::Signer::public_key(k).clone();
    ra.issue(number, issuer, pk(&a), pk(&s), "operator-1", &Handed)
}

/// TEST ONLY: a key-store delivery that always succeeds (the PKCS#12 files and their crash
/// behaviour are tested end to end in `ca-cli/tests/crash.rs`).
struct Handed;

impl KeyStoreDelivery for Handed {
    fn deliver(&self, _: &[ca_core::issuer::IssuedCertificate]) -> Result<(), String> {
        Ok(())
    }
    fn delivered(&self, _: &ca_core::issuer::IssuedCertificate) -> Result<bool, String> {
        Ok(true)
    }
    fn withdraw(&self, _: &ca_core::issuer::IssuedCertificate) -> Result<(), String> {
        Ok(())
    }
    fn location(&self) -> String {
        "test".into()
    }
}

fn refused_message(err: RaError) -> String {
    match err {
        RaError::Refused(r) => r.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn assert_audit_intact(store: &SqliteStore) {
    let v = store.verify_audit().unwrap();
    assert!(v.is_intact(), "{:?}", v.problems);
}

/// A new individual's application, confirmed by an operator and issued.
fn issued_individual(env: &Env, n: u32) -> Application {
    let ra = ra!(env);
    let a = ra.submit(&new_app(K::NewIndividual, n, None)).unwrap().application().clone();
    let op = TestSigner::operator(200);
    ra.confirm(&a.number, "operator-1", &op.sign(&statement(&a, "operator-confirm"))).unwrap();
    issue(&ra, &env.issuer_on(&env.ca.store), &a.number).unwrap().application
}

// ---- registry checks -------------------------------------------------------------------------

#[test]
fn every_registry_status_code_gets_its_exact_message() {
    let env = Env::new();
    let ra = ra!(env);
    let outcome = |n: u32, bin: Option<Bin>| {
        let kind = if bin.is_some() { K::NewEmployee } else { K::NewIndividual };
        let a = ra.submit(&new_app(kind, n, bin)).unwrap().application().clone();
        (a.state, a.refusal.map(|r| r.message))
    };
    assert_eq!(outcome(reg::DECEASED, None), (S::Refused, Some(MESSAGE_DECEASED.to_owned())));
    assert!(MESSAGE_DECEASED.ends_with("в ЦОН (код:9)"));
    for code in 1..=9u8 {
        let mark = if code == 1 { String::new() } else { " - признак исключения ИИН".to_owned() };
        let expected = format!(
            "Невозможно создать учетную запись по введенному ИИН. За разъяснениями необходимо обратиться в отдел документирования населения в ЦОН (код: {code}{mark})"
        );
        assert_eq!(message_excluded(code), expected);
        assert_eq!(outcome(reg::excluded(code), None), (S::Refused, Some(expected)), "exclusion code {code}");
    }
    assert_eq!(outcome(reg::SPECIAL_REGISTER, None), (S::Refused, Some(MESSAGE_SPECIAL_REGISTER.to_owned())));
    assert_eq!(
        MESSAGE_SPECIAL_REGISTER,
        "Невозможно создать учетную запись по введенному значению ИИН. За разъяснениями необходимо обратиться в Управление Комитета по правовой статистике и специальным учетам Генеральной прокуратуры Республики Казахстан <http://www.pravstat.kz>"
    );
    let missing = fixtures::person(reg::NOT_IN_REGISTRY).iin;
    let (state, message) = outcome(reg::NOT_IN_REGISTRY, None);
    assert_eq!(state, S::Refused);
    assert_eq!(
        message.unwrap(),
        format!("Сведения об услугополучателе с ИИН {missing} отсутствуют в государственной базе данных \"Физические лица\". В оказании услуги отказано")
    );
    // Legal capacity: 1, 2, 4 (individual), 5 served; 3 refused; 4 refused for an employee.
    for code in [1u8, 2, 4, 5] {
        assert_eq!(outcome(reg::capacity(code), None), (S::AwaitingOperator, None), "capacity {code}");
    }
    assert_eq!(
        outcome(reg::capacity(3), None),
        (S::Refused, Some("Невозможно выпустить регистрационные свидетельства: услугополучатель признан судом недееспособным (дееспособность: код 3)".to_owned()))
    );
    let bin = fixtures::organisation(0).bin;
    let (state, message) = outcome(reg::capacity(4), Some(bin));
    assert_eq!(state, S::Refused);
    assert!(message.unwrap().contains("статьям 192, 216, 217"));
    let unknown_bin = fixtures::organisation(99).bin;
    let (state, message) = outcome(50, Some(unknown_bin));
    assert_eq!(state, S::Refused);
    assert!(message
        .unwrap()
        .contains(&format!("БИН {unknown_bin} отсутствуют в государственной базе данных \"Юридические лица\"")));
    // Refusals are stored, each with its registration event.
    let refused = env
        .ca
        .store
        .applications(&ca_core::ra::store::ApplicationQuery { state: Some(S::Refused), ..Default::default() })
        .unwrap();
    assert_eq!(refused.len(), 1 + 9 + 1 + 1 + 1 + 1 + 1);
    assert!(refused.iter().all(|a| a.refusal.as_ref().is_some_and(|r| r.code.starts_with("registry."))));
    assert_audit_intact(&env.ca.store);
}

#[test]
fn reimport_is_idempotent_and_updates() {
    let env = Env::new();
    let import = ca_core::ra::csv::parse(&reg::registry_csv()).unwrap();
    let again = env.ca.store.import_registry(&import, "test").unwrap();
    assert_eq!((again.persons_added, again.persons_updated), (0, 0));
    assert_eq!(again.persons_unchanged, 299);
    let mut changed = import.clone();
    changed.persons[0].life_status = 9;
    let third = env.ca.store.import_registry(&changed, "test").unwrap();
    assert_eq!((third.persons_added, third.persons_updated), (0, 1));
    assert_eq!(env.ca.store.registry_person(&fixtures::person(0).iin).unwrap().unwrap().life_status, 9);
}

// ---- flow 1: new certificates on the applicant's computer ------------------------------------

#[test]
fn new_individual_is_registered_verified_confirmed_issued_and_notified() {
    let env = Env::new();
    let ra = ra!(env);
    let submission = new_app(K::NewIndividual, 20, None);
    let first = ra.submit(&submission).unwrap();
    let Submitted::New(a) = first else { panic!("new") };
    assert_eq!(a.state, S::AwaitingOperator);
    assert!(a.number.as_str().starts_with("A-20"), "{}", a.number);
    // Submitting the same application again returns it.
    assert_eq!(ra.submit(&submission).unwrap(), Submitted::Existing(a.clone()));

    env.clock.advance(Duration::minutes(10));
    ra.verify_identity(&a.number, "operator-1").unwrap();
    env.clock.advance(Duration::minutes(16)); // 15 min budget: breached
    let op = TestSigner::operator(200);
    let sig = op.sign(&statement(&a, "operator-confirm"));
    assert!(matches!(ra.confirm(&a.number, "operator-1", &sig).unwrap(), Confirmed::Now(_)));
    assert!(matches!(ra.confirm(&a.number, "operator-1", &sig).unwrap(), Confirmed::Already(_)));

    let issuer = env.issuer_on(&env.ca.store);
    let done = issue(&ra, &issuer, &a.number).unwrap();
    assert_eq!(done.application.state, S::Issued);
    assert_eq!(done.certificates.len(), 2);
    for c in &done.certificates {
        let rec = env.ca.store.certificate(&c.serial).unwrap().unwrap();
        assert_eq!(rec.status, CertificateStatus::Issued);
        assert_eq!(rec.iin, Some(a.iin));
    }
    assert_eq!(done.application.serials.len(), 2);
    assert!(matches!(issue(&ra, &issuer, &a.number), Err(RaError::AlreadyDone(_))));

    let events = env.ca.store.application_events(Some(&a.number)).unwrap();
    let steps: Vec<Step> = events.iter().map(|e| e.step).collect();
    assert_eq!(steps, [Step::Register, Step::OperatorVerify, Step::OperatorConfirm, Step::Claim, Step::Issue]);
    let confirm = &events[2];
    assert!(confirm.breached, "16 min against 15");
    assert_eq!(confirm.signer_serial.as_ref(), Some(&op.serial));
    assert!(!events[1].breached);
    assert_eq!(events[4].budget, Some(ca_core::ra::budget::Budget::Hours(7)));

    // The notices: the application form at registration ("process 6"), the issuance with the
    // install link; delivered to a maildir.
    let pending = env.ca.store.due_messages(env.clock.now(), 10).unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|m| m.to == fixtures::person(20).email.unwrap()));
    assert!(pending[0].body.contains(&format!("Уникальный номер заявления: {}", a.number)), "{}", pending[0].body);
    assert!(pending[1].body.contains(&format!("https://pki.test.kz/install/{}?t=", a.number)));
    let maildir = env.ca.dir.path().join("mail");
    let report = send_due(&env.ca.store, &Maildir::new(&maildir, "nca@pki.test.kz"), &env.clock, 10).unwrap();
    assert_eq!(report.sent, 2);
    let files: Vec<_> = std::fs::read_dir(maildir.join("new")).unwrap().collect();
    assert_eq!(files.len(), 2);
    assert!(env.ca.store.due_messages(env.clock.now(), 10).unwrap().is_empty());
    assert_audit_intact(&env.ca.store);
}

#[test]
fn a_failed_operator_signature_refuses_the_application() {
    let env = Env::new();
    let ra = ra!(env);
    let op = TestSigner::operator(200);
    for (n, signer, why) in [
        (31, TestSigner { key: KeyType::Auth, ..op.clone() }, "AUTH key"),
        (32, TestSigner { problem: Some("revoked"), ..op.clone() }, "revoked"),
        (33, TestSigner::operator(33), "his own application"),
    ] {
        let a = ra.submit(&new_app(K::NewIndividual, n, None)).unwrap().application().clone();
        let message = refused_message(
            ra.confirm(&a.number, "operator-1", &signer.sign(&statement(&a, "operator-confirm"))).unwrap_err(),
        );
        assert!(message.contains(why), "{message}");
        // "Process 10": stored as the application's refusal, and sent to the applicant word for word.
        let stored = env.ca.store.application(&a.number).unwrap().unwrap();
        assert_eq!(stored.state, S::Refused);
        let refusal = stored.refusal.unwrap();
        assert_eq!((refusal.code.as_str(), refusal.message.as_str()), ("signature.refused", message.as_str()));
        let notice = env.ca.store.outbox(100).unwrap().into_iter().find(|m| m.application.as_ref() == Some(&a.number));
        let notice = notice.unwrap();
        assert_eq!(notice.to, fixtures::person(n).email.unwrap());
        assert!(notice.body.lines().any(|l| l == message), "{}", notice.body);
        // A good signature afterwards changes nothing: the service was refused.
        assert!(ra.confirm(&a.number, "operator-1", &op.sign(&statement(&a, "operator-confirm"))).is_err());
    }
    assert_audit_intact(&env.ca.store);
}

#[test]
fn new_employee_needs_the_heads_signature_and_a_real_operator() {
    let env = Env::new();
    let ra = ra!(env);
    let org = fixtures::organisation(3);
    let a = ra.submit(&new_app(K::NewEmployee, 30, Some(org.bin))).unwrap().application().clone();
    assert_eq!(a.state, S::AwaitingHead);
    let op = TestSigner::operator(200);
    let op_sig = op.sign(&statement(&a, "operator-confirm"));
    assert!(matches!(ra.confirm(&a.number, "operator-1", &op_sig), Err(RaError::WrongState { .. })));

    let head_content = statement(&a, "head-confirm");
    let head = TestSigner {
        bin: Some(org.bin),
        roles: vec![Role::LegalEntity, Role::FirstHead],
        ..TestSigner::person(reg::head_of(3), KeyType::Sign)
    };
    let wrong = |s: TestSigner| refused_message(ra.head_confirm(&a.number, &s.sign(&head_content)).unwrap_err());
    assert!(wrong(TestSigner { bin: Some(fixtures::organisation(4).bin), ..head.clone() }).contains("needs BIN"));
    assert!(
        wrong(TestSigner { roles: vec![Role::LegalEntity, Role::Employee], ..head.clone() }).contains("first-head, hr")
    );
    assert!(wrong(TestSigner { key: KeyType::Auth, ..head.clone() }).contains("AUTH key"));
    assert!(wrong(TestSigner { problem: Some("expired"), ..head.clone() }).contains("expired"));
    assert!(wrong(TestSigner { problem: Some("revoked"), ..head.clone() }).contains("revoked"));
    // A signature over something else (another application's statement) does not count.
    let other =
        refused_message(ra.head_confirm(&a.number, &head.sign(&statement(&a, "operator-confirm"))).unwrap_err());
    assert!(other.contains("not this application"), "{other}");
    // None of that changed the application.
    assert_eq!(env.ca.store.application(&a.number).unwrap().unwrap().state, S::AwaitingHead);

    // HR of the same entity may confirm instead of the first head.
    let hr = TestSigner { roles: vec![Role::LegalEntity, Role::Hr], ..TestSigner::person(60, KeyType::Sign) };
    let hr = TestSigner { bin: Some(org.bin), ..hr };
    assert!(matches!(ra.head_confirm(&a.number, &hr.sign(&head_content)).unwrap(), Confirmed::Now(_)));
    assert!(matches!(ra.head_confirm(&a.number, &head.sign(&head_content)).unwrap(), Confirmed::Already(_)));

    // The operator's signature: CA-operator role, SIGN key, not the applicant himself.
    let op_refused = |s: TestSigner| {
        refused_message(ra.confirm(&a.number, "operator-1", &s.sign(&statement(&a, "operator-confirm"))).unwrap_err())
    };
    assert!(op_refused(TestSigner::person(201, KeyType::Sign)).contains("ca-operator"));
    // Someone without the role refuses only his request (an operator's failed signature is
    // "process 10": see a_failed_operator_signature_refuses_the_application).
    assert_eq!(env.ca.store.application(&a.number).unwrap().unwrap().state, S::AwaitingOperator);
    ra.confirm(&a.number, "operator-1", &op_sig).unwrap();
    let done = issue(&ra, &env.issuer_on(&env.ca.store), &a.number).unwrap();
    let ident = ca_core::identity::CertificateIdentity::from_certificate(&done.certificates[0].certificate);
    assert_eq!(ident.bin, Some(org.bin));
    assert!(ident.roles.contains(&Role::Employee));
    assert_audit_intact(&env.ca.store);
}

#[test]
fn operator_refusal_is_stored_and_final() {
    let env = Env::new();
    let ra = ra!(env);
    let a = ra.submit(&new_app(K::NewIndividual, 21, None)).unwrap().application().clone();
    let refused = ra.refuse(&a.number, "operator-2", "the photo does not match the applicant").unwrap();
    assert_eq!(refused.state, S::Refused);
    let r = refused.refusal.unwrap();
    assert_eq!(r.code, "operator.refused");
    assert_eq!(r.message, "Отказ оператора: the photo does not match the applicant");
    assert!(matches!(ra.refuse(&a.number, "operator-2", "again"), Err(RaError::WrongState { .. })));
    let op = TestSigner::operator(200);
    assert!(ra.confirm(&a.number, "operator-1", &op.sign(&statement(&a, "operator-confirm"))).is_err());
    // A refused application does not block a new one.
    assert!(matches!(ra.submit(&new_app(K::NewIndividual, 21, None)).unwrap(), Submitted::New(_)));
    // Card applications are for individuals and wait for the operator like a new individual's.
    let card = ra.submit(&new_app(K::Card, 22, None)).unwrap().application().clone();
    assert_eq!(card.state, S::AwaitingOperator);
    let bin = fixtures::organisation(1).bin;
    assert!(matches!(ra.submit(&new_app(K::Card, 23, Some(bin))), Err(RaError::Invalid(_))));
}

// ---- flow 2: repeat issuance ----------------------------------------------------------------

#[test]
fn repeat_issuance_needs_the_applicants_valid_sign_certificate() {
    let env = Env::new();
    let first = issued_individual(&env, 22);
    let sign_serial = first.serials[1].clone(); // AUTH first, SIGN second
    let ra = ra!(env);
    let base = new_app(K::Repeat, 22, None);
    let applicant = TestSigner { serial: sign_serial.clone(), ..TestSigner::person(22, KeyType::Sign) };

    let refused = |signer: TestSigner| {
        let mut s = base.clone();
        s.signature = Some(signer.sign(&submit_statement(&s)));
        let a = ra.submit(&s).unwrap().application().clone();
        assert_eq!(a.state, S::Refused);
        a.refusal.unwrap().message
    };
    assert!(refused(TestSigner { key: KeyType::Auth, ..applicant.clone() }).contains("AUTH key"));
    assert!(refused(TestSigner { serial: SerialNumber::random(), ..TestSigner::person(23, KeyType::Sign) })
        .contains("needs IIN"));
    assert!(refused(TestSigner { problem: Some("expired"), ..applicant.clone() }).contains("expired"));

    let mut s = base.clone();
    s.signature = Some(applicant.sign(&submit_statement(&s)));
    let a = ra.submit(&s).unwrap().application().clone();
    assert_eq!(a.state, S::Confirmed);
    let events = env.ca.store.application_events(Some(&a.number)).unwrap();
    assert_eq!(events[0].signer_serial.as_ref(), Some(&sign_serial));
    env.clock.advance(Duration::days(4)); // more than one working day, whatever the weekday
    let done = issue(&ra, &env.issuer_on(&env.ca.store), &a.number).unwrap();
    assert_eq!(done.application.state, S::Issued);
    let last = env.ca.store.application_events(Some(&a.number)).unwrap().pop().unwrap();
    assert_eq!(last.step, Step::Issue);
    assert!(last.breached, "4 days against 1 working day");

    // Once the SIGN certificate is revoked in our store, it cannot sign a repeat application,
    // even if a checker missed it.
    ca_core::revocation::revoke(
        &env.ca.store,
        &env.clock,
        &sign_serial,
        ca_core::revocation::RevocationReason::KeyCompromise,
        None,
        "test",
    )
    .unwrap();
    assert!(refused(applicant.clone()).contains("revoked"));
    assert_audit_intact(&env.ca.store);
}

// ---- flows 4 and 5: revocation --------------------------------------------------------------

#[test]
fn revocation_on_the_applicants_signed_request() {
    let env = Env::new();
    let first = issued_individual(&env, 24);
    let ra = ra!(env);
    let mut s = Submission {
        channel: ca_core::ra::Channel::ServiceProvider,
        revocation_reason: Some(ca_core::revocation::RevocationReason::KeyCompromise),
        ..new_app(K::RevokeSigned, 24, None)
    };
    let signer = TestSigner { serial: first.serials[1].clone(), ..TestSigner::person(24, KeyType::Sign) };
    // Someone else's signature is refused.
    s.signature = Some(TestSigner::person(25, KeyType::Sign).sign(&submit_statement(&s)));
    assert_eq!(ra.submit(&s).unwrap().application().state, S::Refused);
    s.signature = Some(signer.sign(&submit_statement(&s)));
    let a = ra.submit(&s).unwrap().application().clone();
    assert_eq!(a.state, S::Confirmed);
    let done = ra.revoke(&a.number, "system").unwrap();
    assert_eq!(done.application.state, S::Revoked);
    assert_eq!(done.revoked.len(), 2);
    for serial in &first.serials {
        assert_eq!(env.ca.store.certificate(serial).unwrap().unwrap().status, CertificateStatus::Revoked);
    }
    let notices = env.ca.store.outbox(10).unwrap();
    assert!(notices[0].subject.contains("отозваны"));
    assert!(matches!(ra.revoke(&a.number, "system"), Err(RaError::AlreadyDone(_))));
    assert_audit_intact(&env.ca.store);
}

#[test]
fn revocation_on_a_counter_application_confirmed_by_the_operator() {
    let env = Env::new();
    let first = issued_individual(&env, 26);
    let ra = ra!(env);
    // Even a person the registry now lists as dead can have his certificates revoked.
    let s = Submission {
        channel: ca_core::ra::Channel::ServiceProvider,
        serials: vec![first.serials[0].clone()],
        operator: Some("operator-3".into()),
        ..new_app(K::RevokeCounter, 26, None)
    };
    let a = ra.submit(&s).unwrap().application().clone();
    assert_eq!(a.state, S::AwaitingOperator);
    assert!(matches!(ra.revoke(&a.number, "operator-3"), Err(RaError::WrongState { .. })));
    let op = TestSigner::operator(201);
    assert!(ra
        .confirm(
            &a.number,
            "operator-3",
            &TestSigner::person(201, KeyType::Sign).sign(&statement(&a, "operator-confirm"))
        )
        .is_err());
    ra.confirm(&a.number, "operator-3", &op.sign(&statement(&a, "operator-confirm"))).unwrap();
    let done = ra.revoke(&a.number, "operator-3").unwrap();
    assert_eq!(done.revoked, vec![first.serials[0].clone()]);
    assert_eq!(env.ca.store.certificate(&first.serials[1]).unwrap().unwrap().status, CertificateStatus::Issued);
    // A serial of someone else cannot be put on the application.
    let other = issued_individual(&env, 27);
    let bad = Submission { serials: vec![other.serials[0].clone()], ..s };
    assert!(matches!(ra.submit(&bad), Err(RaError::Invalid(_))));
    assert_audit_intact(&env.ca.store);
}

// ---- concurrency -----------------------------------------------------------------------------

#[test]
fn two_operators_racing_issue_exactly_one_pair() {
    let env = Env::new();
    let path = env.ca.dir.path().join("ca.db");
    let a = ra!(env).submit(&new_app(K::NewIndividual, 40, None)).unwrap().application().clone();
    let content = statement(&a, "operator-confirm");
    let outcomes: Vec<Result<usize, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let (path, env, a, content) = (&path, &env, &a, &content);
                scope.spawn(move || {
                    let store = SqliteStore::open(path).unwrap();
                    let registry = StoreRegistry(&store);
                    let ra = env.ra_on(&store, &registry);
                    let op = TestSigner::operator(210 + i);
                    ra.confirm(&a.number, &format!("operator-{i}"), &op.sign(content)).map_err(|e| e.to_string())?;
                    issue(&ra, &env.issuer_on(&store), &a.number)
                        .map(|d| d.certificates.len())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let issued: Vec<usize> = outcomes.iter().filter_map(|o| o.as_ref().ok().copied()).collect();
    assert_eq!(issued, vec![2], "{outcomes:?}");
    let query = ca_core::store::CertificateQuery { iin: Some(a.iin), ..Default::default() };
    assert_eq!(env.ca.store.find(&query).unwrap().len(), 2, "exactly one pair in the store");
    let events = env.ca.store.application_events(Some(&a.number)).unwrap();
    assert_eq!(events.iter().filter(|e| e.step == Step::Issue).count(), 1);
    let issuance_notices = env.ca.store.outbox(10).unwrap().into_iter().filter(|m| m.subject.contains("выпущены"));
    assert_eq!(issuance_notices.count(), 1);
    assert_audit_intact(&env.ca.store);
}

// ---- notices survive a crash -----------------------------------------------------------------

/// Delivers into a maildir, then "crashes" (fails) on the first call after delivering.
struct CrashAfterDelivery<'a> {
    inner: &'a Maildir,
    crashed: Mutex<bool>,
}

impl Transport for CrashAfterDelivery<'_> {
    fn deliver(&self, m: &OutboxMessage) -> Result<(), String> {
        self.inner.deliver(m)?;
        let mut crashed = self.crashed.lock().unwrap();
        if !*crashed {
            *crashed = true;
            // The process dies after delivering and before marking the message sent.
            return Err("simulated crash before the message was marked sent".into());
        }
        Ok(())
    }
}

#[test]
fn a_crash_between_delivery_and_marking_redelivers_once_and_loses_nothing() {
    let env = Env::new();
    issued_individual(&env, 28);
    // Only the issuance notice is left to deliver (the registration's went out before).
    for m in env.ca.store.outbox(10).unwrap().iter().filter(|m| !m.subject.contains("выпущены")) {
        env.ca.store.mark_sent(m.id, env.clock.now()).unwrap();
    }
    let maildir = Maildir::new(env.ca.dir.path().join("mail"), "nca@pki.test.kz");
    let transport = CrashAfterDelivery { inner: &maildir, crashed: Mutex::new(false) };
    let first = send_due(&env.ca.store, &transport, &env.clock, 10).unwrap();
    assert_eq!((first.sent, first.failed), (0, 1));
    let msg = &env.ca.store.outbox(10).unwrap()[0];
    assert!(msg.sent_at.is_none());
    assert_eq!(msg.attempts, 1);
    // Not due before its backoff.
    assert_eq!(send_due(&env.ca.store, &transport, &env.clock, 10).unwrap().sent, 0);
    env.clock.advance(Duration::minutes(2));
    assert_eq!(send_due(&env.ca.store, &transport, &env.clock, 10).unwrap().sent, 1);
    env.clock.advance(Duration::hours(10));
    assert_eq!(send_due(&env.ca.store, &transport, &env.clock, 10).unwrap().sent, 0, "never sent twice after marking");
    // The re-delivery replaced the first copy (same file name): one message in new/.
    let files = std::fs::read_dir(maildir.root.join("new")).unwrap().count();
    assert_eq!(files, 1);
    let text =
        std::fs::read_to_string(std::fs::read_dir(maildir.root.join("new")).unwrap().next().unwrap().unwrap().path())
            .unwrap();
    assert!(text.starts_with("From: nca@pki.test.kz\r\nTo: person28@example.kz\r\n"));
    assert_audit_intact(&env.ca.store);
}

#[test]
fn an_application_left_issuing_by_a_dead_worker_is_recovered() {
    use ca_core::profile::ProfileId;
    use ca_core::ra::application::{ActorRole, Step};
    use ca_core::ra::store::{NewEvent, Transition};
    let env = Env::new();
    let ra = ra!(env);
    let a = ra.submit(&new_app(K::NewIndividual, 28, None)).unwrap().application().clone();
    let op = TestSigner::operator(200);
    ra.confirm(&a.number, "operator-1", &op.sign(&statement(&a, "operator-confirm"))).unwrap();

    // A worker claims it, issues two certificates, and dies before completing: its keys are gone.
    let claim = Transition {
        from: vec![S::Confirmed],
        to: S::Issuing,
        event: NewEvent {
            step: Step::Claim,
            actor_role: ActorRole::Operator,
            actor: "worker-1".into(),
            signer_serial: None,
            at: env.clock.now(),
            details: serde_json::Value::Null,
        },
        serials: None,
        refusal: None,
        notice: None,
        token: None,
    };
    env.ca.store.transition(&a.number, &claim).unwrap();
    let (k1, k2) = keys();
    let issuer = env.issuer_on(&env.ca.store);
    let orphans: Vec<_> = [(ProfileId::IndividualAuth, &k1), (ProfileId::IndividualSign, &k2)]
        .into_iter()
        .map(|(profile, key)| {
            issuer
                .issue(&ca_core::issuer::IssuanceRequest {
                    profile,
                    subject: fixtures::individual(28),
                    roles: vec![],
                    public_key: ca_core::signer::Signer::public_key(key).clone(),
                })
                .unwrap()
                .serial
        })
        .collect();

    // Too early: the worker may still be running.
    assert!(matches!(
        ra.recover(&a.number, "operator-2", Duration::minutes(10), &NothingDelivered),
        Err(RaError::InProgress(_))
    ));
    env.clock.advance(Duration::minutes(15));
    // The key stores were never delivered: both certificates are revoked.
    let done = ra.recover(&a.number, "operator-2", Duration::minutes(10), &NothingDelivered).unwrap();
    assert_eq!(done.application.state, S::Confirmed);
    assert!(!done.completed);
    assert_eq!(done.revoked.len(), 2);
    for serial in &orphans {
        let rec = env.ca.store.certificate(serial).unwrap().unwrap();
        assert_eq!(rec.revocation.unwrap().reason, ca_core::revocation::RevocationReason::CessationOfOperation);
    }
    // Now it can be issued properly, and only a stuck application can be recovered.
    let done = issue(&ra, &issuer, &a.number).unwrap();
    assert_eq!(done.application.state, S::Issued);
    assert!(matches!(
        ra.recover(&a.number, "operator-2", Duration::minutes(10), &NothingDelivered),
        Err(RaError::WrongState { .. })
    ));
    assert_audit_intact(&env.ca.store);
}

/// CSRs for two fresh P-256 keys, as the applicant's signing client makes them (the subject it
/// writes is ignored by the CA).
fn applicant_csrs() -> ca_core::ra::ApplicantCsrs {
    let (a, s) = keys();
    let name = fixtures::individual(0).to_name().unwrap();
    ca_core::ra::ApplicantCsrs {
        auth: ca_core::csr::build_csr(name.clone(), &a).unwrap(),
        sign: ca_core::csr::build_csr(name, &s).unwrap(),
    }
}

#[test]
fn an_issuance_for_the_applicants_own_keys_left_by_a_dead_worker_is_completed() {
    use ca_core::ra::application::{ActorRole, Step};
    use ca_core::ra::store::{NewEvent, Transition};
    let env = Env::new();
    let ra = ra!(env);
    let csrs = applicant_csrs();
    let keys = csrs.keys().unwrap();
    let a = ra
        .submit(&Submission { csrs: Some(csrs), ..new_app(K::NewIndividual, 29, None) })
        .unwrap()
        .application()
        .clone();
    assert_eq!(env.ca.store.application_keys(&a.number).unwrap(), keys);
    ra.confirm(&a.number, "operator-1", &TestSigner::operator(200).sign(&statement(&a, "operator-confirm"))).unwrap();
    // Keys are never generated at the CA for such an application.
    assert!(matches!(issue(&ra, &env.issuer_on(&env.ca.store), &a.number), Err(RaError::Invalid(_))));

    // A worker claimed it for the applicant's keys, issued both certificates, and died.
    let issuer = env.issuer_on(&env.ca.store);
    let issued: Vec<_> = keys
        .iter()
        .zip([ca_core::profile::ProfileId::IndividualAuth, ca_core::profile::ProfileId::IndividualSign])
        .map(|(k, profile)| {
            let public_key = <x509_cert::spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(&k.spki).unwrap();
            let request = ca_core::issuer::IssuanceRequest {
                profile,
                subject: fixtures::individual(29),
                roles: vec![Role::IdentifiedInPerson],
                public_key,
            };
            issuer.issue(&request).unwrap().serial.to_hex()
        })
        .collect();
    let claim = Transition {
        from: vec![S::Confirmed],
        to: S::Issuing,
        event: NewEvent {
            step: Step::Claim,
            actor_role: ActorRole::Operator,
            actor: "worker-1".into(),
            signer_serial: None,
            at: env.clock.now(),
            details: serde_json::json!({ "key_stores": "the applicant's own keys", "serials": issued }),
        },
        serials: None,
        refusal: None,
        notice: None,
        token: None,
    };
    env.ca.store.transition(&a.number, &claim).unwrap();
    env.clock.advance(Duration::minutes(15));
    // Nothing of the applicant's can be lost: recovery completes it, whatever delivery it is given.
    let done = ra.recover(&a.number, "operator-2", Duration::minutes(10), &NothingDelivered).unwrap();
    assert!(done.completed && done.revoked.is_empty());
    assert_eq!(done.application.state, S::Issued);
    let notice = env.ca.store.outbox(10).unwrap().into_iter().find(|m| m.subject.contains("выпущены")).unwrap();
    assert!(notice.body.contains(&format!("https://pki.test.kz/install/{}?t=", a.number)), "{}", notice.body);
    // The keys are spent: they are in certificates now.
    let holder = ra.store.key_in_use(&ca_core::ra::csr_keys::spki_sha256(&keys[1].spki), None).unwrap();
    assert_eq!(holder, Some(format!("certificate {}", issued[1])));
}

// ---- legal-entity roles ----------------------------------------------------------------------

#[test]
fn an_employee_gets_a_first_head_certificate_only_after_the_heads_signed_confirmation() {
    let env = Env::new();
    let ra = ra!(env);
    let issuer = env.issuer_on(&env.ca.store);
    let org = fixtures::organisation(5);
    let asked = Submission { roles: vec![Role::FirstHead], ..new_app(K::NewEmployee, 31, Some(org.bin)) };
    let a = ra.submit(&asked).unwrap().application().clone();
    assert_eq!((a.state, a.roles.clone()), (S::AwaitingHead, vec![Role::FirstHead]));

    // Without the head's confirmation nothing is issued.
    let op = TestSigner::operator(200);
    let op_sig = op.sign(&statement(&a, "operator-confirm"));
    assert!(matches!(ra.confirm(&a.number, "operator-1", &op_sig), Err(RaError::WrongState { .. })));
    assert!(matches!(issue(&ra, &issuer, &a.number), Err(RaError::WrongState { .. })));
    let query = ca_core::store::CertificateQuery { iin: Some(a.iin), ..Default::default() };
    assert!(env.ca.store.find(&query).unwrap().is_empty());

    // HR confirms employees, but does not give the first head's role.
    let head_content = statement(&a, "head-confirm");
    let hr = TestSigner {
        bin: Some(org.bin),
        roles: vec![Role::LegalEntity, Role::Hr],
        ..TestSigner::person(61, KeyType::Sign)
    };
    let refused = refused_message(ra.head_confirm(&a.number, &hr.sign(&head_content)).unwrap_err());
    assert!(refused.contains("first-head") && !refused.contains("hr"), "{refused}");
    assert_eq!(env.ca.store.application(&a.number).unwrap().unwrap().state, S::AwaitingHead);

    // The person acting for the first head (a first-head certificate of the entity, not the
    // registry's head) confirms, and is recorded as acting for him.
    let acting = TestSigner {
        bin: Some(org.bin),
        roles: vec![Role::LegalEntity, Role::FirstHead],
        ..TestSigner::person(62, KeyType::Sign)
    };
    ra.head_confirm(&a.number, &acting.sign(&head_content)).unwrap();
    let events = env.ca.store.application_events(Some(&a.number)).unwrap();
    let confirmation = events.iter().find(|e| e.step == Step::HeadConfirm).unwrap();
    let head_iin = fixtures::person(reg::head_of(5)).iin.as_string();
    assert_eq!(confirmation.details["registered_first_head"], false);
    assert_eq!(confirmation.details["acting_for"], head_iin.as_str());
    assert_eq!(confirmation.details["roles_confirmed"], serde_json::json!(["first-head"]));
    ra.confirm(&a.number, "operator-1", &op_sig).unwrap();
    let done = issue(&ra, &issuer, &a.number).unwrap();
    for c in &done.certificates {
        let ident = ca_core::identity::CertificateIdentity::from_certificate(&c.certificate);
        assert!(ident.roles.contains(&Role::FirstHead), "{:?}", ident.roles);
        assert!(!ident.roles.contains(&Role::Employee), "{:?}", ident.roles);
        let eku = c
            .certificate
            .tbs_certificate
            .extensions
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.extn_id.to_string() == "2.5.29.37");
        let der = eku.unwrap().extn_value.as_bytes();
        let first_head = Role::FirstHead.oid();
        assert_eq!(first_head.to_string(), "1.2.398.3.3.4.1.2.1");
        assert!(der.windows(first_head.as_bytes().len()).any(|w| w == first_head.as_bytes()));
    }

    // The first head's own application goes to the operator, the registry naming him head.
    let own = Submission { roles: vec![Role::FirstHead], ..new_app(K::NewEmployee, reg::head_of(5), Some(org.bin)) };
    let own = ra.submit(&own).unwrap().application().clone();
    assert_eq!(own.state, S::AwaitingOperator);
    let registered = &env.ca.store.application_events(Some(&own.number)).unwrap()[0];
    assert_eq!(registered.details["registered_first_head"], true);

    // Roles are for employees' applications, and only the legal entity's.
    let individual = Submission { roles: vec![Role::Hr], ..new_app(K::NewIndividual, 32, None) };
    assert!(matches!(ra.submit(&individual), Err(RaError::Invalid(_))));
    let staff = Submission { roles: vec![Role::CaOperator], ..new_app(K::NewEmployee, 33, Some(org.bin)) };
    assert!(matches!(ra.submit(&staff), Err(RaError::Invalid(_))));
    assert_audit_intact(&env.ca.store);
}
