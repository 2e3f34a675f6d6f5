//! SMS delivery. Every text goes through the SMS outbox (a code is queued in the same
//! transaction as its one-time password); a sender — inside `portal-server serve`, or the
//! separate `portal-server sms-sender` process — claims due messages under a lease, hands each
//! to an [`SmsTransport`] and marks it sent only after the gateway accepted it. A failure is
//! retried with a growing delay; a message whose code expired is dropped instead of sent.
//!
//! Delivery is at least once: a sender that dies between the gateway's acceptance and the mark
//! leaves the message due again when its lease ends, and it is sent again with the same
//! message id (a gateway that keys on the id drops the repeat). A message marked sent is never
//! sent again. Transports: a spool directory ([`spool`]), an HTTP gateway ([`gateway`]) and
//! SMPP 3.4 ([`smpp`]). Texts are never logged (they hold codes); ids and masked numbers are.

pub mod gateway;
pub mod smpp;
pub mod spool;

use std::sync::Arc;

use ca_core::clock::Clock;
use ca_core::store::StoreError;
use rand_core::{OsRng, RngCore};
use time::{Duration, OffsetDateTime};

use super::SmsSender;
use crate::store::phone::NewSms;
use crate::store::PortalStore;

/// The failpoint (see `ca_core::failpoint`) between the gateway's acceptance and the mark.
pub const FAILPOINT_ACCEPTED: &str = "sms.accepted";

/// One message as a transport sends it.
#[derive(Clone, Copy, Debug)]
pub struct OutgoingSms<'a> {
    /// Stable across attempts.
    pub message_id: &'a str,
    /// E.164.
    pub to: &'a str,
    pub text: &'a str,
}

/// Hands messages to an SMS gateway.
pub trait SmsTransport: Send + Sync {
    /// `Ok` once the gateway has accepted the message (with its own reference, if it gives
    /// one); an error means it did not, and the message is tried again later.
    fn send(&self, sms: &OutgoingSms<'_>) -> Result<Option<String>, String>;
}

/// The transport `[phone.sms]` names; secrets come from the variables it names.
pub fn sms_transport(config: &crate::phone::config::SmsConfig, sender: &str) -> Result<Arc<dyn SmsTransport>, String> {
    let secret = |var: &str| {
        std::env::var(var)
            .map(zeroize::Zeroizing::new)
            .map_err(|_| format!("[phone.sms] reads its secret from {var}, which is not set"))
    };
    let seconds = |s: u32| std::time::Duration::from_secs(u64::from(s.max(1)));
    if let Some(dir) = &config.spool {
        return Ok(Arc::new(spool::Spool::new(dir)));
    }
    if let Some(http) = &config.http {
        let token = secret(&http.token_env)?;
        return Ok(Arc::new(gateway::HttpGateway::new(&http.url, token, sender, seconds(http.timeout_seconds))));
    }
    if let Some(smpp) = &config.smpp {
        let password = secret(&smpp.password_env)?;
        return Ok(Arc::new(smpp::SmppGateway::new(
            &smpp.address,
            &smpp.system_id,
            password,
            sender,
            seconds(smpp.timeout_seconds),
        )?));
    }
    Err("[phone.sms] names no transport".into())
}

/// A new random message id (16 bytes, hex).
pub fn new_message_id() -> Result<String, rand_core::Error> {
    let mut id = [0u8; 16];
    OsRng.try_fill_bytes(&mut id)?;
    Ok(hex::encode(id))
}

/// The delay before attempt `attempts + 1` of a message: 10 s doubling to 10 min (codes live
/// 5 minutes, so the first retries come quickly).
pub fn retry_delay(attempts: u32) -> Duration {
    Duration::seconds((10i64 << attempts.min(6)).min(600))
}

/// What one run of the sender did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryReport {
    pub sent: u32,
    pub failed: u32,
    pub expired: u32,
}

/// Claims due messages and delivers them.
#[derive(Clone)]
pub struct SmsDispatcher {
    store: Arc<dyn PortalStore>,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn SmsTransport>,
    /// How long a claimed message is left to this sender.
    pub lease: Duration,
    pub batch: u32,
}

impl SmsDispatcher {
    pub fn new(store: Arc<dyn PortalStore>, clock: Arc<dyn Clock>, transport: Arc<dyn SmsTransport>) -> Self {
        Self { store, clock, transport, lease: Duration::seconds(60), batch: 100 }
    }

    /// Deliver every due message once.
    pub fn deliver_pending(&self) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        loop {
            let now = self.clock.now();
            let claimed = self.store.claim_sms(now, self.lease, self.batch)?;
            let full = claimed.len() == self.batch as usize;
            for sms in claimed {
                if sms.expires_at.is_some_and(|e| e <= self.clock.now()) {
                    self.store.sms_expired(sms.id, self.clock.now())?;
                    tracing::info!(message_id = %sms.message_id, "SMS dropped: its code expired before it was sent");
                    report.expired += 1;
                    continue;
                }
                let outgoing = OutgoingSms { message_id: &sms.message_id, to: &sms.to, text: &sms.body };
                match self.transport.send(&outgoing) {
                    Ok(reference) => {
                        ca_core::failpoint::hit(FAILPOINT_ACCEPTED);
                        self.store.sms_sent(sms.id, self.clock.now(), reference.as_deref())?;
                        tracing::info!(message_id = %sms.message_id, attempt = sms.attempts + 1, "SMS accepted by the gateway");
                        report.sent += 1;
                    }
                    Err(e) => {
                        let next = self.clock.now() + retry_delay(sms.attempts);
                        tracing::warn!(message_id = %sms.message_id, error = %e, retry_at = %next, "SMS not accepted; will retry");
                        self.store.sms_failed(sms.id, &e, next)?;
                        report.failed += 1;
                    }
                }
            }
            if !full {
                return Ok(report);
            }
        }
    }
}

/// An [`SmsSender`] that queues to the outbox (for texts not written with a change of their
/// own, such as login codes).
pub struct OutboxSms {
    pub store: Arc<dyn PortalStore>,
    pub clock: Arc<dyn Clock>,
    pub purpose: &'static str,
    /// Codes are not sent after this long.
    pub valid_for: Option<Duration>,
}

impl SmsSender for OutboxSms {
    fn send(&self, phone: &str, text: &str) -> Result<(), String> {
        let now: OffsetDateTime = self.clock.now();
        let sms = NewSms {
            message_id: new_message_id().map_err(|e| format!("random: {e}"))?,
            to: phone.to_owned(),
            body: text.to_owned(),
            purpose: self.purpose.to_owned(),
            login: None,
            expires_at: self.valid_for.map(|d| now + d),
        };
        self.store.queue_sms(&sms, now).map_err(|e| e.to_string())
    }
}
