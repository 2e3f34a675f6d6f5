//! Lockout counters, the failed-login journal, sessions, one-time passwords and the outbox in
//! PostgreSQL.

use ca_core::store::postgres::pool::{Cached, Conn};
use ca_core::store::StoreError;
use postgres::Row;
use time::OffsetDateTime;

use super::{begin, col, count, Context};
use crate::store::decide::{self, GateStep};
use crate::store::{
    from_millis, millis, AttemptGate, FailedAttempt, LoginRecord, NewOtp, NewSession, OtpOutcome, QueuedMail,
    SessionInfo, SessionLookup,
};

/// The gate of [`crate::store::PortalStore::begin_password_attempt`]: read, decide and count
/// under the login's lock, so no number of concurrent attempts from any process gets past
/// `max_failures`.
pub(super) fn begin_password_attempt(
    conn: &mut Conn<'_>,
    login: &str,
    now: OffsetDateTime,
    max_failures: u32,
    lock_for: time::Duration,
) -> Result<AttemptGate, StoreError> {
    let mut tx = begin(conn, "password", login.as_bytes())?;
    let row = tx
        .query_opt_cached("SELECT failures, locked_until FROM password_attempts WHERE login = $1", &[&login])
        .context("reading the password attempts")?;
    let stored = row.map(|r| Ok::<_, StoreError>((col(&r, 0)?, col(&r, 1)?))).transpose()?;
    let (failures, locked_until) = match decide::gate(stored, now, max_failures, lock_for)? {
        GateStep::Answer(answer) => return Ok(answer),
        GateStep::LockNow { until } => {
            tx.execute_cached(
                "UPDATE password_attempts SET locked_until = $2 WHERE login = $1",
                &[&login, &millis(until)],
            )
            .context("locking password login")?;
            tx.commit().context("committing the lock")?;
            return Ok(AttemptGate::Locked { until });
        }
        GateStep::Count { failures, locked_until } => (failures, locked_until),
    };
    tx.execute_cached(
        "INSERT INTO password_attempts (login, failures, locked_until) VALUES ($1, $2, $3)
         ON CONFLICT (login) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until",
        &[&login, &i64::from(failures), &locked_until],
    )
    .context("counting a password attempt")?;
    tx.commit().context("committing a password attempt")?;
    Ok(AttemptGate::Allowed { failures })
}

pub(super) fn journal_failure(conn: &mut Conn<'_>, a: &FailedAttempt) -> Result<(), StoreError> {
    conn.execute_cached(
        "INSERT INTO failed_logins (at, login, method, client_address, user_agent, reason) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&millis(a.at), &a.login, &a.method, &a.client_address, &a.user_agent, &a.reason],
    )
    .context("journaling a failed login")?;
    Ok(())
}

pub(super) fn failed_attempts(
    conn: &mut Conn<'_>,
    login: Option<&str>,
    limit: u32,
) -> Result<Vec<FailedAttempt>, StoreError> {
    let rows = conn
        .query_cached(
            "SELECT at, login, method, client_address, user_agent, reason FROM failed_logins
             WHERE ($1::TEXT IS NULL OR login = $1) ORDER BY seq LIMIT $2",
            &[&login, &i64::from(limit)],
        )
        .context("reading the failed-login journal")?;
    rows.iter().map(failed_attempt).collect()
}

pub(super) fn create_session(conn: &mut impl Cached, s: &NewSession) -> Result<i64, StoreError> {
    let row = conn
        .query_one_cached(
            "INSERT INTO sessions (token_hash, account_id, method, created_at, expires_at, last_seen_at, client_address, user_agent)
             VALUES ($1, $2, $3, $4, $5, $4, $6, $7) RETURNING id",
            &[
                &&s.token_hash[..],
                &s.account_id,
                &s.method,
                &millis(s.created_at),
                &millis(s.expires_at),
                &s.client_address,
                &s.user_agent,
            ],
        )
        .context("opening a session")?;
    col(&row, 0)
}

fn failed_attempt(r: &Row) -> Result<FailedAttempt, StoreError> {
    Ok(FailedAttempt {
        at: from_millis(col(r, 0)?)?,
        login: col(r, 1)?,
        method: col(r, 2)?,
        client_address: col(r, 3)?,
        user_agent: col(r, 4)?,
        reason: col(r, 5)?,
    })
}

/// The failed attempts on one login, newest first (the cabinet's journal).
pub(super) fn recent_failed_attempts(
    conn: &mut Conn<'_>,
    login: &str,
    limit: u32,
) -> Result<Vec<FailedAttempt>, StoreError> {
    let rows = conn
        .query_cached(
            "SELECT at, login, method, client_address, user_agent, reason FROM failed_logins
             WHERE login = $1 ORDER BY seq DESC LIMIT $2",
            &[&login, &i64::from(limit)],
        )
        .context("reading the failed-login journal")?;
    rows.iter().map(failed_attempt).collect()
}

const SESSION_COLUMNS: &str =
    "id, account_id, method, created_at, expires_at, last_seen_at, client_address, user_agent, ended_at";

/// A session row: the session, its expiry and last use in milliseconds, and whether it ended.
fn session(r: &Row) -> Result<(SessionInfo, i64, i64, bool), StoreError> {
    let (expires, last_seen): (i64, i64) = (col(r, 4)?, col(r, 5)?);
    let info = SessionInfo {
        id: col(r, 0)?,
        account_id: col(r, 1)?,
        method: col(r, 2)?,
        created_at: from_millis(col(r, 3)?)?,
        expires_at: from_millis(expires)?,
        last_seen_at: from_millis(last_seen)?,
        client_address: col(r, 6)?,
        user_agent: col(r, 7)?,
    };
    Ok((info, expires, last_seen, col::<Option<i64>>(r, 8)?.is_some()))
}

pub(super) fn touch_session(
    conn: &mut Conn<'_>,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
    idle: time::Duration,
) -> Result<SessionLookup, StoreError> {
    let mut tx = begin(conn, "session", token_hash)?;
    // Only a newer last use can be lost with the server (see the module documentation).
    tx.batch_execute("SET LOCAL synchronous_commit = off").context("relaxing the commit of a session touch")?;
    let row = tx
        .query_opt_cached(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1 FOR UPDATE"),
            &[&&token_hash[..]],
        )
        .context("reading a session")?;
    let now_ms = millis(now);
    let lookup = match row.as_ref().map(session).transpose()? {
        None | Some((_, _, _, true)) => SessionLookup::Unknown,
        Some((s, expires, last_seen, false)) if !decide::session_open(expires, last_seen, now_ms, idle) => {
            tx.execute_cached("UPDATE sessions SET ended_at = $2 WHERE id = $1", &[&s.id, &now_ms])
                .context("ending an expired session")?;
            SessionLookup::Expired
        }
        Some((mut s, _, _, false)) => {
            tx.execute_cached("UPDATE sessions SET last_seen_at = $2 WHERE id = $1", &[&s.id, &now_ms])
                .context("touching a session")?;
            s.last_seen_at = now;
            SessionLookup::Active(s)
        }
    };
    tx.commit().context("committing a session lookup")?;
    Ok(lookup)
}

pub(super) fn sessions_of(
    conn: &mut Conn<'_>,
    account_id: i64,
    now: OffsetDateTime,
    idle: time::Duration,
) -> Result<Vec<SessionInfo>, StoreError> {
    let rows = conn
        .query_cached(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = $1 AND ended_at IS NULL ORDER BY id"),
            &[&account_id],
        )
        .context("listing sessions")?;
    let now_ms = millis(now);
    let mut out = Vec::new();
    for row in &rows {
        let (s, expires, last_seen, _) = session(row)?;
        if decide::session_open(expires, last_seen, now_ms, idle) {
            out.push(s);
        }
    }
    Ok(out)
}

/// The cabinet's journal of logins: the account's sessions, ended ones too, newest first.
pub(super) fn logins_of(conn: &mut Conn<'_>, account_id: i64, limit: u32) -> Result<Vec<LoginRecord>, StoreError> {
    let rows = conn
        .query_cached(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = $1 ORDER BY id DESC LIMIT $2"),
            &[&account_id, &i64::from(limit)],
        )
        .context("listing logins")?;
    rows.iter()
        .map(|row| {
            let (session, ..) = session(row)?;
            let ended_at = col::<Option<i64>>(row, 8)?.map(from_millis).transpose()?;
            Ok(LoginRecord { session, ended_at })
        })
        .collect()
}

fn otp_key(purpose: &str, subject: &str) -> Vec<u8> {
    [purpose.as_bytes(), b"\0", subject.as_bytes()].concat()
}

pub(super) fn issue_otp(conn: &mut Conn<'_>, otp: &NewOtp) -> Result<(), StoreError> {
    let mut tx = begin(conn, "otp", &otp_key(&otp.purpose, &otp.subject))?;
    let at = millis(otp.created_at);
    tx.execute_cached(
        "UPDATE otps SET closed_at = $3 WHERE purpose = $1 AND subject = $2 AND closed_at IS NULL",
        &[&otp.purpose, &otp.subject, &at],
    )
    .context("closing earlier one-time passwords")?;
    insert_otp(&mut tx, otp)?;
    tx.commit().context("committing a one-time password")
}

pub(super) fn insert_otp(tx: &mut impl Cached, otp: &NewOtp) -> Result<(), StoreError> {
    tx.execute_cached(
        "INSERT INTO otps (purpose, subject, salt, code_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &otp.purpose,
            &otp.subject,
            &&otp.salt[..],
            &&otp.code_hash[..],
            &millis(otp.created_at),
            &millis(otp.expires_at),
        ],
    )
    .context("storing a one-time password")?;
    Ok(())
}

pub(super) fn check_otp(
    conn: &mut Conn<'_>,
    purpose: &str,
    subject: &str,
    now: OffsetDateTime,
    max_attempts: u32,
    matches: &dyn Fn(&[u8], &[u8]) -> bool,
) -> Result<OtpOutcome, StoreError> {
    let mut tx = begin(conn, "otp", &otp_key(purpose, subject))?;
    // FOR UPDATE: a code closed meanwhile by a binding flow (which does not take this lock) is
    // re-checked against `closed_at IS NULL` once its row lock is ours.
    let row = tx
        .query_opt_cached(
            "SELECT id, salt, code_hash, expires_at, attempts FROM otps
             WHERE purpose = $1 AND subject = $2 AND closed_at IS NULL ORDER BY id DESC LIMIT 1 FOR UPDATE",
            &[&purpose, &subject],
        )
        .context("reading a one-time password")?;
    let Some(row) = row else { return Ok(OtpOutcome::NoValidCode) };
    let (id, salt, hash): (i64, Vec<u8>, Vec<u8>) = (col(&row, 0)?, col(&row, 1)?, col(&row, 2)?);
    let step = decide::otp(col(&row, 3)?, col(&row, 4)?, now, max_attempts, || matches(&salt, &hash));
    tx.execute_cached(
        "UPDATE otps SET attempts = coalesce($2, attempts), closed_at = CASE WHEN $3 THEN $4 ELSE closed_at END
         WHERE id = $1",
        &[&id, &step.attempts, &step.close, &millis(now)],
    )
    .context("counting a one-time password attempt")?;
    tx.commit().context("committing a one-time password check")?;
    Ok(step.outcome)
}

pub(super) fn claim_mail(
    conn: &mut Conn<'_>,
    now: OffsetDateTime,
    lease: time::Duration,
) -> Result<Vec<QueuedMail>, StoreError> {
    // One statement: rows another mailer holds are skipped, not waited for.
    let rows = conn
        .query_cached(
            "UPDATE outbox SET next_attempt_at = $2 WHERE id IN (
                 SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1
                 ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)
             RETURNING id, recipient, subject, body, created_at, attempts",
            &[&millis(now), &millis(now + lease)],
        )
        .context("leasing messages")?;
    let mut claimed = rows
        .iter()
        .map(|r| {
            Ok(QueuedMail {
                id: col(r, 0)?,
                to: col(r, 1)?,
                subject: col(r, 2)?,
                body: col(r, 3)?,
                created_at: from_millis(col(r, 4)?)?,
                attempts: count(col(r, 5)?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    claimed.sort_by_key(|m| m.id);
    Ok(claimed)
}
