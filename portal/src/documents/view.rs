//! The subject's view: his documents (and those of the minors he represents), each with its
//! verification report — the authority's signature, the signer, the authority as the
//! allow-list knows it, and the time stamp.

use ca_core::cms::{CmsVerification, TimeSource};
use ca_core::identity::Iin;
use serde::Serialize;
use time::OffsetDateTime;

use super::submission::DocumentSubmission;
use crate::account::AccountKind;
use crate::error::PortalError;
use crate::login::session::Authenticated;
use crate::registry::Relation;
use crate::store::documents::StoredDocument;
use crate::store::Account;
use crate::Portal;

/// Whose document a caller sees, and as whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    Subject,
    /// A parent or guardian of a minor subject.
    Representative(Relation),
    /// A third party who resolved an access grant.
    ThirdParty,
    /// An integrated system after the subject's consent.
    System,
}

/// The authority as the allow-list knows it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthorityReport {
    pub bin: String,
    pub name: Option<String>,
    /// Listed, with this document type, today.
    pub authorised: bool,
    /// The signer's certificate carries the authority's BIN.
    pub signer_is_authority: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SignerSummary {
    pub subject: String,
    pub serial: String,
    pub issuer: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub bin: Option<String>,
    pub iin: Option<String>,
    pub organisation: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimestampSummary {
    pub valid: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub time: Option<OffsetDateTime>,
    pub tsa: Option<String>,
    pub problem: Option<String>,
}

/// The verification report of a stored document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerificationReport {
    /// The signature is valid, by the authority, and proven in time by a valid time stamp.
    pub valid: bool,
    pub signature_valid: bool,
    pub signer: Option<SignerSummary>,
    pub authority: AuthorityReport,
    pub timestamp: Option<TimestampSummary>,
    #[serde(with = "time::serde::rfc3339")]
    pub validation_time: OffsetDateTime,
    /// `timestamp` when the time stamp's genTime was used.
    pub validation_time_source: String,
    /// What failed, in words.
    pub problems: Vec<String>,
}

/// A document as shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DocumentView {
    pub id: i64,
    pub doc_type: String,
    pub number: String,
    pub title: String,
    pub version: i64,
    /// False for an older version kept in history.
    pub current: bool,
    pub subject_iin: String,
    pub authority_bin: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub stamped_at: OffsetDateTime,
    pub data: serde_json::Value,
    pub rendering: String,
    pub standing: Standing,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<VerificationReport>,
}

/// A line of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentListItem {
    pub id: i64,
    pub doc_type: String,
    pub number: String,
    pub title: String,
    pub version: i64,
    pub current: bool,
    pub subject_iin: String,
    pub authority_bin: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    pub standing: Standing,
}

impl Portal {
    /// The IINs whose documents `account` sees as subject or representative, with the standing.
    /// Only individual accounts have documents; a representative sees a child's documents until
    /// the child's 18th birthday (the day in Kazakhstan, UTC+5, by the portal's clock).
    pub fn represented(&self, account: &Account) -> Result<Vec<(String, Standing)>, PortalError> {
        if account.kind != AccountKind::Individual {
            return Ok(Vec::new());
        }
        let mut out = vec![(account.iin.clone(), Standing::Subject)];
        let Ok(me) = account.iin.parse::<Iin>() else { return Ok(out) };
        let today = (self.clock.now() + time::Duration::hours(5)).date();
        let children = self.representatives.children_of(&me).map_err(|e| PortalError::Unavailable(e.to_string()))?;
        for link in children {
            if link.minor_on(today) {
                out.push((link.child.to_string(), Standing::Representative(link.relation)));
            }
        }
        Ok(out)
    }

    /// The standing of `account` toward a document of `subject_iin`, if it may see it.
    pub(crate) fn standing(&self, account: &Account, subject_iin: &str) -> Result<Option<Standing>, PortalError> {
        Ok(self.represented(account)?.into_iter().find(|(iin, _)| iin == subject_iin).map(|(_, s)| s))
    }

    /// The caller's documents (current versions, or with history), newest first.
    pub fn list_documents(
        &self,
        auth: &Authenticated,
        with_history: bool,
    ) -> Result<Vec<DocumentListItem>, PortalError> {
        let mut out = Vec::new();
        for (iin, standing) in self.represented(&auth.account)? {
            for d in self.store.documents_of(&iin, with_history)? {
                out.push(DocumentListItem {
                    id: d.id,
                    doc_type: d.doc_type,
                    number: d.number,
                    title: d.title,
                    version: d.version,
                    current: d.superseded_by.is_none(),
                    subject_iin: d.subject_iin,
                    authority_bin: d.authority_bin,
                    issued_at: d.issued_at,
                    standing,
                });
            }
        }
        Ok(out)
    }

    /// One of the caller's documents with its verification report. Another's document, or a
    /// child's after 18, is "not found" (nothing said about whether it exists).
    pub fn my_document(&self, auth: &Authenticated, id: i64) -> Result<DocumentView, PortalError> {
        let not_found = || PortalError::not_found("document-not-found", "Документ не найден");
        let doc = self.store.document(id)?.ok_or_else(not_found)?;
        let standing = self.standing(&auth.account, &doc.subject_iin)?.ok_or_else(not_found)?;
        self.document_view(&doc, standing, true)
    }

    /// A stored document as shown, with the report when `report`.
    pub fn document_view(
        &self,
        doc: &StoredDocument,
        standing: Standing,
        report: bool,
    ) -> Result<DocumentView, PortalError> {
        let submission: DocumentSubmission = serde_json::from_slice(&doc.content)
            .map_err(|e| PortalError::internal(format!("stored document {}: {e}", doc.id)))?;
        let report = if report { Some(self.verification_report(doc)?) } else { None };
        Ok(DocumentView {
            id: doc.id,
            doc_type: doc.doc_type.clone(),
            number: doc.number.clone(),
            title: doc.title.clone(),
            version: doc.version,
            current: doc.superseded_by.is_none(),
            subject_iin: doc.subject_iin.clone(),
            authority_bin: doc.authority_bin.clone(),
            issued_at: doc.issued_at,
            stamped_at: doc.stamped_at,
            data: submission.data,
            rendering: submission.rendering,
            standing,
            report,
        })
    }

    /// Verify the stored signature now, at the time its time stamp proves.
    pub fn verification_report(&self, doc: &StoredDocument) -> Result<VerificationReport, PortalError> {
        let v = self.trust.verify_report(&doc.cms, self.clock.now())?;
        Ok(report_of(&v, doc, &self.documents))
    }
}

fn report_of(v: &CmsVerification, doc: &StoredDocument, config: &super::config::DocumentsConfig) -> VerificationReport {
    let rule = config.authorities.iter().find(|a| a.bin == doc.authority_bin);
    let mut problems: Vec<String> = v.findings.iter().filter(|f| f.fatal).map(|f| f.message.clone()).collect();
    let signer = v.signers.first();
    if let Some(s) = signer {
        problems.extend(s.findings.iter().filter(|f| f.fatal).map(|f| f.message.clone()));
    }
    let certificate = signer.and_then(|s| s.certificate.as_deref());
    let signer_is_authority =
        certificate.is_some_and(|c| c.identity.bin.is_some_and(|b| b.to_string() == doc.authority_bin));
    let authorised = rule.is_some_and(|r| r.types.contains(&doc.doc_type));
    let timestamp = signer.and_then(|s| s.timestamp.as_ref()).map(|t| TimestampSummary {
        valid: t.valid,
        time: t.time,
        tsa: t.tsa.clone(),
        problem: t.problem.clone(),
    });
    let stamped = timestamp.as_ref().is_some_and(|t| t.valid);
    if !stamped {
        problems.push("the document carries no valid time stamp".into());
    }
    if !signer_is_authority {
        problems.push("the signer's certificate does not carry the authority's BIN".into());
    }
    VerificationReport {
        valid: v.valid && v.signers.len() == 1 && stamped && signer_is_authority,
        signature_valid: signer.is_some_and(|s| s.signature_valid),
        signer: certificate.map(|c| SignerSummary {
            subject: c.subject.clone(),
            serial: c.serial.clone(),
            issuer: c.issuer.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
            bin: c.identity.bin.map(|b| b.to_string()),
            iin: c.identity.iin.map(|i| i.to_string()),
            organisation: c.identity.organisation.clone(),
        }),
        authority: AuthorityReport {
            bin: doc.authority_bin.clone(),
            name: rule.map(|r| r.name.clone()),
            authorised,
            signer_is_authority,
        },
        timestamp,
        validation_time: signer.map_or(doc.stamped_at, |s| s.validation_time),
        validation_time_source: match signer.map(|s| s.validation_time_source) {
            Some(TimeSource::Timestamp) => "timestamp",
            Some(TimeSource::RelyingParty) => "relying-party",
            Some(TimeSource::SigningTime) => "signing-time",
            _ => "now",
        }
        .into(),
        problems,
    }
}
