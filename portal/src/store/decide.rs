//! The decisions both backends take inside their transactions, written once so SQLite and
//! PostgreSQL cannot drift apart: the lockout gate, a one-time password check, the send limits
//! of binding codes. Each takes what the transaction read (times in unix milliseconds) and says
//! what to answer and what to write.

use time::OffsetDateTime;

use super::documents::{CodeLimits, DocumentEvent, Grant, Resolution};
use super::{from_millis, millis, AttemptGate, OtpOutcome};
use ca_core::store::StoreError;

/// What the password gate does with the stored count of a login.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GateStep {
    /// Answer this, write nothing.
    Answer(AttemptGate),
    /// The limit is reached without a lock time (a changed limit): store the lock, answer it.
    LockNow { until: OffsetDateTime },
    /// Store `failures` and `locked_until` (set by the attempt that reaches the limit).
    Count { failures: u32, locked_until: Option<i64> },
}

/// `stored`: the row's `(failures, locked_until)`, if any.
pub(crate) fn gate(
    stored: Option<(i64, Option<i64>)>,
    now: OffsetDateTime,
    max_failures: u32,
    lock_for: time::Duration,
) -> Result<GateStep, StoreError> {
    let now_ms = millis(now);
    let failures = match stored {
        Some((_, Some(until))) if until > now_ms => {
            return Ok(GateStep::Answer(AttemptGate::Locked { until: from_millis(until)? }))
        }
        // The lock is over: the count starts again.
        Some((_, Some(_))) => 0,
        Some((f, None)) => u32::try_from(f).unwrap_or(u32::MAX),
        None => 0,
    };
    if failures >= max_failures {
        return Ok(GateStep::LockNow { until: now + lock_for });
    }
    let failures = failures + 1;
    // A success before the lock ends resets all.
    let locked_until = (failures >= max_failures).then(|| millis(now + lock_for));
    Ok(GateStep::Count { failures, locked_until })
}

/// Whether a session (not ended) is still open at `now`: before its expiry and not idle for
/// `idle` or longer.
pub(crate) fn session_open(expires_at: i64, last_seen_at: i64, now: i64, idle: time::Duration) -> bool {
    let idle_ms = i64::try_from(idle.whole_milliseconds()).unwrap_or(i64::MAX);
    now < expires_at && now - last_seen_at < idle_ms
}

/// What a one-time password check writes: `closed_at` and `attempts` of the code's row.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OtpStep {
    pub outcome: OtpOutcome,
    /// The new attempt count; `None`: leave it.
    pub attempts: Option<i64>,
    /// Close the code now.
    pub close: bool,
}

/// The current code's `expires_at` and `attempts` so far; `matches` is only asked while the
/// code is still valid.
pub(crate) fn otp(
    expires_at: i64,
    attempts: i64,
    now: OffsetDateTime,
    max_attempts: u32,
    matches: impl FnOnce() -> bool,
) -> OtpStep {
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX).saturating_add(1);
    if expires_at <= millis(now) || attempts > max_attempts {
        OtpStep { outcome: OtpOutcome::NoValidCode, attempts: None, close: true }
    } else if matches() {
        OtpStep { outcome: OtpOutcome::Accepted, attempts: Some(attempts.into()), close: true }
    } else {
        OtpStep {
            outcome: OtpOutcome::Wrong { attempts_left: max_attempts - attempts },
            attempts: Some(attempts.into()),
            close: attempts >= max_attempts,
        }
    }
}

/// The earliest time the next binding code may go to one IIN or number, if a limit is reached
/// now, from the codes it got in the last hour: their `count`, `oldest` and `newest` times.
pub(crate) fn throttled_until(
    count: i64,
    oldest: Option<i64>,
    newest: Option<i64>,
    now: i64,
    limits: &super::phone::SendLimits,
) -> Option<i64> {
    let resend = i64::try_from(limits.resend_after.whole_milliseconds()).unwrap_or(i64::MAX);
    let mut until = newest.filter(|n| n.saturating_add(resend) > now).map(|n| n + resend);
    if count >= i64::from(limits.per_hour) {
        let by_hour = oldest.unwrap_or(now) + HOUR_MS;
        until = Some(until.map_or(by_hour, |u| u.max(by_hour)));
    }
    until
}

/// The window of [`throttled_until`]'s hourly limit.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// Why a grant found is not live at `now`.
pub(crate) fn closed_reason(g: &Grant, now: OffsetDateTime) -> Option<&'static str> {
    if g.withdrawn_at.is_some() {
        Some("access-withdrawn")
    } else if g.locked_at.is_some() {
        Some("code-locked")
    } else if g.expires_at <= now {
        Some("access-expired")
    } else {
        None
    }
}

/// `event` with its outcome (and the document, if it was not known before).
pub(crate) fn with_outcome(event: &DocumentEvent, outcome: &str, document_id: Option<i64>) -> DocumentEvent {
    DocumentEvent { outcome: outcome.to_owned(), document_id: document_id.or(event.document_id), ..event.clone() }
}

/// The journal entry of a lookup. A granted one is the view mark, recorded with the subject's
/// IIN (`subject`, read by the caller) so it shows in both cabinets; `not_found` names a miss.
pub(crate) fn resolution_event(
    event: &DocumentEvent,
    resolution: &Resolution,
    not_found: &str,
    subject: Option<String>,
) -> DocumentEvent {
    let outcome = match resolution {
        Resolution::Granted { grant } => {
            return DocumentEvent {
                subject_iin: subject,
                detail: Some(match &event.detail {
                    Some(d) => format!("{d}; grant {}", grant.id),
                    None => format!("grant {}", grant.id),
                }),
                ..with_outcome(event, "ok", Some(grant.document_id))
            };
        }
        Resolution::NotFound => not_found,
        Resolution::Closed { reason } => reason,
        Resolution::RateLimited { global: false } => "rate-limited",
        Resolution::RateLimited { global: true } => "rate-limited-global",
    };
    with_outcome(event, outcome, None)
}

/// The lookup of a short code once the grant with that code (the newest) is read.
pub(crate) fn code_resolution(found: Option<Grant>, now: OffsetDateTime, limits: &CodeLimits) -> Resolution {
    match found {
        Some(g) => match closed_reason(&g, now) {
            None => Resolution::Granted { grant: g },
            // An old code is not a guess that found something: it counts as wrong.
            Some(_) if g.expires_at <= now - limits.viewer_window => Resolution::NotFound,
            Some(reason) => Resolution::Closed { reason },
        },
        None => Resolution::NotFound,
    }
}

/// The rate limits of short codes, from the wrong codes counted in their windows.
pub(crate) fn code_rate_limit(mine: i64, all: i64, limits: &CodeLimits) -> Option<Resolution> {
    if mine >= i64::from(limits.per_viewer) {
        Some(Resolution::RateLimited { global: false })
    } else if all >= i64::from(limits.global) {
        Some(Resolution::RateLimited { global: true })
    } else {
        None
    }
}
