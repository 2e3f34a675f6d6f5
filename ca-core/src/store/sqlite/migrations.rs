//! Schema versions. Each migration is applied once, in order, inside one `BEGIN IMMEDIATE`
//! transaction together with its `schema_migrations` row, so two processes opening the same file
//! cannot both apply it and a failed migration leaves the previous version intact.
//!
//! Never edit a migration that has shipped: add a new one (CRL numbers, applications, ...).

use rusqlite::{params, Connection, TransactionBehavior};

use super::Context;
use crate::store::StoreError;

/// One step of the schema.
pub(super) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this program knows, by increasing version starting at 1.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "certificates and audit journal", sql: V1_CERTIFICATES_AND_AUDIT },
    Migration { version: 2, name: "revocation events, CRL numbers and partitions", sql: V2_CRLS },
    Migration { version: 3, name: "registration authority: registry, applications, outbox", sql: V3_RA },
    Migration { version: 4, name: "login nonces", sql: V4_NONCES },
    Migration {
        version: 5,
        name: "single-use admin requests; audit journal by time and actor",
        sql: V5_ADMIN_REQUESTS,
    },
    Migration {
        version: 6,
        name: "applicants' own keys, certificates by key, application tokens",
        sql: V6_APPLICANT_KEYS_AND_TOKENS,
    },
    Migration { version: 7, name: "legal-entity roles asked for on applications", sql: V7_APPLICATION_ROLES },
    Migration {
        version: 8,
        name: "application channels, State Corporation paperwork, numbered receipts",
        sql: V8_CHANNELS_AND_RECEIPTS,
    },
    Migration { version: 9, name: "the revoked list from a covering index", sql: V9_REVOKED_LIST },
];

/// The schema version this program writes.
pub(super) const LATEST: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

// Tables are STRICT so a value of the wrong type is refused on write instead of surfacing later
// as a corrupt row. Certificate times are unix seconds (the precision of X.509 and CRLs); audit
// time is unix nanoseconds because the entry hash covers it exactly.
const V1_CERTIFICATES_AND_AUDIT: &str = r#"
CREATE TABLE certificates (
    serial            TEXT    NOT NULL PRIMARY KEY
                              CHECK (length(serial) BETWEEN 2 AND 40 AND serial NOT GLOB '*[^0-9a-f]*'),
    issuer            TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('reserved', 'issued', 'revoked')),
    profile           TEXT    NOT NULL,
    subject_dn        TEXT    NOT NULL,
    iin               TEXT    CHECK (iin IS NULL OR length(iin) = 12),
    bin               TEXT    CHECK (bin IS NULL OR length(bin) = 12),
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    reserved_at       INTEGER NOT NULL,
    issued_at         INTEGER,
    der               BLOB,
    revoked_at        INTEGER,
    revocation_reason INTEGER CHECK (revocation_reason IS NULL
                                     OR (revocation_reason BETWEEN 0 AND 10 AND revocation_reason <> 7)),
    invalidity_date   INTEGER,
    CHECK (status = 'reserved' OR (der IS NOT NULL AND issued_at IS NOT NULL)),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL AND revocation_reason IS NOT NULL)),
    CHECK (status = 'revoked' OR invalidity_date IS NULL)
) STRICT;

-- Every index also carries the rowid, so "newest reservation first" within one IIN or BIN is
-- read straight off the index.
CREATE INDEX certificates_by_iin ON certificates (iin, reserved_at) WHERE iin IS NOT NULL;
CREATE INDEX certificates_by_bin ON certificates (bin, reserved_at) WHERE bin IS NOT NULL;
CREATE INDEX certificates_by_status ON certificates (status, reserved_at);
CREATE INDEX certificates_by_reserved_at ON certificates (reserved_at);

CREATE TABLE audit (
    seq       INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
    at_ns     INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT,
    details   TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit journal is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit journal is append-only');
END;
"#;

// Revocation changes are an ordered event log, so a delta CRL is "every certificate with an
// event after the base CRL's position", and a full CRL records the position it covers.
const V2_CRLS: &str = r#"
ALTER TABLE certificates ADD COLUMN crl_partition INTEGER CHECK (crl_partition IS NULL OR crl_partition >= 0);
ALTER TABLE certificates ADD COLUMN revocation_seq INTEGER;
ALTER TABLE certificates ADD COLUMN first_crl_number INTEGER;

CREATE INDEX certificates_revoked ON certificates (issuer, crl_partition, revocation_seq) WHERE status = 'revoked';

CREATE TABLE revocation_events (
    seq           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    serial        TEXT    NOT NULL REFERENCES certificates (serial),
    issuer        TEXT    NOT NULL,
    crl_partition INTEGER,
    kind          TEXT    NOT NULL CHECK (kind IN ('revoke', 'release')),
    at            INTEGER NOT NULL
) STRICT;

CREATE INDEX revocation_events_by_issuer ON revocation_events (issuer, seq);

CREATE TABLE crl_numbers (
    issuer TEXT    NOT NULL PRIMARY KEY,
    last   INTEGER NOT NULL CHECK (last > 0)
) STRICT;

CREATE TABLE crls (
    issuer        TEXT    NOT NULL,
    crl_partition INTEGER NOT NULL DEFAULT -1,
    kind          TEXT    NOT NULL CHECK (kind IN ('full', 'delta')),
    number        INTEGER NOT NULL,
    base_number   INTEGER,
    this_update   INTEGER NOT NULL,
    next_update   INTEGER NOT NULL,
    event_seq     INTEGER NOT NULL,
    published_at  INTEGER NOT NULL,
    PRIMARY KEY (issuer, number),
    CHECK ((kind = 'delta') = (base_number IS NOT NULL))
) STRICT;

CREATE INDEX crls_latest ON crls (issuer, crl_partition, kind, number);
"#;

// The registration authority. Application times are unix seconds. An open application's dedup
// key is unique (a partial index), so a second identical submission cannot slip in even past
// the check in code. Application events are append-only like the audit journal.
const V3_RA: &str = r#"
CREATE TABLE registry_persons (
    iin              TEXT    NOT NULL PRIMARY KEY CHECK (length(iin) = 12),
    surname          TEXT    NOT NULL,
    given_name       TEXT    NOT NULL,
    patronymic       TEXT,
    life_status      INTEGER NOT NULL CHECK (life_status BETWEEN 0 AND 9),
    exclusion_code   INTEGER NOT NULL CHECK (exclusion_code BETWEEN 0 AND 9),
    legal_capacity   INTEGER NOT NULL CHECK (legal_capacity BETWEEN 1 AND 5),
    special_register INTEGER NOT NULL CHECK (special_register IN (0, 1)),
    document_number  TEXT    NOT NULL,
    document_issued  TEXT    NOT NULL,
    email            TEXT,
    phone            TEXT,
    updated_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE registry_entities (
    bin                 TEXT    NOT NULL PRIMARY KEY CHECK (length(bin) = 12),
    name                TEXT    NOT NULL,
    registration_number TEXT    NOT NULL,
    head_iin            TEXT    NOT NULL CHECK (length(head_iin) = 12),
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE application_numbers (
    year INTEGER NOT NULL PRIMARY KEY,
    last INTEGER NOT NULL CHECK (last > 0)
) STRICT;

CREATE TABLE applications (
    number            TEXT    NOT NULL PRIMARY KEY,
    kind              TEXT    NOT NULL CHECK (kind IN ('new-individual', 'new-employee', 'repeat', 'revoke-signed',
                                                       'revoke-counter', 'card')),
    state             TEXT    NOT NULL CHECK (state IN ('awaiting-head', 'awaiting-operator', 'verified', 'confirmed',
                                                        'issuing', 'revoking', 'issued', 'revoked', 'refused')),
    iin               TEXT    NOT NULL CHECK (length(iin) = 12),
    bin               TEXT    CHECK (bin IS NULL OR length(bin) = 12),
    email             TEXT,
    serials           TEXT    NOT NULL,
    revocation_reason INTEGER,
    refusal_code      TEXT,
    refusal_message   TEXT,
    dedup_key         TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK ((state = 'refused') = (refusal_code IS NOT NULL AND refusal_message IS NOT NULL))
) STRICT;

CREATE UNIQUE INDEX applications_open_dedup ON applications (dedup_key)
    WHERE state NOT IN ('issued', 'revoked', 'refused');
CREATE INDEX applications_by_state ON applications (state, created_at);
CREATE INDEX applications_by_iin ON applications (iin, created_at);

CREATE TABLE application_events (
    seq           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    number        TEXT    NOT NULL REFERENCES applications (number),
    step          TEXT    NOT NULL,
    from_state    TEXT,
    to_state      TEXT    NOT NULL,
    actor_role    TEXT    NOT NULL CHECK (actor_role IN ('system', 'applicant', 'operator', 'head')),
    actor         TEXT    NOT NULL,
    signer_serial TEXT,
    started_at    INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    budget        TEXT,
    deadline      INTEGER,
    breached      INTEGER NOT NULL CHECK (breached IN (0, 1)),
    details       TEXT    NOT NULL
) STRICT;

CREATE INDEX application_events_by_number ON application_events (number, seq);

CREATE TRIGGER application_events_no_update BEFORE UPDATE ON application_events
BEGIN
    SELECT RAISE(ABORT, 'application events are append-only');
END;

CREATE TRIGGER application_events_no_delete BEFORE DELETE ON application_events
BEGIN
    SELECT RAISE(ABORT, 'application events are append-only');
END;

CREATE TABLE outbox (
    id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    application     TEXT    REFERENCES applications (number),
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
) STRICT;

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;
"#;

// Login challenges. A nonce is single use: consuming sets `consumed_at` in one conditional
// UPDATE, so two logins racing with one nonce cannot both succeed; the row stays until it is
// long expired so a replay is told apart from an unknown nonce.
const V4_NONCES: &str = r#"
CREATE TABLE auth_nonces (
    nonce       BLOB    NOT NULL PRIMARY KEY CHECK (length(nonce) BETWEEN 16 AND 64),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    consumed_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX auth_nonces_by_expiry ON auth_nonces (expires_at);
"#;

// Signed administration requests are single use: the first use inserts the request's id (the
// SHA-256 of its signed attributes), a replay finds it there. A row is kept until the request
// would be refused as too old anyway, then purged. The audit indexes serve `ca audit list`.
const V5_ADMIN_REQUESTS: &str = r#"
CREATE TABLE admin_requests (
    id         BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    used_at    INTEGER NOT NULL,
    keep_until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX admin_requests_by_expiry ON admin_requests (keep_until);
CREATE INDEX audit_by_time ON audit (at_ns);
CREATE INDEX audit_by_actor ON audit (actor, at_ns);
"#;

// Applicants' own keys: the public keys of the CSRs an application came with (never a private
// key). Certificates are found by the SHA-256 of their SubjectPublicKeyInfo, so a key already
// certified and not revoked is refused; rows issued before this version get it on the next open
// (the partial index finds them). Application tokens (the install link, the applicant's status
// look-up) are random; only their SHA-256 is kept.
const V6_APPLICANT_KEYS_AND_TOKENS: &str = r#"
CREATE TABLE application_keys (
    number      TEXT NOT NULL REFERENCES applications (number),
    key_type    TEXT NOT NULL CHECK (key_type IN ('auth', 'sign')),
    spki        BLOB NOT NULL,
    spki_sha256 BLOB NOT NULL CHECK (length(spki_sha256) = 32),
    PRIMARY KEY (number, key_type)
) STRICT, WITHOUT ROWID;

CREATE INDEX application_keys_by_key ON application_keys (spki_sha256);

ALTER TABLE certificates ADD COLUMN spki_sha256 BLOB CHECK (spki_sha256 IS NULL OR length(spki_sha256) = 32);
CREATE INDEX certificates_by_key ON certificates (spki_sha256) WHERE spki_sha256 IS NOT NULL;
CREATE INDEX certificates_without_key ON certificates (serial) WHERE spki_sha256 IS NULL AND der IS NOT NULL;

CREATE TABLE application_tokens (
    number       TEXT    NOT NULL REFERENCES applications (number),
    purpose      TEXT    NOT NULL CHECK (purpose IN ('install', 'status')),
    token_sha256 BLOB    NOT NULL CHECK (length(token_sha256) = 32),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    PRIMARY KEY (number, purpose)
) STRICT, WITHOUT ROWID;
"#;

// The legal-entity roles (first head, signing right, financial signing, HR) an employee's
// application asks for, as a JSON list of role names; each needs the first head's confirmation.
const V7_APPLICATION_ROLES: &str = r#"
ALTER TABLE applications ADD COLUMN roles TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(roles));
"#;

// Where an application was taken (the service provider's counter, a State Corporation counter,
// online): applications registered before this version were the service provider's, except the
// applicant's own signed requests, which only come online. A State Corporation counter's
// paperwork (consent, representative, documents, receipt number) is JSON. Receipts of acceptance
// and of refusal are numbered per year like applications (`receipt_numbers`, bumped in the
// transaction that stores the receipt); a refusal has no application.
const V8_CHANNELS_AND_RECEIPTS: &str = r#"
ALTER TABLE applications ADD COLUMN channel TEXT NOT NULL DEFAULT 'service-provider'
    CHECK (channel IN ('service-provider', 'state-corporation', 'online'));
UPDATE applications SET channel = 'online' WHERE kind IN ('repeat', 'revoke-signed');
ALTER TABLE applications ADD COLUMN paperwork TEXT CHECK (paperwork IS NULL OR json_valid(paperwork));

CREATE TABLE receipt_numbers (
    year INTEGER NOT NULL PRIMARY KEY,
    last INTEGER NOT NULL
) STRICT;

CREATE TABLE receipts (
    number      TEXT    NOT NULL PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('acceptance', 'refusal')),
    application TEXT    REFERENCES applications (number),
    iin         TEXT    NOT NULL,
    issued_at   INTEGER NOT NULL,
    content     TEXT    NOT NULL CHECK (json_valid(content)),
    CHECK ((kind = 'acceptance') = (application IS NOT NULL))
) STRICT;

CREATE INDEX receipts_by_iin ON receipts (iin, issued_at);
"#;

// A full CRL lists every revoked certificate of an issuer (and partition). Through
// `certificates_revoked` each entry cost a look-up of its table row — with the DER in it, about
// one page read per entry, a scan of the whole table at ten revoked in a hundred. This index
// holds every column the list reads, so the list is read from the index alone (a few dozen
// octets per revoked certificate; `status` is among its columns because SQLite counts a column
// the query names as covered only if the index holds it, partial or not). Revoked rows not yet
// on a CRL get their own small index, for the update that marks them published after each CRL.
const V9_REVOKED_LIST: &str = r#"
CREATE INDEX certificates_revoked_list
    ON certificates (issuer, crl_partition, serial, revoked_at, revocation_reason, invalidity_date, status)
    WHERE status = 'revoked';
CREATE INDEX certificates_unpublished ON certificates (issuer, crl_partition, revocation_seq)
    WHERE status = 'revoked' AND first_crl_number IS NULL;
"#;

/// Bring the schema up to [`LATEST`]; returns the version now in place.
pub(super) fn migrate(conn: &mut Connection, location: &str, now_secs: i64) -> Result<i64, StoreError> {
    let tx =
        conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting the migration transaction")?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER NOT NULL PRIMARY KEY,
             applied_at INTEGER NOT NULL
         ) STRICT;",
    )
    .context("creating schema_migrations")?;
    let current = current_version(&tx)?;
    if current > LATEST {
        return Err(StoreError::SchemaTooNew { path: location.to_owned(), found: current, known: LATEST });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        tracing::info!(
            version = migration.version,
            name = migration.name,
            store = location,
            "applying store migration"
        );
        tx.execute_batch(migration.sql)
            .with_context(|| format!("applying migration {} ({})", migration.version, migration.name))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![migration.version, now_secs],
        )
        .context("recording a migration")?;
    }
    tx.commit().context("committing migrations")?;
    Ok(LATEST)
}

/// The highest applied version, 0 for a new database.
pub(super) fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
        .context("reading the schema version")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_increase_by_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "migration {}", m.name);
        }
    }
}
