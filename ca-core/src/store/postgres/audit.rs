//! Reading the audit journal for `ca audit list|export` and for checkpoints.

use postgres::types::ToSql;
use postgres::Client;
use time::OffsetDateTime;

use super::pool::Pool;
use super::{rows, Context};
use crate::store::{AuditQuery, AuditSink, StoreError};

/// Rows read per round trip, so a long export holds no more than this in memory.
const BATCH: u64 = 5_000;

fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(if t.year() < 1970 { i64::MIN } else { i64::MAX })
}

/// Stream the entries matching `query` in sequence order, a batch at a time.
pub(super) fn entries(pool: &Pool, query: &AuditQuery, sink: &mut AuditSink<'_>) -> Result<(), StoreError> {
    let mut filters = vec!["seq > $1".to_owned()];
    let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    if let Some(from) = query.from {
        args.push(Box::new(nanos(from)));
        filters.push(format!("at_ns >= ${}", args.len() + 1));
    }
    if let Some(until) = query.until {
        args.push(Box::new(nanos(until)));
        filters.push(format!("at_ns < ${}", args.len() + 1));
    }
    if let Some(actor) = &query.actor {
        args.push(Box::new(actor.clone()));
        filters.push(format!("actor = ${}", args.len() + 1));
    }
    let sql = format!(
        "SELECT {} FROM audit WHERE {} ORDER BY seq LIMIT ${}",
        rows::AUDIT_COLUMNS,
        filters.join(" AND "),
        args.len() + 2
    );
    let mut left = query.limit.unwrap_or(u64::MAX);
    let mut after = 0i64;
    while left > 0 {
        let batch = left.min(BATCH);
        let batch_i64 = i64::try_from(batch).unwrap_or(i64::MAX);
        let found = {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&after];
            params.extend(args.iter().map(|a| a.as_ref()));
            params.push(&batch_i64);
            pool.get()?.query(&sql, &params).context("listing the audit journal")?
        };
        // The sink runs with the connection back in the pool: it may write to a slow pipe.
        let read = found.len() as u64;
        for row in &found {
            let seq: i64 = row.try_get(0).context("reading an audit sequence number")?;
            let entry = rows::audit_entry(row, seq)
                .map_err(|bad| StoreError::Corrupt(format!("audit entry {seq}: {}", bad.problem)))?;
            after = seq;
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
pub(super) fn hash(client: &mut Client, seq: i64) -> Result<Option<[u8; 32]>, StoreError> {
    let row =
        client.query_opt("SELECT hash FROM audit WHERE seq = $1", &[&seq]).context("reading an audit entry's hash")?;
    row.map(|r| {
        let h: Vec<u8> = r.try_get(0).context("reading an audit entry's hash")?;
        crate::store::chain::hash32(&h, "hash").map_err(|p| StoreError::Corrupt(format!("audit entry {seq}: {p}")))
    })
    .transpose()
}
