//! Delivering queued notices. A message is queued in the same transaction as the issuance or
//! revocation it reports, taken for delivery (a lease, so two senders never deliver it both),
//! delivered, and only then marked sent: a crash between delivery and marking re-delivers it
//! once the lease ends (at most once more), a crash before delivery delays it; nothing is lost. The maildir transport names each file after the message id, so a
//! re-delivery that finds the first copy still in `new/` replaces it instead of duplicating it.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use time::{Duration, OffsetDateTime};

use super::store::{OutboxMessage, RaStore};
use crate::clock::Clock;
use crate::store::StoreError;

/// Where notices go.
pub trait Transport: Send + Sync {
    /// Deliver one message durably; an error leaves it queued for a retry.
    fn deliver(&self, message: &OutboxMessage) -> Result<(), String>;
}

/// A maildir (`tmp/`, `new/`, `cur/`): one RFC 5322 file per message, written to `tmp/`,
/// synced, then renamed into `new/`.
#[derive(Clone, Debug)]
pub struct Maildir {
    pub root: PathBuf,
    /// The From address.
    pub from: String,
}

impl Maildir {
    pub fn new(root: impl Into<PathBuf>, from: impl Into<String>) -> Self {
        Self { root: root.into(), from: from.into() }
    }

    /// The file name of a message in `new/`.
    pub fn file_name(message: &OutboxMessage) -> String {
        format!("{}.outbox-{}.nca", message.created_at.unix_timestamp(), message.id)
    }

    fn write(&self, message: &OutboxMessage) -> std::io::Result<()> {
        let (tmp, new) = (self.root.join("tmp"), self.root.join("new"));
        for d in [&tmp, &new, &self.root.join("cur")] {
            std::fs::create_dir_all(d)?;
        }
        let name = Self::file_name(message);
        let tmp_path = tmp.join(&name);
        let mut f = std::fs::File::create(&tmp_path)?;
        f.write_all(rfc5322(message, &self.from, OffsetDateTime::now_utc()).as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp_path, new.join(&name))?;
        sync_dir(&new)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    let _ = dir;
    Ok(())
}

impl Transport for Maildir {
    fn deliver(&self, message: &OutboxMessage) -> Result<(), String> {
        self.write(message).map_err(|e| format!("maildir {}: {e}", self.root.display()))
    }
}

/// RFC 2047 encoded-words for a header value that is not plain ASCII, each at most 75
/// characters and cut on character boundaries.
fn encode_header(value: &str) -> String {
    if value.is_ascii() && !value.contains(['\r', '\n']) {
        return value.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars().filter(|c| !c.is_control()) {
        if chunk.len() + c.len_utf8() > 39 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// The message in RFC 5322 form: CRLF line ends, UTF-8 text body in base64 (so no line is too
/// long and no transport has to be 8-bit clean).
pub fn rfc5322(message: &OutboxMessage, from: &str, date: OffsetDateTime) -> String {
    let date = date.format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
    let body =
        base64::engine::general_purpose::STANDARD.encode(message.body.replace("\r\n", "\n").replace('\n', "\r\n"));
    let mut body_lines = String::new();
    for line in body.as_bytes().chunks(76) {
        body_lines.push_str(&String::from_utf8_lossy(line));
        body_lines.push_str("\r\n");
    }
    let id = match &message.application {
        Some(n) => format!("<outbox-{}.{n}@nca.invalid>", message.id),
        None => format!("<outbox-{}@nca.invalid>", message.id),
    };
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {id}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{body_lines}",
        from = encode_header(from),
        to = encode_header(&message.to),
        subject = encode_header(&message.subject),
    )
}

/// The wait before attempt `attempts + 1`: 1 min, 2 min, 4 min … at most 6 hours.
pub fn backoff(attempts: u32) -> Duration {
    let minutes = 1i64 << attempts.min(9);
    Duration::minutes(minutes.min(360))
}

/// What one run of the sender did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SendReport {
    pub sent: u32,
    pub failed: u32,
    pub failures: Vec<String>,
}

/// How long a sender holds a message it took for delivery.
pub const DELIVERY_LEASE: Duration = Duration::minutes(10);

/// Deliver every due message once.
pub fn send_due(
    store: &dyn RaStore,
    transport: &dyn Transport,
    clock: &dyn Clock,
    limit: u32,
) -> Result<SendReport, StoreError> {
    let mut report = SendReport::default();
    for message in store.due_messages(clock.now(), limit)? {
        let now = clock.now();
        if !store.claim_message(message.id, now, now + DELIVERY_LEASE)? {
            // Another sender took it (or sent it) since the listing.
            continue;
        }
        match transport.deliver(&message) {
            Ok(()) => {
                store.mark_sent(message.id, clock.now())?;
                report.sent += 1;
            }
            Err(e) => {
                store.mark_failed(message.id, &e, clock.now() + backoff(message.attempts))?;
                report.failed += 1;
                report.failures.push(format!("message {} to {}: {e}", message.id, message.to));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_encoded_words_and_lines_end_in_crlf() {
        let m = OutboxMessage {
            id: 7,
            application: Some("A-2026-000001".parse().unwrap()),
            to: "person1@example.kz".into(),
            subject: "Регистрационные свидетельства выпущены — заявка A-2026-000001".into(),
            body: "Здравствуйте!\nСсылка: https://pki.test.kz/install/A-2026-000001\n".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            attempts: 0,
            next_attempt_at: OffsetDateTime::UNIX_EPOCH,
            sent_at: None,
            last_error: None,
        };
        let text = rfc5322(&m, "nca@pki.test.kz", OffsetDateTime::UNIX_EPOCH);
        assert!(text.is_ascii());
        assert!(text.contains("Subject: =?UTF-8?B?"));
        assert!(text.lines().all(|l| l.len() <= 78), "{text}");
        assert!(!text.replace("\r\n", "").contains('\n'));
        let body: String = text.split("\r\n\r\n").nth(1).unwrap().replace("\r\n", "");
        let decoded = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        assert!(String::from_utf8(decoded).unwrap().contains("install/A-2026-000001"));
        assert_eq!(backoff(0), Duration::minutes(1));
        assert_eq!(backoff(30), Duration::hours(6));
    }
}
