//! The phone-binding part of the portal's storage: bindings (one current per account and per
//! number, history kept), one-time-password sessions of the binding flow, the append-only
//! journal of binding attempts, and the SMS outbox.
//!
//! Everything that decides under concurrency is one transaction: a code is stored with its
//! SMS and the send limits are checked in the same transaction; a binding closes its session,
//! ends the previous binding and queues the notices in the same transaction.

use ca_core::store::StoreError;
use time::OffsetDateTime;

use super::{NewAccount, NewMail, NewOtp};

/// How a number came to be bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// The portal's cabinet: OTP + the person's EDS.
    Portal,
    /// The e-government mobile application (biometric authentication), an authorised system.
    MobileApp,
    /// A bank's mobile application (the bank's KYC), an authorised system.
    BankApp,
    /// A State Corporation counter: OTP + the operator's service EDS.
    Counter,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Self::Portal => "portal",
            Self::MobileApp => "mobile-app",
            Self::BankApp => "bank-app",
            Self::Counter => "counter",
        }
    }
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Portal, Self::MobileApp, Self::BankApp, Self::Counter].into_iter().find(|c| c.name() == name)
    }
}

/// A binding, current or ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PhoneBinding {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub account_id: i64,
    pub phone: String,
    pub channel: Channel,
    #[serde(with = "time::serde::rfc3339")]
    pub bound_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// `changed` (another number was bound).
    pub end_reason: Option<String>,
    /// Who vouched (the signer's certificate, the operator, the partner system) as JSON text.
    #[serde(skip)]
    pub evidence: String,
    /// From the code request to the binding, against the service's 10-minute budget.
    pub service_seconds: i64,
}

/// A text message to queue. `message_id` is stable: every delivery attempt of the message
/// carries it, so a gateway can drop a repeat.
#[derive(Clone, Debug)]
pub struct NewSms {
    pub message_id: String,
    pub to: String,
    pub body: String,
    /// `phone-code`, `login-code`, `phone-notice`.
    pub purpose: String,
    /// The IIN it was sent for (the send limits count by it), if any.
    pub login: Option<String>,
    /// A code that has expired is not worth sending: the message is dropped then.
    pub expires_at: Option<OffsetDateTime>,
}

/// A queued SMS claimed for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedSms {
    pub id: i64,
    pub message_id: String,
    pub to: String,
    pub body: String,
    pub attempts: u32,
    pub expires_at: Option<OffsetDateTime>,
}

/// An SMS as the outbox lists it (the body is erased once sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsRecord {
    pub message_id: String,
    pub to: String,
    pub purpose: String,
    pub attempts: u32,
    pub sent_at: Option<OffsetDateTime>,
    /// `sent`, `pending`, `expired`.
    pub state: String,
    pub last_error: Option<String>,
}

/// How often codes may be sent, per IIN and per number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendLimits {
    /// The least time between two codes.
    pub resend_after: time::Duration,
    /// Codes in any hour.
    pub per_hour: u32,
}

/// A binding code to send: its OTP session, the code's hash and the SMS, stored together.
#[derive(Clone, Debug)]
pub struct NewPhoneCode {
    pub session_id: String,
    /// The account, when there is one (the counter may bind for a person without one).
    pub account_id: Option<i64>,
    pub login: String,
    pub phone: String,
    pub channel: Channel,
    /// Who asked for it: the signer of a system request, or empty for the person himself.
    pub requested_by: String,
    pub otp: NewOtp,
    pub sms: NewSms,
    pub limits: SendLimits,
}

/// What storing a code answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeIssue {
    /// Stored and queued; earlier open sessions of the login are closed.
    Queued,
    /// Over a send limit: nothing stored; the next code may be sent at `retry_at`.
    Throttled { retry_at: OffsetDateTime },
    /// The number is bound to another account.
    PhoneTaken,
}

/// An OTP session of the binding flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneSession {
    pub id: String,
    pub account_id: Option<i64>,
    pub login: String,
    pub phone: String,
    pub channel: Channel,
    pub requested_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
}

/// The account a binding goes to.
#[derive(Clone, Debug)]
pub enum BindingAccount {
    Existing(i64),
    /// Created in the same transaction unless the login has an account by then (the counter).
    CreateUnlessExists(NewAccount),
}

/// A binding to record.
#[derive(Clone, Debug)]
pub struct NewBinding {
    pub session_id: String,
    pub account: BindingAccount,
    pub phone: String,
    pub channel: Channel,
    pub at: OffsetDateTime,
    pub evidence: String,
    /// The signed request, kept as evidence (DER CMS).
    pub signed_request: Vec<u8>,
    /// To the previous number, if one is replaced.
    pub old_number_notice: Option<String>,
    /// To the account's email, if a number is replaced.
    pub mail: Option<NewMail>,
}

/// What recording a binding answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindOutcome {
    Bound {
        account_id: i64,
        /// The account was created in this step.
        created: bool,
        /// The number it replaced.
        previous: Option<String>,
    },
    /// The number is bound to another account; nothing changed.
    PhoneTaken,
    /// The OTP session was closed meanwhile (used, replaced); nothing changed.
    SessionClosed,
}

/// One binding attempt, journaled for good (success or refusal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneAttempt {
    pub at: OffsetDateTime,
    pub login: String,
    pub phone: Option<String>,
    pub channel: Channel,
    /// `code-sent`, `bound`, `changed`, `refused`.
    pub outcome: String,
    /// Machine-readable reason of a refusal (the error kind); empty on success.
    pub reason: String,
    /// The signer (serial and subject) or partner system, if any.
    pub actor: Option<String>,
    pub session_id: Option<String>,
    pub client_address: Option<String>,
}

/// The phone-binding storage.
pub trait PhoneStore {
    /// Store a binding code, its OTP session and its SMS in one transaction, after the send
    /// limits and the number's availability are checked in it.
    fn issue_phone_code(&self, code: &NewPhoneCode, now: OffsetDateTime) -> Result<CodeIssue, StoreError>;
    fn phone_session(&self, id: &str) -> Result<Option<PhoneSession>, StoreError>;
    /// Record a binding (see [`NewBinding`]) and close its session, in one transaction.
    fn bind_phone(&self, binding: &NewBinding) -> Result<BindOutcome, StoreError>;
    fn current_binding(&self, account_id: i64) -> Result<Option<PhoneBinding>, StoreError>;
    /// The account that has `phone` bound now.
    fn account_with_phone(&self, phone: &str) -> Result<Option<i64>, StoreError>;
    /// Every binding of the account, newest first.
    fn binding_history(&self, account_id: i64) -> Result<Vec<PhoneBinding>, StoreError>;

    fn journal_phone_attempt(&self, attempt: &PhoneAttempt) -> Result<(), StoreError>;
    /// The journal, oldest first; for one login or all.
    fn phone_attempts(&self, login: Option<&str>, limit: u32) -> Result<Vec<PhoneAttempt>, StoreError>;

    /// Queue a message on its own (a login code, a notice).
    fn queue_sms(&self, sms: &NewSms, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Due messages, at most `limit`, leased until `now + lease` (another sender skips them;
    /// a sender that dies leaves them due again when the lease ends).
    fn claim_sms(&self, now: OffsetDateTime, lease: time::Duration, limit: u32) -> Result<Vec<QueuedSms>, StoreError>;
    /// The gateway accepted it: marked sent, the body (which may hold a code) erased.
    fn sms_sent(&self, id: i64, now: OffsetDateTime, gateway_ref: Option<&str>) -> Result<(), StoreError>;
    /// Not accepted: try again at `next_attempt_at`.
    fn sms_failed(&self, id: i64, error: &str, next_attempt_at: OffsetDateTime) -> Result<(), StoreError>;
    /// Its code expired before it could be sent: dropped, the body erased.
    fn sms_expired(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError>;
    /// The outbox, oldest first.
    fn sms_outbox(&self, limit: u32) -> Result<Vec<SmsRecord>, StoreError>;
}
