//! The registration authority's store: submissions with dedup, claims, the outbox, the registry.

use ca_core::ra::application::{ActorRole, ApplicationKind, ApplicationState, Step};
use ca_core::ra::csv::RegistryImport;
use ca_core::ra::registry::{ExclusionCode, LegalCapacity, LegalEntityRecord, PersonRecord};
use ca_core::ra::store::{NewApplication, NewEvent, NewMessage, RaStore, Submitted, Transition, Transitioned};
use ca_core::store::Store;
use time::OffsetDateTime;

use crate::backends::Backend;
use crate::common::*;

pub fn new_event(step: Step, actor: &str, at: OffsetDateTime) -> NewEvent {
    NewEvent {
        step,
        actor_role: ActorRole::Operator,
        actor: actor.into(),
        signer_serial: None,
        at,
        details: serde_json::json!({}),
    }
}

pub fn application(dedup: &str, state: ApplicationState) -> NewApplication {
    NewApplication {
        channel: ca_core::ra::Channel::ServiceProvider,
        paperwork: None,
        receipt: None,
        kind: ApplicationKind::NewIndividual,
        iin: iin("88010130001"),
        bin: None,
        email: Some("a@example.kz".into()),
        serials: Vec::new(),
        revocation_reason: None,
        dedup_key: dedup.into(),
        state,
        refusal: None,
        roles: Vec::new(),
        keys: Vec::new(),
        tokens: Vec::new(),
        notice: None,
        earlier: Vec::new(),
    }
}

fn claim(actor: &str) -> Transition {
    Transition {
        from: vec![ApplicationState::Confirmed],
        to: ApplicationState::Issuing,
        event: new_event(Step::Claim, actor, t(1_760_000_100)),
        serials: None,
        refusal: None,
        notice: None,
        token: None,
    }
}

pub fn a_second_submission_returns_the_open_application(b: &impl Backend) {
    let store = b.store();
    let at = t(1_760_000_000);
    let Submitted::New(first) =
        store.submit(&application("k1", ApplicationState::Confirmed), &new_event(Step::Register, "op", at)).unwrap()
    else {
        panic!("a new application")
    };
    let again =
        store.submit(&application("k1", ApplicationState::Confirmed), &new_event(Step::Register, "op", at)).unwrap();
    assert_eq!(again, Submitted::Existing(first.clone()));
    let Submitted::New(other) =
        store.submit(&application("k2", ApplicationState::Confirmed), &new_event(Step::Register, "op", at)).unwrap()
    else {
        panic!("another dedup key is another application")
    };
    assert_ne!(other.number, first.number);
    assert_eq!(store.application(&first.number).unwrap(), Some(first.clone()));
    let events = store.application_events(Some(&first.number)).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].to, ApplicationState::Confirmed);
    assert_eq!(store.applications(&Default::default()).unwrap().len(), 2);
    assert!(store.verify_audit().unwrap().is_intact());
}

/// Several workers (separate handles) claim one confirmed application at once: exactly one
/// gets it; the others find it already claimed and nothing of theirs is recorded.
pub fn one_claim_wins_among_concurrent_workers(b: &impl Backend) {
    let at = t(1_760_000_000);
    let Submitted::New(a) =
        b.store().submit(&application("k", ApplicationState::Confirmed), &new_event(Step::Register, "op", at)).unwrap()
    else {
        panic!("a new application")
    };
    let workers: Vec<_> = (0..6).map(|_| b.open()).collect();
    let wins: usize = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let number = a.number.clone();
                s.spawn(move || {
                    matches!(w.transition(&number, &claim(&format!("worker-{i}"))).unwrap(), Transitioned::Applied(_))
                })
            })
            .collect();
        handles.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
    });
    assert_eq!(wins, 1);
    let claims =
        b.store().application_events(Some(&a.number)).unwrap().into_iter().filter(|e| e.step == Step::Claim).count();
    assert_eq!(claims, 1);
    assert_eq!(b.store().application(&a.number).unwrap().unwrap().state, ApplicationState::Issuing);
    assert!(b.store().verify_audit().unwrap().is_intact());
}

pub fn a_transition_queues_its_notice_and_the_outbox_delivers_once(b: &impl Backend) {
    let store = b.store();
    let at = t(1_760_000_000);
    let Submitted::New(a) =
        store.submit(&application("k", ApplicationState::Confirmed), &new_event(Step::Register, "op", at)).unwrap()
    else {
        panic!("a new application")
    };
    assert!(matches!(store.transition(&a.number, &claim("w")).unwrap(), Transitioned::Applied(_)));
    let done = Transition {
        from: vec![ApplicationState::Issuing],
        to: ApplicationState::Issued,
        event: new_event(Step::Issue, "w", t(1_760_000_200)),
        serials: Some(vec![ca_core::serial::SerialNumber::random()]),
        refusal: None,
        notice: Some(NewMessage { to: "a@example.kz".into(), subject: "issued".into(), body: "ok".into() }),
        token: None,
    };
    let Transitioned::Applied(issued) = store.transition(&a.number, &done).unwrap() else { panic!("applied") };
    assert_eq!(issued.serials, done.serials.clone().unwrap());
    assert!(matches!(store.transition(&a.number, &done).unwrap(), Transitioned::NotApplicable(_)));
    let due = store.due_messages(t(1_760_000_300), 10).unwrap();
    assert_eq!(due.len(), 1);
    store.mark_failed(due[0].id, "relay down", t(1_760_000_400)).unwrap();
    assert!(store.due_messages(t(1_760_000_300), 10).unwrap().is_empty(), "retried later");
    assert!(store.mark_sent(due[0].id, t(1_760_000_500)).unwrap());
    assert!(!store.mark_sent(due[0].id, t(1_760_000_600)).unwrap(), "delivered once");
    let all = store.outbox(10).unwrap();
    assert_eq!((all[0].attempts, all[0].sent_at), (2, Some(t(1_760_000_500))));
}

pub fn registry_import_adds_updates_and_counts(b: &impl Backend) {
    let store = b.store();
    let person = PersonRecord {
        iin: iin("88010130001"),
        surname: "Тестов".into(),
        given_name: "Тест".into(),
        patronymic: None,
        life_status: 0,
        exclusion: ExclusionCode::new(0).unwrap(),
        legal_capacity: LegalCapacity::from_code(1).unwrap(),
        special_register: false,
        document_number: "N123".into(),
        document_issued: time::macros::date!(2020 - 01 - 02),
        email: Some("t@example.kz".into()),
        phone: None,
    };
    let entity = LegalEntityRecord {
        bin: bin("12134001234"),
        name: "ТОО Тест".into(),
        registration_number: "R1".into(),
        head_iin: person.iin,
    };
    let import = RegistryImport { persons: vec![person.clone()], entities: vec![entity.clone()] };
    let counts = store.import_registry(&import, "op").unwrap();
    assert_eq!((counts.persons_added, counts.entities_added), (1, 1));
    let counts = store.import_registry(&import, "op").unwrap();
    assert_eq!((counts.persons_unchanged, counts.entities_unchanged), (1, 1));
    let moved = PersonRecord { surname: "Иванова".into(), ..person.clone() };
    let counts =
        store.import_registry(&RegistryImport { persons: vec![moved.clone()], entities: vec![] }, "op").unwrap();
    assert_eq!(counts.persons_updated, 1);
    assert_eq!(store.registry_person(&person.iin).unwrap(), Some(moved));
    assert_eq!(store.registry_entity(&entity.bin).unwrap(), Some(entity));
}
