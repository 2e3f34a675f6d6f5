//! Tests of the documents part of the SQLite store.

use time::Duration;

use super::*;

fn doc(number: &str, at: OffsetDateTime) -> NewDocument {
    NewDocument {
        authority_bin: "000140000005".into(),
        subject_iin: "900101300017".into(),
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

fn event(at: OffsetDateTime) -> DocumentEvent {
    DocumentEvent {
        seq: 0,
        at,
        document_id: None,
        subject_iin: None,
        actor: "000140000005".into(),
        actor_kind: "authority".into(),
        action: "submitted".into(),
        channel: None,
        outcome: "ok".into(),
        detail: None,
        client_address: None,
    }
}

fn store_with_account() -> (SqlitePortalStore, i64) {
    let store = SqlitePortalStore::open_in_memory().unwrap();
    let id = crate::store::PortalStore::create_account(
        &store,
        &crate::store::NewAccount {
            login: "900101300017".into(),
            kind: crate::account::AccountKind::Individual,
            iin: "900101300017".into(),
            bin: None,
            email: "a@b.kz".into(),
            password_hash: "h".into(),
            state: crate::account::AccountState::Active,
            created_by: crate::account::CreatedBy::SelfService,
            at: OffsetDateTime::now_utc(),
        },
    )
    .unwrap()
    .unwrap();
    (store, id)
}

#[test]
fn versions_supersede_numbers_are_unique_and_documents_are_never_deleted() {
    let (store, _) = store_with_account();
    assert!(store.schema_version().unwrap() >= 3, "the documents tables are migration 3");
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let DocumentStored::Stored { id: first, version: 1 } = store.store_document(&doc("A", now), &event(now)).unwrap()
    else {
        panic!("first version")
    };
    let DocumentStored::Stored { id: second, version: 2 } = store.store_document(&doc("B", now), &event(now)).unwrap()
    else {
        panic!("second version")
    };
    assert_eq!(store.store_document(&doc("B", now), &event(now)).unwrap(), DocumentStored::DuplicateNumber);
    assert_eq!(store.document(first).unwrap().unwrap().superseded_by, Some(second));
    assert_eq!(store.documents_of("900101300017", false).unwrap().len(), 1);
    assert_eq!(store.documents_of("900101300017", true).unwrap().len(), 2);
    let conn = store.lock();
    assert!(conn.execute("DELETE FROM documents WHERE id = ?1", [first]).is_err(), "never deleted");
    assert!(conn.execute("UPDATE documents SET cms = x'00' WHERE id = ?1", [second]).is_err(), "never rewritten");
    assert!(conn.execute("DELETE FROM document_events", []).is_err(), "append-only journal");
}

#[test]
fn a_short_code_is_unique_among_live_grants_only() {
    let (store, account) = store_with_account();
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let DocumentStored::Stored { id, .. } = store.store_document(&doc("A", now), &event(now)).unwrap() else {
        panic!()
    };
    let grant = |hash: u8, at: OffsetDateTime| NewGrant {
        document_id: id,
        opened_by: account,
        token_hash: [hash; 32],
        created_at: at,
        expires_at: at + Duration::minutes(5),
    };
    let fixed = |codes: &'static [&'static str]| {
        let mut it = codes.iter();
        move || Ok(it.next().expect("drawn too often").to_string())
    };
    let first = store.open_grant(&grant(1, now), &mut fixed(&["123456"]), &event(now)).unwrap();
    assert_eq!(first.short_code, "123456");
    // Taken by a live grant: drawn again.
    let second = store.open_grant(&grant(2, now), &mut fixed(&["123456", "654321"]), &event(now)).unwrap();
    assert_eq!(second.short_code, "654321");
    // Once the first expired its code may be given again; the lookup finds the live one.
    let later = now + Duration::minutes(6);
    let third = store.open_grant(&grant(3, later), &mut fixed(&["123456"]), &event(later)).unwrap();
    assert_eq!(third.short_code, "123456");
    let limits = CodeLimits {
        per_viewer: 5,
        viewer_window: Duration::minutes(15),
        global: 100,
        global_window: Duration::minutes(1),
        lock_after: 10,
    };
    let view = DocumentEvent { action: "view".into(), actor: "900101300025".into(), ..event(later) };
    assert_eq!(
        store.resolve_code("123456", later, &limits, &view).unwrap(),
        Resolution::Granted { grant: third.clone() }
    );
}
