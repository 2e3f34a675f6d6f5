//! Phone bindings, binding OTP sessions, their journal and the SMS outbox in PostgreSQL. Codes
//! and bindings decide under one advisory lock (see the module documentation of the store).

use ca_core::store::postgres::pool::Cached;
use ca_core::store::StoreError;
use postgres::Row;
use time::OffsetDateTime;

use super::auth::insert_otp;
use super::{begin, col, count, insert_account, opt_time, queue_mail, Context, PgPortalStore};
use crate::store::decide;
use crate::store::phone::{
    BindOutcome, BindingAccount, Channel, CodeIssue, NewBinding, NewPhoneCode, NewSms, PhoneAttempt, PhoneBinding,
    PhoneSession, PhoneStore, QueuedSms, SmsRecord,
};
use crate::store::{from_millis, millis};

/// The one lock of the binding flow.
const PHONE: (&str, &[u8]) = ("phone-binding", b"");

fn channel(r: &Row, i: usize) -> Result<Channel, StoreError> {
    let name: String = col(r, i)?;
    Channel::from_name(&name).ok_or_else(|| StoreError::Corrupt(format!("channel {name:?}")))
}

const BINDING_COLUMNS: &str =
    "id, account_id, phone, channel, bound_at, ended_at, end_reason, evidence, service_seconds";

fn binding(r: &Row) -> Result<PhoneBinding, StoreError> {
    Ok(PhoneBinding {
        id: col(r, 0)?,
        account_id: col(r, 1)?,
        phone: col(r, 2)?,
        channel: channel(r, 3)?,
        bound_at: from_millis(col(r, 4)?)?,
        ended_at: opt_time(col(r, 5)?)?,
        end_reason: col(r, 6)?,
        evidence: col(r, 7)?,
        service_seconds: col(r, 8)?,
    })
}

fn insert_sms(conn: &mut impl Cached, sms: &NewSms, now: i64) -> Result<(), StoreError> {
    conn.execute_cached(
        "INSERT INTO sms_outbox (message_id, recipient, body, purpose, login, created_at, expires_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $6)",
        &[&sms.message_id, &sms.to, &sms.body, &sms.purpose, &sms.login, &now, &sms.expires_at.map(millis)],
    )
    .context("queueing an SMS")?;
    Ok(())
}

/// The earliest time the next code may go to `column = value`, if a limit is reached now.
fn throttled_until(
    conn: &mut impl Cached,
    column: &str,
    value: &str,
    now: i64,
    code: &NewPhoneCode,
) -> Result<Option<i64>, StoreError> {
    let row = conn
        .query_one_cached(
            &format!(
                "SELECT count(*), min(created_at), max(created_at) FROM sms_outbox
                 WHERE purpose = 'phone-code' AND {column} = $1 AND created_at > $2"
            ),
            &[&value, &(now - decide::HOUR_MS)],
        )
        .context("counting codes sent")?;
    Ok(decide::throttled_until(col(&row, 0)?, col(&row, 1)?, col(&row, 2)?, now, &code.limits))
}

fn holder_of(conn: &mut impl Cached, phone: &str) -> Result<Option<i64>, StoreError> {
    conn.query_opt_cached("SELECT account_id FROM phone_bindings WHERE phone = $1 AND ended_at IS NULL", &[&phone])
        .context("looking for the number's binding")?
        .map(|r| col(&r, 0))
        .transpose()
}

impl PhoneStore for PgPortalStore {
    fn issue_phone_code(&self, code: &NewPhoneCode, now: OffsetDateTime) -> Result<CodeIssue, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = begin(&mut conn, PHONE.0, PHONE.1)?;
        let at = millis(now);
        if holder_of(&mut tx, &code.phone)?.is_some_and(|holder| Some(holder) != code.account_id) {
            return Ok(CodeIssue::PhoneTaken);
        }
        let by_login = throttled_until(&mut tx, "login", &code.login, at, code)?;
        let by_phone = throttled_until(&mut tx, "recipient", &code.phone, at, code)?;
        if let Some(until) = by_login.max(by_phone) {
            return Ok(CodeIssue::Throttled { retry_at: from_millis(until)? });
        }
        // A new code ends the login's earlier binding sessions (and so their codes).
        tx.execute_cached(
            "UPDATE otps SET closed_at = $2 WHERE purpose = $3 AND closed_at IS NULL AND subject IN
               (SELECT id FROM phone_sessions WHERE login = $1 AND closed_at IS NULL)",
            &[&code.login, &at, &code.otp.purpose],
        )
        .context("closing earlier codes")?;
        tx.execute_cached(
            "UPDATE phone_sessions SET closed_at = $2 WHERE login = $1 AND closed_at IS NULL",
            &[&code.login, &at],
        )
        .context("closing earlier sessions")?;
        tx.execute_cached(
            "INSERT INTO phone_sessions (id, account_id, login, phone, channel, requested_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &code.session_id,
                &code.account_id,
                &code.login,
                &code.phone,
                &code.channel.name(),
                &code.requested_by,
                &at,
                &millis(code.otp.expires_at),
            ],
        )
        .context("opening a binding session")?;
        insert_otp(&mut tx, &code.otp)?;
        insert_sms(&mut tx, &code.sms, at)?;
        tx.commit().context("committing a binding code")?;
        Ok(CodeIssue::Queued)
    }

    fn phone_session(&self, id: &str) -> Result<Option<PhoneSession>, StoreError> {
        let row = self
            .conn()?
            .query_opt_cached(
                "SELECT id, account_id, login, phone, channel, requested_by, created_at, expires_at, closed_at
                 FROM phone_sessions WHERE id = $1",
                &[&id],
            )
            .context("reading a binding session")?;
        row.map(|r| {
            Ok(PhoneSession {
                id: col(&r, 0)?,
                account_id: col(&r, 1)?,
                login: col(&r, 2)?,
                phone: col(&r, 3)?,
                channel: channel(&r, 4)?,
                requested_by: col(&r, 5)?,
                created_at: from_millis(col(&r, 6)?)?,
                expires_at: from_millis(col(&r, 7)?)?,
                closed_at: opt_time(col(&r, 8)?)?,
            })
        })
        .transpose()
    }

    fn bind_phone(&self, b: &NewBinding) -> Result<BindOutcome, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = begin(&mut conn, PHONE.0, PHONE.1)?;
        let at = millis(b.at);
        let session = tx
            .query_opt_cached("SELECT created_at, closed_at FROM phone_sessions WHERE id = $1", &[&b.session_id])
            .context("reading the binding session")?;
        let started: i64 = match session {
            Some(r) if col::<Option<i64>>(&r, 1)?.is_none() => col(&r, 0)?,
            _ => return Ok(BindOutcome::SessionClosed),
        };
        let (account_id, created) = match &b.account {
            BindingAccount::Existing(id) => (*id, false),
            BindingAccount::CreateUnlessExists(account) => match insert_account(&mut tx, account)? {
                Some(id) => (id, true),
                None => {
                    let row = tx
                        .query_one_cached("SELECT id FROM accounts WHERE login = $1", &[&account.login])
                        .context("looking for an account")?;
                    (col(&row, 0)?, false)
                }
            },
        };
        if holder_of(&mut tx, &b.phone)?.is_some_and(|h| h != account_id) {
            return Ok(BindOutcome::PhoneTaken);
        }
        let previous = tx
            .query_opt_cached(
                "SELECT id, phone FROM phone_bindings WHERE account_id = $1 AND ended_at IS NULL",
                &[&account_id],
            )
            .context("reading the current binding")?
            .map(|r| Ok::<(i64, String), StoreError>((col(&r, 0)?, col(&r, 1)?)))
            .transpose()?;
        if let Some((id, _)) = &previous {
            tx.execute_cached(
                "UPDATE phone_bindings SET ended_at = $2, end_reason = 'changed' WHERE id = $1",
                &[id, &at],
            )
            .context("ending the previous binding")?;
        }
        tx.execute_cached(
            "INSERT INTO phone_bindings (account_id, phone, channel, session_id, bound_at, service_seconds, evidence, signed_request)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &account_id,
                &b.phone,
                &b.channel.name(),
                &b.session_id,
                &at,
                &((at - started).max(0) / 1000),
                &b.evidence,
                &b.signed_request,
            ],
        )
        .context("recording the binding")?;
        tx.execute_cached(
            "UPDATE phone_sessions SET closed_at = $2, account_id = $3 WHERE id = $1",
            &[&b.session_id, &at, &account_id],
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
            insert_sms(&mut tx, &notice, at)?;
        }
        if let (Some(_), Some(mail)) = (&previous, &b.mail) {
            queue_mail(&mut tx, mail, at)?;
        }
        tx.commit().context("committing a binding")?;
        Ok(BindOutcome::Bound { account_id, created, previous })
    }

    fn current_binding(&self, account_id: i64) -> Result<Option<PhoneBinding>, StoreError> {
        self.conn()?
            .query_opt_cached(
                &format!("SELECT {BINDING_COLUMNS} FROM phone_bindings WHERE account_id = $1 AND ended_at IS NULL"),
                &[&account_id],
            )
            .context("reading the current binding")?
            .as_ref()
            .map(binding)
            .transpose()
    }

    fn account_with_phone(&self, phone: &str) -> Result<Option<i64>, StoreError> {
        holder_of(&mut self.conn()?, phone)
    }

    fn binding_history(&self, account_id: i64) -> Result<Vec<PhoneBinding>, StoreError> {
        let rows = self
            .conn()?
            .query_cached(
                &format!("SELECT {BINDING_COLUMNS} FROM phone_bindings WHERE account_id = $1 ORDER BY id DESC"),
                &[&account_id],
            )
            .context("reading the binding history")?;
        rows.iter().map(binding).collect()
    }

    fn journal_phone_attempt(&self, a: &PhoneAttempt) -> Result<(), StoreError> {
        self.conn()?
            .execute_cached(
                "INSERT INTO phone_attempts (at, login, phone, channel, outcome, reason, actor, session_id, client_address)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &millis(a.at),
                    &a.login,
                    &a.phone,
                    &a.channel.name(),
                    &a.outcome,
                    &a.reason,
                    &a.actor,
                    &a.session_id,
                    &a.client_address,
                ],
            )
            .context("journaling a binding attempt")?;
        Ok(())
    }

    fn phone_attempts(&self, login: Option<&str>, limit: u32) -> Result<Vec<PhoneAttempt>, StoreError> {
        let rows = self
            .conn()?
            .query_cached(
                "SELECT at, login, phone, channel, outcome, reason, actor, session_id, client_address
                 FROM phone_attempts WHERE ($1::TEXT IS NULL OR login = $1) ORDER BY seq LIMIT $2",
                &[&login, &i64::from(limit)],
            )
            .context("reading the binding journal")?;
        rows.iter()
            .map(|r| {
                Ok(PhoneAttempt {
                    at: from_millis(col(r, 0)?)?,
                    login: col(r, 1)?,
                    phone: col(r, 2)?,
                    channel: channel(r, 3)?,
                    outcome: col(r, 4)?,
                    reason: col(r, 5)?,
                    actor: col(r, 6)?,
                    session_id: col(r, 7)?,
                    client_address: col(r, 8)?,
                })
            })
            .collect()
    }

    fn queue_sms(&self, sms: &NewSms, now: OffsetDateTime) -> Result<(), StoreError> {
        insert_sms(&mut self.conn()?, sms, millis(now))
    }

    fn claim_sms(&self, now: OffsetDateTime, lease: time::Duration, limit: u32) -> Result<Vec<QueuedSms>, StoreError> {
        // One statement: rows another sender holds are skipped, not waited for.
        let rows = self
            .conn()?
            .query_cached(
                "UPDATE sms_outbox SET next_attempt_at = $3 WHERE id IN (
                     SELECT id FROM sms_outbox
                     WHERE sent_at IS NULL AND dropped_at IS NULL AND next_attempt_at <= $1
                     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING id, message_id, recipient, body, attempts, expires_at",
                &[&millis(now), &i64::from(limit), &millis(now + lease)],
            )
            .context("leasing SMS")?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(QueuedSms {
                    id: col(r, 0)?,
                    message_id: col(r, 1)?,
                    to: col(r, 2)?,
                    body: col(r, 3)?,
                    attempts: count(col(r, 4)?),
                    expires_at: opt_time(col(r, 5)?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        claimed.sort_by_key(|s| s.id);
        Ok(claimed)
    }

    fn sms_sent(&self, id: i64, now: OffsetDateTime, gateway_ref: Option<&str>) -> Result<(), StoreError> {
        self.conn()?
            .execute_cached(
                "UPDATE sms_outbox SET sent_at = $2, body = '', attempts = attempts + 1, gateway_ref = $3, last_error = NULL
                 WHERE id = $1",
                &[&id, &millis(now), &gateway_ref],
            )
            .context("marking an SMS sent")?;
        Ok(())
    }

    fn sms_failed(&self, id: i64, error: &str, next_attempt_at: OffsetDateTime) -> Result<(), StoreError> {
        self.conn()?
            .execute_cached(
                "UPDATE sms_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1",
                &[&id, &error, &millis(next_attempt_at)],
            )
            .context("recording a failed SMS delivery")?;
        Ok(())
    }

    fn sms_expired(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        self.conn()?
            .execute_cached("UPDATE sms_outbox SET dropped_at = $2, body = '' WHERE id = $1", &[&id, &millis(now)])
            .context("dropping an expired SMS")?;
        Ok(())
    }

    fn sms_outbox(&self, limit: u32) -> Result<Vec<SmsRecord>, StoreError> {
        let rows = self
            .conn()?
            .query_cached(
                "SELECT message_id, recipient, purpose, attempts, sent_at, dropped_at, last_error FROM sms_outbox
                 ORDER BY id LIMIT $1",
                &[&i64::from(limit)],
            )
            .context("reading the SMS outbox")?;
        rows.iter()
            .map(|r| {
                let sent_at = opt_time(col(r, 4)?)?;
                let dropped: Option<i64> = col(r, 5)?;
                Ok(SmsRecord {
                    message_id: col(r, 0)?,
                    to: col(r, 1)?,
                    purpose: col(r, 2)?,
                    attempts: count(col(r, 3)?),
                    state: if sent_at.is_some() {
                        "sent"
                    } else if dropped.is_some() {
                        "expired"
                    } else {
                        "pending"
                    }
                    .into(),
                    sent_at,
                    last_error: col(r, 6)?,
                })
            })
            .collect()
    }
}
