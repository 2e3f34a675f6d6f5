//! Lockout counters, the failed-login journal, sessions, one-time passwords and the outbox.

use ca_core::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use time::OffsetDateTime;

use super::{from_millis, millis, Context};
use crate::store::decide::{self, GateStep};
use crate::store::{
    AttemptGate, FailedAttempt, LoginRecord, NewOtp, NewSession, OtpOutcome, QueuedMail, SessionInfo, SessionLookup,
};

/// The gate of [`crate::store::PortalStore::begin_password_attempt`]: read, decide and count
/// under one write lock, so no number of concurrent attempts gets past `max_failures`.
pub(super) fn begin_password_attempt(
    conn: &mut Connection,
    login: &str,
    now: OffsetDateTime,
    max_failures: u32,
    lock_for: time::Duration,
) -> Result<AttemptGate, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
    let row: Option<(i64, Option<i64>)> = tx
        .query_row("SELECT failures, locked_until FROM password_attempts WHERE login = ?1", [login], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .context("reading the password attempts")?;
    let (failures, locked_until) = match decide::gate(row, now, max_failures, lock_for)? {
        GateStep::Answer(answer) => return Ok(answer),
        GateStep::LockNow { until } => {
            tx.execute(
                "UPDATE password_attempts SET locked_until = ?2 WHERE login = ?1",
                params![login, millis(until)],
            )
            .context("locking password login")?;
            tx.commit().context("committing the lock")?;
            return Ok(AttemptGate::Locked { until });
        }
        GateStep::Count { failures, locked_until } => (failures, locked_until),
    };
    tx.execute(
        "INSERT INTO password_attempts (login, failures, locked_until) VALUES (?1, ?2, ?3)
         ON CONFLICT (login) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until",
        params![login, failures, locked_until],
    )
    .context("counting a password attempt")?;
    tx.commit().context("committing a password attempt")?;
    Ok(AttemptGate::Allowed { failures })
}

pub(super) fn journal_failure(conn: &Connection, a: &FailedAttempt) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO failed_logins (at, login, method, client_address, user_agent, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![millis(a.at), a.login, a.method, a.client_address, a.user_agent, a.reason]))
    .context("journaling a failed login")?;
    Ok(())
}

pub(super) fn failed_attempts(
    conn: &Connection,
    login: Option<&str>,
    limit: u32,
) -> Result<Vec<FailedAttempt>, StoreError> {
    read_failed_attempts(
        conn,
        "SELECT at, login, method, client_address, user_agent, reason FROM failed_logins
         WHERE (?1 IS NULL OR login = ?1) ORDER BY seq LIMIT ?2",
        login,
        limit,
    )
}

pub(super) fn recent_failed_attempts(
    conn: &Connection,
    login: &str,
    limit: u32,
) -> Result<Vec<FailedAttempt>, StoreError> {
    read_failed_attempts(
        conn,
        "SELECT at, login, method, client_address, user_agent, reason FROM failed_logins
         WHERE login = ?1 ORDER BY seq DESC LIMIT ?2",
        Some(login),
        limit,
    )
}

fn read_failed_attempts(
    conn: &Connection,
    sql: &str,
    login: Option<&str>,
    limit: u32,
) -> Result<Vec<FailedAttempt>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).context("reading the failed-login journal")?;
    let rows = stmt
        .query_map(params![login, limit], |r| {
            Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .context("reading the failed-login journal")?;
    let mut out = Vec::new();
    for row in rows {
        let (at, login, method, client_address, user_agent, reason) = row.context("reading a journal entry")?;
        out.push(FailedAttempt { at: from_millis(at)?, login, method, client_address, user_agent, reason });
    }
    Ok(out)
}

pub(super) fn create_session(conn: &Connection, s: &NewSession) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO sessions (token_hash, account_id, method, created_at, expires_at, last_seen_at, client_address, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            &s.token_hash[..],
            s.account_id,
            s.method,
            millis(s.created_at),
            millis(s.expires_at),
            s.client_address,
            s.user_agent
        ])
    })
    .context("opening a session")?;
    Ok(conn.last_insert_rowid())
}

const SESSION_COLUMNS: &str =
    "id, account_id, method, created_at, expires_at, last_seen_at, client_address, user_agent, ended_at";

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(SessionRow, Option<i64>)> {
    Ok((
        SessionRow {
            id: r.get(0)?,
            account_id: r.get(1)?,
            method: r.get(2)?,
            created_at: r.get(3)?,
            expires_at: r.get(4)?,
            last_seen_at: r.get(5)?,
            client_address: r.get(6)?,
            user_agent: r.get(7)?,
        },
        r.get(8)?,
    ))
}

struct SessionRow {
    id: i64,
    account_id: i64,
    method: String,
    created_at: i64,
    expires_at: i64,
    last_seen_at: i64,
    client_address: Option<String>,
    user_agent: Option<String>,
}

impl SessionRow {
    fn open_at(&self, now: i64, idle: time::Duration) -> bool {
        decide::session_open(self.expires_at, self.last_seen_at, now, idle)
    }

    fn info(self) -> Result<SessionInfo, StoreError> {
        Ok(SessionInfo {
            id: self.id,
            account_id: self.account_id,
            method: self.method,
            created_at: from_millis(self.created_at)?,
            expires_at: from_millis(self.expires_at)?,
            last_seen_at: from_millis(self.last_seen_at)?,
            client_address: self.client_address,
            user_agent: self.user_agent,
        })
    }
}

pub(super) fn touch_session(
    conn: &mut Connection,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
    idle: time::Duration,
) -> Result<SessionLookup, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
    let row = tx
        .query_row(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1"),
            [&token_hash[..]],
            session_row,
        )
        .optional()
        .context("reading a session")?;
    let now_ms = millis(now);
    let lookup = match row {
        None | Some((_, Some(_))) => SessionLookup::Unknown,
        Some((s, None)) if !s.open_at(now_ms, idle) => {
            tx.execute("UPDATE sessions SET ended_at = ?2 WHERE id = ?1", params![s.id, now_ms])
                .context("ending an expired session")?;
            SessionLookup::Expired
        }
        Some((mut s, None)) => {
            tx.execute("UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1", params![s.id, now_ms])
                .context("touching a session")?;
            s.last_seen_at = now_ms;
            SessionLookup::Active(s.info()?)
        }
    };
    tx.commit().context("committing a session lookup")?;
    Ok(lookup)
}

pub(super) fn logins_of(conn: &Connection, account_id: i64, limit: u32) -> Result<Vec<LoginRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = ?1 ORDER BY id DESC LIMIT ?2"
        ))
        .context("listing logins")?;
    let rows = stmt.query_map(params![account_id, limit], session_row).context("listing logins")?;
    let mut out = Vec::new();
    for row in rows {
        let (s, ended_at) = row.context("reading a session")?;
        out.push(LoginRecord { session: s.info()?, ended_at: ended_at.map(from_millis).transpose()? });
    }
    Ok(out)
}

pub(super) fn sessions_of(
    conn: &Connection,
    account_id: i64,
    now: OffsetDateTime,
    idle: time::Duration,
) -> Result<Vec<SessionInfo>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = ?1 AND ended_at IS NULL ORDER BY id"
        ))
        .context("listing sessions")?;
    let rows = stmt.query_map([account_id], session_row).context("listing sessions")?;
    let now_ms = millis(now);
    let mut out = Vec::new();
    for row in rows {
        let (s, _) = row.context("reading a session")?;
        if s.open_at(now_ms, idle) {
            out.push(s.info()?);
        }
    }
    Ok(out)
}

pub(super) fn issue_otp(conn: &mut Connection, otp: &NewOtp) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
    let at = millis(otp.created_at);
    tx.execute(
        "UPDATE otps SET closed_at = ?3 WHERE purpose = ?1 AND subject = ?2 AND closed_at IS NULL",
        params![otp.purpose, otp.subject, at],
    )
    .context("closing earlier one-time passwords")?;
    tx.execute(
        "INSERT INTO otps (purpose, subject, salt, code_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![otp.purpose, otp.subject, &otp.salt[..], &otp.code_hash[..], at, millis(otp.expires_at)],
    )
    .context("storing a one-time password")?;
    tx.commit().context("committing a one-time password")
}

/// id, salt, code hash, expires_at, attempts.
type OtpRow = (i64, Vec<u8>, Vec<u8>, i64, i64);

pub(super) fn check_otp(
    conn: &mut Connection,
    purpose: &str,
    subject: &str,
    now: OffsetDateTime,
    max_attempts: u32,
    matches: &dyn Fn(&[u8], &[u8]) -> bool,
) -> Result<OtpOutcome, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
    let row: Option<OtpRow> = tx
        .query_row(
            "SELECT id, salt, code_hash, expires_at, attempts FROM otps
             WHERE purpose = ?1 AND subject = ?2 AND closed_at IS NULL ORDER BY id DESC LIMIT 1",
            params![purpose, subject],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .context("reading a one-time password")?;
    let Some((id, salt, hash, expires_at, attempts)) = row else {
        return Ok(OtpOutcome::NoValidCode);
    };
    let step = decide::otp(expires_at, attempts, now, max_attempts, || matches(&salt, &hash));
    tx.execute(
        "UPDATE otps SET attempts = coalesce(?2, attempts), closed_at = CASE WHEN ?3 THEN ?4 ELSE closed_at END
         WHERE id = ?1",
        params![id, step.attempts, step.close, millis(now)],
    )
    .context("counting a one-time password attempt")?;
    tx.commit().context("committing a one-time password check")?;
    Ok(step.outcome)
}

pub(super) fn claim_mail(
    conn: &mut Connection,
    now: OffsetDateTime,
    lease: time::Duration,
) -> Result<Vec<QueuedMail>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).context("starting a transaction")?;
    let claimed = due_mail(&tx, now)?;
    for mail in &claimed {
        tx.prepare_cached("UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![mail.id, millis(now + lease)]))
            .context("leasing a message")?;
    }
    tx.commit().context("committing the lease")?;
    Ok(claimed)
}

fn due_mail(conn: &Connection, now: OffsetDateTime) -> Result<Vec<QueuedMail>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, recipient, subject, body, created_at, attempts FROM outbox
             WHERE sent_at IS NULL AND next_attempt_at <= ?1 ORDER BY id LIMIT 100",
        )
        .context("reading the outbox")?;
    let rows = stmt
        .query_map([millis(now)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(4)?, r.get::<_, i64>(5)?))
        })
        .context("reading the outbox")?;
    let mut out = Vec::new();
    for row in rows {
        let (id, to, subject, body, created_at, attempts) = row.context("reading a message")?;
        out.push(QueuedMail {
            id,
            to,
            subject,
            body,
            created_at: from_millis(created_at)?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        });
    }
    Ok(out)
}
