//! Documents, access grants, release requests and the document journal in SQLite.

use ca_core::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use super::{from_millis, millis, Context, SqlitePortalStore};
use crate::store::decide::{self, closed_reason, with_outcome};
use crate::store::documents::{
    CodeLimits, DocumentEvent, DocumentStore, DocumentStored, Grant, NewDocument, NewGrant, ReleaseRequest, Resolution,
    StoredDocument,
};

const DOCUMENT_COLUMNS: &str = "id, authority_bin, subject_iin, doc_type, number, title, version, issued_at, content, \
                                cms, timestamp_token, stamped_at, received_at, superseded_by";

fn document_row(r: &Row<'_>) -> rusqlite::Result<(StoredDocument, [i64; 3])> {
    let placeholder = OffsetDateTime::UNIX_EPOCH;
    Ok((
        StoredDocument {
            id: r.get(0)?,
            authority_bin: r.get(1)?,
            subject_iin: r.get(2)?,
            doc_type: r.get(3)?,
            number: r.get(4)?,
            title: r.get(5)?,
            version: r.get(6)?,
            issued_at: placeholder,
            content: r.get(8)?,
            cms: r.get(9)?,
            timestamp_token: r.get(10)?,
            stamped_at: placeholder,
            received_at: placeholder,
            superseded_by: r.get(13)?,
        },
        [r.get(7)?, r.get(11)?, r.get(12)?],
    ))
}

fn finish_document(
    (mut d, [issued, stamped, received]): (StoredDocument, [i64; 3]),
) -> Result<StoredDocument, StoreError> {
    d.issued_at = from_millis(issued)?;
    d.stamped_at = from_millis(stamped)?;
    d.received_at = from_millis(received)?;
    Ok(d)
}

const GRANT_COLUMNS: &str = "id, document_id, opened_by, short_code, created_at, expires_at, withdrawn_at, locked_at";

fn grant_row(r: &Row<'_>) -> rusqlite::Result<(Grant, [Option<i64>; 4])> {
    let placeholder = OffsetDateTime::UNIX_EPOCH;
    Ok((
        Grant {
            id: r.get(0)?,
            document_id: r.get(1)?,
            opened_by: r.get(2)?,
            short_code: r.get(3)?,
            created_at: placeholder,
            expires_at: placeholder,
            withdrawn_at: None,
            locked_at: None,
        },
        [Some(r.get(4)?), Some(r.get(5)?), r.get(6)?, r.get(7)?],
    ))
}

fn finish_grant(
    (mut g, [created, expires, withdrawn, locked]): (Grant, [Option<i64>; 4]),
) -> Result<Grant, StoreError> {
    g.created_at = from_millis(created.unwrap_or_default())?;
    g.expires_at = from_millis(expires.unwrap_or_default())?;
    g.withdrawn_at = withdrawn.map(from_millis).transpose()?;
    g.locked_at = locked.map(from_millis).transpose()?;
    Ok(g)
}

const EVENT_COLUMNS: &str =
    "seq, at, document_id, subject_iin, actor, actor_kind, action, channel, outcome, detail, client_address";

fn event_row(r: &Row<'_>) -> rusqlite::Result<(DocumentEvent, i64)> {
    Ok((
        DocumentEvent {
            seq: r.get(0)?,
            at: OffsetDateTime::UNIX_EPOCH,
            document_id: r.get(2)?,
            subject_iin: r.get(3)?,
            actor: r.get(4)?,
            actor_kind: r.get(5)?,
            action: r.get(6)?,
            channel: r.get(7)?,
            outcome: r.get(8)?,
            detail: r.get(9)?,
            client_address: r.get(10)?,
        },
        r.get(1)?,
    ))
}

fn insert_event(conn: &Connection, e: &DocumentEvent) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO document_events (at, document_id, subject_iin, actor, actor_kind, action, channel, outcome, detail, client_address)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            millis(e.at),
            e.document_id,
            e.subject_iin,
            e.actor,
            e.actor_kind,
            e.action,
            e.channel,
            e.outcome,
            e.detail,
            e.client_address
        ])
    })
    .context("journaling a document event")?;
    Ok(())
}

fn grant_where(conn: &Connection, condition: &str, value: &dyn rusqlite::ToSql) -> Result<Option<Grant>, StoreError> {
    conn.prepare_cached(&format!("SELECT {GRANT_COLUMNS} FROM access_grants WHERE {condition}"))
        .and_then(|mut s| s.query_row([value], grant_row).optional())
        .context("reading a grant")?
        .map(finish_grant)
        .transpose()
}

impl DocumentStore for SqlitePortalStore {
    fn store_document(&self, doc: &NewDocument, event: &DocumentEvent) -> Result<DocumentStored, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let taken: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM documents WHERE authority_bin = ?1 AND number = ?2)",
                params![doc.authority_bin, doc.number],
                |r| r.get(0),
            )
            .context("checking the document number")?;
        if taken {
            return Ok(DocumentStored::DuplicateNumber);
        }
        let previous: Option<(i64, i64)> = tx
            .query_row(
                "SELECT id, version FROM documents WHERE subject_iin = ?1 AND doc_type = ?2 AND superseded_by IS NULL",
                params![doc.subject_iin, doc.doc_type],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .context("reading the current version")?;
        let version = previous.map_or(1, |(_, v)| v + 1);
        tx.execute(
            "INSERT INTO documents (authority_bin, subject_iin, doc_type, number, title, version, issued_at, content, cms,
                                    timestamp_token, stamped_at, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                doc.authority_bin,
                doc.subject_iin,
                doc.doc_type,
                doc.number,
                doc.title,
                version,
                millis(doc.issued_at),
                doc.content,
                doc.cms,
                doc.timestamp_token,
                millis(doc.stamped_at),
                millis(doc.received_at)
            ],
        )
        .context("storing a document")?;
        let id = tx.last_insert_rowid();
        if let Some((old, _)) = previous {
            tx.execute("UPDATE documents SET superseded_by = ?1 WHERE id = ?2", params![id, old])
                .context("superseding the previous version")?;
        }
        insert_event(&tx, &with_outcome(event, "ok", Some(id)))?;
        tx.commit().context("committing a document")?;
        Ok(DocumentStored::Stored { id, version })
    }

    fn document(&self, id: i64) -> Result<Option<StoredDocument>, StoreError> {
        let conn = self.lock()?;
        conn.prepare_cached(&format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id], document_row).optional())
            .context("reading a document")?
            .map(finish_document)
            .transpose()
    }

    fn documents_of(&self, subject_iin: &str, with_history: bool) -> Result<Vec<StoredDocument>, StoreError> {
        let conn = self.lock()?;
        let filter = if with_history { "" } else { "AND superseded_by IS NULL" };
        let mut s = conn
            .prepare_cached(&format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE subject_iin = ?1 {filter} ORDER BY id DESC"
            ))
            .context("listing documents")?;
        let rows = s.query_map([subject_iin], document_row).context("listing documents")?;
        rows.map(|r| r.context("reading a document").and_then(finish_document)).collect()
    }

    fn current_document(&self, subject_iin: &str, doc_type: &str) -> Result<Option<StoredDocument>, StoreError> {
        let conn = self.lock()?;
        conn.prepare_cached(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE subject_iin = ?1 AND doc_type = ?2 AND superseded_by IS NULL"
        ))
        .and_then(|mut s| s.query_row(params![subject_iin, doc_type], document_row).optional())
        .context("reading the current document")?
        .map(finish_document)
        .transpose()
    }

    fn open_grant(
        &self,
        grant: &NewGrant,
        draw: &mut dyn FnMut() -> Result<String, StoreError>,
        event: &DocumentEvent,
    ) -> Result<Grant, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let now = millis(grant.created_at);
        let code = loop {
            let code = draw()?;
            let taken: bool = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM access_grants WHERE short_code = ?1 AND expires_at > ?2
                                    AND withdrawn_at IS NULL AND locked_at IS NULL)",
                )
                .and_then(|mut s| s.query_row(params![code, now], |r| r.get(0)))
                .context("checking a short code")?;
            if !taken {
                break code;
            }
        };
        tx.execute(
            "INSERT INTO access_grants (document_id, opened_by, token_hash, short_code, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![grant.document_id, grant.opened_by, &grant.token_hash[..], code, now, millis(grant.expires_at)],
        )
        .context("opening a grant")?;
        let id = tx.last_insert_rowid();
        insert_event(&tx, &DocumentEvent { detail: Some(format!("grant {id}")), ..with_outcome(event, "ok", None) })?;
        let opened = grant_where(&tx, "id = ?1", &id)?.ok_or_else(|| StoreError::Database("grant vanished".into()))?;
        tx.commit().context("committing a grant")?;
        Ok(opened)
    }

    fn grant(&self, id: i64) -> Result<Option<Grant>, StoreError> {
        grant_where(&*self.lock()?, "id = ?1", &id)
    }

    fn grants_by(&self, account_id: i64) -> Result<Vec<Grant>, StoreError> {
        let conn = self.lock()?;
        let mut s = conn
            .prepare_cached(&format!(
                "SELECT {GRANT_COLUMNS} FROM access_grants WHERE opened_by = ?1 ORDER BY id DESC LIMIT 200"
            ))
            .context("listing grants")?;
        let rows = s.query_map([account_id], grant_row).context("listing grants")?;
        rows.map(|r| r.context("reading a grant").and_then(finish_grant)).collect()
    }

    fn withdraw_grant(&self, id: i64, now: OffsetDateTime, event: &DocumentEvent) -> Result<bool, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let changed = tx
            .execute(
                "UPDATE access_grants SET withdrawn_at = ?2
                 WHERE id = ?1 AND withdrawn_at IS NULL AND locked_at IS NULL AND expires_at > ?2",
                params![id, millis(now)],
            )
            .context("withdrawing a grant")?;
        insert_event(&tx, &with_outcome(event, if changed == 1 { "ok" } else { "access-not-live" }, None))?;
        tx.commit().context("committing a withdrawal")?;
        Ok(changed == 1)
    }

    fn resolve_token(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
        event: &DocumentEvent,
    ) -> Result<Resolution, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let resolution = match grant_where(&tx, "token_hash = ?1", &&token_hash[..])? {
            None => Resolution::NotFound,
            Some(g) => match closed_reason(&g, now) {
                Some(reason) => Resolution::Closed { reason },
                None => Resolution::Granted { grant: g },
            },
        };
        journal_resolution(&tx, event, &resolution, "unknown-token")?;
        tx.commit().context("committing a lookup")?;
        Ok(resolution)
    }

    fn resolve_code(
        &self,
        code: &str,
        now: OffsetDateTime,
        limits: &CodeLimits,
        event: &DocumentEvent,
    ) -> Result<Resolution, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let now_ms = millis(now);
        let mine: i64 = tx
            .prepare_cached(
                "SELECT count(*) FROM document_events WHERE outcome = 'wrong-code' AND actor = ?1 AND at > ?2",
            )
            .and_then(|mut s| s.query_row(params![event.actor, millis(now - limits.viewer_window)], |r| r.get(0)))
            .context("counting wrong codes")?;
        let all: i64 = tx
            .prepare_cached("SELECT count(*) FROM document_events WHERE outcome = 'wrong-code' AND at > ?1")
            .and_then(|mut s| s.query_row([millis(now - limits.global_window)], |r| r.get(0)))
            .context("counting wrong codes")?;
        let resolution = match decide::code_rate_limit(mine, all, limits) {
            Some(limited) => limited,
            None => {
                // The newest grant with this code: among live grants codes are unique.
                let found = tx
                    .prepare_cached(&format!(
                        "SELECT {GRANT_COLUMNS} FROM access_grants WHERE short_code = ?1 ORDER BY id DESC LIMIT 1"
                    ))
                    .and_then(|mut s| s.query_row([code], grant_row).optional())
                    .context("looking a code up")?
                    .map(finish_grant)
                    .transpose()?;
                decide::code_resolution(found, now, limits)
            }
        };
        if resolution == Resolution::NotFound {
            // Every live code could have been the target: count the try against each, and lock
            // those that reach the limit.
            tx.prepare_cached(
                "UPDATE access_grants SET wrong_tries = wrong_tries + 1,
                        locked_at = CASE WHEN wrong_tries + 1 >= ?2 THEN ?1 ELSE NULL END
                 WHERE withdrawn_at IS NULL AND locked_at IS NULL AND expires_at > ?1",
            )
            .and_then(|mut s| s.execute(params![now_ms, limits.lock_after]))
            .context("counting a wrong code")?;
        }
        journal_resolution(&tx, event, &resolution, "wrong-code")?;
        tx.commit().context("committing a lookup")?;
        Ok(resolution)
    }

    fn journal_document_event(&self, event: &DocumentEvent) -> Result<(), StoreError> {
        insert_event(&*self.lock()?, event)
    }

    fn cabinet_history(
        &self,
        subject_iins: &[String],
        actor: &str,
        limit: u32,
    ) -> Result<Vec<DocumentEvent>, StoreError> {
        let conn = self.lock()?;
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut read = |sql: &str, value: &str| -> Result<(), StoreError> {
            let mut s = conn.prepare_cached(sql).context("reading the history")?;
            let rows = s.query_map(params![value, limit], event_row).context("reading the history")?;
            for row in rows {
                let (mut e, at) = row.context("reading an event")?;
                e.at = from_millis(at)?;
                if seen.insert(e.seq) {
                    out.push(e);
                }
            }
            Ok(())
        };
        for iin in subject_iins {
            read(
                &format!("SELECT {EVENT_COLUMNS} FROM document_events WHERE subject_iin = ?1 AND outcome = 'ok' ORDER BY seq DESC LIMIT ?2"),
                iin,
            )?;
        }
        read(
            &format!("SELECT {EVENT_COLUMNS} FROM document_events WHERE actor = ?1 AND outcome = 'ok' ORDER BY seq DESC LIMIT ?2"),
            actor,
        )?;
        out.sort_by_key(|e| std::cmp::Reverse(e.seq));
        out.truncate(limit as usize);
        Ok(out)
    }

    fn document_events(&self, limit: u32) -> Result<Vec<DocumentEvent>, StoreError> {
        let conn = self.lock()?;
        let mut s = conn
            .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM document_events ORDER BY seq LIMIT ?1"))
            .context("reading the document journal")?;
        let rows = s.query_map([limit], event_row).context("reading the document journal")?;
        rows.map(|r| {
            let (mut e, at) = r.context("reading an event")?;
            e.at = from_millis(at)?;
            Ok(e)
        })
        .collect()
    }

    fn create_release_request(&self, r: &ReleaseRequest, event: &DocumentEvent) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        tx.execute(
            "INSERT INTO release_requests (id, system, subject_iin, doc_type, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![r.id, r.system, r.subject_iin, r.doc_type, millis(r.created_at), millis(r.expires_at)],
        )
        .context("recording a release request")?;
        insert_event(&tx, event)?;
        tx.commit().context("committing a release request")
    }

    fn release_request(&self, id: &str) -> Result<Option<ReleaseRequest>, StoreError> {
        let conn = self.lock()?;
        let row: Option<(String, String, String, i64, i64, Option<i64>)> = conn
            .query_row(
                "SELECT system, subject_iin, doc_type, created_at, expires_at, released_at FROM release_requests WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()
            .context("reading a release request")?;
        row.map(|(system, subject_iin, doc_type, created, expires, released)| {
            Ok(ReleaseRequest {
                id: id.to_owned(),
                system,
                subject_iin,
                doc_type,
                created_at: from_millis(created)?,
                expires_at: from_millis(expires)?,
                released_at: released.map(from_millis).transpose()?,
            })
        })
        .transpose()
    }

    fn mark_released(&self, id: &str, now: OffsetDateTime, event: &DocumentEvent) -> Result<bool, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let changed = tx
            .execute(
                "UPDATE release_requests SET released_at = ?2 WHERE id = ?1 AND released_at IS NULL",
                params![id, millis(now)],
            )
            .context("marking a release")?;
        if changed == 1 {
            insert_event(&tx, event)?;
        }
        tx.commit().context("committing a release")?;
        Ok(changed == 1)
    }
}

/// Journal a lookup (see [`decide::resolution_event`]).
fn journal_resolution(
    conn: &Connection,
    event: &DocumentEvent,
    resolution: &Resolution,
    not_found: &str,
) -> Result<(), StoreError> {
    let subject = match resolution {
        Resolution::Granted { grant } => Some(
            conn.query_row("SELECT subject_iin FROM documents WHERE id = ?1", [grant.document_id], |r| r.get(0))
                .context("reading the document's subject")?,
        ),
        _ => None,
    };
    insert_event(conn, &decide::resolution_event(event, resolution, not_found, subject))
}
