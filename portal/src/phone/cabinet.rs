//! The cabinet's flow (document 000 p. 5, 001): the logged-in person enters a number and asks
//! for a code («Получить проверочный код»; «Продолжить» in the mobile flow), enters the code
//! and signs the binding statement with his EDS; the binding is processed at once and shown
//! in the cabinet. A change of number is the same flow while a number is bound.
//!
//! The statement is signed with the **SIGN** key (a certificate with nonRepudiation, the
//! `RSA256_…`/`ECDSA256_…` key store): the document says the person *certifies the request*
//! with his EDS («удостоверяет запрос электронной цифровой подписью») — a declaration of will
//! with legal effect, which is what the signing key is for; the AUTH key only proves who is at
//! the keyboard (and he is already logged in). The statement does not hold the code, so one
//! signature serves a retry after a mistyped code; it names the OTP session, which closes when
//! the binding is made, so a replayed request is refused.

use std::str::FromStr;

use ca_core::cms::Requirements;
use ca_core::identity::{Iin, KeyType};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{messages, parse_phone, statement, Attempt, CodeSent};
use crate::account::AccountKind;
use crate::error::PortalError;
use crate::login::session::Authenticated;
use crate::store::phone::{BindOutcome, BindingAccount, Channel, NewBinding, PhoneBinding};
use crate::store::NewMail;
use crate::{registry, Client, Portal};

/// The binding request of the cabinet.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindRequest {
    pub session_id: String,
    pub code: Zeroizing<String>,
    /// The CMS over the statement (base64/PEM; attached, or detached over the statement).
    pub cms: String,
}

/// What a binding answers.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Bound {
    pub message: &'static str,
    pub phone: String,
    pub channel: Channel,
    /// The number it replaced (masked), on a change.
    pub previous: Option<String>,
}

/// The cabinet's view: the number bound now and every earlier one.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PhoneCabinet {
    pub phone: Option<PhoneBinding>,
    pub history: Vec<PhoneBinding>,
}

/// The notice to the number that was replaced.
pub fn old_number_notice() -> String {
    "Ваш номер отвязан от учетной записи Портала eGov: привязан другой номер. Если это сделали не Вы, позвоните 1414"
        .into()
}

/// The notice to the account's email on a change.
pub fn change_mail(to: &str, old: &str, new: &str) -> NewMail {
    NewMail {
        to: to.to_owned(),
        subject: "Изменен номер телефона учетной записи".into(),
        body: format!(
            "Номер мобильного телефона, привязанный к Вашей учетной записи на Портале электронного правительства, изменен.\n\nПрежний номер: {old}\nНовый номер: {new}\n\nЕсли это сделали не Вы, обратитесь в Единый контакт-центр 1414.\n"
        ),
    }
}

impl Portal {
    /// «Получить проверочный код»: send a code to `phone` for the logged-in person.
    pub fn request_phone_code(
        &self,
        auth: &Authenticated,
        phone: &str,
        client: &Client,
    ) -> Result<CodeSent, PortalError> {
        let account = &auth.account;
        let mut attempt = Attempt {
            login: &account.iin,
            phone: None,
            channel: Channel::Portal,
            actor: None,
            session_id: None,
            client,
        };
        let phone = parse_phone(phone).map_err(|e| self.refuse_phone(&attempt, e))?;
        attempt.phone = Some(phone.as_str());
        if account.kind != AccountKind::Individual {
            return Err(
                self.refuse_phone(&attempt, PortalError::refused("individuals-only", messages::INDIVIDUALS_ONLY))
            );
        }
        if self.store.current_binding(account.id)?.is_some_and(|b| b.phone == phone.as_str()) {
            return Err(self.refuse_phone(&attempt, PortalError::invalid("already-bound", messages::ALREADY_BOUND)));
        }
        let sent = self
            .send_binding_code(Some(account.id), &account.iin, &phone, Channel::Portal, "")
            .map_err(|e| self.refuse_phone(&attempt, e))?;
        attempt.session_id = Some(&sent.session_id);
        self.journal_phone(&attempt, "code-sent", "");
        Ok(sent)
    }

    /// Bind (or change to) the number of the session: the code, and the statement signed
    /// with the person's SIGN key.
    pub fn bind_phone(&self, auth: &Authenticated, req: &BindRequest, client: &Client) -> Result<Bound, PortalError> {
        let account = &auth.account;
        let mut attempt = Attempt {
            login: &account.iin,
            phone: None,
            channel: Channel::Portal,
            actor: None,
            session_id: Some(req.session_id.trim()),
            client,
        };
        let session = self
            .open_binding_session(req.session_id.trim(), Channel::Portal, &account.iin, None)
            .and_then(|s| {
                if s.account_id == Some(account.id) {
                    Ok(s)
                } else {
                    Err(PortalError::refused("otp-session-spent", messages::SESSION_SPENT))
                }
            })
            .map_err(|e| self.refuse_phone(&attempt, e))?;
        attempt.phone = Some(&session.phone);
        let iin = Iin::from_str(&account.iin).map_err(PortalError::internal)?;
        let signed = statement(&session.id, &account.iin, &session.phone, Channel::Portal);
        let requirements = Requirements { key_type: Some(KeyType::Sign), iin: Some(iin), ..Requirements::default() };
        let verified = self
            .trust
            .verify(req.cms.as_bytes(), Some(&signed), requirements, self.clock.now())
            .map_err(|e| self.refuse_phone(&attempt, e))?;
        attempt.actor = Some(format!("{} ({})", verified.signer.serial, verified.signer.subject));
        if verified.content.as_deref().is_some_and(|c| c != signed.as_slice()) {
            let e = PortalError::unauthenticated("statement-mismatch", "the signature is over other bytes");
            return Err(self.refuse_phone(&attempt, e));
        }
        registry::person_may_have_account(self.registry.as_ref(), &iin).map_err(|e| self.refuse_phone(&attempt, e))?;
        self.check_binding_code(&session, &req.code).map_err(|e| self.refuse_phone(&attempt, e))?;
        let new_display = super::PhoneNumber::from_str(&session.phone).map(|p| p.masked()).unwrap_or_default();
        let previous = self.store.current_binding(account.id)?;
        let mail = previous.as_ref().map(|old| {
            let old = super::PhoneNumber::from_str(&old.phone).map(|p| p.masked()).unwrap_or_default();
            change_mail(&account.email, &old, &new_display)
        });
        let evidence = serde_json::json!({
            "signer_serial": verified.signer.serial,
            "signer_subject": verified.signer.subject,
            "key": "sign",
        });
        let outcome = self.store.bind_phone(&NewBinding {
            session_id: session.id.clone(),
            account: BindingAccount::Existing(account.id),
            phone: session.phone.clone(),
            channel: Channel::Portal,
            at: self.clock.now(),
            evidence: evidence.to_string(),
            signed_request: req.cms.as_bytes().to_vec(),
            old_number_notice: Some(old_number_notice()),
            mail,
        })?;
        self.finish_binding(&attempt, &session, outcome)
    }

    /// Journal and answer what the store did with a binding.
    pub(crate) fn finish_binding(
        &self,
        attempt: &Attempt<'_>,
        session: &crate::store::phone::PhoneSession,
        outcome: BindOutcome,
    ) -> Result<Bound, PortalError> {
        match outcome {
            BindOutcome::Bound { previous, .. } => {
                let changed = previous.is_some();
                self.journal_phone(attempt, if changed { "changed" } else { "bound" }, "");
                self.record_service_time(session, attempt.channel);
                tracing::info!(channel = attempt.channel.name(), changed, session = %session.id, "phone number bound");
                Ok(Bound {
                    message: if changed { messages::CHANGED } else { messages::BOUND },
                    phone: session.phone.clone(),
                    channel: attempt.channel,
                    previous: previous.and_then(|p| super::PhoneNumber::from_str(&p).ok()).map(|p| p.masked()),
                })
            }
            BindOutcome::PhoneTaken => {
                Err(self.refuse_phone(attempt, PortalError::refused("phone-taken", messages::PHONE_TAKEN)))
            }
            BindOutcome::SessionClosed => {
                Err(self.refuse_phone(attempt, PortalError::refused("otp-session-spent", messages::SESSION_SPENT)))
            }
        }
    }

    /// The cabinet: the bound number and the history.
    pub fn phone_cabinet(&self, auth: &Authenticated) -> Result<PhoneCabinet, PortalError> {
        let history = self.store.binding_history(auth.account.id)?;
        let phone = history.iter().find(|b| b.ended_at.is_none()).cloned();
        Ok(PhoneCabinet { phone, history })
    }
}
