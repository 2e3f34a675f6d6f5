//! `ca store copy`: move an embedded SQLite store into an empty PostgreSQL database, row for
//! row. Nothing is re-issued or re-signed: certificates keep their DER, the audit journal keeps
//! every entry with its hashes (the PostgreSQL schema stores the same values in the same units),
//! and revocation-event and application-event positions keep their numbers, so published CRLs'
//! positions and delta CRLs go on from where they were.
//!
//! The SQLite side is read in one read transaction (one snapshot) and written with `COPY …
//! FROM STDIN (FORMAT binary)` in one PostgreSQL transaction: the copy is whole or absent. After
//! the commit the journal is verified on PostgreSQL and its head compared with the SQLite one.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use rusqlite::types::Value;

use super::{PostgresStore, SqliteStore, Store, StoreError};

/// A column and the PostgreSQL type it is written as.
type Column = (&'static str, Type);

/// Tables in an order that satisfies the foreign keys, with the columns both schemas share.
fn tables() -> Vec<(&'static str, Vec<Column>)> {
    use Type as T;
    vec![
        (
            "certificates",
            vec![
                ("serial", T::TEXT),
                ("issuer", T::TEXT),
                ("status", T::TEXT),
                ("profile", T::TEXT),
                ("subject_dn", T::TEXT),
                ("iin", T::TEXT),
                ("bin", T::TEXT),
                ("not_before", T::INT8),
                ("not_after", T::INT8),
                ("reserved_at", T::INT8),
                ("issued_at", T::INT8),
                ("der", T::BYTEA),
                ("revoked_at", T::INT8),
                ("revocation_reason", T::INT8),
                ("invalidity_date", T::INT8),
                ("crl_partition", T::INT8),
                ("revocation_seq", T::INT8),
                ("first_crl_number", T::INT8),
                ("spki_sha256", T::BYTEA),
            ],
        ),
        (
            "audit",
            vec![
                ("seq", T::INT8),
                ("at_ns", T::INT8),
                ("actor", T::TEXT),
                ("action", T::TEXT),
                ("target", T::TEXT),
                ("details", T::TEXT),
                ("prev_hash", T::BYTEA),
                ("hash", T::BYTEA),
            ],
        ),
        (
            "revocation_events",
            vec![
                ("seq", T::INT8),
                ("serial", T::TEXT),
                ("issuer", T::TEXT),
                ("crl_partition", T::INT8),
                ("kind", T::TEXT),
                ("at", T::INT8),
            ],
        ),
        ("crl_numbers", vec![("issuer", T::TEXT), ("last", T::INT8)]),
        (
            "crls",
            vec![
                ("issuer", T::TEXT),
                ("crl_partition", T::INT8),
                ("kind", T::TEXT),
                ("number", T::INT8),
                ("base_number", T::INT8),
                ("this_update", T::INT8),
                ("next_update", T::INT8),
                ("event_seq", T::INT8),
                ("published_at", T::INT8),
            ],
        ),
        (
            "registry_persons",
            vec![
                ("iin", T::TEXT),
                ("surname", T::TEXT),
                ("given_name", T::TEXT),
                ("patronymic", T::TEXT),
                ("life_status", T::INT8),
                ("exclusion_code", T::INT8),
                ("legal_capacity", T::INT8),
                ("special_register", T::BOOL),
                ("document_number", T::TEXT),
                ("document_issued", T::TEXT),
                ("email", T::TEXT),
                ("phone", T::TEXT),
                ("updated_at", T::INT8),
            ],
        ),
        (
            "registry_entities",
            vec![
                ("bin", T::TEXT),
                ("name", T::TEXT),
                ("registration_number", T::TEXT),
                ("head_iin", T::TEXT),
                ("updated_at", T::INT8),
            ],
        ),
        ("application_numbers", vec![("year", T::INT8), ("last", T::INT8)]),
        (
            "applications",
            vec![
                ("number", T::TEXT),
                ("kind", T::TEXT),
                ("state", T::TEXT),
                ("iin", T::TEXT),
                ("bin", T::TEXT),
                ("email", T::TEXT),
                ("serials", T::TEXT),
                ("revocation_reason", T::INT8),
                ("refusal_code", T::TEXT),
                ("refusal_message", T::TEXT),
                ("dedup_key", T::TEXT),
                ("created_at", T::INT8),
                ("updated_at", T::INT8),
                ("roles", T::TEXT),
                ("channel", T::TEXT),
                ("paperwork", T::TEXT),
            ],
        ),
        ("receipt_numbers", vec![("year", T::INT8), ("last", T::INT8)]),
        (
            "receipts",
            vec![
                ("number", T::TEXT),
                ("kind", T::TEXT),
                ("application", T::TEXT),
                ("iin", T::TEXT),
                ("issued_at", T::INT8),
                ("content", T::TEXT),
            ],
        ),
        (
            "application_keys",
            vec![("number", T::TEXT), ("key_type", T::TEXT), ("spki", T::BYTEA), ("spki_sha256", T::BYTEA)],
        ),
        (
            "application_tokens",
            vec![
                ("number", T::TEXT),
                ("purpose", T::TEXT),
                ("token_sha256", T::BYTEA),
                ("created_at", T::INT8),
                ("expires_at", T::INT8),
                ("used_at", T::INT8),
            ],
        ),
        (
            "application_events",
            vec![
                ("seq", T::INT8),
                ("number", T::TEXT),
                ("step", T::TEXT),
                ("from_state", T::TEXT),
                ("to_state", T::TEXT),
                ("actor_role", T::TEXT),
                ("actor", T::TEXT),
                ("signer_serial", T::TEXT),
                ("started_at", T::INT8),
                ("at", T::INT8),
                ("budget", T::TEXT),
                ("deadline", T::INT8),
                ("breached", T::BOOL),
                ("details", T::TEXT),
            ],
        ),
        (
            "outbox",
            vec![
                ("id", T::INT8),
                ("application", T::TEXT),
                ("recipient", T::TEXT),
                ("subject", T::TEXT),
                ("body", T::TEXT),
                ("created_at", T::INT8),
                ("attempts", T::INT8),
                ("next_attempt_at", T::INT8),
                ("sent_at", T::INT8),
                ("last_error", T::TEXT),
            ],
        ),
        (
            "auth_nonces",
            vec![("nonce", T::BYTEA), ("issued_at", T::INT8), ("expires_at", T::INT8), ("consumed_at", T::INT8)],
        ),
        ("admin_requests", vec![("id", T::BYTEA), ("used_at", T::INT8), ("keep_until", T::INT8)]),
    ]
}

/// Identity columns whose numbers were copied: their sequences continue after the copied rows.
const SEQUENCES: [(&str, &str); 3] = [("revocation_events", "seq"), ("application_events", "seq"), ("outbox", "id")];

/// What was copied.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// Rows per table, in copy order.
    pub tables: Vec<(String, u64)>,
    pub audit_entries: u64,
    /// The journal head, the same on both sides.
    pub audit_head: String,
}

/// A SQLite value as the PostgreSQL type of its column; a value of another type is refused.
fn convert(table: &str, column: &str, ty: &Type, value: Value) -> Result<Box<dyn ToSql + Sync>, StoreError> {
    let bad = |v: &Value| StoreError::Corrupt(format!("{table}.{column}: {v:?} cannot be copied as {ty}"));
    Ok(match (value, ty) {
        (Value::Null, t) if *t == Type::INT8 => Box::new(None::<i64>),
        (Value::Null, t) if *t == Type::TEXT => Box::new(None::<String>),
        (Value::Null, t) if *t == Type::BYTEA => Box::new(None::<Vec<u8>>),
        (Value::Null, t) if *t == Type::BOOL => Box::new(None::<bool>),
        (Value::Integer(i), t) if *t == Type::INT8 => Box::new(i),
        (Value::Integer(i @ (0 | 1)), t) if *t == Type::BOOL => Box::new(i == 1),
        (Value::Text(s), t) if *t == Type::TEXT => Box::new(s),
        (Value::Blob(b), t) if *t == Type::BYTEA => Box::new(b),
        (v, _) => return Err(bad(&v)),
    })
}

/// Copy every row of `from` into `to`, which must be empty. Run with the CA stopped: the
/// SQLite snapshot is consistent, but what is written to it after the snapshot is not copied.
pub fn sqlite_to_postgres(from: &SqliteStore, to: &PostgresStore) -> Result<CopyReport, StoreError> {
    let source = from.verify_audit()?;
    if !source.is_intact() {
        return Err(StoreError::Corrupt(format!(
            "the SQLite audit journal does not verify ({} problems, the first at entry {}): fix that before moving it",
            source.problems.len(),
            source.problems[0].seq
        )));
    }
    let mut conn = from.lock();
    let read = conn.transaction().map_err(|e| StoreError::Database(format!("starting a read transaction: {e}")))?;
    let mut client = to.primary.get()?;
    let mut tx = client.transaction().map_err(|e| StoreError::Database(format!("starting the copy: {e}")))?;
    let occupied: bool = tx
        .query_one("SELECT EXISTS (SELECT 1 FROM audit) OR EXISTS (SELECT 1 FROM certificates)", &[])
        .and_then(|r| r.try_get(0))
        .map_err(|e| StoreError::Database(format!("looking into the target database: {e}")))?;
    if occupied {
        return Err(StoreError::Database(
            "the PostgreSQL database already holds certificates or audit entries; copy into an empty one".into(),
        ));
    }
    let mut report = Vec::new();
    for (table, columns) in tables() {
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let types: Vec<Type> = columns.iter().map(|(_, t)| t.clone()).collect();
        let order = if table == "certificates" || table == "applications" { "rowid" } else { "1" };
        let mut stmt = read
            .prepare(&format!("SELECT {} FROM {table} ORDER BY {order}", names.join(", ")))
            .map_err(|e| StoreError::Database(format!("reading {table}: {e}")))?;
        let sink = tx
            .copy_in(&format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", names.join(", ")))
            .map_err(|e| StoreError::Database(format!("copying into {table}: {e}")))?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        let mut rows = stmt.query([]).map_err(|e| StoreError::Database(format!("reading {table}: {e}")))?;
        let mut count = 0u64;
        while let Some(row) = rows.next().map_err(|e| StoreError::Database(format!("reading {table}: {e}")))? {
            let values = columns
                .iter()
                .enumerate()
                .map(|(i, (name, ty))| {
                    let value: Value =
                        row.get(i).map_err(|e| StoreError::Database(format!("reading {table}.{name}: {e}")))?;
                    convert(table, name, ty, value)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
            writer.write(&refs).map_err(|e| StoreError::Database(format!("copying into {table}: {e}")))?;
            count += 1;
        }
        writer.finish().map_err(|e| StoreError::Database(format!("copying into {table}: {e}")))?;
        report.push((table.to_owned(), count));
    }
    for (table, column) in SEQUENCES {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 1), \
                 MAX({column}) IS NOT NULL) FROM {table}"
            ),
            &[],
        )
        .map_err(|e| StoreError::Database(format!("continuing the numbering of {table}: {e}")))?;
    }
    tx.commit().map_err(|e| StoreError::Database(format!("committing the copy: {e}")))?;
    drop(read);
    drop(conn);
    drop(client);
    let copied = to.verify_audit()?;
    if !copied.is_intact() || copied.head != source.head || copied.entries != source.entries {
        return Err(StoreError::Corrupt(format!(
            "the copied journal differs: {} entries, head {} (SQLite: {} entries, head {})",
            copied.entries, copied.head, source.entries, source.head
        )));
    }
    Ok(CopyReport { tables: report, audit_entries: copied.entries, audit_head: copied.head })
}
