//! What the store keeps for digital documents (document 003): documents with their versions,
//! the authority's signature with its time stamp, access grants (QR token and short code),
//! integrated systems' release requests, and the journal of every document event — which is
//! also each cabinet's history (view marks, access opened and withdrawn, releases).

use ca_core::store::StoreError;
use time::OffsetDateTime;

/// A document to store (already verified and time-stamped).
#[derive(Clone, Debug)]
pub struct NewDocument {
    pub authority_bin: String,
    pub subject_iin: String,
    pub doc_type: String,
    /// The authority's own number of the document: unique per authority.
    pub number: String,
    pub title: String,
    pub issued_at: OffsetDateTime,
    /// The canonical document bytes the authority signed.
    pub content: Vec<u8>,
    /// The authority's CMS with the time stamp token added as an unsigned attribute (CAdES-T).
    pub cms: Vec<u8>,
    /// The RFC 3161 token (ContentInfo DER) over the authority's signature value.
    pub timestamp_token: Vec<u8>,
    pub stamped_at: OffsetDateTime,
    pub received_at: OffsetDateTime,
}

/// A stored document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: i64,
    pub authority_bin: String,
    pub subject_iin: String,
    pub doc_type: String,
    pub number: String,
    pub title: String,
    /// 1 for the first document of this type for this subject, then 2, 3 …
    pub version: i64,
    pub issued_at: OffsetDateTime,
    pub content: Vec<u8>,
    pub cms: Vec<u8>,
    pub timestamp_token: Vec<u8>,
    pub stamped_at: OffsetDateTime,
    pub received_at: OffsetDateTime,
    /// The newer version that replaced it in the view (history keeps it).
    pub superseded_by: Option<i64>,
}

/// How storing a document went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentStored {
    /// Stored as `version`; the previous current version of the type (if any) is superseded.
    Stored { id: i64, version: i64 },
    /// The authority already submitted a document with this number (nothing changed).
    DuplicateNumber,
}

/// An access grant to open (only the token's SHA-256 is kept).
#[derive(Clone, Debug)]
pub struct NewGrant {
    pub document_id: i64,
    /// The account that opened access: the subject's or a representative's (the consent).
    pub opened_by: i64,
    pub token_hash: [u8; 32],
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A grant as listed to the one who opened it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    pub id: i64,
    pub document_id: i64,
    #[serde(skip)]
    pub opened_by: i64,
    pub short_code: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub withdrawn_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_at: Option<OffsetDateTime>,
}

/// The limits on short-code guessing, applied in the transaction of each lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeLimits {
    /// Wrong codes one third party may enter within `viewer_window`.
    pub per_viewer: u32,
    pub viewer_window: time::Duration,
    /// Wrong codes everyone together may enter within `global_window`.
    pub global: u32,
    pub global_window: time::Duration,
    /// Wrong codes entered (by anyone) during a code's life after which the code is locked.
    pub lock_after: u32,
}

/// What resolving a QR token or a short code found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// A live grant: the document it opens.
    Granted { grant: Grant },
    /// No live grant has this token or code (the wrong try is counted).
    NotFound,
    /// The grant exists but expired, was withdrawn or locked.
    Closed { reason: &'static str },
    /// Too many wrong codes: by this third party, or by everyone.
    RateLimited { global: bool },
}

/// One event of the document journal (append-only).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DocumentEvent {
    #[serde(skip)]
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub document_id: Option<i64>,
    /// Whose document it is.
    pub subject_iin: Option<String>,
    /// Who acted: an account's login (IIN or BIN), an authority's BIN, an integrated system.
    pub actor: String,
    /// `subject`, `representative`, `third-party`, `organisation`, `authority`, `system`.
    pub actor_kind: String,
    /// `submitted`, `access-opened`, `access-withdrawn`, `viewed`, `resolve`, `consent-requested`,
    /// `released` …
    pub action: String,
    /// `qr`, `code`, `system`, or none.
    pub channel: Option<String>,
    /// `ok`, or the refusal's kind.
    pub outcome: String,
    pub detail: Option<String>,
    pub client_address: Option<String>,
}

/// A request of an integrated system for a subject's document, waiting for consent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseRequest {
    pub id: String,
    pub system: String,
    pub subject_iin: String,
    pub doc_type: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub released_at: Option<OffsetDateTime>,
}

/// The documents part of the portal's storage.
pub trait DocumentStore: Send + Sync {
    /// Store a document as the next version of its type for its subject, superseding the
    /// current one, and journal `event`, in one transaction.
    fn store_document(&self, doc: &NewDocument, event: &DocumentEvent) -> Result<DocumentStored, StoreError>;
    fn document(&self, id: i64) -> Result<Option<StoredDocument>, StoreError>;
    /// The subject's documents: current versions only, or with history; newest first.
    fn documents_of(&self, subject_iin: &str, with_history: bool) -> Result<Vec<StoredDocument>, StoreError>;
    /// The current version of a type, if any.
    fn current_document(&self, subject_iin: &str, doc_type: &str) -> Result<Option<StoredDocument>, StoreError>;

    /// Open a grant with a random six-digit code unique among live grants (`draw` gives the
    /// candidates; a taken one is drawn again), journaling `event`. The grant with its code.
    fn open_grant(
        &self,
        grant: &NewGrant,
        draw: &mut dyn FnMut() -> Result<String, StoreError>,
        event: &DocumentEvent,
    ) -> Result<Grant, StoreError>;
    fn grant(&self, id: i64) -> Result<Option<Grant>, StoreError>;
    /// Grants opened by an account, newest first.
    fn grants_by(&self, account_id: i64) -> Result<Vec<Grant>, StoreError>;
    /// Withdraw a live grant; `false` if it was not live (nothing changed).
    fn withdraw_grant(&self, id: i64, now: OffsetDateTime, event: &DocumentEvent) -> Result<bool, StoreError>;
    /// Resolve a QR token hash: no rate limit (128 bits are not guessable), the attempt
    /// journaled as `event` with the outcome filled in.
    fn resolve_token(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
        event: &DocumentEvent,
    ) -> Result<Resolution, StoreError>;
    /// Resolve a short code for `event.actor` under `limits`: the rate limits checked, a wrong
    /// code counted against every live code (and those reaching `lock_after` locked), the attempt
    /// journaled — all in one transaction.
    fn resolve_code(
        &self,
        code: &str,
        now: OffsetDateTime,
        limits: &CodeLimits,
        event: &DocumentEvent,
    ) -> Result<Resolution, StoreError>;

    /// Append to the document journal.
    fn journal_document_event(&self, event: &DocumentEvent) -> Result<(), StoreError>;
    /// The history shown in a cabinet: events about the subject's documents (`subject_iin`)
    /// and events the account itself performed (`actor`), successful ones, newest first.
    fn cabinet_history(
        &self,
        subject_iins: &[String],
        actor: &str,
        limit: u32,
    ) -> Result<Vec<DocumentEvent>, StoreError>;
    /// Every journaled event (tests, audit), oldest first.
    fn document_events(&self, limit: u32) -> Result<Vec<DocumentEvent>, StoreError>;

    fn create_release_request(&self, request: &ReleaseRequest, event: &DocumentEvent) -> Result<(), StoreError>;
    fn release_request(&self, id: &str) -> Result<Option<ReleaseRequest>, StoreError>;
    /// Mark released (once): `false` if it already was.
    fn mark_released(&self, id: &str, now: OffsetDateTime, event: &DocumentEvent) -> Result<bool, StoreError>;
}
