//! Digital documents (document 003): documents built by authorised state bodies and signed with
//! their EDS, stored with an RFC 3161 time stamp, shown to their subject (and to the legal
//! representatives of a minor), opened to a third party for a few minutes by a QR code or a
//! six-digit short code, and released to admitted integrated systems with the subject's
//! one-time-password consent. Every attempt is journaled in the document journal, which is also
//! the history shown in each cabinet (view marks, access opened and withdrawn, releases).
//!
//! Layout: [`config`] (authorities, systems, policy), [`submission`] (an authority submits),
//! [`timestamp`] (RFC 3161 client), [`view`] (the subject's list and the verification report),
//! [`access`] (open access, QR and short code, view marks), [`qr`] (QR images), [`systems`]
//! (integrated systems and consent).

pub mod access;
pub mod config;
pub mod qr;
pub mod signed_request;
pub mod submission;
pub mod systems;
pub mod timestamp;
pub mod view;

use crate::store::documents::DocumentEvent;
use crate::{Client, Portal};

/// Who acted, as the document journal names them.
pub mod actor {
    pub const SUBJECT: &str = "subject";
    pub const REPRESENTATIVE: &str = "representative";
    pub const THIRD_PARTY: &str = "third-party";
    pub const ORGANISATION: &str = "organisation";
    pub const AUTHORITY: &str = "authority";
    pub const SYSTEM: &str = "system";
}

impl Portal {
    /// A journal entry at the portal's time.
    pub(crate) fn document_event(
        &self,
        actor: &str,
        actor_kind: &str,
        action: &str,
        outcome: &str,
        client: &Client,
    ) -> DocumentEvent {
        DocumentEvent {
            seq: 0,
            at: self.clock.now(),
            document_id: None,
            subject_iin: None,
            actor: actor.to_owned(),
            actor_kind: actor_kind.to_owned(),
            action: action.to_owned(),
            channel: None,
            outcome: outcome.to_owned(),
            detail: None,
            client_address: client.address.clone(),
        }
    }

    /// Journal an event; a journal that cannot be written is logged (the caller's answer does
    /// not change: it is a refusal already, or the success was journaled in its transaction).
    pub(crate) fn journal_document(&self, event: &DocumentEvent) {
        if let Err(e) = self.store.journal_document_event(event) {
            tracing::error!(error = %e, action = %event.action, outcome = %event.outcome, "the document journal could not be written");
        }
    }
}
