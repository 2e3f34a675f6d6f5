//! Documents, access grants, release requests and the document journal in PostgreSQL.

use ca_core::store::postgres::pool::Cached;
use ca_core::store::StoreError;
use postgres::Row;
use time::OffsetDateTime;

use super::{begin, col, opt_time, Context, PgPortalStore};
use crate::store::decide::{self, closed_reason, with_outcome};
use crate::store::documents::{
    CodeLimits, DocumentEvent, DocumentStore, DocumentStored, Grant, NewDocument, NewGrant, ReleaseRequest, Resolution,
    StoredDocument,
};
use crate::store::{from_millis, millis};

/// The one lock of short codes: opening, withdrawing and resolving decide over every live grant.
const GRANTS: (&str, &[u8]) = ("access-grants", b"");

const DOCUMENT_COLUMNS: &str = "id, authority_bin, subject_iin, doc_type, number, title, version, issued_at, content, \
                                cms, timestamp_token, stamped_at, received_at, superseded_by";

fn document(r: &Row) -> Result<StoredDocument, StoreError> {
    Ok(StoredDocument {
        id: col(r, 0)?,
        authority_bin: col(r, 1)?,
        subject_iin: col(r, 2)?,
        doc_type: col(r, 3)?,
        number: col(r, 4)?,
        title: col(r, 5)?,
        version: col(r, 6)?,
        issued_at: from_millis(col(r, 7)?)?,
        content: col(r, 8)?,
        cms: col(r, 9)?,
        timestamp_token: col(r, 10)?,
        stamped_at: from_millis(col(r, 11)?)?,
        received_at: from_millis(col(r, 12)?)?,
        superseded_by: col(r, 13)?,
    })
}

const GRANT_COLUMNS: &str = "id, document_id, opened_by, short_code, created_at, expires_at, withdrawn_at, locked_at";

fn grant(r: &Row) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: col(r, 0)?,
        document_id: col(r, 1)?,
        opened_by: col(r, 2)?,
        short_code: col(r, 3)?,
        created_at: from_millis(col(r, 4)?)?,
        expires_at: from_millis(col(r, 5)?)?,
        withdrawn_at: opt_time(col(r, 6)?)?,
        locked_at: opt_time(col(r, 7)?)?,
    })
}

const EVENT_COLUMNS: &str =
    "seq, at, document_id, subject_iin, actor, actor_kind, action, channel, outcome, detail, client_address";

fn event(r: &Row) -> Result<DocumentEvent, StoreError> {
    Ok(DocumentEvent {
        seq: col(r, 0)?,
        at: from_millis(col(r, 1)?)?,
        document_id: col(r, 2)?,
        subject_iin: col(r, 3)?,
        actor: col(r, 4)?,
        actor_kind: col(r, 5)?,
        action: col(r, 6)?,
        channel: col(r, 7)?,
        outcome: col(r, 8)?,
        detail: col(r, 9)?,
        client_address: col(r, 10)?,
    })
}

fn insert_event(conn: &mut impl Cached, e: &DocumentEvent) -> Result<(), StoreError> {
    conn.execute_cached(
        "INSERT INTO document_events (at, document_id, subject_iin, actor, actor_kind, action, channel, outcome, detail, client_address)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &millis(e.at),
            &e.document_id,
            &e.subject_iin,
            &e.actor,
            &e.actor_kind,
            &e.action,
            &e.channel,
            &e.outcome,
            &e.detail,
            &e.client_address,
        ],
    )
    .context("journaling a document event")?;
    Ok(())
}

fn grant_where(
    conn: &mut impl Cached,
    condition: &str,
    value: &(dyn postgres::types::ToSql + Sync),
) -> Result<Option<Grant>, StoreError> {
    conn.query_opt_cached(&format!("SELECT {GRANT_COLUMNS} FROM access_grants WHERE {condition}"), &[value])
        .context("reading a grant")?
        .as_ref()
        .map(grant)
        .transpose()
}

/// Journal a lookup (see [`decide::resolution_event`]).
fn journal_resolution(
    conn: &mut impl Cached,
    event: &DocumentEvent,
    resolution: &Resolution,
    not_found: &str,
) -> Result<(), StoreError> {
    let subject = match resolution {
        Resolution::Granted { grant } => Some(col(
            &conn
                .query_one_cached("SELECT subject_iin FROM documents WHERE id = $1", &[&grant.document_id])
                .context("reading the document's subject")?,
            0,
        )?),
        _ => None,
    };
    insert_event(conn, &decide::resolution_event(event, resolution, not_found, subject))
}

impl DocumentStore for PgPortalStore {
    fn store_document(&self, doc: &NewDocument, event: &DocumentEvent) -> Result<DocumentStored, StoreError> {
        let mut conn = self.conn()?;
        // The subject's versions of the type are decided under its lock; a number taken by
        // another subject's document at the same moment is caught by its unique constraint.
        let key = [doc.subject_iin.as_bytes(), b"\0", doc.doc_type.as_bytes()].concat();
        let mut tx = begin(&mut conn, "document", &key)?;
        let previous = tx
            .query_opt_cached(
                "SELECT id, version FROM documents WHERE subject_iin = $1 AND doc_type = $2 AND superseded_by IS NULL",
                &[&doc.subject_iin, &doc.doc_type],
            )
            .context("reading the current version")?
            .map(|r| Ok::<(i64, i64), StoreError>((col(&r, 0)?, col(&r, 1)?)))
            .transpose()?;
        let version = previous.map_or(1, |(_, v)| v + 1);
        let inserted = tx
            .query_opt_cached(
                "INSERT INTO documents (authority_bin, subject_iin, doc_type, number, title, version, issued_at, content, cms,
                                        timestamp_token, stamped_at, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (authority_bin, number) DO NOTHING RETURNING id",
                &[
                    &doc.authority_bin,
                    &doc.subject_iin,
                    &doc.doc_type,
                    &doc.number,
                    &doc.title,
                    &version,
                    &millis(doc.issued_at),
                    &doc.content,
                    &doc.cms,
                    &doc.timestamp_token,
                    &millis(doc.stamped_at),
                    &millis(doc.received_at),
                ],
            )
            .context("storing a document")?;
        let Some(row) = inserted else { return Ok(DocumentStored::DuplicateNumber) };
        let id: i64 = col(&row, 0)?;
        if let Some((old, _)) = previous {
            tx.execute_cached("UPDATE documents SET superseded_by = $1 WHERE id = $2", &[&id, &old])
                .context("superseding the previous version")?;
        }
        insert_event(&mut tx, &with_outcome(event, "ok", Some(id)))?;
        tx.commit().context("committing a document")?;
        Ok(DocumentStored::Stored { id, version })
    }

    fn document(&self, id: i64) -> Result<Option<StoredDocument>, StoreError> {
        self.conn()?
            .query_opt_cached(&format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = $1"), &[&id])
            .context("reading a document")?
            .as_ref()
            .map(document)
            .transpose()
    }

    fn documents_of(&self, subject_iin: &str, with_history: bool) -> Result<Vec<StoredDocument>, StoreError> {
        let filter = if with_history { "" } else { "AND superseded_by IS NULL" };
        let rows = self
            .conn()?
            .query_cached(
                &format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE subject_iin = $1 {filter} ORDER BY id DESC"),
                &[&subject_iin],
            )
            .context("listing documents")?;
        rows.iter().map(document).collect()
    }

    fn current_document(&self, subject_iin: &str, doc_type: &str) -> Result<Option<StoredDocument>, StoreError> {
        self.conn()?
            .query_opt_cached(
                &format!(
                    "SELECT {DOCUMENT_COLUMNS} FROM documents
                     WHERE subject_iin = $1 AND doc_type = $2 AND superseded_by IS NULL"
                ),
                &[&subject_iin, &doc_type],
            )
            .context("reading the current document")?
            .as_ref()
            .map(document)
            .transpose()
    }

    fn open_grant(
        &self,
        new: &NewGrant,
        draw: &mut dyn FnMut() -> Result<String, StoreError>,
        event: &DocumentEvent,
    ) -> Result<Grant, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = begin(&mut conn, GRANTS.0, GRANTS.1)?;
        let now = millis(new.created_at);
        let code = loop {
            let code = draw()?;
            let taken: bool = col(
                &tx.query_one_cached(
                    "SELECT EXISTS (SELECT 1 FROM access_grants WHERE short_code = $1 AND expires_at > $2
                                    AND withdrawn_at IS NULL AND locked_at IS NULL)",
                    &[&code, &now],
                )
                .context("checking a short code")?,
                0,
            )?;
            if !taken {
                break code;
            }
        };
        let row = tx
            .query_one_cached(
                &format!(
                    "INSERT INTO access_grants (document_id, opened_by, token_hash, short_code, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {GRANT_COLUMNS}"
                ),
                &[&new.document_id, &new.opened_by, &&new.token_hash[..], &code, &now, &millis(new.expires_at)],
            )
            .context("opening a grant")?;
        let opened = grant(&row)?;
        insert_event(
            &mut tx,
            &DocumentEvent { detail: Some(format!("grant {}", opened.id)), ..with_outcome(event, "ok", None) },
        )?;
        tx.commit().context("committing a grant")?;
        Ok(opened)
    }

    fn grant(&self, id: i64) -> Result<Option<Grant>, StoreError> {
        grant_where(&mut self.conn()?, "id = $1", &id)
    }

    fn grants_by(&self, account_id: i64) -> Result<Vec<Grant>, StoreError> {
        let rows = self
            .conn()?
            .query_cached(
                &format!("SELECT {GRANT_COLUMNS} FROM access_grants WHERE opened_by = $1 ORDER BY id DESC LIMIT 200"),
                &[&account_id],
            )
            .context("listing grants")?;
        rows.iter().map(grant).collect()
    }

    fn withdraw_grant(&self, id: i64, now: OffsetDateTime, event: &DocumentEvent) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = begin(&mut conn, GRANTS.0, GRANTS.1)?;
        let changed = tx
            .execute_cached(
                "UPDATE access_grants SET withdrawn_at = $2
                 WHERE id = $1 AND withdrawn_at IS NULL AND locked_at IS NULL AND expires_at > $2",
                &[&id, &millis(now)],
            )
            .context("withdrawing a grant")?;
        insert_event(&mut tx, &with_outcome(event, if changed == 1 { "ok" } else { "access-not-live" }, None))?;
        tx.commit().context("committing a withdrawal")?;
        Ok(changed == 1)
    }

    fn resolve_token(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
        event: &DocumentEvent,
    ) -> Result<Resolution, StoreError> {
        let mut conn = self.conn()?;
        // No limit to decide: the lookup and its journal entry only need to commit together.
        let mut tx = begin(&mut conn, "token", token_hash)?;
        let resolution = match grant_where(&mut tx, "token_hash = $1", &&token_hash[..])? {
            None => Resolution::NotFound,
            Some(g) => match closed_reason(&g, now) {
                Some(reason) => Resolution::Closed { reason },
                None => Resolution::Granted { grant: g },
            },
        };
        journal_resolution(&mut tx, event, &resolution, "unknown-token")?;
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
        let mut conn = self.conn()?;
        let mut tx = begin(&mut conn, GRANTS.0, GRANTS.1)?;
        let now_ms = millis(now);
        let mine: i64 = col(
            &tx.query_one_cached(
                "SELECT count(*) FROM document_events WHERE outcome = 'wrong-code' AND actor = $1 AND at > $2",
                &[&event.actor, &millis(now - limits.viewer_window)],
            )
            .context("counting wrong codes")?,
            0,
        )?;
        let all: i64 = col(
            &tx.query_one_cached(
                "SELECT count(*) FROM document_events WHERE outcome = 'wrong-code' AND at > $1",
                &[&millis(now - limits.global_window)],
            )
            .context("counting wrong codes")?,
            0,
        )?;
        let resolution = match decide::code_rate_limit(mine, all, limits) {
            Some(limited) => limited,
            None => {
                // The newest grant with this code: among live grants codes are unique.
                let found = tx
                    .query_opt_cached(
                        &format!(
                            "SELECT {GRANT_COLUMNS} FROM access_grants WHERE short_code = $1 ORDER BY id DESC LIMIT 1"
                        ),
                        &[&code],
                    )
                    .context("looking a code up")?
                    .as_ref()
                    .map(grant)
                    .transpose()?;
                decide::code_resolution(found, now, limits)
            }
        };
        if resolution == Resolution::NotFound {
            // Every live code could have been the target: count the try against each, and lock
            // those that reach the limit.
            tx.execute_cached(
                "UPDATE access_grants SET wrong_tries = wrong_tries + 1,
                        locked_at = CASE WHEN wrong_tries + 1 >= $2 THEN $1 ELSE NULL END
                 WHERE withdrawn_at IS NULL AND locked_at IS NULL AND expires_at > $1",
                &[&now_ms, &i64::from(limits.lock_after)],
            )
            .context("counting a wrong code")?;
        }
        journal_resolution(&mut tx, event, &resolution, "wrong-code")?;
        tx.commit().context("committing a lookup")?;
        Ok(resolution)
    }

    fn journal_document_event(&self, event: &DocumentEvent) -> Result<(), StoreError> {
        insert_event(&mut self.conn()?, event)
    }

    fn cabinet_history(
        &self,
        subject_iins: &[String],
        actor: &str,
        limit: u32,
    ) -> Result<Vec<DocumentEvent>, StoreError> {
        let rows = self
            .conn()?
            .query_cached(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM document_events
                     WHERE outcome = 'ok' AND (subject_iin = ANY($1) OR actor = $2) ORDER BY seq DESC LIMIT $3"
                ),
                &[&subject_iins, &actor, &i64::from(limit)],
            )
            .context("reading the history")?;
        rows.iter().map(event).collect()
    }

    fn document_events(&self, limit: u32) -> Result<Vec<DocumentEvent>, StoreError> {
        let rows = self
            .conn()?
            .query_cached(
                &format!("SELECT {EVENT_COLUMNS} FROM document_events ORDER BY seq LIMIT $1"),
                &[&i64::from(limit)],
            )
            .context("reading the document journal")?;
        rows.iter().map(event).collect()
    }

    fn create_release_request(&self, r: &ReleaseRequest, event: &DocumentEvent) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = begin(&mut conn, "release", r.id.as_bytes())?;
        tx.execute_cached(
            "INSERT INTO release_requests (id, system, subject_iin, doc_type, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&r.id, &r.system, &r.subject_iin, &r.doc_type, &millis(r.created_at), &millis(r.expires_at)],
        )
        .context("recording a release request")?;
        insert_event(&mut tx, event)?;
        tx.commit().context("committing a release request")
    }

    fn release_request(&self, id: &str) -> Result<Option<ReleaseRequest>, StoreError> {
        let row = self
            .conn()?
            .query_opt_cached(
                "SELECT system, subject_iin, doc_type, created_at, expires_at, released_at FROM release_requests
                 WHERE id = $1",
                &[&id],
            )
            .context("reading a release request")?;
        row.map(|r| {
            Ok(ReleaseRequest {
                id: id.to_owned(),
                system: col(&r, 0)?,
                subject_iin: col(&r, 1)?,
                doc_type: col(&r, 2)?,
                created_at: from_millis(col(&r, 3)?)?,
                expires_at: from_millis(col(&r, 4)?)?,
                released_at: opt_time(col(&r, 5)?)?,
            })
        })
        .transpose()
    }

    fn mark_released(&self, id: &str, now: OffsetDateTime, event: &DocumentEvent) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = begin(&mut conn, "release", id.as_bytes())?;
        let changed = tx
            .execute_cached(
                "UPDATE release_requests SET released_at = $2 WHERE id = $1 AND released_at IS NULL",
                &[&id, &millis(now)],
            )
            .context("marking a release")?;
        if changed == 1 {
            insert_event(&mut tx, event)?;
        }
        tx.commit().context("committing a release")?;
        Ok(changed == 1)
    }
}
