//! The portal database's schema versions. Each migration runs once, in order, in one
//! `BEGIN IMMEDIATE` transaction with its `schema_migrations` row. Never edit a migration
//! that has shipped: add a new one at the end.

use rusqlite::{params, Connection, TransactionBehavior};

use ca_core::store::StoreError;

use super::Context;

pub(super) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(super) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "accounts, lockout, failed-login journal, sessions, OTP, outbox", sql: V1 },
    Migration { version: 2, name: "phone bindings, binding OTP sessions and journal, SMS outbox", sql: V2 },
    Migration { version: 3, name: "digital documents, access grants, release requests, document journal", sql: V3 },
    Migration { version: 4, name: "the cabinet's journal of logins: sessions by account, ended ones too", sql: V4 },
    Migration { version: 5, name: "used request ids keyed by the id alone (WITHOUT ROWID)", sql: V5 },
];

pub(super) const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

// Times are unix milliseconds. Tables are STRICT.
const V1: &str = r#"
CREATE TABLE accounts (
    id                  INTEGER NOT NULL PRIMARY KEY,
    login               TEXT    NOT NULL UNIQUE CHECK (length(login) = 12),
    kind                TEXT    NOT NULL CHECK (kind IN ('individual', 'legal-entity')),
    iin                 TEXT    NOT NULL CHECK (length(iin) = 12),
    bin                 TEXT    CHECK (bin IS NULL OR length(bin) = 12),
    email               TEXT    NOT NULL,
    password_hash       TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('active', 'must-change-password', 'blocked')),
    created_by          TEXT    NOT NULL CHECK (created_by IN ('self', 'counter')),
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    CHECK ((kind = 'legal-entity') = (bin IS NOT NULL AND login = bin)),
    CHECK (kind = 'legal-entity' OR login = iin)
) STRICT;

-- Per IIN/BIN given at password login, whether or not an account has it (so a lockout tells
-- nothing about which IINs have accounts).
CREATE TABLE password_attempts (
    login        TEXT    NOT NULL PRIMARY KEY,
    failures     INTEGER NOT NULL CHECK (failures >= 0),
    locked_until INTEGER
) STRICT;

CREATE TABLE failed_logins (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    login          TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    client_address TEXT,
    user_agent     TEXT,
    reason         TEXT    NOT NULL
) STRICT;
CREATE INDEX failed_logins_by_login ON failed_logins (login, seq);
CREATE TRIGGER failed_logins_no_update BEFORE UPDATE ON failed_logins
BEGIN
    SELECT RAISE(ABORT, 'the journal of failed logins is append-only');
END;
CREATE TRIGGER failed_logins_no_delete BEFORE DELETE ON failed_logins
BEGIN
    SELECT RAISE(ABORT, 'the journal of failed logins is append-only');
END;

CREATE TABLE sessions (
    id             INTEGER NOT NULL PRIMARY KEY,
    token_hash     BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    account_id     INTEGER NOT NULL REFERENCES accounts (id),
    method         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    client_address TEXT,
    user_agent     TEXT,
    ended_at       INTEGER
) STRICT;
CREATE INDEX sessions_by_account ON sessions (account_id) WHERE ended_at IS NULL;

CREATE TABLE challenges (
    nonce       BLOB    NOT NULL PRIMARY KEY,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    consumed_at INTEGER
) STRICT;
-- Every new challenge purges the long-expired ones: by index, not by a scan.
CREATE INDEX challenges_by_expiry ON challenges (expires_at);

CREATE TABLE request_ids (
    id         BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    used_at    INTEGER NOT NULL,
    keep_until INTEGER NOT NULL
) STRICT;
CREATE INDEX request_ids_by_expiry ON request_ids (keep_until);

CREATE TABLE otps (
    id         INTEGER NOT NULL PRIMARY KEY,
    purpose    TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    salt       BLOB    NOT NULL CHECK (length(salt) = 16),
    code_hash  BLOB    NOT NULL CHECK (length(code_hash) = 32),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    closed_at  INTEGER
) STRICT;
CREATE INDEX otps_current ON otps (purpose, subject) WHERE closed_at IS NULL;

-- Keys of the portal itself (the challenge MAC key), made once when the database is created.
CREATE TABLE secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE outbox (
    id              INTEGER NOT NULL PRIMARY KEY,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
) STRICT;
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE sent_at IS NULL;
"#;

// Digital documents (document 003). Documents are never deleted; a newer version of a type
// supersedes the older one in the view, the older stays in history.
const V3: &str = r#"
CREATE TABLE documents (
    id              INTEGER NOT NULL PRIMARY KEY,
    authority_bin   TEXT    NOT NULL CHECK (length(authority_bin) = 12),
    subject_iin     TEXT    NOT NULL CHECK (length(subject_iin) = 12),
    doc_type        TEXT    NOT NULL,
    number          TEXT    NOT NULL,
    title           TEXT    NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    issued_at       INTEGER NOT NULL,
    content         BLOB    NOT NULL,
    cms             BLOB    NOT NULL,
    timestamp_token BLOB    NOT NULL,
    stamped_at      INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    superseded_by   INTEGER REFERENCES documents (id),
    UNIQUE (authority_bin, number),
    UNIQUE (subject_iin, doc_type, version)
) STRICT;
CREATE INDEX documents_current ON documents (subject_iin, doc_type) WHERE superseded_by IS NULL;
CREATE TRIGGER documents_no_delete BEFORE DELETE ON documents
BEGIN
    SELECT RAISE(ABORT, 'documents are never deleted');
END;
CREATE TRIGGER documents_only_superseded BEFORE UPDATE ON documents
WHEN OLD.superseded_by IS NOT NULL OR NEW.content IS NOT OLD.content OR NEW.cms IS NOT OLD.cms
  OR NEW.subject_iin IS NOT OLD.subject_iin OR NEW.version IS NOT OLD.version
BEGIN
    SELECT RAISE(ABORT, 'a stored document only gains its successor');
END;

CREATE TABLE access_grants (
    id           INTEGER NOT NULL PRIMARY KEY,
    document_id  INTEGER NOT NULL REFERENCES documents (id),
    opened_by    INTEGER NOT NULL REFERENCES accounts (id),
    token_hash   BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    short_code   TEXT    NOT NULL CHECK (length(short_code) = 6),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    withdrawn_at INTEGER,
    locked_at    INTEGER,
    wrong_tries  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX access_grants_open ON access_grants (short_code, expires_at) WHERE withdrawn_at IS NULL AND locked_at IS NULL;
CREATE INDEX access_grants_live ON access_grants (expires_at) WHERE withdrawn_at IS NULL AND locked_at IS NULL;
CREATE INDEX access_grants_by_opener ON access_grants (opened_by, id);

CREATE TABLE release_requests (
    id          TEXT    NOT NULL PRIMARY KEY,
    system      TEXT    NOT NULL,
    subject_iin TEXT    NOT NULL CHECK (length(subject_iin) = 12),
    doc_type    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    released_at INTEGER
) STRICT;

-- Every attempt on a document, successful or not; the cabinets' history is read from it.
CREATE TABLE document_events (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    document_id    INTEGER,
    subject_iin    TEXT,
    actor          TEXT    NOT NULL,
    actor_kind     TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    channel        TEXT,
    outcome        TEXT    NOT NULL,
    detail         TEXT,
    client_address TEXT
) STRICT;
CREATE INDEX document_events_by_subject ON document_events (subject_iin, seq) WHERE outcome = 'ok';
CREATE INDEX document_events_by_actor ON document_events (actor, seq) WHERE outcome = 'ok';
CREATE INDEX document_events_wrong_codes ON document_events (actor, at) WHERE outcome = 'wrong-code';
CREATE INDEX document_events_wrong_codes_all ON document_events (at) WHERE outcome = 'wrong-code';
CREATE TRIGGER document_events_no_update BEFORE UPDATE ON document_events
BEGIN
    SELECT RAISE(ABORT, 'the document journal is append-only');
END;
CREATE TRIGGER document_events_no_delete BEFORE DELETE ON document_events
BEGIN
    SELECT RAISE(ABORT, 'the document journal is append-only');
END;
"#;

// One current binding per account and per number (partial unique indexes); ended bindings
// stay as history. The journal is append-only like the failed-login journal. An SMS keeps its
// stable message id for every attempt; its body is erased once sent or dropped.
const V2: &str = r#"
CREATE TABLE phone_bindings (
    id              INTEGER NOT NULL PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id),
    phone           TEXT    NOT NULL CHECK (phone GLOB '+77[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'),
    channel         TEXT    NOT NULL CHECK (channel IN ('portal', 'mobile-app', 'bank-app', 'counter')),
    session_id      TEXT    NOT NULL,
    bound_at        INTEGER NOT NULL,
    service_seconds INTEGER NOT NULL,
    evidence        TEXT    NOT NULL,
    signed_request  BLOB    NOT NULL,
    ended_at        INTEGER,
    end_reason      TEXT
) STRICT;
CREATE UNIQUE INDEX phone_bindings_current_of_account ON phone_bindings (account_id) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX phone_bindings_current_of_phone ON phone_bindings (phone) WHERE ended_at IS NULL;

CREATE TABLE phone_sessions (
    id           TEXT    NOT NULL PRIMARY KEY,
    account_id   INTEGER REFERENCES accounts (id),
    login        TEXT    NOT NULL,
    phone        TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    requested_by TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    closed_at    INTEGER
) STRICT;
CREATE INDEX phone_sessions_open ON phone_sessions (login) WHERE closed_at IS NULL;

CREATE TABLE phone_attempts (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    login          TEXT    NOT NULL,
    phone          TEXT,
    channel        TEXT    NOT NULL,
    outcome        TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    actor          TEXT,
    session_id     TEXT,
    client_address TEXT
) STRICT;
CREATE INDEX phone_attempts_by_login ON phone_attempts (login, seq);
CREATE TRIGGER phone_attempts_no_update BEFORE UPDATE ON phone_attempts
BEGIN
    SELECT RAISE(ABORT, 'the journal of phone binding attempts is append-only');
END;
CREATE TRIGGER phone_attempts_no_delete BEFORE DELETE ON phone_attempts
BEGIN
    SELECT RAISE(ABORT, 'the journal of phone binding attempts is append-only');
END;

CREATE TABLE sms_outbox (
    id              INTEGER NOT NULL PRIMARY KEY,
    message_id      TEXT    NOT NULL UNIQUE,
    recipient       TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    purpose         TEXT    NOT NULL,
    login           TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    dropped_at      INTEGER,
    gateway_ref     TEXT,
    last_error      TEXT
) STRICT;
CREATE INDEX sms_outbox_pending ON sms_outbox (next_attempt_at) WHERE sent_at IS NULL AND dropped_at IS NULL;
-- The send limits count codes per IIN and per number over the last hour.
CREATE INDEX sms_outbox_codes_by_login ON sms_outbox (login, created_at) WHERE purpose = 'phone-code';
CREATE INDEX sms_outbox_codes_by_recipient ON sms_outbox (recipient, created_at) WHERE purpose = 'phone-code';
"#;

// The cabinet lists an account's logins, ended sessions included; `sessions_by_account` covers
// open ones only.
const V4: &str = r#"
CREATE INDEX sessions_by_account_all ON sessions (account_id, id);
"#;

// Every login records its challenge's use: as a rowid table with a UNIQUE id that was two
// B-trees (the rows and the id's index, a random key) written per login; keyed by the id it is
// one.
const V5: &str = r#"
CREATE TABLE request_ids_by_id (
    id         BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    used_at    INTEGER NOT NULL,
    keep_until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO request_ids_by_id (id, used_at, keep_until) SELECT id, used_at, keep_until FROM request_ids;
DROP TABLE request_ids;
ALTER TABLE request_ids_by_id RENAME TO request_ids;
CREATE INDEX request_ids_by_expiry ON request_ids (keep_until);
"#;

pub(super) fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
        .context("reading the schema version")
}

/// Apply every migration the database does not have yet; refuse a newer database.
pub(super) fn migrate(conn: &mut Connection, location: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER NOT NULL PRIMARY KEY,
             name       TEXT    NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT;",
    )
    .context("creating schema_migrations")?;
    for migration in MIGRATIONS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a migration")?;
        let found = current_version(&tx)?;
        if found > LATEST {
            return Err(StoreError::SchemaTooNew { path: location.to_owned(), found, known: LATEST });
        }
        if found >= migration.version {
            continue;
        }
        tx.execute_batch(migration.sql)
            .with_context(|| format!("migration {} ({})", migration.version, migration.name))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![migration.version, migration.name, now_ms],
        )
        .context("recording a migration")?;
        tx.commit().context("committing a migration")?;
    }
    Ok(())
}
