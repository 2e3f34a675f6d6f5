//! Phone bindings, binding OTP sessions, their journal and the SMS outbox in SQLite.

use ca_core::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use super::{from_millis, insert_account, millis, Context, SqlitePortalStore};
use crate::store::decide;
use crate::store::phone::{
    BindOutcome, BindingAccount, Channel, CodeIssue, NewBinding, NewPhoneCode, NewSms, PhoneAttempt, PhoneBinding,
    PhoneSession, PhoneStore, QueuedSms, SmsRecord,
};

fn channel(r: &Row<'_>, i: usize) -> rusqlite::Result<Channel> {
    let name: String = r.get(i)?;
    Channel::from_name(&name).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, format!("channel {name:?}").into())
    })
}

fn time_of(ms: i64) -> rusqlite::Result<OffsetDateTime> {
    from_millis(ms)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, e.to_string().into()))
}

fn opt_time(ms: Option<i64>) -> rusqlite::Result<Option<OffsetDateTime>> {
    ms.map(time_of).transpose()
}

const BINDING_COLUMNS: &str =
    "id, account_id, phone, channel, bound_at, ended_at, end_reason, evidence, service_seconds";

fn binding_row(r: &Row<'_>) -> rusqlite::Result<PhoneBinding> {
    Ok(PhoneBinding {
        id: r.get(0)?,
        account_id: r.get(1)?,
        phone: r.get(2)?,
        channel: channel(r, 3)?,
        bound_at: time_of(r.get(4)?)?,
        ended_at: opt_time(r.get(5)?)?,
        end_reason: r.get(6)?,
        evidence: r.get(7)?,
        service_seconds: r.get(8)?,
    })
}

fn insert_sms(conn: &Connection, sms: &NewSms, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sms_outbox (message_id, recipient, body, purpose, login, created_at, expires_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
    )?
    .execute(params![
        sms.message_id,
        sms.to,
        sms.body,
        sms.purpose,
        sms.login,
        now,
        sms.expires_at.map(millis)
    ])?;
    Ok(())
}

/// The earliest time the next code may go to `column = value`, if a limit is reached now.
fn throttled_until(
    conn: &Connection,
    column: &str,
    value: &str,
    now: i64,
    code: &NewPhoneCode,
) -> rusqlite::Result<Option<i64>> {
    let (count, oldest, newest): (i64, Option<i64>, Option<i64>) = conn.query_row(
        &format!(
            "SELECT count(*), min(created_at), max(created_at) FROM sms_outbox
             WHERE purpose = 'phone-code' AND {column} = ?1 AND created_at > ?2"
        ),
        params![value, now - decide::HOUR_MS],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(decide::throttled_until(count, oldest, newest, now, &code.limits))
}

impl PhoneStore for SqlitePortalStore {
    fn issue_phone_code(&self, code: &NewPhoneCode, now: OffsetDateTime) -> Result<CodeIssue, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let at = millis(now);
        let holder: Option<i64> = tx
            .query_row(
                "SELECT account_id FROM phone_bindings WHERE phone = ?1 AND ended_at IS NULL",
                [&code.phone],
                |r| r.get(0),
            )
            .optional()
            .context("looking for the number's binding")?;
        if holder.is_some_and(|holder| Some(holder) != code.account_id) {
            return Ok(CodeIssue::PhoneTaken);
        }
        let by_login = throttled_until(&tx, "login", &code.login, at, code).context("counting codes sent")?;
        let by_phone = throttled_until(&tx, "recipient", &code.phone, at, code).context("counting codes sent")?;
        if let Some(until) = by_login.max(by_phone) {
            return Ok(CodeIssue::Throttled { retry_at: from_millis(until)? });
        }
        // A new code ends the login's earlier binding sessions (and so their codes).
        tx.execute(
            "UPDATE otps SET closed_at = ?2 WHERE purpose = ?3 AND closed_at IS NULL AND subject IN
               (SELECT id FROM phone_sessions WHERE login = ?1 AND closed_at IS NULL)",
            params![code.login, at, code.otp.purpose],
        )
        .context("closing earlier codes")?;
        tx.execute(
            "UPDATE phone_sessions SET closed_at = ?2 WHERE login = ?1 AND closed_at IS NULL",
            params![code.login, at],
        )
        .context("closing earlier sessions")?;
        tx.execute(
            "INSERT INTO phone_sessions (id, account_id, login, phone, channel, requested_by, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                code.session_id,
                code.account_id,
                code.login,
                code.phone,
                code.channel.name(),
                code.requested_by,
                at,
                millis(code.otp.expires_at)
            ],
        )
        .context("opening a binding session")?;
        tx.execute(
            "INSERT INTO otps (purpose, subject, salt, code_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                code.otp.purpose,
                code.otp.subject,
                &code.otp.salt[..],
                &code.otp.code_hash[..],
                millis(code.otp.created_at),
                millis(code.otp.expires_at)
            ],
        )
        .context("storing a one-time password")?;
        insert_sms(&tx, &code.sms, at).context("queueing the code's SMS")?;
        tx.commit().context("committing a binding code")?;
        Ok(CodeIssue::Queued)
    }

    fn phone_session(&self, id: &str) -> Result<Option<PhoneSession>, StoreError> {
        let conn = self.lock()?;
        conn.query_row(
            "SELECT id, account_id, login, phone, channel, requested_by, created_at, expires_at, closed_at
             FROM phone_sessions WHERE id = ?1",
            [id],
            |r| {
                Ok(PhoneSession {
                    id: r.get(0)?,
                    account_id: r.get(1)?,
                    login: r.get(2)?,
                    phone: r.get(3)?,
                    channel: channel(r, 4)?,
                    requested_by: r.get(5)?,
                    created_at: time_of(r.get(6)?)?,
                    expires_at: time_of(r.get(7)?)?,
                    closed_at: opt_time(r.get(8)?)?,
                })
            },
        )
        .optional()
        .context("reading a binding session")
    }

    fn bind_phone(&self, b: &NewBinding) -> Result<BindOutcome, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let at = millis(b.at);
        let session: Option<(i64, Option<i64>)> = tx
            .query_row("SELECT created_at, closed_at FROM phone_sessions WHERE id = ?1", [&b.session_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .context("reading the binding session")?;
        let Some((started, None)) = session else { return Ok(BindOutcome::SessionClosed) };
        let (account_id, created) = match &b.account {
            BindingAccount::Existing(id) => (*id, false),
            BindingAccount::CreateUnlessExists(account) => {
                let existing: Option<i64> = tx
                    .query_row("SELECT id FROM accounts WHERE login = ?1", [&account.login], |r| r.get(0))
                    .optional()
                    .context("looking for an account")?;
                match existing {
                    Some(id) => (id, false),
                    None => (insert_account(&tx, account).context("creating an account")?, true),
                }
            }
        };
        let holder: Option<i64> = tx
            .query_row("SELECT account_id FROM phone_bindings WHERE phone = ?1 AND ended_at IS NULL", [&b.phone], |r| {
                r.get(0)
            })
            .optional()
            .context("looking for the number's binding")?;
        if holder.is_some_and(|h| h != account_id) {
            return Ok(BindOutcome::PhoneTaken);
        }
        let previous: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, phone FROM phone_bindings WHERE account_id = ?1 AND ended_at IS NULL",
                [account_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .context("reading the current binding")?;
        if let Some((id, _)) = &previous {
            tx.execute(
                "UPDATE phone_bindings SET ended_at = ?2, end_reason = 'changed' WHERE id = ?1",
                params![id, at],
            )
            .context("ending the previous binding")?;
        }
        tx.execute(
            "INSERT INTO phone_bindings (account_id, phone, channel, session_id, bound_at, service_seconds, evidence, signed_request)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                account_id,
                b.phone,
                b.channel.name(),
                b.session_id,
                at,
                (at - started).max(0) / 1000,
                b.evidence,
                b.signed_request
            ],
        )
        .context("recording the binding")?;
        tx.execute(
            "UPDATE phone_sessions SET closed_at = ?2, account_id = ?3 WHERE id = ?1",
            params![b.session_id, at, account_id],
        )
        .context("closing the binding session")?;
        let previous = previous.map(|(_, phone)| phone).filter(|p| *p != b.phone);
        if let (Some(old), Some(text)) = (&previous, &b.old_number_notice) {
            let notice = NewSms {
                message_id: crate::notify::sms::new_message_id().map_err(|e| StoreError::Database(e.to_string()))?,
                to: old.clone(),
                body: text.clone(),
                purpose: "phone-notice".into(),
                login: None,
                expires_at: None,
            };
            insert_sms(&tx, &notice, at).context("queueing the notice to the old number")?;
        }
        if let (Some(_), Some(mail)) = (&previous, &b.mail) {
            tx.execute(
                "INSERT INTO outbox (recipient, subject, body, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![mail.to, mail.subject, mail.body, at],
            )
            .context("queueing the notice by email")?;
        }
        tx.commit().context("committing a binding")?;
        Ok(BindOutcome::Bound { account_id, created, previous })
    }

    fn current_binding(&self, account_id: i64) -> Result<Option<PhoneBinding>, StoreError> {
        let conn = self.lock()?;
        conn.prepare_cached(&format!(
            "SELECT {BINDING_COLUMNS} FROM phone_bindings WHERE account_id = ?1 AND ended_at IS NULL"
        ))
        .and_then(|mut s| s.query_row([account_id], binding_row).optional())
        .context("reading the current binding")
    }

    fn account_with_phone(&self, phone: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.lock()?;
        conn.query_row("SELECT account_id FROM phone_bindings WHERE phone = ?1 AND ended_at IS NULL", [phone], |r| {
            r.get(0)
        })
        .optional()
        .context("looking for the number's binding")
    }

    fn binding_history(&self, account_id: i64) -> Result<Vec<PhoneBinding>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {BINDING_COLUMNS} FROM phone_bindings WHERE account_id = ?1 ORDER BY id DESC"
            ))
            .context("reading the binding history")?;
        let rows = stmt.query_map([account_id], binding_row).context("reading the binding history")?;
        rows.collect::<rusqlite::Result<Vec<_>>>().context("reading the binding history")
    }

    fn journal_phone_attempt(&self, a: &PhoneAttempt) -> Result<(), StoreError> {
        self.lock()?
            .prepare_cached(
                "INSERT INTO phone_attempts (at, login, phone, channel, outcome, reason, actor, session_id, client_address)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    millis(a.at),
                    a.login,
                    a.phone,
                    a.channel.name(),
                    a.outcome,
                    a.reason,
                    a.actor,
                    a.session_id,
                    a.client_address
                ])
            })
            .context("journaling a binding attempt")?;
        Ok(())
    }

    fn phone_attempts(&self, login: Option<&str>, limit: u32) -> Result<Vec<PhoneAttempt>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT at, login, phone, channel, outcome, reason, actor, session_id, client_address
                 FROM phone_attempts WHERE (?1 IS NULL OR login = ?1) ORDER BY seq LIMIT ?2",
            )
            .context("reading the binding journal")?;
        let rows = stmt
            .query_map(params![login, limit], |r| {
                Ok(PhoneAttempt {
                    at: time_of(r.get(0)?)?,
                    login: r.get(1)?,
                    phone: r.get(2)?,
                    channel: channel(r, 3)?,
                    outcome: r.get(4)?,
                    reason: r.get(5)?,
                    actor: r.get(6)?,
                    session_id: r.get(7)?,
                    client_address: r.get(8)?,
                })
            })
            .context("reading the binding journal")?;
        rows.collect::<rusqlite::Result<Vec<_>>>().context("reading the binding journal")
    }

    fn queue_sms(&self, sms: &NewSms, now: OffsetDateTime) -> Result<(), StoreError> {
        insert_sms(&*self.lock()?, sms, millis(now)).context("queueing an SMS")
    }

    fn claim_sms(&self, now: OffsetDateTime, lease: time::Duration, limit: u32) -> Result<Vec<QueuedSms>, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
        let now_ms = millis(now);
        let claimed = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, message_id, recipient, body, attempts, expires_at FROM sms_outbox
                     WHERE sent_at IS NULL AND dropped_at IS NULL AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
                )
                .context("reading the SMS outbox")?;
            let rows = stmt
                .query_map(params![now_ms, limit], |r| {
                    Ok(QueuedSms {
                        id: r.get(0)?,
                        message_id: r.get(1)?,
                        to: r.get(2)?,
                        body: r.get(3)?,
                        attempts: r.get(4)?,
                        expires_at: opt_time(r.get(5)?)?,
                    })
                })
                .context("reading the SMS outbox")?;
            rows.collect::<rusqlite::Result<Vec<_>>>().context("reading the SMS outbox")?
        };
        let until = millis(now + lease);
        for sms in &claimed {
            tx.execute("UPDATE sms_outbox SET next_attempt_at = ?2 WHERE id = ?1", params![sms.id, until])
                .context("leasing an SMS")?;
        }
        tx.commit().context("committing the lease")?;
        Ok(claimed)
    }

    fn sms_sent(&self, id: i64, now: OffsetDateTime, gateway_ref: Option<&str>) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "UPDATE sms_outbox SET sent_at = ?2, body = '', attempts = attempts + 1, gateway_ref = ?3, last_error = NULL
                 WHERE id = ?1",
                params![id, millis(now), gateway_ref],
            )
            .context("marking an SMS sent")?;
        Ok(())
    }

    fn sms_failed(&self, id: i64, error: &str, next_attempt_at: OffsetDateTime) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "UPDATE sms_outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
                params![id, error, millis(next_attempt_at)],
            )
            .context("recording a failed SMS delivery")?;
        Ok(())
    }

    fn sms_expired(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        self.lock()?
            .execute("UPDATE sms_outbox SET dropped_at = ?2, body = '' WHERE id = ?1", params![id, millis(now)])
            .context("dropping an expired SMS")?;
        Ok(())
    }

    fn sms_outbox(&self, limit: u32) -> Result<Vec<SmsRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT message_id, recipient, purpose, attempts, sent_at, dropped_at, last_error FROM sms_outbox
                 ORDER BY id LIMIT ?1",
            )
            .context("reading the SMS outbox")?;
        let rows = stmt
            .query_map([limit], |r| {
                let sent_at = opt_time(r.get(4)?)?;
                let dropped: Option<i64> = r.get(5)?;
                Ok(SmsRecord {
                    message_id: r.get(0)?,
                    to: r.get(1)?,
                    purpose: r.get(2)?,
                    attempts: r.get(3)?,
                    state: if sent_at.is_some() {
                        "sent"
                    } else if dropped.is_some() {
                        "expired"
                    } else {
                        "pending"
                    }
                    .into(),
                    sent_at,
                    last_error: r.get(6)?,
                })
            })
            .context("reading the SMS outbox")?;
        rows.collect::<rusqlite::Result<Vec<_>>>().context("reading the SMS outbox")
    }
}
