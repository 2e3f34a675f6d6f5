//! An authority submits a document: a signed request whose content *is* the document in its
//! canonical form. The portal verifies the signature, that the signer is the authority the
//! document names (the allow-list of `[[documents.authorities]]`) and that it may issue this
//! type, gets a time stamp over the signature value, and stores the CMS (now CAdES-T) as the
//! next version of the subject's document of this type.

use std::str::FromStr;

use ca_core::identity::Iin;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::signed_request::{SignedRequest, Verified};
use super::timestamp::{signature_value, with_timestamp};
use super::{actor, config::AuthorityRule};
use crate::error::PortalError;
use crate::store::documents::{DocumentStored, NewDocument};
use crate::{Client, Portal};

/// Longest rendering (the human-readable form), in bytes.
pub const MAX_RENDERING: usize = 64 * 1024;

/// The document as the authority signs it. Fields in alphabetical order: the canonical JSON
/// is this struct as `serde_json` writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentSubmission {
    pub authority_bin: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The document's data, as the authority's system holds it.
    pub data: serde_json::Value,
    pub doc_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    pub number: String,
    /// The human-readable rendering (plain text).
    pub rendering: String,
    pub request_id: String,
    pub subject_iin: String,
    pub title: String,
}

impl SignedRequest for DocumentSubmission {
    fn request_id(&self) -> &str {
        &self.request_id
    }
    fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }
}

/// What the authority is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Submitted {
    pub document_id: i64,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub stamped_at: OffsetDateTime,
}

impl Portal {
    /// Accept a document signed by an authority (CMS as DER, base64 or PEM). Every attempt is
    /// journaled.
    pub fn submit_document(&self, cms: &[u8], client: &Client) -> Result<Submitted, PortalError> {
        let mut who = String::from("unknown");
        let result = self.submit_inner(cms, client, &mut who);
        if let Err(e) = &result {
            let mut event = self.document_event(&who, actor::AUTHORITY, "submit", e.kind(), client);
            event.detail = Some(e.to_string().chars().take(512).collect());
            self.journal_document(&event);
        }
        result
    }

    fn submit_inner(&self, cms: &[u8], client: &Client, who: &mut String) -> Result<Submitted, PortalError> {
        let stamper = self
            .stamper
            .as_ref()
            .ok_or_else(|| PortalError::Unavailable("no time-stamping authority is configured".into()))?;
        let Verified { request: doc, signer, cms, content } = self.verify_signed_request::<DocumentSubmission>(cms)?;
        *who = signer.identity.bin.map(|b| b.to_string()).unwrap_or_else(|| signer.subject.clone());
        let authority = self.authority_for(&doc.authority_bin, &signer)?;
        if !authority.types.contains(&doc.doc_type) {
            return Err(PortalError::refused(
                "document-type-not-allowed",
                format!("{} may not issue documents of type {:?}", authority.name, doc.doc_type),
            ));
        }
        let subject = Iin::from_str(doc.subject_iin.trim())
            .map_err(|e| PortalError::invalid("invalid-iin", format!("subject_iin: {e}")))?;
        if subject.to_string() != doc.subject_iin {
            return Err(PortalError::invalid("invalid-iin", "subject_iin must be 12 digits without spaces"));
        }
        if doc.number.trim().is_empty() || doc.number.len() > 64 {
            return Err(PortalError::invalid("invalid-document", "number: 1 to 64 characters"));
        }
        if doc.title.trim().is_empty() || doc.title.len() > 256 {
            return Err(PortalError::invalid("invalid-document", "title: 1 to 256 characters"));
        }
        if doc.rendering.len() > MAX_RENDERING {
            return Err(PortalError::invalid("invalid-document", "the rendering is larger than 64 KiB"));
        }
        let now = self.clock.now();
        if doc.issued_at > now + time::Duration::minutes(5) {
            return Err(PortalError::invalid("invalid-document", "issued_at is in the future"));
        }
        let signature = signature_value(&cms).map_err(|e| PortalError::invalid("malformed-cms", e))?;
        let token = stamper.stamp(&signature).map_err(|e| PortalError::Unavailable(e.to_string()))?;
        let stamped = with_timestamp(&cms, &token.der).map_err(PortalError::internal)?;
        self.use_request_id(&doc.request_id)?;
        let mut event = self.document_event(who, actor::AUTHORITY, "submitted", "ok", client);
        event.subject_iin = Some(doc.subject_iin.clone());
        event.detail = Some(format!("{} {} by {}", doc.doc_type, doc.number, authority.name));
        let stored = self.store.store_document(
            &NewDocument {
                authority_bin: doc.authority_bin.clone(),
                subject_iin: doc.subject_iin.clone(),
                doc_type: doc.doc_type.clone(),
                number: doc.number.clone(),
                title: doc.title.clone(),
                issued_at: doc.issued_at,
                content,
                cms: stamped,
                timestamp_token: token.der,
                stamped_at: token.gen_time,
                received_at: now,
            },
            &event,
        )?;
        match stored {
            DocumentStored::Stored { id, version } => {
                tracing::info!(document = id, version, authority = %doc.authority_bin, doc_type = %doc.doc_type, "document stored");
                Ok(Submitted { document_id: id, version, stamped_at: token.gen_time })
            }
            DocumentStored::DuplicateNumber => {
                Err(PortalError::Duplicate(format!("the authority already submitted document number {}", doc.number)))
            }
        }
    }

    /// The allow-listed authority `bin` names, if `signer` is it.
    fn authority_for(
        &self,
        bin: &str,
        signer: &ca_core::cms::CertificateReport,
    ) -> Result<&AuthorityRule, PortalError> {
        let refused = || {
            PortalError::refused(
                "authority-not-authorised",
                "the signer is not an authorised issuer of digital documents",
            )
        };
        let rule = self.documents.authorities.iter().find(|a| a.bin == bin).ok_or_else(refused)?;
        if super::config::signer_matches(&rule.bin, &rule.role, &rule.certificate_sha256, signer) {
            Ok(rule)
        } else {
            Err(refused())
        }
    }
}
