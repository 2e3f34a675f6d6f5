//! Digital documents: versions, access grants with short codes and their guessing limits, view
//! marks and the journal the cabinets read, release requests.

use portal::store::documents::{
    CodeLimits, DocumentEvent, DocumentStore, DocumentStored, NewDocument, NewGrant, ReleaseRequest, Resolution,
};
use time::{Duration, OffsetDateTime};

use crate::backends::Backend;
use crate::common::{account, now, IIN};

const AUTHORITY: &str = "000140000005";

fn doc(number: &str, at: OffsetDateTime) -> NewDocument {
    NewDocument {
        authority_bin: AUTHORITY.into(),
        subject_iin: IIN.into(),
        doc_type: "identity-card".into(),
        number: number.into(),
        title: "t".into(),
        issued_at: at,
        content: b"{}".to_vec(),
        cms: b"cms".to_vec(),
        timestamp_token: b"tst".to_vec(),
        stamped_at: at,
        received_at: at,
    }
}

fn event(actor: &str, action: &str, at: OffsetDateTime) -> DocumentEvent {
    DocumentEvent {
        seq: 0,
        at,
        document_id: None,
        subject_iin: None,
        actor: actor.into(),
        actor_kind: "authority".into(),
        action: action.into(),
        channel: None,
        outcome: "ok".into(),
        detail: None,
        client_address: None,
    }
}

fn stored(store: &impl DocumentStore, number: &str, at: OffsetDateTime) -> i64 {
    let submitted = DocumentEvent { subject_iin: Some(IIN.into()), ..event(AUTHORITY, "submitted", at) };
    match store.store_document(&doc(number, at), &submitted).unwrap() {
        DocumentStored::Stored { id, .. } => id,
        other => panic!("{other:?}"),
    }
}

fn grant(document_id: i64, opened_by: i64, hash: u8, at: OffsetDateTime) -> NewGrant {
    NewGrant { document_id, opened_by, token_hash: [hash; 32], created_at: at, expires_at: at + Duration::minutes(5) }
}

/// Draws these codes in order.
fn fixed(codes: &'static [&'static str]) -> impl FnMut() -> Result<String, ca_core::store::StoreError> {
    let mut it = codes.iter();
    move || Ok(it.next().expect("drawn too often").to_string())
}

const LIMITS: CodeLimits = CodeLimits {
    per_viewer: 3,
    viewer_window: Duration::minutes(15),
    global: 5,
    global_window: Duration::minutes(1),
    lock_after: 4,
};

pub fn versions_supersede_numbers_are_unique_and_documents_are_never_deleted(b: &impl Backend) {
    let store = b.store();
    account(store, IIN);
    let now = now();
    let submitted = |n: &str| store.store_document(&doc(n, now), &event(AUTHORITY, "submitted", now)).unwrap();
    let DocumentStored::Stored { id: first, version: 1 } = submitted("A") else { panic!("first version") };
    let DocumentStored::Stored { id: second, version: 2 } = submitted("B") else { panic!("second version") };
    assert_eq!(submitted("B"), DocumentStored::DuplicateNumber);
    let old = store.document(first).unwrap().unwrap();
    assert_eq!(
        (old.superseded_by, old.number.as_str(), old.cms.as_slice(), old.issued_at),
        (Some(second), "A", &b"cms"[..], now)
    );
    assert_eq!(store.current_document(IIN, "identity-card").unwrap().unwrap().id, second);
    assert_eq!(store.current_document(IIN, "passport").unwrap(), None);
    assert_eq!(store.documents_of(IIN, false).unwrap().len(), 1);
    let all: Vec<i64> = store.documents_of(IIN, true).unwrap().iter().map(|d| d.id).collect();
    assert_eq!(all, vec![second, first], "newest first");
    assert!(b.raw(&format!("DELETE FROM documents WHERE id = {first}")).is_err(), "never deleted");
    assert!(b.raw(&format!("UPDATE documents SET title = 'x' WHERE id = {first}")).is_err(), "superseded: frozen");
    assert!(b.raw(&format!("UPDATE documents SET version = 9 WHERE id = {second}")).is_err(), "never rewritten");
    assert!(b.raw("DELETE FROM document_events").is_err(), "append-only journal");
    let events = store.document_events(10).unwrap();
    assert_eq!(events.len(), 2, "the duplicate left no trace but its refusal to the caller");
    assert_eq!((events[0].document_id, events[1].document_id), (Some(first), Some(second)));
}

pub fn a_short_code_is_unique_among_live_grants_only(b: &impl Backend) {
    let store = b.store();
    let opener = account(store, IIN);
    let now = now();
    let id = stored(store, "A", now);
    let opened = |hash: u8, at: OffsetDateTime, codes: &'static [&'static str]| {
        store.open_grant(&grant(id, opener, hash, at), &mut fixed(codes), &event(IIN, "access-opened", at)).unwrap()
    };
    let first = opened(1, now, &["123456"]);
    assert_eq!((first.short_code.as_str(), first.expires_at), ("123456", now + Duration::minutes(5)));
    // Taken by a live grant: drawn again.
    assert_eq!(opened(2, now, &["123456", "654321"]).short_code, "654321");
    // Once the first expired its code may be given again; the lookup finds the live one.
    let later = now + Duration::minutes(6);
    let third = opened(3, later, &["123456"]);
    assert_eq!(third.short_code, "123456");
    let view = event("900101300025", "view", later);
    assert_eq!(
        store.resolve_code("123456", later, &LIMITS, &view).unwrap(),
        Resolution::Granted { grant: third.clone() }
    );
    assert_eq!(store.grant(third.id).unwrap().unwrap(), third);
    assert_eq!(store.grants_by(opener).unwrap().len(), 3);
}

pub fn wrong_codes_are_limited_and_lock_live_codes(b: &impl Backend) {
    let store = b.store();
    let opener = account(store, IIN);
    let now = now();
    let id = stored(store, "A", now);
    let live = store
        .open_grant(&grant(id, opener, 1, now), &mut fixed(&["123456"]), &event(IIN, "access-opened", now))
        .unwrap();
    let try_code = |who: &str, code: &str| store.resolve_code(code, now, &LIMITS, &event(who, "view", now)).unwrap();
    for code in ["000001", "000002", "000003"] {
        assert_eq!(try_code("viewer-x", code), Resolution::NotFound);
    }
    assert_eq!(try_code("viewer-x", "123456"), Resolution::RateLimited { global: false }, "even the right code");
    assert_eq!(try_code("viewer-y", "000004"), Resolution::NotFound, "the fourth wrong try on the live code");
    assert!(store.grant(live.id).unwrap().unwrap().locked_at.is_some(), "locked after 4 wrong tries");
    assert_eq!(try_code("viewer-y", "123456"), Resolution::Closed { reason: "code-locked" });
    assert_eq!(try_code("viewer-z", "000005"), Resolution::NotFound);
    assert_eq!(try_code("viewer-w", "000006"), Resolution::RateLimited { global: true }, "five wrong codes a minute");
    let outcomes: Vec<String> = store.document_events(100).unwrap().into_iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes[2..],
        [
            "wrong-code",
            "wrong-code",
            "wrong-code",
            "rate-limited",
            "wrong-code",
            "code-locked",
            "wrong-code",
            "rate-limited-global"
        ],
        "every try journaled, in order"
    );
}

pub fn views_withdrawals_and_releases_are_journaled_for_the_cabinets(b: &impl Backend) {
    let store = b.store();
    let opener = account(store, IIN);
    let now = now();
    let id = stored(store, "A", now);
    let g = store
        .open_grant(&grant(id, opener, 1, now), &mut fixed(&["123456"]), &event(IIN, "access-opened", now))
        .unwrap();
    let third = DocumentEvent {
        actor_kind: "third-party".into(),
        channel: Some("qr".into()),
        ..event("900101300025", "view", now)
    };
    assert_eq!(store.resolve_token(&[9; 32], now, &third).unwrap(), Resolution::NotFound);
    assert_eq!(store.resolve_token(&[1; 32], now, &third).unwrap(), Resolution::Granted { grant: g.clone() });
    // The view mark is in the subject's cabinet although a third party made it.
    let history = store.cabinet_history(&[IIN.to_owned()], IIN, 50).unwrap();
    let actions: Vec<(&str, &str)> = history.iter().map(|e| (e.action.as_str(), e.actor.as_str())).collect();
    assert_eq!(actions, [("view", "900101300025"), ("access-opened", IIN), ("submitted", AUTHORITY)], "newest first");
    assert_eq!(history[0].subject_iin.as_deref(), Some(IIN));
    assert_eq!(history[0].detail.as_deref(), Some(format!("grant {}", g.id).as_str()));
    let theirs = store.cabinet_history(&[], "900101300025", 50).unwrap();
    assert_eq!(theirs.len(), 1, "and in the viewer's own history, without the failed lookup");
    assert!(store.withdraw_grant(g.id, now, &event(IIN, "access-withdrawn", now)).unwrap());
    assert!(!store.withdraw_grant(g.id, now, &event(IIN, "access-withdrawn", now)).unwrap(), "once");
    assert_eq!(store.resolve_token(&[1; 32], now, &third).unwrap(), Resolution::Closed { reason: "access-withdrawn" });
    let request = ReleaseRequest {
        id: "r-1".into(),
        system: "bank".into(),
        subject_iin: IIN.into(),
        doc_type: "identity-card".into(),
        created_at: now,
        expires_at: now + Duration::minutes(10),
        released_at: None,
    };
    store.create_release_request(&request, &event("bank", "consent-requested", now)).unwrap();
    assert_eq!(store.release_request("r-1").unwrap().unwrap(), request);
    assert!(store.mark_released("r-1", now, &event("bank", "released", now)).unwrap());
    assert!(!store.mark_released("r-1", now, &event("bank", "released", now)).unwrap(), "released once");
    assert_eq!(store.release_request("r-1").unwrap().unwrap().released_at, Some(now));
    let released = store.document_events(100).unwrap().iter().filter(|e| e.action == "released").count();
    assert_eq!(released, 1);
    store.journal_document_event(&event(IIN, "downloaded", now)).unwrap();
    assert_eq!(store.document_events(100).unwrap().last().unwrap().action, "downloaded");
}
