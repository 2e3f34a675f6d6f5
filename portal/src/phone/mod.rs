//! Binding a mobile phone number to a portal account (documents 000 and 001).
//!
//! Every channel has the same core: a 6-digit one-time password is sent by SMS to the number
//! (stored as a salted hash with its OTP session and queued in the SMS outbox in one
//! transaction, under send limits per IIN and per number), and the binding needs that code
//! plus a signature: the person's own EDS in the cabinet ([`cabinet`]), the operator's service
//! EDS at a State Corporation counter, or an authorised partner system's certificate with its
//! assertion of how it authenticated the person ([`system`]).
//!
//! A wrong code is refused at once and the person may try again with the right one; after
//! `max_attempts` wrong codes (5) the session is spent and a new code is needed. A number is
//! bound to at most one account and an account has at most one number; a change ends the old
//! binding (kept as history) and notifies the old number and the account's email. Every
//! attempt, success or refusal, is journaled (append-only); codes are never logged.

pub mod cabinet;
pub mod config;
pub mod number;
pub mod system;
pub mod workstation;

use std::str::FromStr;
use std::sync::Arc;

use ca_core::clock::Clock;
use rand_core::{OsRng, RngCore};
use time::OffsetDateTime;

pub use number::{PhoneNumber, PhoneNumberError};

use crate::error::PortalError;
use crate::login::otp_login::BoundPhones;
use crate::notify::sms::{new_message_id, SmsDispatcher};
use crate::otp::{OtpService, MAX_TTL};
use crate::store::phone::{Channel, CodeIssue, NewPhoneCode, NewSms, PhoneAttempt, PhoneSession};
use crate::store::{Account, OtpOutcome, PortalStore};
use crate::{Client, Portal};

use config::PhoneConfig;

/// The OTP purpose of binding codes (the subject is the OTP session id).
pub const PURPOSE: &str = "phone-binding";

/// The service's time budget (document 001: 10 minutes).
pub const SERVICE_BUDGET: time::Duration = time::Duration::minutes(10);

/// What people see. The documents give the refusal grounds, not their wording.
pub mod messages {
    /// A wrong code: refused at once, the person may enter the right one.
    pub const WRONG_CODE: &str = "Неверный проверочный код. Проверьте код из SMS и введите его еще раз";
    pub const SESSION_SPENT: &str = "Проверочный код недействителен: истек срок его действия или исчерпаны попытки ввода. Запросите новый проверочный код";
    pub const PHONE_TAKEN: &str = "Данный номер телефона уже привязан к другой учетной записи";
    pub const ALREADY_BOUND: &str = "Данный номер телефона уже привязан к Вашей учетной записи";
    pub const NO_CONSENT: &str =
        "Отказ в привязке номера: нет согласия на использование сведений, составляющих охраняемую законом тайну";
    pub const NO_AGREEMENT: &str =
        "Отказ в привязке номера: нет согласия с Соглашением о подключении абонентского номера к учетной записи";
    pub const REGISTRY_MISMATCH: &str = "Отказ в привязке номера: данные заявителя не соответствуют данным государственной базы данных «Физические лица»";
    pub const BIOMETRY_FAILED: &str = "Отказ в привязке номера: биометрическая аутентификация не пройдена";
    pub const KYC_FAILED: &str = "Отказ в привязке номера: банк не подтвердил личность заявителя";
    pub const INDIVIDUALS_ONLY: &str =
        "Привязка абонентского номера доступна только для учетных записей физических лиц";
    pub const NO_ACCOUNT: &str = "Учетная запись для данного ИИН не найдена: зарегистрируйтесь на Портале";
    pub const CODE_SENT: &str = "Проверочный код отправлен на указанный номер";
    pub const BOUND: &str = "Номер телефона привязан к учетной записи";
    pub const CHANGED: &str = "Номер телефона учетной записи изменен";
}

/// The phone binding's parts: its settings, its OTP service (its own try limit) and the
/// SMS sender, if a transport is configured.
pub struct PhoneService {
    pub config: PhoneConfig,
    pub otp: OtpService,
    pub dispatcher: Option<SmsDispatcher>,
}

impl PhoneService {
    pub fn new(
        config: PhoneConfig,
        store: Arc<dyn PortalStore>,
        clock: Arc<dyn Clock>,
        dispatcher: Option<SmsDispatcher>,
    ) -> Self {
        let otp = OtpService::new(store, clock, MAX_TTL, config.max_attempts);
        Self { config, otp, dispatcher }
    }
}

/// The canonical bytes of a binding statement: UTF-8 lines `key: value`, LF-ended, in this
/// order, nothing else. What the person (or the system) signs; the portal rebuilds them.
pub fn statement(session_id: &str, iin: &str, phone: &str, channel: Channel) -> Vec<u8> {
    format!(
        "egov-portal phone binding statement v1\nsession: {session_id}\niin: {iin}\nphone: {phone}\nchannel: {}\n",
        channel.name()
    )
    .into_bytes()
}

/// A code was queued: the session it opened and when it ends.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CodeSent {
    pub message: &'static str,
    pub session_id: String,
    pub phone: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The statement to sign (base64), for the cabinet.
    pub statement: String,
}

/// The phone bound to an account, from the store (what OTP login sends its codes to).
pub struct StoreBoundPhones(pub Arc<dyn PortalStore>);

impl BoundPhones for StoreBoundPhones {
    fn bound_phone(&self, account: &Account) -> Result<Option<String>, String> {
        Ok(self.0.current_binding(account.id).map_err(|e| e.to_string())?.map(|b| b.phone))
    }
}

pub(crate) fn parse_phone(text: &str) -> Result<PhoneNumber, PortalError> {
    PhoneNumber::from_str(text).map_err(|e| PortalError::invalid(e.kind(), e.to_string()))
}

fn session_id() -> Result<String, PortalError> {
    let mut id = [0u8; 16];
    OsRng.try_fill_bytes(&mut id).map_err(|e| PortalError::internal(format!("random: {e}")))?;
    Ok(hex::encode(id))
}

/// One journal line in the making.
pub(crate) struct Attempt<'a> {
    pub login: &'a str,
    pub phone: Option<&'a str>,
    pub channel: Channel,
    pub actor: Option<String>,
    pub session_id: Option<&'a str>,
    pub client: &'a Client,
}

impl Portal {
    /// Journal a binding attempt; a journal that cannot be written is logged (the answer does
    /// not change).
    pub(crate) fn journal_phone(&self, a: &Attempt<'_>, outcome: &str, reason: &str) {
        let attempt = PhoneAttempt {
            at: self.clock.now(),
            login: a.login.to_owned(),
            phone: a.phone.map(str::to_owned),
            channel: a.channel,
            outcome: outcome.to_owned(),
            reason: reason.to_owned(),
            actor: a.actor.clone(),
            session_id: a.session_id.map(str::to_owned),
            client_address: a.client.address.clone(),
        };
        if let Err(e) = self.store.journal_phone_attempt(&attempt) {
            tracing::error!(error = %e, outcome, reason, "the phone binding journal could not be written");
        }
        self.metrics.phone_binding(a.channel.name(), if reason.is_empty() { outcome } else { reason });
    }

    /// Journal a refusal and hand it back.
    pub(crate) fn refuse_phone(&self, a: &Attempt<'_>, e: PortalError) -> PortalError {
        self.journal_phone(a, "refused", e.kind());
        e
    }

    /// Open an OTP session for `login` and `phone` and queue its code (see
    /// [`crate::store::phone::PhoneStore::issue_phone_code`]).
    pub(crate) fn send_binding_code(
        &self,
        account_id: Option<i64>,
        login: &str,
        phone: &PhoneNumber,
        channel: Channel,
        requested_by: &str,
    ) -> Result<CodeSent, PortalError> {
        let session_id = session_id()?;
        let (code, otp) = self.phone.otp.prepare(PURPOSE, &session_id)?;
        let minutes = self.phone.otp.ttl().whole_minutes();
        let sms = NewSms {
            message_id: new_message_id().map_err(|e| PortalError::internal(format!("random: {e}")))?,
            to: phone.as_str().to_owned(),
            body: format!("Код для привязки номера к Порталу eGov: {} (действует {minutes} мин.)", *code),
            purpose: "phone-code".into(),
            login: Some(login.to_owned()),
            expires_at: Some(otp.expires_at),
        };
        let expires_at = otp.expires_at;
        let issue = NewPhoneCode {
            session_id: session_id.clone(),
            account_id,
            login: login.to_owned(),
            phone: phone.as_str().to_owned(),
            channel,
            requested_by: requested_by.to_owned(),
            otp,
            sms,
            limits: self.phone.config.limits(),
        };
        match self.store.issue_phone_code(&issue, self.clock.now())? {
            CodeIssue::Queued => {}
            CodeIssue::PhoneTaken => return Err(PortalError::refused("phone-taken", messages::PHONE_TAKEN)),
            CodeIssue::Throttled { retry_at } => {
                let retry_after = (retry_at - self.clock.now()).whole_seconds().max(1);
                return Err(PortalError::TooSoon {
                    message: format!(
                        "Проверочный код отправлялся недавно. Повторная отправка возможна через {retry_after} с"
                    ),
                    until: retry_at,
                    retry_after,
                });
            }
        }
        use base64::Engine;
        Ok(CodeSent {
            message: messages::CODE_SENT,
            statement: base64::engine::general_purpose::STANDARD.encode(statement(
                &session_id,
                login,
                phone.as_str(),
                channel,
            )),
            session_id,
            phone: phone.as_str().to_owned(),
            expires_at,
        })
    }

    /// The open OTP session `id` of `channel` for `login` (and `phone`, when the request
    /// names one); anything else is refused as spent.
    pub(crate) fn open_binding_session(
        &self,
        id: &str,
        channel: Channel,
        login: &str,
        phone: Option<&str>,
    ) -> Result<PhoneSession, PortalError> {
        let spent = || PortalError::refused("otp-session-spent", messages::SESSION_SPENT);
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PortalError::invalid("invalid-session", "session_id is 16 bytes in hex"));
        }
        let session = self.store.phone_session(id)?.ok_or_else(spent)?;
        if session.closed_at.is_some()
            || session.expires_at <= self.clock.now()
            || session.channel != channel
            || session.login != login
            || phone.is_some_and(|p| p != session.phone)
        {
            return Err(spent());
        }
        Ok(session)
    }

    /// Check the code of `session`; the attempt counts whatever the answer. A wrong code is
    /// refused at once (with the tries left); the last wrong one spends the session.
    pub(crate) fn check_binding_code(&self, session: &PhoneSession, code: &str) -> Result<(), PortalError> {
        match self.phone.otp.check(PURPOSE, &session.id, code.trim())? {
            OtpOutcome::Accepted => Ok(()),
            OtpOutcome::Wrong { attempts_left } if attempts_left > 0 => Err(PortalError::unauthenticated(
                "wrong-otp",
                format!("{} (осталось попыток: {attempts_left})", messages::WRONG_CODE),
            )),
            OtpOutcome::Wrong { .. } | OtpOutcome::NoValidCode => {
                Err(PortalError::refused("otp-session-spent", messages::SESSION_SPENT))
            }
        }
    }

    /// Record the service time of a binding against its budget.
    pub(crate) fn record_service_time(&self, session: &PhoneSession, channel: Channel) {
        let took = self.clock.now() - session.created_at;
        self.metrics.phone_service_time(channel.name(), took <= SERVICE_BUDGET);
        if took > SERVICE_BUDGET {
            tracing::warn!(
                channel = channel.name(),
                seconds = took.whole_seconds(),
                "a phone binding took longer than its 10-minute budget"
            );
        }
    }
}
