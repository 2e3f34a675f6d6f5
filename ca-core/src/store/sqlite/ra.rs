//! [`RaStore`] on SQLite: the person registry, applications with their events, and the outbox.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row, Transaction};
use time::OffsetDateTime;

use super::{append, chain_head, immediate, now, Context, SqliteStore};
use crate::identity::{Bin, Iin, KeyType};
use crate::ra::application::{
    ActorRole, Application, ApplicationEvent, ApplicationKind, ApplicationNumber, ApplicationState, Channel, Step,
    StoredRefusal,
};
use crate::ra::budget::Budget;
use crate::ra::csv::RegistryImport;
use crate::ra::receipt::{Receipt, ReceiptDetails, ReceiptNumber};
use crate::ra::registry::{ExclusionCode, ImportCounts, LegalCapacity, LegalEntityRecord, PersonRecord};
use crate::ra::regulation::Timing;
use crate::ra::store::{
    ApplicantKey, ApplicationQuery, NewApplication, NewEvent, NewMessage, NewToken, OutboxMessage, RaStore, Submitted,
    TokenPurpose, TokenUse, Transition, Transitioned,
};
use crate::revocation::RevocationReason;
use crate::serial::SerialNumber;
use crate::store::{AuditEvent, StoreError};

const PERSON_COLUMNS: &str = "iin, surname, given_name, patronymic, life_status, exclusion_code, legal_capacity, \
     special_register, document_number, document_issued, email, phone";
const ENTITY_COLUMNS: &str = "bin, name, registration_number, head_iin";
const APPLICATION_COLUMNS: &str = "number, kind, state, iin, bin, email, serials, revocation_reason, refusal_code, \
     refusal_message, dedup_key, created_at, updated_at, roles, channel, paperwork";
const EVENT_COLUMNS: &str = "e.seq, e.number, a.kind, e.step, e.from_state, e.to_state, e.actor_role, e.actor, \
     e.signer_serial, e.started_at, e.at, e.budget, e.deadline, e.breached, e.details";
const OUTBOX_COLUMNS: &str =
    "id, application, recipient, subject, body, created_at, attempts, next_attempt_at, sent_at, last_error";

fn corrupt(table: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{table}: {what}"))
}

fn time_of(table: &str, secs: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| corrupt(table, e))
}

fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, i: usize, table: &str) -> Result<T, StoreError> {
    row.get(i).map_err(|e| corrupt(table, format!("column {i}: {e}")))
}

fn person_row(row: &Row<'_>) -> Result<PersonRecord, StoreError> {
    const T: &str = "registry_persons";
    let iin: String = get(row, 0, T)?;
    let issued: String = get(row, 9, T)?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Ok(PersonRecord {
        iin: iin.parse().map_err(|e| corrupt(T, e))?,
        surname: get(row, 1, T)?,
        given_name: get(row, 2, T)?,
        patronymic: get(row, 3, T)?,
        life_status: get(row, 4, T)?,
        exclusion: ExclusionCode::new(get(row, 5, T)?).ok_or_else(|| corrupt(T, "exclusion code"))?,
        legal_capacity: LegalCapacity::from_code(get(row, 6, T)?).ok_or_else(|| corrupt(T, "legal capacity"))?,
        special_register: get::<i64>(row, 7, T)? != 0,
        document_number: get(row, 8, T)?,
        document_issued: time::Date::parse(&issued, format).map_err(|e| corrupt(T, e))?,
        email: get(row, 10, T)?,
        phone: get(row, 11, T)?,
    })
}

fn entity_row(row: &Row<'_>) -> Result<LegalEntityRecord, StoreError> {
    const T: &str = "registry_entities";
    let bin: String = get(row, 0, T)?;
    let head: String = get(row, 3, T)?;
    Ok(LegalEntityRecord {
        bin: bin.parse().map_err(|e| corrupt(T, e))?,
        name: get(row, 1, T)?,
        registration_number: get(row, 2, T)?,
        head_iin: head.parse().map_err(|e| corrupt(T, e))?,
    })
}

fn serials_to_text(serials: &[SerialNumber]) -> String {
    serde_json::Value::from(serials.iter().map(SerialNumber::to_hex).collect::<Vec<_>>()).to_string()
}

fn serials_from_text(text: &str) -> Result<Vec<SerialNumber>, StoreError> {
    let list: Vec<String> = serde_json::from_str(text).map_err(|e| corrupt("applications", e))?;
    list.iter().map(|s| s.parse().map_err(|e| corrupt("applications", e))).collect()
}

fn application_row(row: &Row<'_>) -> Result<Application, StoreError> {
    const T: &str = "applications";
    let number: String = get(row, 0, T)?;
    let kind: String = get(row, 1, T)?;
    let state: String = get(row, 2, T)?;
    let iin: String = get(row, 3, T)?;
    let bin: Option<String> = get(row, 4, T)?;
    let serials: String = get(row, 6, T)?;
    let reason: Option<u8> = get(row, 7, T)?;
    let code: Option<String> = get(row, 8, T)?;
    let message: Option<String> = get(row, 9, T)?;
    let roles: String = get(row, 13, T)?;
    let roles: Vec<String> = serde_json::from_str(&roles).map_err(|e| corrupt(T, e))?;
    let channel: String = get(row, 14, T)?;
    let paperwork: Option<String> = get(row, 15, T)?;
    Ok(Application {
        channel: Channel::parse(&channel).ok_or_else(|| corrupt(T, format!("channel {channel:?}")))?,
        paperwork: paperwork.map(|p| serde_json::from_str(&p)).transpose().map_err(|e| corrupt(T, e))?,
        roles: roles.iter().map(|r| r.parse().map_err(|e| corrupt(T, e))).collect::<Result<_, _>>()?,
        number: number.parse().map_err(|e| corrupt(T, e))?,
        kind: kind.parse().map_err(|e| corrupt(T, e))?,
        state: ApplicationState::parse(&state).ok_or_else(|| corrupt(T, format!("state {state:?}")))?,
        iin: iin.parse().map_err(|e| corrupt(T, e))?,
        bin: bin.map(|b| b.parse::<Bin>()).transpose().map_err(|e| corrupt(T, e))?,
        email: get(row, 5, T)?,
        serials: serials_from_text(&serials)?,
        revocation_reason: reason
            .map(|r| RevocationReason::from_code(r).ok_or_else(|| corrupt(T, format!("revocation reason {r}"))))
            .transpose()?,
        refusal: code.zip(message).map(|(code, message)| StoredRefusal { code, message }),
        dedup_key: get(row, 10, T)?,
        created_at: time_of(T, get(row, 11, T)?)?,
        updated_at: time_of(T, get(row, 12, T)?)?,
    })
}

fn event_row(row: &Row<'_>) -> Result<ApplicationEvent, StoreError> {
    const T: &str = "application_events";
    let number: String = get(row, 1, T)?;
    let kind: String = get(row, 2, T)?;
    let step: String = get(row, 3, T)?;
    let from: Option<String> = get(row, 4, T)?;
    let to: String = get(row, 5, T)?;
    let role: String = get(row, 6, T)?;
    let signer: Option<String> = get(row, 8, T)?;
    let budget: Option<String> = get(row, 11, T)?;
    let deadline: Option<i64> = get(row, 12, T)?;
    let details: String = get(row, 14, T)?;
    let state = |s: &str| ApplicationState::parse(s).ok_or_else(|| corrupt(T, format!("state {s:?}")));
    Ok(ApplicationEvent {
        seq: get(row, 0, T)?,
        number: number.parse().map_err(|e| corrupt(T, e))?,
        kind: kind.parse().map_err(|e| corrupt(T, e))?,
        step: Step::parse(&step).ok_or_else(|| corrupt(T, format!("step {step:?}")))?,
        from: from.as_deref().map(state).transpose()?,
        to: state(&to)?,
        actor_role: ActorRole::parse(&role).ok_or_else(|| corrupt(T, format!("actor role {role:?}")))?,
        actor: get(row, 7, T)?,
        signer_serial: signer.map(|s| s.parse()).transpose().map_err(|e| corrupt(T, e))?,
        started_at: time_of(T, get(row, 9, T)?)?,
        at: time_of(T, get(row, 10, T)?)?,
        budget: budget.map(|b| serde_json::from_str::<Budget>(&b)).transpose().map_err(|e| corrupt(T, e))?,
        deadline: deadline.map(|d| time_of(T, d)).transpose()?,
        breached: get::<i64>(row, 13, T)? != 0,
        details: serde_json::from_str(&details).map_err(|e| corrupt(T, e))?,
    })
}

fn outbox_row(row: &Row<'_>) -> Result<OutboxMessage, StoreError> {
    const T: &str = "outbox";
    let application: Option<String> = get(row, 1, T)?;
    let sent: Option<i64> = get(row, 8, T)?;
    Ok(OutboxMessage {
        id: get(row, 0, T)?,
        application: application.map(|a| a.parse()).transpose().map_err(|e| corrupt(T, e))?,
        to: get(row, 2, T)?,
        subject: get(row, 3, T)?,
        body: get(row, 4, T)?,
        created_at: time_of(T, get(row, 5, T)?)?,
        attempts: get(row, 6, T)?,
        next_attempt_at: time_of(T, get(row, 7, T)?)?,
        sent_at: sent.map(|s| time_of(T, s)).transpose()?,
        last_error: get(row, 9, T)?,
    })
}

fn collect<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    args: impl rusqlite::Params,
    map: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).with_context(|| format!("preparing {sql}"))?;
    let mut rows = stmt.query(args).context("querying")?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().context("reading a row")? {
        out.push(map(row)?);
    }
    Ok(out)
}

fn load_application(conn: &rusqlite::Connection, number: &str) -> Result<Option<Application>, StoreError> {
    let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE number = ?1");
    Ok(collect(conn, &sql, [number], application_row)?.pop())
}

/// Insert one event with its budget, and its audit entry; with the writing to a card, the
/// whole stay at the counter too ([`Step::CounterTotal`]).
#[allow(clippy::too_many_arguments)]
fn insert_event(
    tx: &Transaction<'_>,
    timing: &Timing,
    number: &ApplicationNumber,
    kind: ApplicationKind,
    channel: Channel,
    from: Option<ApplicationState>,
    to: ApplicationState,
    event: &NewEvent,
) -> Result<(), StoreError> {
    let previous: Option<(i64, String)> = tx
        .query_row(
            // A claim is bookkeeping: the step it precedes is timed from the last real step.
            "SELECT at, step FROM application_events WHERE number = ?1
                 AND step NOT IN ('claim', 'release', 'counter-total') ORDER BY seq DESC LIMIT 1",
            [number.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .context("reading the previous transition")?;
    let at = event.at.unix_timestamp();
    let started =
        crate::store::chain::step_started(kind, event.step, previous.as_ref().map(|(t, s)| (*t, s.as_str())), at);
    insert_timed(tx, timing, number, (kind, channel), from, to, event, started)?;
    if crate::store::chain::ends_counter_stay(kind, channel, event.step) {
        let arrived: Option<i64> = tx
            .query_row(
                "SELECT MIN(at) FROM application_events WHERE number = ?1 AND step = 'present'",
                [number.as_str()],
                |r| r.get(0),
            )
            .context("reading the arrival at the counter")?;
        if let Some(arrived) = arrived {
            let total = NewEvent { step: Step::CounterTotal, ..event.clone() };
            insert_timed(tx, timing, number, (kind, channel), Some(to), to, &total, arrived.min(at))?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn insert_timed(
    tx: &Transaction<'_>,
    timing: &Timing,
    number: &ApplicationNumber,
    (kind, channel): (ApplicationKind, Channel),
    from: Option<ApplicationState>,
    to: ApplicationState,
    event: &NewEvent,
    started_at: i64,
) -> Result<(), StoreError> {
    let at = event.at.unix_timestamp();
    let budget = timing.budget(event.step, kind, channel);
    let start_time = time_of("application_events", started_at)?;
    let deadline = budget.map(|b| timing.deadline(b, start_time));
    let breached = deadline.is_some_and(|d| event.at > d);
    let budget_json = budget.map(|b| serde_json::to_string(&b).unwrap_or_default());
    tx.prepare_cached(
        "INSERT INTO application_events (number, step, from_state, to_state, actor_role, actor, signer_serial,
             started_at, at, budget, deadline, breached, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            number.as_str(),
            event.step.name(),
            from.map(ApplicationState::name),
            to.name(),
            event.actor_role.name(),
            event.actor,
            event.signer_serial.as_ref().map(SerialNumber::to_hex),
            started_at,
            at,
            budget_json,
            deadline.map(OffsetDateTime::unix_timestamp),
            breached,
            event.details.to_string(),
        ])
    })
    .with_context(|| format!("recording step {} of {number}", event.step))?;
    let audit =
        AuditEvent::new(format!("{}:{}", event.actor_role.name(), event.actor), format!("application.{}", event.step))
            .target(number.as_str())
            .details(serde_json::json!({
                "kind": kind.name(),
                "channel": channel.name(),
                "from": from.map(ApplicationState::name),
                "to": to.name(),
                "signer_serial": event.signer_serial.as_ref().map(SerialNumber::to_hex),
                "budget": budget.map(Budget::describe),
                "breached": breached,
                "details": event.details,
            }));
    let now = now()?;
    let mut head = chain_head(tx)?;
    append(tx, &mut head, &now, &audit)
}

fn insert_token(tx: &Transaction<'_>, number: &ApplicationNumber, token: &NewToken, at: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO application_tokens (number, purpose, token_sha256, created_at, expires_at, used_at)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
    )
    .and_then(|mut s| {
        s.execute(params![
            number.as_str(),
            token.purpose.name(),
            token.sha256.as_slice(),
            at,
            token.expires_at.unix_timestamp()
        ])
    })
    .with_context(|| format!("storing the {} token of {number}", token.purpose.name()))?;
    Ok(())
}

fn queue_notice(
    tx: &Transaction<'_>,
    number: &ApplicationNumber,
    notice: &NewMessage,
    at: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO outbox (application, recipient, subject, body, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )
    .and_then(|mut s| s.execute(params![number.as_str(), notice.to, notice.subject, notice.body, at]))
    .with_context(|| format!("queueing the notice of {number}"))?;
    Ok(())
}

impl RaStore for SqliteStore {
    fn import_registry(&self, import: &RegistryImport, actor: &str) -> Result<ImportCounts, StoreError> {
        let now = now()?;
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let mut counts = ImportCounts::default();
        let format = time::macros::format_description!("[year]-[month]-[day]");
        for p in &import.persons {
            let sql = format!("SELECT {PERSON_COLUMNS} FROM registry_persons WHERE iin = ?1");
            let existing = collect(&tx, &sql, [p.iin.as_string()], person_row)?.pop();
            match existing {
                Some(e) if &e == p => {
                    counts.persons_unchanged += 1;
                    continue;
                }
                Some(_) => counts.persons_updated += 1,
                None => counts.persons_added += 1,
            }
            let issued = p.document_issued.format(format).map_err(|e| StoreError::Database(e.to_string()))?;
            tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO registry_persons ({PERSON_COLUMNS}, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    p.iin.as_string(),
                    p.surname,
                    p.given_name,
                    p.patronymic,
                    p.life_status,
                    p.exclusion.code(),
                    p.legal_capacity.code(),
                    p.special_register,
                    p.document_number,
                    issued,
                    p.email,
                    p.phone,
                    now.secs,
                ])
            })
            .with_context(|| format!("storing registry person {}", p.iin))?;
        }
        for e in &import.entities {
            let sql = format!("SELECT {ENTITY_COLUMNS} FROM registry_entities WHERE bin = ?1");
            let existing = collect(&tx, &sql, [e.bin.as_string()], entity_row)?.pop();
            match existing {
                Some(old) if &old == e => {
                    counts.entities_unchanged += 1;
                    continue;
                }
                Some(_) => counts.entities_updated += 1,
                None => counts.entities_added += 1,
            }
            tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO registry_entities ({ENTITY_COLUMNS}, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)"
            ))
            .and_then(|mut s| {
                s.execute(params![e.bin.as_string(), e.name, e.registration_number, e.head_iin.as_string(), now.secs])
            })
            .with_context(|| format!("storing registry entity {}", e.bin))?;
        }
        let audit = AuditEvent::new(actor, "registry.import").details(serde_json::json!(counts));
        let mut head = chain_head(&tx)?;
        append(&tx, &mut head, &now, &audit)?;
        tx.commit().context("committing a registry import")?;
        Ok(counts)
    }

    fn registry_person(&self, iin: &Iin) -> Result<Option<PersonRecord>, StoreError> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM registry_persons WHERE iin = ?1");
        Ok(collect(&self.lock(), &sql, [iin.as_string()], person_row)?.pop())
    }

    fn registry_entity(&self, bin: &Bin) -> Result<Option<LegalEntityRecord>, StoreError> {
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM registry_entities WHERE bin = ?1");
        Ok(collect(&self.lock(), &sql, [bin.as_string()], entity_row)?.pop())
    }

    fn submit(&self, a: &NewApplication, event: &NewEvent) -> Result<Submitted, StoreError> {
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        if !a.state.is_final() {
            let sql = format!(
                "SELECT {APPLICATION_COLUMNS} FROM applications
                 WHERE dedup_key = ?1 AND state NOT IN ('issued', 'revoked', 'refused')"
            );
            if let Some(existing) = collect(&tx, &sql, [&a.dedup_key], application_row)?.pop() {
                return Ok(Submitted::Existing(existing));
            }
        }
        let year = event.at.year();
        let sequence: i64 = tx
            .query_row(
                "INSERT INTO application_numbers (year, last) VALUES (?1, 1)
                 ON CONFLICT (year) DO UPDATE SET last = last + 1 RETURNING last",
                [year],
                |r| r.get(0),
            )
            .context("allocating an application number")?;
        let number = ApplicationNumber::new(year, u64::try_from(sequence).unwrap_or_default());
        let at = event.at.unix_timestamp();
        let receipt_number = match &a.receipt {
            Some(r) => Some(super::receipts::next_number(&tx, r.issued_at.year())?),
            None => None,
        };
        let paperwork = a
            .paperwork
            .clone()
            .map(|p| crate::ra::state_corporation::Paperwork { receipt: receipt_number.clone(), ..p })
            .map(|p| serde_json::to_string(&p))
            .transpose()
            .map_err(|e| StoreError::Database(format!("encoding the paperwork: {e}")))?;
        tx.prepare_cached(&format!(
            "INSERT INTO applications ({APPLICATION_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15)"
        ))
        .and_then(|mut s| {
            s.execute(params![
                number.as_str(),
                a.kind.name(),
                a.state.name(),
                a.iin.as_string(),
                a.bin.map(|b| b.as_string()),
                a.email,
                serials_to_text(&a.serials),
                a.revocation_reason.map(RevocationReason::code),
                a.refusal.as_ref().map(|r| &r.code),
                a.refusal.as_ref().map(|r| &r.message),
                a.dedup_key,
                at,
                serde_json::Value::from(a.roles.iter().map(|r| r.name()).collect::<Vec<_>>()).to_string(),
                a.channel.name(),
                paperwork,
            ])
        })
        .with_context(|| format!("registering application {number}"))?;
        let timing = self.timing();
        for earlier in &a.earlier {
            insert_event(&tx, &timing, &number, a.kind, a.channel, None, a.state, earlier)?;
        }
        insert_event(&tx, &timing, &number, a.kind, a.channel, None, a.state, event)?;
        if let (Some(details), Some(receipt_number)) = (&a.receipt, receipt_number) {
            super::receipts::store(&tx, receipt_number, details, Some(&number))?;
        }
        for key in &a.keys {
            let sha = crate::ra::csr_keys::spki_sha256(&key.spki);
            let key_type = if key.key_type == KeyType::Auth { "auth" } else { "sign" };
            tx.prepare_cached(
                "INSERT INTO application_keys (number, key_type, spki, spki_sha256) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![number.as_str(), key_type, key.spki, sha.as_slice()]))
            .with_context(|| format!("storing the applicant's {key_type} key of {number}"))?;
        }
        for token in &a.tokens {
            insert_token(&tx, &number, token, at)?;
        }
        if let Some(notice) = &a.notice {
            let notice = NewMessage {
                to: notice.to.clone(),
                subject: notice.subject.replace("{number}", number.as_str()),
                body: notice.body.replace("{number}", number.as_str()),
            };
            queue_notice(&tx, &number, &notice, at)?;
        }
        let created = load_application(&tx, number.as_str())?
            .ok_or_else(|| StoreError::Corrupt(format!("application {number} vanished while being registered")))?;
        tx.commit().context("committing an application")?;
        Ok(Submitted::New(created))
    }

    fn transition(&self, number: &ApplicationNumber, t: &Transition) -> Result<Transitioned, StoreError> {
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let current = load_application(&tx, number.as_str())?
            .ok_or_else(|| StoreError::Database(format!("no application {number}")))?;
        if !t.from.contains(&current.state) {
            return Ok(Transitioned::NotApplicable(current));
        }
        // Conditional on the state read above; under BEGIN IMMEDIATE nobody can change it in
        // between, and the condition keeps that true even if the locking ever changes.
        let changed = tx
            .prepare_cached(
                "UPDATE applications
                 SET state = ?2, updated_at = ?3, serials = COALESCE(?4, serials),
                     refusal_code = COALESCE(?5, refusal_code), refusal_message = COALESCE(?6, refusal_message)
                 WHERE number = ?1 AND state = ?7",
            )
            .and_then(|mut s| {
                s.execute(params![
                    number.as_str(),
                    t.to.name(),
                    t.event.at.unix_timestamp(),
                    t.serials.as_deref().map(serials_to_text),
                    t.refusal.as_ref().map(|r| &r.code),
                    t.refusal.as_ref().map(|r| &r.message),
                    current.state.name(),
                ])
            })
            .with_context(|| format!("moving {number} to {}", t.to))?;
        if changed != 1 {
            return Ok(Transitioned::NotApplicable(current));
        }
        insert_event(&tx, &self.timing(), number, current.kind, current.channel, Some(current.state), t.to, &t.event)?;
        if let Some(token) = &t.token {
            insert_token(&tx, number, token, t.event.at.unix_timestamp())?;
        }
        if let Some(notice) = &t.notice {
            queue_notice(&tx, number, notice, t.event.at.unix_timestamp())?;
        }
        let updated = load_application(&tx, number.as_str())?
            .ok_or_else(|| StoreError::Corrupt(format!("application {number} vanished during a transition")))?;
        tx.commit().context("committing a transition")?;
        Ok(Transitioned::Applied(updated))
    }

    fn application(&self, number: &ApplicationNumber) -> Result<Option<Application>, StoreError> {
        load_application(&self.lock(), number.as_str())
    }

    fn applications(&self, q: &ApplicationQuery) -> Result<Vec<Application>, StoreError> {
        let mut filters = Vec::new();
        let mut args = Vec::new();
        if let Some(s) = q.state {
            filters.push("state = ?");
            args.push(Value::Text(s.name().to_owned()));
        }
        if let Some(k) = q.kind {
            filters.push("kind = ?");
            args.push(Value::Text(k.name().to_owned()));
        }
        if let Some(iin) = q.iin {
            filters.push("iin = ?");
            args.push(Value::Text(iin.as_string()));
        }
        let mut sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications");
        if !filters.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&filters.join(" AND "));
        }
        sql.push_str(" ORDER BY created_at DESC, rowid DESC LIMIT ?");
        args.push(Value::Integer(q.limit.map_or(-1, i64::from)));
        collect(&self.lock(), &sql, params_from_iter(args), application_row)
    }

    fn application_events(&self, number: Option<&ApplicationNumber>) -> Result<Vec<ApplicationEvent>, StoreError> {
        let base = format!("SELECT {EVENT_COLUMNS} FROM application_events e JOIN applications a USING (number)");
        let conn = self.lock();
        match number {
            Some(n) => collect(&conn, &format!("{base} WHERE e.number = ?1 ORDER BY e.seq"), [n.as_str()], event_row),
            None => collect(&conn, &format!("{base} ORDER BY e.seq"), [], event_row),
        }
    }

    fn application_keys(&self, number: &ApplicationNumber) -> Result<Vec<ApplicantKey>, StoreError> {
        fn key_row(row: &Row<'_>) -> Result<ApplicantKey, StoreError> {
            const T: &str = "application_keys";
            let key_type: String = get(row, 0, T)?;
            Ok(ApplicantKey {
                key_type: if key_type == "auth" { KeyType::Auth } else { KeyType::Sign },
                spki: get(row, 1, T)?,
            })
        }
        let sql = "SELECT key_type, spki FROM application_keys WHERE number = ?1 ORDER BY key_type";
        collect(&self.lock(), sql, [number.as_str()], key_row)
    }

    fn key_in_use(
        &self,
        spki_sha256: &[u8; 32],
        except: Option<&ApplicationNumber>,
    ) -> Result<Option<String>, StoreError> {
        let conn = self.lock();
        let certificate: Option<String> = conn
            .query_row(
                "SELECT serial FROM certificates WHERE spki_sha256 = ?1 AND status <> 'revoked' LIMIT 1",
                [spki_sha256.as_slice()],
                |r| r.get(0),
            )
            .optional()
            .context("looking for a certificate of the key")?;
        if let Some(serial) = certificate {
            return Ok(Some(format!("certificate {serial}")));
        }
        // Refused and revoked applications gave their keys up; an issued one's certificates
        // were found above unless revoked, and then the key is spent too.
        let application: Option<String> = conn
            .query_row(
                "SELECT k.number FROM application_keys k JOIN applications a USING (number)
                 WHERE k.spki_sha256 = ?1 AND a.state NOT IN ('refused', 'revoked') AND k.number <> ?2 LIMIT 1",
                params![spki_sha256.as_slice(), except.map_or("", ApplicationNumber::as_str)],
                |r| r.get(0),
            )
            .optional()
            .context("looking for an application with the key")?;
        Ok(application.map(|n| format!("application {n}")))
    }

    fn use_token(
        &self,
        number: &ApplicationNumber,
        purpose: TokenPurpose,
        sha256: &[u8; 32],
        now: OffsetDateTime,
        consume: bool,
    ) -> Result<TokenUse, StoreError> {
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let row: Option<(Vec<u8>, i64, Option<i64>)> = tx
            .query_row(
                "SELECT token_sha256, expires_at, used_at FROM application_tokens WHERE number = ?1 AND purpose = ?2",
                params![number.as_str(), purpose.name()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .context("reading an application token")?;
        let Some((stored, expires_at, used_at)) = row else { return Ok(TokenUse::Unknown) };
        // Both are SHA-256 digests of a random token: comparing them leaks nothing useful, but
        // compare in constant time anyway.
        if aws_lc_rs::constant_time::verify_slices_are_equal(&stored, sha256).is_err() {
            return Ok(TokenUse::Unknown);
        }
        if used_at.is_some() {
            return Ok(TokenUse::Used);
        }
        if now.unix_timestamp() >= expires_at {
            return Ok(TokenUse::Expired);
        }
        if consume {
            let changed = tx
                .execute(
                    "UPDATE application_tokens SET used_at = ?3 WHERE number = ?1 AND purpose = ?2 AND used_at IS NULL",
                    params![number.as_str(), purpose.name(), now.unix_timestamp()],
                )
                .context("consuming an application token")?;
            if changed != 1 {
                return Ok(TokenUse::Used);
            }
            tx.commit().context("committing the use of a token")?;
        }
        Ok(TokenUse::Accepted)
    }

    fn refuse_package(&self, details: &ReceiptDetails) -> Result<Receipt, StoreError> {
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let number = super::receipts::next_number(&tx, details.issued_at.year())?;
        let receipt = super::receipts::store(&tx, number, details, None)?;
        tx.commit().context("committing a receipt of refusal")?;
        Ok(receipt)
    }

    fn receipt(&self, number: &ReceiptNumber) -> Result<Option<Receipt>, StoreError> {
        super::receipts::load(&self.lock(), number)
    }

    fn due_messages(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2"
        );
        collect(&self.lock(), &sql, params![now.unix_timestamp(), limit], outbox_row)
    }

    fn outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id DESC LIMIT ?1");
        collect(&self.lock(), &sql, [limit], outbox_row)
    }

    fn claim_message(&self, id: i64, now: OffsetDateTime, lease_until: OffsetDateTime) -> Result<bool, StoreError> {
        let changed = self
            .lock()
            .execute(
                "UPDATE outbox SET next_attempt_at = ?3 WHERE id = ?1 AND sent_at IS NULL AND next_attempt_at <= ?2",
                params![id, now.unix_timestamp(), lease_until.unix_timestamp()],
            )
            .with_context(|| format!("taking message {id} for delivery"))?;
        Ok(changed == 1)
    }

    fn mark_sent(&self, id: i64, at: OffsetDateTime) -> Result<bool, StoreError> {
        let now = now()?;
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let changed = tx
            .execute(
                "UPDATE outbox SET sent_at = ?2, attempts = attempts + 1, last_error = NULL
                 WHERE id = ?1 AND sent_at IS NULL",
                params![id, at.unix_timestamp()],
            )
            .with_context(|| format!("marking message {id} sent"))?;
        if changed == 1 {
            let audit = AuditEvent::new("outbox", "notice.sent").target(format!("outbox/{id}"));
            let mut head = chain_head(&tx)?;
            append(&tx, &mut head, &now, &audit)?;
        }
        tx.commit().context("committing a delivery")?;
        Ok(changed == 1)
    }

    fn mark_failed(&self, id: i64, error: &str, retry_at: OffsetDateTime) -> Result<(), StoreError> {
        let conn = self.lock();
        let error: String = error.chars().take(500).collect();
        conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
             WHERE id = ?1 AND sent_at IS NULL",
            params![id, error, retry_at.unix_timestamp()],
        )
        .with_context(|| format!("recording a failed delivery of message {id}"))?;
        Ok(())
    }
}
