//! [`RaStore`] on PostgreSQL: the person registry, applications with their events, and the
//! outbox. Every transition takes the audit lock first (it appends an audit entry), which also
//! serialises claims: of two operators carrying out one application, one moves it to `issuing`
//! and the other finds it already moved (the conditional UPDATE re-checks the state as well).

use postgres::types::{FromSql, ToSql};
use postgres::{GenericClient, Row};

use super::pool::Tx;
use time::OffsetDateTime;

use super::{append, audited, chain_head, now, Context, PostgresStore};
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

fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize, table: &str) -> Result<T, StoreError> {
    row.try_get(i).map_err(|e| corrupt(table, format!("column {i}: {e}")))
}

fn small(row: &Row, i: usize, table: &str) -> Result<u8, StoreError> {
    let v: i64 = get(row, i, table)?;
    u8::try_from(v).map_err(|_| corrupt(table, format!("column {i}: {v} out of range")))
}

fn person_row(row: &Row) -> Result<PersonRecord, StoreError> {
    const T: &str = "registry_persons";
    let iin: String = get(row, 0, T)?;
    let issued: String = get(row, 9, T)?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Ok(PersonRecord {
        iin: iin.parse().map_err(|e| corrupt(T, e))?,
        surname: get(row, 1, T)?,
        given_name: get(row, 2, T)?,
        patronymic: get(row, 3, T)?,
        life_status: small(row, 4, T)?,
        exclusion: ExclusionCode::new(small(row, 5, T)?).ok_or_else(|| corrupt(T, "exclusion code"))?,
        legal_capacity: LegalCapacity::from_code(small(row, 6, T)?).ok_or_else(|| corrupt(T, "legal capacity"))?,
        special_register: get(row, 7, T)?,
        document_number: get(row, 8, T)?,
        document_issued: time::Date::parse(&issued, format).map_err(|e| corrupt(T, e))?,
        email: get(row, 10, T)?,
        phone: get(row, 11, T)?,
    })
}

fn entity_row(row: &Row) -> Result<LegalEntityRecord, StoreError> {
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

fn application_row(row: &Row) -> Result<Application, StoreError> {
    const T: &str = "applications";
    let number: String = get(row, 0, T)?;
    let kind: String = get(row, 1, T)?;
    let state: String = get(row, 2, T)?;
    let iin: String = get(row, 3, T)?;
    let bin: Option<String> = get(row, 4, T)?;
    let serials: String = get(row, 6, T)?;
    let reason: Option<i64> = get(row, 7, T)?;
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
            .map(|r| {
                u8::try_from(r)
                    .ok()
                    .and_then(RevocationReason::from_code)
                    .ok_or_else(|| corrupt(T, format!("revocation reason {r}")))
            })
            .transpose()?,
        refusal: code.zip(message).map(|(code, message)| StoredRefusal { code, message }),
        dedup_key: get(row, 10, T)?,
        created_at: time_of(T, get(row, 11, T)?)?,
        updated_at: time_of(T, get(row, 12, T)?)?,
    })
}

fn event_row(row: &Row) -> Result<ApplicationEvent, StoreError> {
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
        breached: get(row, 13, T)?,
        details: serde_json::from_str(&details).map_err(|e| corrupt(T, e))?,
    })
}

fn outbox_row(row: &Row) -> Result<OutboxMessage, StoreError> {
    const T: &str = "outbox";
    let application: Option<String> = get(row, 1, T)?;
    let sent: Option<i64> = get(row, 8, T)?;
    let attempts: i64 = get(row, 6, T)?;
    Ok(OutboxMessage {
        id: get(row, 0, T)?,
        application: application.map(|a| a.parse()).transpose().map_err(|e| corrupt(T, e))?,
        to: get(row, 2, T)?,
        subject: get(row, 3, T)?,
        body: get(row, 4, T)?,
        created_at: time_of(T, get(row, 5, T)?)?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt(T, format!("attempts {attempts}")))?,
        next_attempt_at: time_of(T, get(row, 7, T)?)?,
        sent_at: sent.map(|s| time_of(T, s)).transpose()?,
        last_error: get(row, 9, T)?,
    })
}

fn collect<T>(
    client: &mut impl GenericClient,
    sql: &str,
    args: &[&(dyn ToSql + Sync)],
    map: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = client.query(sql, args).with_context(|| format!("querying {sql}"))?;
    rows.iter().map(map).collect()
}

fn load_application(client: &mut impl GenericClient, number: &str) -> Result<Option<Application>, StoreError> {
    let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE number = $1");
    Ok(collect(client, &sql, &[&number], application_row)?.pop())
}

/// Insert one event with its budget, and its audit entry; with the writing to a card, the
/// whole stay at the counter too ([`Step::CounterTotal`]).
#[allow(clippy::too_many_arguments)]
fn insert_event(
    tx: &mut Tx<'_>,
    timing: &Timing,
    number: &ApplicationNumber,
    kind: ApplicationKind,
    channel: Channel,
    from: Option<ApplicationState>,
    to: ApplicationState,
    event: &NewEvent,
) -> Result<(), StoreError> {
    let previous: Option<(i64, String)> = tx
        .query_opt(
            // A claim is bookkeeping: the step it precedes is timed from the last real step.
            "SELECT at, step FROM application_events WHERE number = $1
                 AND step NOT IN ('claim', 'release', 'counter-total') ORDER BY seq DESC LIMIT 1",
            &[&number.as_str()],
        )
        .and_then(|r| r.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose())
        .context("reading the previous transition")?;
    let at = event.at.unix_timestamp();
    let started =
        crate::store::chain::step_started(kind, event.step, previous.as_ref().map(|(t, s)| (*t, s.as_str())), at);
    insert_timed(tx, timing, number, (kind, channel), from, to, event, started)?;
    if crate::store::chain::ends_counter_stay(kind, channel, event.step) {
        let arrived: Option<i64> = tx
            .query_one(
                "SELECT MIN(at) FROM application_events WHERE number = $1 AND step = 'present'",
                &[&number.as_str()],
            )
            .and_then(|r| r.try_get(0))
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
    tx: &mut Tx<'_>,
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
    tx.execute(
        "INSERT INTO application_events (number, step, from_state, to_state, actor_role, actor, signer_serial,
             started_at, at, budget, deadline, breached, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            &number.as_str(),
            &event.step.name(),
            &from.map(ApplicationState::name),
            &to.name(),
            &event.actor_role.name(),
            &event.actor,
            &event.signer_serial.as_ref().map(SerialNumber::to_hex),
            &started_at,
            &at,
            &budget_json,
            &deadline.map(OffsetDateTime::unix_timestamp),
            &breached,
            &event.details.to_string(),
        ],
    )
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

fn insert_token(tx: &mut Tx<'_>, number: &ApplicationNumber, token: &NewToken, at: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO application_tokens (number, purpose, token_sha256, created_at, expires_at, used_at)
         VALUES ($1, $2, $3, $4, $5, NULL)
         ON CONFLICT (number, purpose) DO UPDATE SET token_sha256 = EXCLUDED.token_sha256,
             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, used_at = NULL",
        &[&number.as_str(), &token.purpose.name(), &token.sha256.as_slice(), &at, &token.expires_at.unix_timestamp()],
    )
    .with_context(|| format!("storing the {} token of {number}", token.purpose.name()))?;
    Ok(())
}

fn queue_notice(tx: &mut Tx<'_>, number: &ApplicationNumber, notice: &NewMessage, at: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO outbox (application, recipient, subject, body, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $5)",
        &[&number.as_str(), &notice.to, &notice.subject, &notice.body, &at],
    )
    .with_context(|| format!("queueing the notice of {number}"))?;
    Ok(())
}

impl RaStore for PostgresStore {
    fn import_registry(&self, import: &RegistryImport, actor: &str) -> Result<ImportCounts, StoreError> {
        let now = now()?;
        let mut client = self.primary.get()?;
        let mut tx = audited(&mut client)?;
        let mut counts = ImportCounts::default();
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let select_person = format!("SELECT {PERSON_COLUMNS} FROM registry_persons WHERE iin = $1");
        let upsert_person = format!(
            "INSERT INTO registry_persons ({PERSON_COLUMNS}, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (iin) DO UPDATE SET surname = EXCLUDED.surname, given_name = EXCLUDED.given_name,
                 patronymic = EXCLUDED.patronymic, life_status = EXCLUDED.life_status,
                 exclusion_code = EXCLUDED.exclusion_code, legal_capacity = EXCLUDED.legal_capacity,
                 special_register = EXCLUDED.special_register, document_number = EXCLUDED.document_number,
                 document_issued = EXCLUDED.document_issued, email = EXCLUDED.email, phone = EXCLUDED.phone,
                 updated_at = EXCLUDED.updated_at"
        );
        for p in &import.persons {
            let existing = collect(&mut *tx, &select_person, &[&p.iin.as_string()], person_row)?.pop();
            match existing {
                Some(e) if &e == p => {
                    counts.persons_unchanged += 1;
                    continue;
                }
                Some(_) => counts.persons_updated += 1,
                None => counts.persons_added += 1,
            }
            let issued = p.document_issued.format(format).map_err(|e| StoreError::Database(e.to_string()))?;
            tx.execute(
                &upsert_person,
                &[
                    &p.iin.as_string(),
                    &p.surname,
                    &p.given_name,
                    &p.patronymic,
                    &i64::from(p.life_status),
                    &i64::from(p.exclusion.code()),
                    &i64::from(p.legal_capacity.code()),
                    &p.special_register,
                    &p.document_number,
                    &issued,
                    &p.email,
                    &p.phone,
                    &now.secs,
                ],
            )
            .with_context(|| format!("storing registry person {}", p.iin))?;
        }
        let select_entity = format!("SELECT {ENTITY_COLUMNS} FROM registry_entities WHERE bin = $1");
        for e in &import.entities {
            let existing = collect(&mut *tx, &select_entity, &[&e.bin.as_string()], entity_row)?.pop();
            match existing {
                Some(old) if &old == e => {
                    counts.entities_unchanged += 1;
                    continue;
                }
                Some(_) => counts.entities_updated += 1,
                None => counts.entities_added += 1,
            }
            tx.execute(
                &format!(
                    "INSERT INTO registry_entities ({ENTITY_COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (bin) DO UPDATE SET name = EXCLUDED.name,
                         registration_number = EXCLUDED.registration_number, head_iin = EXCLUDED.head_iin,
                         updated_at = EXCLUDED.updated_at"
                ),
                &[&e.bin.as_string(), &e.name, &e.registration_number, &e.head_iin.as_string(), &now.secs],
            )
            .with_context(|| format!("storing registry entity {}", e.bin))?;
        }
        let audit = AuditEvent::new(actor, "registry.import").details(serde_json::json!(counts));
        let mut head = chain_head(&mut tx)?;
        append(&mut tx, &mut head, &now, &audit)?;
        tx.commit().context("committing a registry import")?;
        Ok(counts)
    }

    fn registry_person(&self, iin: &Iin) -> Result<Option<PersonRecord>, StoreError> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM registry_persons WHERE iin = $1");
        Ok(collect(&mut *self.primary.get()?, &sql, &[&iin.as_string()], person_row)?.pop())
    }

    fn registry_entity(&self, bin: &Bin) -> Result<Option<LegalEntityRecord>, StoreError> {
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM registry_entities WHERE bin = $1");
        Ok(collect(&mut *self.primary.get()?, &sql, &[&bin.as_string()], entity_row)?.pop())
    }

    fn submit(&self, a: &NewApplication, event: &NewEvent) -> Result<Submitted, StoreError> {
        let mut client = self.primary.get()?;
        // Under the audit lock no other submission can slip in between the check and the insert.
        let mut tx = audited(&mut client)?;
        if !a.state.is_final() {
            let sql = format!(
                "SELECT {APPLICATION_COLUMNS} FROM applications
                 WHERE dedup_key = $1 AND state NOT IN ('issued', 'revoked', 'refused')"
            );
            if let Some(existing) = collect(&mut *tx, &sql, &[&a.dedup_key], application_row)?.pop() {
                return Ok(Submitted::Existing(existing));
            }
        }
        let year = i64::from(event.at.year());
        let sequence: i64 = tx
            .query_one(
                "INSERT INTO application_numbers (year, last) VALUES ($1, 1)
                 ON CONFLICT (year) DO UPDATE SET last = application_numbers.last + 1 RETURNING last",
                &[&year],
            )
            .and_then(|r| r.try_get(0))
            .context("allocating an application number")?;
        let number = ApplicationNumber::new(event.at.year(), u64::try_from(sequence).unwrap_or_default());
        let at = event.at.unix_timestamp();
        let receipt_number = match &a.receipt {
            Some(r) => Some(super::receipts::next_number(&mut tx, r.issued_at.year())?),
            None => None,
        };
        let paperwork = a
            .paperwork
            .clone()
            .map(|p| crate::ra::state_corporation::Paperwork { receipt: receipt_number.clone(), ..p })
            .map(|p| serde_json::to_string(&p))
            .transpose()
            .map_err(|e| StoreError::Database(format!("encoding the paperwork: {e}")))?;
        tx.execute(
            &format!(
                "INSERT INTO applications ({APPLICATION_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15)"
            ),
            &[
                &number.as_str(),
                &a.kind.name(),
                &a.state.name(),
                &a.iin.as_string(),
                &a.bin.map(|b| b.as_string()),
                &a.email,
                &serials_to_text(&a.serials),
                &a.revocation_reason.map(|r| i64::from(r.code())),
                &a.refusal.as_ref().map(|r| &r.code),
                &a.refusal.as_ref().map(|r| &r.message),
                &a.dedup_key,
                &at,
                &serde_json::Value::from(a.roles.iter().map(|r| r.name()).collect::<Vec<_>>()).to_string(),
                &a.channel.name(),
                &paperwork,
            ],
        )
        .with_context(|| format!("registering application {number}"))?;
        let timing = self.timing();
        for earlier in &a.earlier {
            insert_event(&mut tx, &timing, &number, a.kind, a.channel, None, a.state, earlier)?;
        }
        insert_event(&mut tx, &timing, &number, a.kind, a.channel, None, a.state, event)?;
        if let (Some(details), Some(receipt_number)) = (&a.receipt, receipt_number) {
            super::receipts::store(&mut tx, receipt_number, details, Some(&number))?;
        }
        for key in &a.keys {
            let sha = crate::ra::csr_keys::spki_sha256(&key.spki);
            let key_type = if key.key_type == KeyType::Auth { "auth" } else { "sign" };
            tx.execute(
                "INSERT INTO application_keys (number, key_type, spki, spki_sha256) VALUES ($1, $2, $3, $4)",
                &[&number.as_str(), &key_type, &key.spki, &sha.as_slice()],
            )
            .with_context(|| format!("storing the applicant's {key_type} key of {number}"))?;
        }
        for token in &a.tokens {
            insert_token(&mut tx, &number, token, at)?;
        }
        if let Some(notice) = &a.notice {
            let notice = NewMessage {
                to: notice.to.clone(),
                subject: notice.subject.replace("{number}", number.as_str()),
                body: notice.body.replace("{number}", number.as_str()),
            };
            queue_notice(&mut tx, &number, &notice, at)?;
        }
        let created = load_application(&mut *tx, number.as_str())?
            .ok_or_else(|| StoreError::Corrupt(format!("application {number} vanished while being registered")))?;
        tx.commit().context("committing an application")?;
        Ok(Submitted::New(created))
    }

    fn transition(&self, number: &ApplicationNumber, t: &Transition) -> Result<Transitioned, StoreError> {
        let mut client = self.primary.get()?;
        let mut tx = audited(&mut client)?;
        let current = load_application(&mut *tx, number.as_str())?
            .ok_or_else(|| StoreError::Database(format!("no application {number}")))?;
        if !t.from.contains(&current.state) {
            return Ok(Transitioned::NotApplicable(current));
        }
        // Conditional on the state read above, so the claim holds even without the lock.
        let changed = tx
            .execute(
                "UPDATE applications
                 SET state = $2, updated_at = $3, serials = COALESCE($4, serials),
                     refusal_code = COALESCE($5, refusal_code), refusal_message = COALESCE($6, refusal_message)
                 WHERE number = $1 AND state = $7",
                &[
                    &number.as_str(),
                    &t.to.name(),
                    &t.event.at.unix_timestamp(),
                    &t.serials.as_deref().map(serials_to_text),
                    &t.refusal.as_ref().map(|r| &r.code),
                    &t.refusal.as_ref().map(|r| &r.message),
                    &current.state.name(),
                ],
            )
            .with_context(|| format!("moving {number} to {}", t.to))?;
        if changed != 1 {
            return Ok(Transitioned::NotApplicable(current));
        }
        insert_event(
            &mut tx,
            &self.timing(),
            number,
            current.kind,
            current.channel,
            Some(current.state),
            t.to,
            &t.event,
        )?;
        if let Some(token) = &t.token {
            insert_token(&mut tx, number, token, t.event.at.unix_timestamp())?;
        }
        if let Some(notice) = &t.notice {
            queue_notice(&mut tx, number, notice, t.event.at.unix_timestamp())?;
        }
        let updated = load_application(&mut *tx, number.as_str())?
            .ok_or_else(|| StoreError::Corrupt(format!("application {number} vanished during a transition")))?;
        tx.commit().context("committing a transition")?;
        Ok(Transitioned::Applied(updated))
    }

    fn application(&self, number: &ApplicationNumber) -> Result<Option<Application>, StoreError> {
        load_application(&mut *self.primary.get()?, number.as_str())
    }

    fn applications(&self, q: &ApplicationQuery) -> Result<Vec<Application>, StoreError> {
        let mut filters = Vec::new();
        let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        if let Some(s) = q.state {
            args.push(Box::new(s.name()));
            filters.push(format!("state = ${}", args.len()));
        }
        if let Some(k) = q.kind {
            args.push(Box::new(k.name()));
            filters.push(format!("kind = ${}", args.len()));
        }
        if let Some(iin) = q.iin {
            args.push(Box::new(iin.as_string()));
            filters.push(format!("iin = ${}", args.len()));
        }
        let mut sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications");
        if !filters.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&filters.join(" AND "));
        }
        args.push(Box::new(q.limit.map(i64::from)));
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${}", args.len()));
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        collect(&mut *self.primary.get()?, &sql, &params, application_row)
    }

    fn application_events(&self, number: Option<&ApplicationNumber>) -> Result<Vec<ApplicationEvent>, StoreError> {
        let base = format!("SELECT {EVENT_COLUMNS} FROM application_events e JOIN applications a USING (number)");
        let mut client = self.primary.get()?;
        match number {
            Some(n) => {
                collect(&mut *client, &format!("{base} WHERE e.number = $1 ORDER BY e.seq"), &[&n.as_str()], event_row)
            }
            None => collect(&mut *client, &format!("{base} ORDER BY e.seq"), &[], event_row),
        }
    }

    fn application_keys(&self, number: &ApplicationNumber) -> Result<Vec<ApplicantKey>, StoreError> {
        fn key_row(row: &Row) -> Result<ApplicantKey, StoreError> {
            const T: &str = "application_keys";
            let key_type: String = get(row, 0, T)?;
            Ok(ApplicantKey {
                key_type: if key_type == "auth" { KeyType::Auth } else { KeyType::Sign },
                spki: get(row, 1, T)?,
            })
        }
        let sql = "SELECT key_type, spki FROM application_keys WHERE number = $1 ORDER BY key_type";
        collect(&mut *self.primary.get()?, sql, &[&number.as_str()], key_row)
    }

    fn key_in_use(
        &self,
        spki_sha256: &[u8; 32],
        except: Option<&ApplicationNumber>,
    ) -> Result<Option<String>, StoreError> {
        let mut client = self.primary.get()?;
        let certificate: Option<String> = client
            .query_opt(
                "SELECT serial FROM certificates WHERE spki_sha256 = $1 AND status <> 'revoked' LIMIT 1",
                &[&spki_sha256.as_slice()],
            )
            .and_then(|r| r.map(|r| r.try_get(0)).transpose())
            .context("looking for a certificate of the key")?;
        if let Some(serial) = certificate {
            return Ok(Some(format!("certificate {serial}")));
        }
        // Refused and revoked applications gave their keys up; an issued one's certificates
        // were found above unless revoked, and then the key is spent too.
        let application: Option<String> = client
            .query_opt(
                "SELECT k.number FROM application_keys k JOIN applications a USING (number)
                 WHERE k.spki_sha256 = $1 AND a.state NOT IN ('refused', 'revoked') AND k.number <> $2 LIMIT 1",
                &[&spki_sha256.as_slice(), &except.map_or("", ApplicationNumber::as_str)],
            )
            .and_then(|r| r.map(|r| r.try_get(0)).transpose())
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
        let mut client = self.primary.get()?;
        let mut tx = client.transaction().context("starting to check a token")?;
        // FOR UPDATE: of two concurrent uses of a single-use token, the second waits here and
        // then reads it used.
        let row = tx
            .query_opt(
                "SELECT token_sha256, expires_at, used_at FROM application_tokens
                 WHERE number = $1 AND purpose = $2 FOR UPDATE",
                &[&number.as_str(), &purpose.name()],
            )
            .context("reading an application token")?;
        let Some(row) = row else { return Ok(TokenUse::Unknown) };
        const T: &str = "application_tokens";
        let stored: Vec<u8> = get(&row, 0, T)?;
        let expires_at: i64 = get(&row, 1, T)?;
        let used_at: Option<i64> = get(&row, 2, T)?;
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
                    "UPDATE application_tokens SET used_at = $3 WHERE number = $1 AND purpose = $2 AND used_at IS NULL",
                    &[&number.as_str(), &purpose.name(), &now.unix_timestamp()],
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
        let mut client = self.primary.get()?;
        let mut tx = audited(&mut client)?;
        let number = super::receipts::next_number(&mut tx, details.issued_at.year())?;
        let receipt = super::receipts::store(&mut tx, number, details, None)?;
        tx.commit().context("committing a receipt of refusal")?;
        Ok(receipt)
    }

    fn receipt(&self, number: &ReceiptNumber) -> Result<Option<Receipt>, StoreError> {
        super::receipts::load(&mut *self.primary.get()?, number)
    }

    fn due_messages(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT $2"
        );
        collect(&mut *self.primary.get()?, &sql, &[&now.unix_timestamp(), &i64::from(limit)], outbox_row)
    }

    fn outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id DESC LIMIT $1");
        collect(&mut *self.primary.get()?, &sql, &[&i64::from(limit)], outbox_row)
    }

    fn claim_message(&self, id: i64, now: OffsetDateTime, lease_until: OffsetDateTime) -> Result<bool, StoreError> {
        // One conditional statement: its row lock makes two workers' claims of one message
        // take turns, and the second finds it no longer due.
        let changed = self
            .primary
            .get()?
            .execute(
                "UPDATE outbox SET next_attempt_at = $3 WHERE id = $1 AND sent_at IS NULL AND next_attempt_at <= $2",
                &[&id, &now.unix_timestamp(), &lease_until.unix_timestamp()],
            )
            .with_context(|| format!("taking message {id} for delivery"))?;
        Ok(changed == 1)
    }

    fn mark_sent(&self, id: i64, at: OffsetDateTime) -> Result<bool, StoreError> {
        let now = now()?;
        let mut client = self.primary.get()?;
        let mut tx = audited(&mut client)?;
        let changed = tx
            .execute(
                "UPDATE outbox SET sent_at = $2, attempts = attempts + 1, last_error = NULL
                 WHERE id = $1 AND sent_at IS NULL",
                &[&id, &at.unix_timestamp()],
            )
            .with_context(|| format!("marking message {id} sent"))?;
        if changed == 1 {
            let audit = AuditEvent::new("outbox", "notice.sent").target(format!("outbox/{id}"));
            let mut head = chain_head(&mut tx)?;
            append(&mut tx, &mut head, &now, &audit)?;
        }
        tx.commit().context("committing a delivery")?;
        Ok(changed == 1)
    }

    fn mark_failed(&self, id: i64, error: &str, retry_at: OffsetDateTime) -> Result<(), StoreError> {
        let error: String = error.chars().take(500).collect();
        self.primary
            .get()?
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3
                 WHERE id = $1 AND sent_at IS NULL",
                &[&id, &error, &retry_at.unix_timestamp()],
            )
            .with_context(|| format!("recording a failed delivery of message {id}"))?;
        Ok(())
    }
}
