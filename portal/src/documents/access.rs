//! "Open access" (document 003 points 15–19, 21): the subject — or a representative, for a
//! minor's document — opens access to one document; the portal makes a QR code of a URL with a
//! random token (256 bits, only its SHA-256 stored) and a six-digit short code unique among
//! live grants. Opening access is the subject's consent and is journaled. Both expire after
//! `[documents.access] minutes` (5 by default) and can be withdrawn.
//!
//! A third party, logged in by any method, resolves the token or the code and sees the
//! document with its verification report; the view mark is journaled with the subject's IIN
//! and the viewer's login, so it shows in both cabinets. A legal entity's account (a bank at
//! its counter, point 21) is recorded as the organisation that viewed.
//!
//! Short codes are guessable, so lookups by code are limited (see README "Guessing a short
//! code"): per third party, globally, and per code (locked after a number of wrong codes were
//! entered during its life). The QR token is not guessable and not limited.

use base64::Engine;
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::view::{DocumentView, Standing};
use super::{actor, qr};
use crate::account::AccountKind;
use crate::error::PortalError;
use crate::login::session::Authenticated;
use crate::store::documents::{DocumentEvent, Grant, NewGrant, Resolution};
use crate::store::Account;
use crate::{Client, Portal};

/// What the third party is told for any code that opens nothing (unknown, expired, withdrawn,
/// locked): the same words, so a guess learns nothing.
pub const CODE_INVALID: &str = "Код доступа недействителен или срок его действия истек";
/// Too many wrong codes.
pub const CODE_LIMITED: &str = "Превышено число попыток ввода кода доступа. Повторите попытку позже";

/// Access just opened: the token is shown this once.
#[derive(Clone, Debug, Serialize)]
pub struct OpenedAccess {
    pub grant_id: i64,
    pub document_id: i64,
    pub short_code: String,
    pub token: String,
    /// The QR code's payload.
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub qr_svg: String,
    /// PNG, base64.
    pub qr_png: String,
}

/// How the third party came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Qr,
    Code,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Self::Qr => "qr",
            Self::Code => "code",
        }
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A uniformly random six-digit code.
fn random_code() -> Result<String, PortalError> {
    loop {
        let mut bytes = [0u8; 4];
        OsRng.try_fill_bytes(&mut bytes).map_err(|e| PortalError::internal(format!("random: {e}")))?;
        let n = u32::from_be_bytes(bytes);
        if n < u32::MAX - u32::MAX % 1_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

fn viewer_kind(account: &Account) -> &'static str {
    match account.kind {
        AccountKind::LegalEntity => actor::ORGANISATION,
        AccountKind::Individual => actor::THIRD_PARTY,
    }
}

impl Portal {
    /// Open access to document `document_id` for a third party.
    pub fn open_access(
        &self,
        auth: &Authenticated,
        document_id: i64,
        client: &Client,
    ) -> Result<OpenedAccess, PortalError> {
        let account = &auth.account;
        let refuse = |e: PortalError| {
            let mut event = self.document_event(&account.login, actor::SUBJECT, "access-opened", e.kind(), client);
            event.document_id = Some(document_id);
            self.journal_document(&event);
            e
        };
        let not_found = || PortalError::not_found("document-not-found", "Документ не найден");
        let doc = self.store.document(document_id)?.ok_or_else(not_found).map_err(refuse)?;
        let standing = self.standing(account, &doc.subject_iin)?.ok_or_else(not_found).map_err(refuse)?;
        let mut raw = [0u8; 32];
        OsRng.try_fill_bytes(&mut raw).map_err(|e| PortalError::internal(format!("random: {e}")))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let now = self.clock.now();
        let expires_at = now + self.documents.access.lifetime();
        let kind = if standing == Standing::Subject { actor::SUBJECT } else { actor::REPRESENTATIVE };
        let mut event = self.document_event(&account.login, kind, "access-opened", "ok", client);
        event.document_id = Some(doc.id);
        event.subject_iin = Some(doc.subject_iin.clone());
        let grant = self.store.open_grant(
            &NewGrant {
                document_id: doc.id,
                opened_by: account.id,
                token_hash: token_hash(&token),
                created_at: now,
                expires_at,
            },
            &mut || random_code().map_err(|e| ca_core::store::StoreError::Database(e.to_string())),
            &event,
        )?;
        let url = format!("{}?token={token}", self.documents.public_url);
        Ok(OpenedAccess {
            grant_id: grant.id,
            document_id: doc.id,
            short_code: grant.short_code,
            qr_svg: qr::svg(&url)?,
            qr_png: base64::engine::general_purpose::STANDARD.encode(qr::png(&url)?),
            token,
            url,
            expires_at,
        })
    }

    /// Withdraw access the caller opened (before it expires).
    pub fn withdraw_access(&self, auth: &Authenticated, grant_id: i64, client: &Client) -> Result<(), PortalError> {
        let account = &auth.account;
        let mut event = self.document_event(&account.login, actor::SUBJECT, "access-withdrawn", "ok", client);
        let grant = match self.store.grant(grant_id)? {
            Some(g) if g.opened_by == account.id => g,
            _ => {
                event.outcome = "grant-not-found".into();
                self.journal_document(&event);
                return Err(PortalError::not_found("grant-not-found", "Доступ не найден"));
            }
        };
        event.document_id = Some(grant.document_id);
        event.subject_iin = self.store.document(grant.document_id)?.map(|d| d.subject_iin);
        event.detail = Some(format!("grant {grant_id}"));
        if self.store.withdraw_grant(grant_id, self.clock.now(), &event)? {
            Ok(())
        } else {
            Err(PortalError::refused("access-not-live", "Доступ уже закрыт: истек срок или он был отозван"))
        }
    }

    /// The grants the caller opened, newest first.
    pub fn my_grants(&self, auth: &Authenticated) -> Result<Vec<Grant>, PortalError> {
        Ok(self.store.grants_by(auth.account.id)?)
    }

    /// A third party resolves a QR token.
    pub fn view_by_token(
        &self,
        auth: &Authenticated,
        token: &str,
        client: &Client,
    ) -> Result<DocumentView, PortalError> {
        let event = self.viewer_event(&auth.account, Channel::Qr, client);
        let token = token.trim();
        let well_formed = token.len() == 43
            && base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).is_ok_and(|b| b.len() == 32);
        if !well_formed {
            self.journal_document(&DocumentEvent { outcome: "malformed-token".into(), ..event });
            return Err(PortalError::invalid("malformed-token", "the access token is not one the portal issues"));
        }
        match self.store.resolve_token(&token_hash(token), self.clock.now(), &event)? {
            Resolution::Granted { grant } => self.granted_view(&grant),
            Resolution::Closed { reason: "access-withdrawn" } => {
                Err(PortalError::refused("access-withdrawn", "Субъект отозвал доступ к документу"))
            }
            Resolution::Closed { .. } => Err(PortalError::refused("access-expired", "Срок доступа к документу истек")),
            Resolution::NotFound | Resolution::RateLimited { .. } => {
                Err(PortalError::not_found("access-not-found", "Доступ к документу не найден"))
            }
        }
    }

    /// A third party enters a short code.
    pub fn view_by_code(&self, auth: &Authenticated, code: &str, client: &Client) -> Result<DocumentView, PortalError> {
        let event = self.viewer_event(&auth.account, Channel::Code, client);
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            self.journal_document(&DocumentEvent { outcome: "malformed-code".into(), ..event });
            return Err(PortalError::invalid("malformed-code", "Код доступа состоит из 6 цифр"));
        }
        let policy = self.documents.access;
        match self.store.resolve_code(code, self.clock.now(), &policy.limits(), &event)? {
            Resolution::Granted { grant } => self.granted_view(&grant),
            Resolution::RateLimited { global } => {
                let retry_after = if global {
                    i64::from(policy.global_window_seconds)
                } else {
                    i64::from(policy.viewer_window_minutes) * 60
                };
                let kind = if global { "code-lookups-limited" } else { "code-tries-exceeded" };
                Err(PortalError::Limited { kind, message: CODE_LIMITED.into(), retry_after })
            }
            Resolution::NotFound | Resolution::Closed { .. } => {
                Err(PortalError::not_found("access-code-invalid", CODE_INVALID))
            }
        }
    }

    fn viewer_event(&self, viewer: &Account, channel: Channel, client: &Client) -> DocumentEvent {
        let mut event = self.document_event(&viewer.login, viewer_kind(viewer), "view", "ok", client);
        event.channel = Some(channel.name().into());
        if viewer.kind == AccountKind::LegalEntity {
            event.detail = Some(format!("acting: {}", viewer.iin));
        }
        event
    }

    fn granted_view(&self, grant: &Grant) -> Result<DocumentView, PortalError> {
        let doc = self
            .store
            .document(grant.document_id)?
            .ok_or_else(|| PortalError::internal(format!("grant {} without its document", grant.id)))?;
        self.document_view(&doc, Standing::ThirdParty, true)
    }

    /// The cabinet's history: events about the caller's documents (and the minors' he
    /// represents) and what the caller did — view marks on both sides.
    pub fn document_history(&self, auth: &Authenticated, limit: u32) -> Result<Vec<DocumentEvent>, PortalError> {
        let iins: Vec<String> = self.represented(&auth.account)?.into_iter().map(|(iin, _)| iin).collect();
        Ok(self.store.cabinet_history(&iins, &auth.account.login, limit.clamp(1, 500))?)
    }

    /// [`document_history`](Self::document_history) with each event's document named («title
    /// № number»): the caller's own, a represented child's, or one he viewed — never more than
    /// the history itself already tells him.
    pub fn named_document_history(
        &self,
        auth: &Authenticated,
        limit: u32,
    ) -> Result<Vec<(DocumentEvent, Option<String>)>, PortalError> {
        let events = self.document_history(auth, limit)?;
        let mut names = std::collections::HashMap::new();
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let name = match event.document_id {
                Some(id) => match names.get(&id) {
                    Some(name) => name,
                    None => {
                        let name = self.store.document(id)?.map(|d| format!("{} № {}", d.title, d.number));
                        names.entry(id).or_insert(name)
                    }
                }
                .clone(),
                None => None,
            };
            out.push((event, name));
        }
        Ok(out)
    }
}
