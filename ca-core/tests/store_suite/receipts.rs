//! State Corporation counters: receipts numbered per year under concurrent counters, a receipt
//! of acceptance stored with its application, the channel and paperwork read back.

use ca_core::ra::application::{ApplicationKind, ApplicationState, Channel, Step};
use ca_core::ra::receipt::{ReceiptDetails, ReceiptKind, ReceiptNumber};
use ca_core::ra::state_corporation::{Consent, Document, Paperwork, PowerOfAttorney, Representative};
use ca_core::ra::store::{NewApplication, RaStore, Submitted};
use ca_core::store::Store;

use crate::backends::Backend;
use crate::common::*;
use crate::ra::{application, new_event};

fn details(kind: ReceiptKind, at: i64) -> ReceiptDetails {
    ReceiptDetails {
        kind,
        application_kind: ApplicationKind::Card,
        iin: iin("88010130001"),
        bin: None,
        applicant_name: Some("Тестов Тест".into()),
        representative: None,
        presented: vec![Document::IdentityDocument],
        missing: if kind == ReceiptKind::Refusal { vec![Document::CardOrSim] } else { Vec::new() },
        operator: "con-operator-1".into(),
        issued_at: t(at),
        email: Some("a@example.kz".into()),
    }
}

pub fn receipts_are_numbered_per_year_without_gaps_under_concurrent_counters(b: &impl Backend) {
    const COUNTERS: usize = 4;
    const EACH: usize = 6;
    // 2025-11-14 and 2026-01-10.
    let (last_year, this_year) = (1_763_100_000, 1_768_000_000);
    let first = b.store().refuse_package(&details(ReceiptKind::Refusal, last_year)).unwrap();
    assert_eq!(first.number.as_str(), "R-2025-000001");
    let numbers: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..COUNTERS)
            .map(|_| {
                scope.spawn(|| {
                    // Each counter is another process: a store of its own on the same database.
                    let store = b.open();
                    (0..EACH)
                        .map(|_| store.refuse_package(&details(ReceiptKind::Refusal, this_year)).unwrap().number)
                        .map(|n| n.as_str().to_owned())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let mut sorted = numbers.clone();
    sorted.sort();
    sorted.dedup();
    let expected: Vec<String> = (1..=COUNTERS * EACH).map(|i| format!("R-2026-{i:06}")).collect();
    assert_eq!(sorted, expected, "unique, sequential, no gaps");
    let store = b.store();
    let read = store.receipt(&"R-2026-000003".parse().unwrap()).unwrap().unwrap();
    assert_eq!((read.details.missing.as_slice(), read.application), (&[Document::CardOrSim][..], None));
    assert_eq!(store.receipt(&ReceiptNumber::new(2026, 999)).unwrap(), None);
    // Each receipt went to the applicant's mailbox, and each is in the audit journal.
    let mailed = store.outbox(100).unwrap();
    assert_eq!(mailed.len(), 1 + COUNTERS * EACH);
    assert!(mailed.iter().all(|m| m.application.is_none() && m.body.contains("об отказе в приеме документов")));
    assert!(store.verify_audit().unwrap().is_intact());
}

pub fn an_acceptance_is_stored_with_its_application_channel_and_paperwork(b: &impl Backend) {
    let store = b.store();
    let representative = Representative {
        iin: iin("77010130002"),
        name: "Представитель Петр".into(),
        power_of_attorney: PowerOfAttorney {
            number: "НД-17".into(),
            date: time::macros::date!(2026 - 01 - 05),
            issuer: "нотариус Алматы".into(),
        },
    };
    let paperwork = Paperwork {
        consent: Some(Consent {
            taken_by: "con-operator-1".into(),
            taken_at: t(1_768_000_000),
            scan_sha256: Some("ab".repeat(32)),
        }),
        representative: Some(representative.clone()),
        documents: vec![Document::IdentityDocument, Document::CardOrSim],
        receipt: None,
    };
    let new = NewApplication {
        channel: Channel::StateCorporation,
        paperwork: Some(paperwork.clone()),
        receipt: Some(ReceiptDetails {
            representative: Some(representative),
            ..details(ReceiptKind::Acceptance, 1_768_000_000)
        }),
        ..application("k1", ApplicationState::AwaitingOperator)
    };
    let Submitted::New(a) = store.submit(&new, &new_event(Step::Register, "con-operator-1", t(1_768_000_000))).unwrap()
    else {
        panic!("a new application");
    };
    assert_eq!(a.channel, Channel::StateCorporation);
    let number = ReceiptNumber::new(2026, 1);
    assert_eq!(a.paperwork, Some(Paperwork { receipt: Some(number.clone()), ..paperwork }));
    let receipt = store.receipt(&number).unwrap().unwrap();
    assert_eq!((receipt.details.kind, receipt.application.as_ref()), (ReceiptKind::Acceptance, Some(&a.number)));
    assert_eq!(store.application(&a.number).unwrap().unwrap(), a);
    // The receipt is mailed with the application's number on it.
    let mailed = store.outbox(10).unwrap();
    assert!(mailed.iter().any(|m| m.application.as_ref() == Some(&a.number)
        && m.subject.contains("R-2026-000001")
        && m.body.contains(a.number.as_str())));
    // An application without paperwork reads back as the service provider's.
    let Submitted::New(plain) = store
        .submit(&application("k2", ApplicationState::Confirmed), &new_event(Step::Register, "op", t(1_768_000_100)))
        .unwrap()
    else {
        panic!("a new application");
    };
    assert_eq!((plain.channel, plain.paperwork), (Channel::ServiceProvider, None));
}
