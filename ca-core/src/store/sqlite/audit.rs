//! Reading the audit journal for `ca audit list|export` and for checkpoints.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use time::OffsetDateTime;

use super::{rows, Context, SqliteStore};
use crate::store::{AuditQuery, AuditSink, StoreError};

/// Rows read per lock acquisition, so a long export does not hold writers up.
const BATCH: u64 = 5_000;

fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(if t.year() < 1970 { i64::MIN } else { i64::MAX })
}

/// Stream the entries matching `query` in sequence order, a batch at a time.
pub(super) fn entries(store: &SqliteStore, query: &AuditQuery, sink: &mut AuditSink<'_>) -> Result<(), StoreError> {
    let mut filters = vec!["seq > ?".to_owned()];
    let mut args: Vec<Value> = Vec::new();
    if let Some(from) = query.from {
        filters.push("at_ns >= ?".into());
        args.push(Value::Integer(nanos(from)));
    }
    if let Some(until) = query.until {
        filters.push("at_ns < ?".into());
        args.push(Value::Integer(nanos(until)));
    }
    if let Some(actor) = &query.actor {
        filters.push("actor = ?".into());
        args.push(Value::Text(actor.clone()));
    }
    let sql = format!("SELECT {} FROM audit WHERE {} ORDER BY seq LIMIT ?", rows::AUDIT_COLUMNS, filters.join(" AND "));
    let mut left = query.limit.unwrap_or(u64::MAX);
    let mut after = 0i64;
    while left > 0 {
        let batch = left.min(BATCH);
        let mut read = 0u64;
        let mut found = Vec::new();
        {
            let conn = store.lock();
            let mut stmt = conn.prepare_cached(&sql).context("preparing to list the audit journal")?;
            let mut values = vec![Value::Integer(after)];
            values.extend(args.iter().cloned());
            values.push(Value::Integer(i64::try_from(batch).unwrap_or(i64::MAX)));
            let mut rows_read = stmt.query(params_from_iter(values)).context("listing the audit journal")?;
            while let Some(row) = rows_read.next().context("listing the audit journal")? {
                let seq: i64 = row.get(0).context("reading an audit sequence number")?;
                let entry = rows::audit_entry(row, seq)
                    .map_err(|bad| StoreError::Corrupt(format!("audit entry {seq}: {}", bad.problem)))?;
                after = seq;
                read += 1;
                found.push(entry);
            }
        }
        // The sink runs without the lock: it may write to a slow pipe.
        for entry in found {
            sink(entry)?;
        }
        left -= read;
        if read < batch {
            break;
        }
    }
    Ok(())
}

/// The stored hash of entry `seq`.
pub(super) fn hash(conn: &Connection, seq: i64) -> Result<Option<[u8; 32]>, StoreError> {
    let hash: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hash FROM audit WHERE seq = ?1")
        .and_then(|mut s| s.query_row(params![seq], |r| r.get(0)).optional())
        .context("reading an audit entry's hash")?;
    hash.map(|h| {
        <[u8; 32]>::try_from(h.as_slice())
            .map_err(|_| StoreError::Corrupt(format!("audit entry {seq}: hash is {} bytes, expected 32", h.len())))
    })
    .transpose()
}
