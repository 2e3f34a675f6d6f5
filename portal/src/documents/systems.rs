//! Integrated systems (document 003 points 4 and 20): a system admitted by the authorised
//! body (`[[documents.systems]]`, with the document types it may receive) asks, in a signed
//! request, for a subject's current document of a type. The portal sends a one-time password
//! to the subject's bound phone; the subject tells it to the system, which relays it in a
//! second signed request; only then is the document released (the authority's CMS with its
//! time stamp), and the release is journaled in the subject's cabinet.

use std::str::FromStr;

use base64::Engine;
use ca_core::identity::Iin;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::actor;
use super::config::{signer_matches, SystemRule};
use super::signed_request::SignedRequest;
use super::view::{DocumentView, Standing};
use crate::account::AccountKind;
use crate::error::PortalError;
use crate::store::documents::ReleaseRequest;
use crate::store::OtpOutcome;
use crate::{Client, Portal};

/// The OTP purpose of a consent code.
pub const PURPOSE: &str = "document-consent";

/// A system asks for a document (signed; fields in alphabetical order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentRequest {
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub doc_type: String,
    pub request_id: String,
    pub subject_iin: String,
    pub system: String,
}

impl SignedRequest for DocumentRequest {
    fn request_id(&self) -> &str {
        &self.request_id
    }
    fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }
}

/// A system relays the subject's code (signed; fields in alphabetical order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRelay {
    pub code: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The `request_id` of the [`DocumentRequest`].
    pub document_request: String,
    pub request_id: String,
    pub system: String,
}

impl SignedRequest for ConsentRelay {
    fn request_id(&self) -> &str {
        &self.request_id
    }
    fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }
}

/// What the system is told after asking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsentPending {
    pub document_request: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub message: String,
}

/// The released document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Released {
    pub document: DocumentView,
    /// The authority's CMS with its time stamp (CAdES-T), base64 DER.
    pub cms: String,
    /// The RFC 3161 token, base64 DER.
    pub timestamp_token: String,
}

const CONSENT_SENT: &str = "Субъекту отправлен одноразовый пароль для согласия на предоставление документа";

impl Portal {
    /// A system asks for a subject's document: a consent code goes to the subject's phone.
    pub fn system_request_document(&self, cms: &[u8], client: &Client) -> Result<ConsentPending, PortalError> {
        let mut who = String::from("unknown");
        let result = self.system_request_inner(cms, client, &mut who);
        if let Err(e) = &result {
            let mut event = self.document_event(&who, actor::SYSTEM, "consent-requested", e.kind(), client);
            event.detail = Some(e.to_string().chars().take(512).collect());
            self.journal_document(&event);
        }
        result
    }

    fn system_rule(&self, id: &str, signer: &ca_core::cms::CertificateReport) -> Result<&SystemRule, PortalError> {
        let refused = || PortalError::refused("system-not-admitted", "the signer is not an admitted integrated system");
        let rule = self.documents.systems.iter().find(|s| s.id == id).ok_or_else(refused)?;
        if signer_matches(&rule.bin, &rule.role, &rule.certificate_sha256, signer) {
            Ok(rule)
        } else {
            Err(refused())
        }
    }

    fn system_request_inner(
        &self,
        cms: &[u8],
        client: &Client,
        who: &mut String,
    ) -> Result<ConsentPending, PortalError> {
        let verified = self.verify_signed_request::<DocumentRequest>(cms)?;
        let req = verified.request;
        *who = req.system.clone();
        let rule = self.system_rule(&req.system, &verified.signer)?;
        if !rule.types.contains(&req.doc_type) {
            return Err(PortalError::refused(
                "document-type-not-allowed",
                format!("{} may not receive documents of type {:?}", rule.name, req.doc_type),
            ));
        }
        let iin = Iin::from_str(&req.subject_iin).map_err(|e| PortalError::invalid("invalid-iin", e.to_string()))?;
        let unavailable = || {
            PortalError::refused(
                "consent-unavailable",
                "the subject cannot be asked for consent (no account with a bound phone)",
            )
        };
        let account = self
            .store
            .account_by_login(&iin.to_string())?
            .filter(|a| a.kind == AccountKind::Individual)
            .ok_or_else(unavailable)?;
        let phone = self.phones.bound_phone(&account).map_err(PortalError::Unavailable)?.ok_or_else(unavailable)?;
        let sms = self.sms.as_ref().ok_or_else(|| PortalError::Unavailable("no SMS gateway is configured".into()))?;
        self.use_request_id(&req.request_id)?;
        let now = self.clock.now();
        let expires_at = now + self.otp.ttl();
        let mut event = self.document_event(&req.system, actor::SYSTEM, "consent-requested", "ok", client);
        event.subject_iin = Some(req.subject_iin.clone());
        event.detail = Some(format!("{} asks for {}", rule.name, req.doc_type));
        self.store.create_release_request(
            &ReleaseRequest {
                id: req.request_id.clone(),
                system: req.system.clone(),
                subject_iin: req.subject_iin.clone(),
                doc_type: req.doc_type.clone(),
                created_at: now,
                expires_at,
                released_at: None,
            },
            &event,
        )?;
        let code = self.otp.issue(PURPOSE, &req.request_id)?;
        let text = Zeroizing::new(format!(
            "{} запрашивает ваш документ «{}». Код согласия: {} (действует {} мин.). Сообщите его, только если согласны.",
            rule.name,
            req.doc_type,
            *code,
            self.otp.ttl().whole_minutes()
        ));
        sms.send(&phone, &text).map_err(PortalError::Unavailable)?;
        Ok(ConsentPending { document_request: req.request_id, expires_at, message: CONSENT_SENT.into() })
    }

    /// A system relays the subject's consent code: the document, once.
    pub fn system_release_document(&self, cms: &[u8], client: &Client) -> Result<Released, PortalError> {
        let mut who = String::from("unknown");
        let mut subject = None;
        let result = self.system_release_inner(cms, client, &mut who, &mut subject);
        if let Err(e) = &result {
            let mut event = self.document_event(&who, actor::SYSTEM, "released", e.kind(), client);
            event.subject_iin = subject;
            event.detail = Some(e.to_string().chars().take(512).collect());
            self.journal_document(&event);
        }
        result
    }

    fn system_release_inner(
        &self,
        cms: &[u8],
        client: &Client,
        who: &mut String,
        subject: &mut Option<String>,
    ) -> Result<Released, PortalError> {
        let verified = self.verify_signed_request::<ConsentRelay>(cms)?;
        let relay = verified.request;
        *who = relay.system.clone();
        let rule = self.system_rule(&relay.system, &verified.signer)?;
        let not_found = || PortalError::not_found("request-not-found", "no such document request of this system");
        let request = self
            .store
            .release_request(&relay.document_request)?
            .filter(|r| r.system == rule.id)
            .ok_or_else(not_found)?;
        *subject = Some(request.subject_iin.clone());
        if request.released_at.is_some() {
            return Err(PortalError::refused("already-released", "the document was already released for this request"));
        }
        self.use_request_id(&relay.request_id)?;
        match self.otp.check(PURPOSE, &request.id, &relay.code)? {
            OtpOutcome::Accepted => {}
            OtpOutcome::Wrong { .. } => {
                return Err(PortalError::unauthenticated("wrong-otp", "Неверный одноразовый пароль"))
            }
            OtpOutcome::NoValidCode => {
                return Err(PortalError::unauthenticated(
                    "no-valid-otp",
                    "Неверный или просроченный одноразовый пароль",
                ))
            }
        }
        let doc = self
            .store
            .current_document(&request.subject_iin, &request.doc_type)?
            .ok_or_else(|| PortalError::not_found("document-not-found", "Документ не найден"))?;
        let mut event = self.document_event(&rule.id, actor::SYSTEM, "released", "ok", client);
        event.document_id = Some(doc.id);
        event.subject_iin = Some(doc.subject_iin.clone());
        event.channel = Some("system".into());
        event.detail = Some(format!("released to {} with the subject's consent", rule.name));
        if !self.store.mark_released(&request.id, self.clock.now(), &event)? {
            return Err(PortalError::refused("already-released", "the document was already released for this request"));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(Released {
            cms: b64.encode(&doc.cms),
            timestamp_token: b64.encode(&doc.timestamp_token),
            document: self.document_view(&doc, Standing::System, true)?,
        })
    }
}
