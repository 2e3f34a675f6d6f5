//! The RA's automatic worker against SQLite: repeat issuance and signed revocations carried out
//! by the worker alone, a delta CRL after revocations, notices delivered, stale claims
//! recovered, a graceful stop, and two workers on one store doing every job exactly once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};

use ca_core::clock::Clock;
use ca_core::issuer::{IssuanceRequest, IssuedCertificate};
use ca_core::profile::ProfileId;
use ca_core::ra::application::{
    dedup_key, ActorRole, ApplicationKind as K, ApplicationNumber, ApplicationState as S, Step,
};
use ca_core::ra::outbox::{Maildir, Transport};
use ca_core::ra::store::{NewApplication, NewEvent, OutboxMessage, RaStore, Transition};
use ca_core::ra::worker::{
    CrlPublication, CrlTimes, NewKeys, RepeatKeys, Round, Worker, WorkerMetrics, WorkerSettings,
};
use ca_core::ra::{
    Expectation, KeyStoreDelivery, NothingDelivered, RegistrationAuthority, SignatureCheck, SignatureProblem,
    SignedPayload, SignerFacts, StoreRegistry,
};
use ca_core::revocation::RevocationReason;
use ca_core::serial::SerialNumber;
use ca_core::store::{CertificateQuery, CertificateStatus, SqliteStore, Store};
use fixtures::TestCa;
use hsm::{KeyAlgorithm, SoftwareKey};
use time::{Duration, OffsetDateTime};

/// The worker checks no signature (they were checked when the applications were registered).
struct NoSignatures;

impl SignatureCheck for NoSignatures {
    fn check(&self, _: &SignedPayload, _: &Expectation) -> Result<SignerFacts, SignatureProblem> {
        Err(SignatureProblem::Invalid("the worker checks no signature".into()))
    }
}

/// A clock the test moves forward.
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

/// TEST ONLY: key stores "delivered" by counting them (PKCS#12 files are tested through `ca
/// worker` in `ca-cli/tests/worker.rs`).
struct CountedKeys {
    delivered: AtomicUsize,
}

struct Counted<'a>(&'a AtomicUsize);

impl KeyStoreDelivery for Counted<'_> {
    fn deliver(&self, certificates: &[IssuedCertificate]) -> Result<(), String> {
        self.0.fetch_add(certificates.len(), Ordering::SeqCst);
        Ok(())
    }
    fn delivered(&self, _: &IssuedCertificate) -> Result<bool, String> {
        Ok(true)
    }
    fn withdraw(&self, _: &IssuedCertificate) -> Result<(), String> {
        Ok(())
    }
    fn location(&self) -> String {
        "test".into()
    }
}

impl RepeatKeys for CountedKeys {
    fn keys_for(&self, _: &ca_core::ra::Application) -> Result<NewKeys<'_>, String> {
        let public = |k: SoftwareKey| ca_core::signer::Signer::public_key(&k).clone();
        let key = || SoftwareKey::generate(KeyAlgorithm::P256).map_err(|e| e.to_string());
        Ok(NewKeys { auth: public(key()?), sign: public(key()?), delivery: Box::new(Counted(&self.delivered)) })
    }
    fn recovery(&self) -> Box<dyn KeyStoreDelivery + '_> {
        Box::new(NothingDelivered)
    }
}

/// TEST ONLY: CRL publication recorded (the real files are read by openssl in the CLI test).
struct RecordedCrls<'c> {
    clock: &'c TestClock,
    store: &'c SqliteStore,
    times: Mutex<CrlTimes>,
    published: Mutex<Vec<&'static str>>,
}

impl CrlPublication for RecordedCrls<'_> {
    fn last_published(&self) -> Result<CrlTimes, String> {
        let mut times = *self.times.lock().unwrap();
        let query = CertificateQuery { status: Some(CertificateStatus::Revoked), ..Default::default() };
        times.revocations_pending = self
            .store
            .find(&query)
            .unwrap()
            .iter()
            .any(|c| c.revocation.as_ref().is_some_and(|r| times.delta.is_none_or(|d| r.revoked_at >= d)));
        Ok(times)
    }
    fn publish(&self, full: bool) -> Result<Vec<String>, String> {
        let now = self.clock.now();
        let mut times = self.times.lock().unwrap();
        times.delta = Some(now);
        if full {
            times.full = Some(now);
        }
        self.published.lock().unwrap().push(if full { "full+delta" } else { "delta" });
        Ok(vec![if full { "full".into() } else { "delta".into() }])
    }
}

struct Env {
    ca: TestCa,
    clock: TestClock,
    keys: CountedKeys,
    metrics: WorkerMetrics,
    stop: AtomicBool,
    /// Outbox ids in the order they were delivered, by every worker.
    deliveries: Mutex<Vec<i64>>,
}

/// TEST ONLY: a maildir that also records what it delivered.
struct Recorded<'a> {
    maildir: Maildir,
    log: &'a Mutex<Vec<i64>>,
}

impl Transport for Recorded<'_> {
    fn deliver(&self, message: &OutboxMessage) -> Result<(), String> {
        self.maildir.deliver(message)?;
        self.log.lock().unwrap().push(message.id);
        Ok(())
    }
}

impl Env {
    fn new() -> Self {
        // A Wednesday noon in Kazakhstan: one working day is one day.
        let clock = TestClock(Mutex::new(time::macros::datetime!(2026-01-07 07:00 UTC)));
        let ca = TestCa::new_at(KeyAlgorithm::P256, KeyAlgorithm::P256, &clock);
        let import = ca_core::ra::csv::parse(&fixtures::registry::registry_csv()).unwrap();
        ca.store.import_registry(&import, "test").unwrap();
        Self {
            ca,
            clock,
            keys: CountedKeys { delivered: AtomicUsize::new(0) },
            metrics: WorkerMetrics::default(),
            stop: AtomicBool::new(false),
            deliveries: Mutex::new(Vec::new()),
        }
    }

    /// Certificates (AUTH, SIGN) issued to person `n` outside any application.
    fn certificates_of(&self, n: u32) -> Vec<SerialNumber> {
        let issuer = self.ca.issuer(&self.clock);
        [ProfileId::IndividualAuth, ProfileId::IndividualSign]
            .into_iter()
            .map(|profile| {
                let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
                let request = IssuanceRequest {
                    profile,
                    subject: fixtures::individual(n),
                    roles: vec![],
                    public_key: ca_core::signer::Signer::public_key(&key).clone(),
                };
                issuer.issue(&request).unwrap().serial
            })
            .collect()
    }

    /// A confirmed application as registration leaves it (signatures are not the point here).
    fn confirmed(&self, kind: ca_core::ra::ApplicationKind, n: u32, serials: Vec<SerialNumber>) -> ApplicationNumber {
        self.confirmed_with_keys(kind, n, serials, Vec::new())
    }

    /// A confirmed application carrying the applicant's own public keys (as his CSRs give them).
    fn confirmed_with_keys(
        &self,
        kind: ca_core::ra::ApplicationKind,
        n: u32,
        serials: Vec<SerialNumber>,
        keys: Vec<ca_core::ra::store::ApplicantKey>,
    ) -> ApplicationNumber {
        let person = fixtures::person(n);
        let application = NewApplication {
            channel: ca_core::ra::Channel::ServiceProvider,
            paperwork: None,
            receipt: None,
            kind,
            iin: person.iin,
            bin: None,
            email: person.email.clone(),
            dedup_key: dedup_key(kind, &person.iin, None, &serials),
            serials,
            revocation_reason: kind.is_revocation().then_some(RevocationReason::KeyCompromise),
            roles: Vec::new(),
            state: S::Confirmed,
            refusal: None,
            keys,
            tokens: Vec::new(),
            notice: None,
            earlier: Vec::new(),
        };
        let event = NewEvent {
            step: Step::Register,
            actor_role: ActorRole::Applicant,
            actor: person.iin.as_string(),
            signer_serial: None,
            at: self.clock.now(),
            details: serde_json::Value::Null,
        };
        self.ca.store.submit(&application, &event).unwrap().application().number.clone()
    }
}

/// A worker over `store` (its own connection), named `actor`.
fn with_worker<R>(
    env: &Env,
    store: &SqliteStore,
    crls: Option<&dyn CrlPublication>,
    actor: &str,
    f: impl FnOnce(&Worker<'_>) -> R,
) -> R {
    let registry = StoreRegistry(store);
    let issuer = ca_core::issuer::Issuer { store, actor, ..env.ca.issuer(&env.clock) };
    let maildir =
        Recorded { maildir: Maildir::new(env.ca.dir.path().join("mail"), "nca@pki.test.kz"), log: &env.deliveries };
    let ra = RegistrationAuthority {
        store,
        certificates: store,
        registry: &registry,
        signatures: &NoSignatures,
        clock: &env.clock,
        install_url: "https://pki.test.kz",
        install_ttl: time::Duration::hours(72),
    };
    let worker = Worker {
        ra,
        issuer: &issuer,
        keys: &env.keys,
        crls,
        transport: Some(&maildir),
        settings: WorkerSettings { delta_every_minutes: 0, ..Default::default() },
        actor,
        metrics: &env.metrics,
        stop: &env.stop,
    };
    f(&worker)
}

fn steps(store: &SqliteStore, n: &ApplicationNumber, step: Step) -> usize {
    store.application_events(Some(n)).unwrap().iter().filter(|e| e.step == step).count()
}

#[test]
fn a_new_application_with_the_applicants_own_keys_is_issued_by_the_worker_for_those_keys() {
    use ca_core::signer::Signer as _;
    let env = Env::new();
    let spki = || der::Encode::to_der(SoftwareKey::generate(KeyAlgorithm::P256).unwrap().public_key()).unwrap();
    let (auth, sign) = (spki(), spki());
    let keys = vec![
        ca_core::ra::store::ApplicantKey { key_type: ca_core::identity::KeyType::Auth, spki: auth.clone() },
        ca_core::ra::store::ApplicantKey { key_type: ca_core::identity::KeyType::Sign, spki: sign.clone() },
    ];
    let own = env.confirmed_with_keys(K::NewIndividual, 27, vec![], keys);
    // Without keys it still needs the applicant: left confirmed.
    let without = env.confirmed(K::NewIndividual, 28, vec![]);
    let store = &env.ca.store;
    let round = with_worker(&env, store, None, "worker:test:1", |w| w.round().unwrap());
    assert_eq!(round.issued, vec![own.to_string()], "{round:?}");
    assert_eq!(store.application(&without).unwrap().unwrap().state, S::Confirmed);
    let issued = store.application(&own).unwrap().unwrap();
    assert_eq!(issued.state, S::Issued);
    // Certificates for the applicant's keys, nothing generated by the worker.
    let mut spkis: Vec<Vec<u8>> = issued
        .serials
        .iter()
        .map(|serial| {
            let der = store.certificate(serial).unwrap().unwrap().der.expect("issued");
            let cert = <x509_cert::Certificate as der::Decode>::from_der(&der).unwrap();
            der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info).unwrap()
        })
        .collect();
    spkis.sort();
    let mut expected = vec![auth, sign];
    expected.sort();
    assert_eq!(spkis, expected);
    assert_eq!(env.keys.delivered.load(Ordering::SeqCst), 0, "no key pair made");
}

#[test]
fn the_worker_alone_carries_out_repeat_issuance_and_signed_revocation() {
    let env = Env::new();
    let old = env.certificates_of(24);
    let repeat = env.confirmed(K::Repeat, 22, vec![]);
    let revoke = env.confirmed(K::RevokeSigned, 24, vec![]);
    // New certificates on the applicant's computer need the applicant: not the worker's.
    let new = env.confirmed(K::NewIndividual, 26, vec![]);
    let crls = RecordedCrls {
        clock: &env.clock,
        store: &env.ca.store,
        times: Mutex::new(CrlTimes {
            full: Some(env.clock.now()),
            delta: Some(env.clock.now() - Duration::hours(1)),
            revocations_pending: false,
        }),
        published: Mutex::new(Vec::new()),
    };
    let store = &env.ca.store;
    let round = with_worker(&env, store, Some(&crls), "worker:test:1", |w| w.round().unwrap());
    assert_eq!(round.issued, vec![repeat.to_string()]);
    assert_eq!(round.revoked, vec![revoke.to_string()]);
    assert!(round.failed.is_empty() && round.skipped.is_empty(), "{round:?}");
    assert_eq!(store.application(&new).unwrap().unwrap().state, S::Confirmed);

    let repeat_app = store.application(&repeat).unwrap().unwrap();
    assert_eq!(repeat_app.state, S::Issued);
    assert_eq!(repeat_app.serials.len(), 2);
    assert_eq!(env.keys.delivered.load(Ordering::SeqCst), 2);
    for serial in &old {
        let record = store.certificate(serial).unwrap().unwrap();
        assert_eq!(record.status, CertificateStatus::Revoked);
        assert_eq!(record.revocation.unwrap().reason, RevocationReason::KeyCompromise);
    }
    // The worker's steps are the system's, each once.
    let events = store.application_events(Some(&repeat)).unwrap();
    let last = events.last().unwrap();
    assert_eq!((last.step, last.actor_role, last.actor.as_str()), (Step::Issue, ActorRole::System, "worker:test:1"));
    assert_eq!(steps(store, &revoke, Step::Revoke), 1);

    // A delta CRL after the revocation (the last one was an hour ago), no full one yet.
    assert_eq!(*crls.published.lock().unwrap(), ["delta"]);
    assert_eq!(round.crls, ["delta"]);
    // Both notices delivered into the maildir.
    assert_eq!(round.notices_sent, 2);
    assert_eq!(std::fs::read_dir(env.ca.dir.path().join("mail/new")).unwrap().count(), 2);

    // A revocation within 5 minutes of the last delta waits for the next round past them; the
    // full CRL comes on its schedule.
    let again = env.certificates_of(25);
    let second = env.confirmed(K::RevokeCounter, 25, vec![again[0].clone()]);
    env.clock.advance(Duration::minutes(2));
    let round = with_worker(&env, store, Some(&crls), "worker:test:1", |w| w.round().unwrap());
    assert_eq!(round.revoked, vec![second.to_string()]);
    assert!(round.crls.is_empty(), "{round:?}");
    env.clock.advance(Duration::minutes(4));
    let round = with_worker(&env, store, Some(&crls), "worker:test:1", |w| w.round().unwrap());
    assert!(!round.busy());
    assert_eq!(round.crls, ["delta"], "the pending revocation, 6 minutes after the last delta");
    env.clock.advance(Duration::hours(1));
    let round = with_worker(&env, store, Some(&crls), "worker:test:1", |w| w.round().unwrap());
    assert!(round.crls.is_empty(), "nothing pending, delta_every off: {round:?}");
    env.clock.advance(Duration::hours(12));
    let round = with_worker(&env, store, Some(&crls), "worker:test:1", |w| w.round().unwrap());
    assert_eq!(round.crls, ["full"]);
    assert_eq!(store.certificate(&again[1]).unwrap().unwrap().status, CertificateStatus::Issued);

    let metrics = env.metrics.render();
    assert!(metrics.contains("ca_worker_issued_total 1\n"), "{metrics}");
    assert!(metrics.contains("ca_worker_revoked_total 2\n"), "{metrics}");
    assert!(metrics.contains("ca_worker_rounds_total 5\n"), "{metrics}");
    let audit = store.verify_audit().unwrap();
    assert!(audit.is_intact(), "{:?}", audit.problems);
}

#[test]
fn a_stale_claim_is_recovered_and_carried_out_and_a_stop_finishes_nothing_new() {
    let env = Env::new();
    env.certificates_of(30);
    let n = env.confirmed(K::RevokeSigned, 30, vec![]);
    let store = &env.ca.store;
    // A worker claimed it and died.
    let claim = Transition {
        from: vec![S::Confirmed],
        to: S::Revoking,
        event: NewEvent {
            step: Step::Claim,
            actor_role: ActorRole::System,
            actor: "worker:dead:1".into(),
            signer_serial: None,
            at: env.clock.now(),
            details: serde_json::Value::Null,
        },
        serials: None,
        refusal: None,
        notice: None,
        token: None,
    };
    store.transition(&n, &claim).unwrap();
    let round = with_worker(&env, store, None, "worker:test:2", |w| w.round().unwrap());
    assert!(round.recovered.is_empty() && round.revoked.is_empty(), "claim not stale yet: {round:?}");
    assert_eq!(store.application(&n).unwrap().unwrap().state, S::Revoking);

    // A stop asked for before the round: nothing new is started.
    env.clock.advance(Duration::minutes(11));
    env.stop.store(true, Ordering::SeqCst);
    let other = env.confirmed(K::Repeat, 31, vec![]);
    let round: Round = with_worker(&env, store, None, "worker:test:2", |w| {
        w.run(); // returns at once: stop is set
        w.round().unwrap()
    });
    assert!(round.stopped);
    assert!(round.issued.is_empty() && round.recovered.is_empty(), "{round:?}");
    assert_eq!(store.application(&n).unwrap().unwrap().state, S::Revoking);
    assert_eq!(store.application(&other).unwrap().unwrap().state, S::Confirmed);

    env.stop.store(false, Ordering::SeqCst);
    let round = with_worker(&env, store, None, "worker:test:2", |w| w.round().unwrap());
    assert_eq!(round.recovered, vec![n.to_string()]);
    assert_eq!(round.revoked, vec![n.to_string()]);
    assert_eq!(round.issued, vec![other.to_string()]);
    assert_eq!(store.application(&n).unwrap().unwrap().state, S::Revoked);
    assert_eq!(steps(store, &n, Step::Release), 1);
    assert_eq!(steps(store, &n, Step::Revoke), 1);

    // A due notice is taken by one sender only, until its lease runs out.
    let queued = env.confirmed(K::RevokeSigned, 32, vec![]);
    with_worker(&env, store, None, "worker:test:2", |w| {
        w.ra.revoke(&queued, "worker:test:2").unwrap();
    });
    let id = store.due_messages(env.clock.now(), 10).unwrap()[0].id;
    let now = env.clock.now();
    let lease = ca_core::ra::outbox::DELIVERY_LEASE;
    assert!(store.claim_message(id, now, now + lease).unwrap());
    assert!(!store.claim_message(id, now, now + lease).unwrap(), "taken by the first sender");
    assert!(store.due_messages(now, 10).unwrap().is_empty());
    assert!(store.claim_message(id, now + lease, now + lease * 2).unwrap(), "the lease ran out: sent again");
}

#[test]
fn two_workers_on_one_store_do_every_job_exactly_once() {
    let env = Env::new();
    let mut jobs = Vec::new();
    for n in 40..52 {
        env.certificates_of(n);
        jobs.push(env.confirmed(K::RevokeSigned, n, vec![]));
    }
    for n in 60..66 {
        jobs.push(env.confirmed(K::Repeat, n, vec![]));
    }
    let path = env.ca.dir.path().join("ca.db");
    let start = Barrier::new(2);
    let rounds: Vec<Vec<Round>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let (env, path, start) = (&env, &path, &start);
                scope.spawn(move || {
                    let store = SqliteStore::open(path).unwrap();
                    let actor = format!("worker:test:{i}");
                    start.wait();
                    let mut rounds = Vec::new();
                    loop {
                        let round = with_worker(env, &store, None, &actor, |w| w.round().unwrap());
                        let busy = round.busy();
                        rounds.push(round);
                        if !busy {
                            break rounds;
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let done: Vec<String> = rounds.iter().flatten().flat_map(|r| r.issued.iter().chain(&r.revoked)).cloned().collect();
    let failed: Vec<&String> = rounds.iter().flatten().flat_map(|r| &r.failed).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(done.len(), jobs.len(), "every job once: {done:?}");
    let store = &env.ca.store;
    for n in &jobs {
        let a = store.application(n).unwrap().unwrap();
        let (final_state, step) =
            if a.kind == K::Repeat { (S::Issued, Step::Issue) } else { (S::Revoked, Step::Revoke) };
        assert_eq!(a.state, final_state, "{n}");
        assert_eq!(steps(store, n, Step::Claim), 1, "{n} claimed once");
        assert_eq!(steps(store, n, step), 1, "{n} carried out once");
        assert_eq!(steps(store, n, Step::Release), 0, "{n} never given back");
    }
    // Certificates: two per repeat issuance, no more; every key store delivered once.
    assert_eq!(env.keys.delivered.load(Ordering::SeqCst), 2 * 6);
    for n in 60..66 {
        let query = CertificateQuery { iin: Some(fixtures::person(n).iin), ..Default::default() };
        assert_eq!(store.find(&query).unwrap().len(), 2);
    }
    // One notice per job, each delivered once: a sender takes a message before delivering it.
    let outbox = store.outbox(100).unwrap();
    assert_eq!(outbox.len(), jobs.len());
    assert!(outbox.iter().all(|m| m.sent_at.is_some() && m.attempts == 1));
    let mut delivered = env.deliveries.lock().unwrap().clone();
    delivered.sort();
    let before = delivered.len();
    delivered.dedup();
    assert_eq!((before, delivered.len()), (jobs.len(), jobs.len()), "no notice delivered twice");
    let audit = store.verify_audit().unwrap();
    assert!(audit.is_intact(), "{:?}", audit.problems);
}
