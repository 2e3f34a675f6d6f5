//! The hash-chained journal: appends, listing, and tampering behind the store's back.

use ca_core::revocation::RevocationReason;
use ca_core::store::audit::{entry_hash, GENESIS_HASH};
use ca_core::store::{AuditEvent, AuditQuery, Issued, Reservation, Store};
use time::Duration;

use crate::backends::Backend;
use crate::common::*;

pub fn audit_chain_verifies_after_many_operations(b: &impl Backend) {
    let store = b.store();
    let mut expected = 0;
    for round in 0..10 {
        let batch: Vec<Reservation> = (0..5).map(|_| reservation(None, None)).collect();
        let events: Vec<AuditEvent> = batch.iter().map(|r| event("certificate.reserve", &r.serial)).collect();
        store.reserve(&batch, &events).unwrap();
        let certs: Vec<Issued> = batch.iter().map(|r| issued(&r.serial)).collect();
        store.record_issued(&certs, &[AuditEvent::new("ca", "certificate.issue.batch")]).unwrap();
        expected += 6;
        if round % 3 == 0 {
            let s = &batch[0].serial;
            store.revoke(s, &revocation(RevocationReason::Unspecified), &event("certificate.revoke", s)).unwrap();
            expected += 1;
        }
        let entry = store
            .append_audit(&AuditEvent::new("operator", "note").details(serde_json::json!({ "round": round, "x": 0.1 })))
            .unwrap();
        expected += 1;
        assert_eq!(entry.seq, expected as i64);
    }
    let v = store.verify_audit().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.entries, expected);
}

pub fn appended_entry_matches_what_is_stored(b: &impl Backend) {
    let store = b.store();
    let first = store.append_audit(&AuditEvent::new("a", "one")).unwrap();
    let second = store.append_audit(&AuditEvent::new("b", "two").target("x")).unwrap();
    assert_eq!((first.seq, first.prev_hash), (1, GENESIS_HASH));
    assert_eq!((second.seq, second.prev_hash), (2, first.hash));
    assert_eq!(second.hash, entry_hash(2, second.at, &second.event, &first.hash));
    assert_eq!(store.verify_audit().unwrap().head, hex::encode(second.hash));
    assert_eq!(store.audit_hash(2).unwrap(), Some(second.hash));
    assert_eq!(store.audit_hash(3).unwrap(), None);
}

fn list(store: &impl Store, query: &AuditQuery) -> Vec<i64> {
    let mut seqs = Vec::new();
    store
        .audit_entries(query, &mut |e| {
            seqs.push(e.seq);
            Ok(())
        })
        .unwrap();
    seqs
}

pub fn entries_are_listed_by_time_range_and_actor(b: &impl Backend) {
    let store = b.store();
    let mut times = Vec::new();
    for i in 0..12 {
        let actor = if i % 3 == 0 { "alice" } else { "bob" };
        times.push(store.append_audit(&AuditEvent::new(actor, "thing.done")).unwrap().at);
    }
    assert_eq!(list(store, &AuditQuery::default()), (1..=12).collect::<Vec<_>>());
    let alice = AuditQuery { actor: Some("alice".into()), ..Default::default() };
    assert_eq!(list(store, &alice), vec![1, 4, 7, 10]);
    let window = AuditQuery { from: Some(times[3]), until: Some(times[6]), ..Default::default() };
    assert_eq!(list(store, &window), vec![4, 5, 6]);
    let limited = AuditQuery { limit: Some(2), ..alice };
    assert_eq!(list(store, &limited), vec![1, 4]);
    let later = AuditQuery { from: Some(times[11] + Duration::seconds(1)), ..Default::default() };
    assert!(list(store, &later).is_empty());
}

fn journalled(b: &impl Backend) {
    for i in 0..5 {
        b.store().append_audit(&AuditEvent::new("tester", format!("step.{i}"))).unwrap();
    }
    assert!(b.store().verify_audit().unwrap().is_intact());
}

pub fn append_only_refuses_update_and_delete(b: &impl Backend) {
    journalled(b);
    for sql in ["UPDATE audit SET actor = 'mallory' WHERE seq = 3", "DELETE FROM audit WHERE seq = 3"] {
        let err = b.raw(sql).unwrap_err();
        assert!(err.contains("audit journal is append-only"), "{sql}: {err}");
    }
    assert!(b.store().verify_audit().unwrap().is_intact());
}

pub fn edited_audit_row_is_detected_at_its_seq<B: Backend>(b: &B) {
    journalled(b);
    b.raw(B::LIFT_APPEND_ONLY).unwrap();
    b.raw("UPDATE audit SET actor = 'mallory' WHERE seq = 3").unwrap();
    let v = b.store().verify_audit().unwrap();
    assert!(!v.is_intact());
    assert_eq!(v.problems.len(), 1, "{v:?}");
    assert_eq!(v.problems[0].seq, 3);
}

pub fn deleted_audit_row_is_detected<B: Backend>(b: &B) {
    journalled(b);
    b.raw(B::LIFT_APPEND_ONLY).unwrap();
    b.raw("DELETE FROM audit WHERE seq = 3").unwrap();
    let v = b.store().verify_audit().unwrap();
    assert_eq!(v.entries, 4);
    assert!(v.problems.iter().any(|p| p.seq == 4 && p.problem.contains("gap")), "{v:?}");
}

pub fn unreadable_audit_row_is_a_problem_not_an_error<B: Backend>(b: &B) {
    journalled(b);
    b.raw(B::LIFT_APPEND_ONLY).unwrap();
    b.raw("UPDATE audit SET details = '{not json' WHERE seq = 2").unwrap();
    let v = b.store().verify_audit().unwrap();
    assert_eq!(v.entries, 5);
    assert_eq!(v.problems.len(), 1, "{v:?}");
    assert_eq!(v.problems[0].seq, 2);
}

/// Appends from several handles at once (separate connections: separate processes as far as
/// the database can tell) form one chain without gaps or forks. Without the store's
/// serialisation two appenders read the same head and one of them fails or forks the chain.
pub fn concurrent_appends_from_several_connections_form_one_chain(b: &impl Backend) {
    const THREADS: usize = 6;
    const EACH: usize = 25;
    let handles: Vec<_> = (0..THREADS).map(|_| b.open()).collect();
    std::thread::scope(|s| {
        for (i, store) in handles.iter().enumerate() {
            s.spawn(move || {
                for n in 0..EACH {
                    store.append_audit(&AuditEvent::new(format!("writer-{i}"), "note").target(n.to_string())).unwrap();
                }
            });
        }
    });
    let v = b.store().verify_audit().unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.entries, (THREADS * EACH) as u64);
}
