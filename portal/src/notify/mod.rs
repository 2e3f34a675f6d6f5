//! Notices to people: email through the portal's outbox (queued in the same transaction as
//! the change it reports, then delivered by a [`Transport`] — a maildir or SMTP, the CA's
//! transports), and SMS for one-time passwords through an [`SmsSender`].

pub mod sms;

use std::sync::Arc;

use ca_core::clock::Clock;
use ca_core::ra::outbox::{backoff, Transport};
use ca_core::ra::store::OutboxMessage;

use crate::store::PortalStore;

/// Sends a text message to a phone number. The phone-binding issue plugs in the gateway.
pub trait SmsSender: Send + Sync {
    fn send(&self, phone: &str, text: &str) -> Result<(), String>;
}

/// How long a claimed message is another mailer's to leave alone (a delivery takes seconds).
pub const MAIL_LEASE: time::Duration = time::Duration::minutes(5);

/// Delivers the outbox.
#[derive(Clone)]
pub struct Mailer {
    store: Arc<dyn PortalStore>,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn Transport>,
}

impl Mailer {
    pub fn new(store: Arc<dyn PortalStore>, clock: Arc<dyn Clock>, transport: Arc<dyn Transport>) -> Self {
        Self { store, clock, transport }
    }

    /// Deliver every due message; a failure leaves it queued with a later retry. Returns how
    /// many were delivered. The messages are claimed for [`MAIL_LEASE`] first, so mailers of
    /// several portal processes on one database never send one message twice at once.
    pub fn deliver_pending(&self) -> Result<usize, ca_core::store::StoreError> {
        let now = self.clock.now();
        let mut delivered = 0;
        for mail in self.store.claim_mail(now, MAIL_LEASE)? {
            let message = OutboxMessage {
                id: mail.id,
                application: None,
                to: mail.to,
                subject: mail.subject,
                body: mail.body,
                created_at: mail.created_at,
                attempts: mail.attempts,
                next_attempt_at: now,
                sent_at: None,
                last_error: None,
            };
            match self.transport.deliver(&message) {
                Ok(()) => {
                    self.store.mail_sent(mail.id, now)?;
                    delivered += 1;
                }
                Err(e) => {
                    tracing::warn!(id = mail.id, error = %e, "mail not delivered; will retry");
                    self.store.mail_failed(mail.id, &e, now + backoff(mail.attempts + 1))?;
                }
            }
        }
        Ok(delivered)
    }
}
