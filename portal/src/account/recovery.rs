//! Password recovery.
//!
//! By signature: the user signs a recovery statement (canonical bytes with a challenge) with
//! the AUTH or SIGN key of the account's IIN, and sets the new password twice.
//!
//! By email: an individual gives IIN, identity document number and its issue date; a legal
//! entity BIN and registration certificate number. On a match with the registry a new password
//! is generated, queued to the account's email with the change in one transaction, and must be
//! changed at the next login. The answer is the same whether anything matched or not, and the
//! work is the same (a password is generated and hashed either way), so a mismatch reveals
//! nothing. Both recoveries lift a password-login lock (the new password is not the one
//! that was being guessed).

use std::str::FromStr;

use ca_core::cms::Requirements;
use ca_core::identity::{Bin, Iin};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::password::{check_new_password, generate};
use super::{AccountKind, AccountState};
use crate::error::PortalError;
use crate::journal::method;
use crate::login::challenge::decode_challenge;
use crate::login::parse_login;
use crate::store::{NewMail, PasswordChange};
use crate::{messages, Client, Portal};

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdsRecoveryRequest {
    pub login: String,
    pub new_password: Zeroizing<String>,
    pub new_password_repeat: Zeroizing<String>,
    pub challenge: String,
    pub cms: String,
}

/// The canonical bytes of a recovery statement.
pub fn statement(login: &str, challenge: &str) -> Vec<u8> {
    format!("egov-portal password recovery v1\nchallenge: {challenge}\nlogin: {login}\n").into_bytes()
}

/// Recovery by email: either the individual's or the legal entity's fields.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRecoveryRequest {
    #[serde(default)]
    pub iin: Option<String>,
    #[serde(default)]
    pub document_number: Option<String>,
    /// YYYY-MM-DD.
    #[serde(default)]
    pub document_issued: Option<String>,
    #[serde(default)]
    pub bin: Option<String>,
    #[serde(default)]
    pub registration_number: Option<String>,
}

fn same(a: &str, b: &str) -> bool {
    a.trim().as_bytes().ct_eq(b.trim().as_bytes()).into()
}

impl Portal {
    pub fn recover_by_eds(&self, req: &EdsRecoveryRequest, client: &Client) -> Result<(), PortalError> {
        let login = parse_login(&req.login)?;
        check_new_password(&req.new_password, &req.new_password_repeat, &login)?;
        let nonce = decode_challenge(&req.challenge)?;
        let signed = statement(&login, req.challenge.trim());
        let fail = |e: PortalError| {
            self.journal_failure(&login, method::RECOVERY_EDS, client, e.kind());
            e
        };
        let account = self.store.account_by_login(&login)?;
        // The signer must be the account's person (for a legal entity, the person acting).
        let iin = account.as_ref().and_then(|a| Iin::from_str(&a.iin).ok());
        let requirements = Requirements { iin, ..Requirements::default() };
        let verified =
            self.trust.verify(req.cms.as_bytes(), Some(&signed), requirements, self.clock.now()).map_err(fail)?;
        if verified.content.as_deref().is_some_and(|c| c != signed.as_slice()) {
            return Err(fail(PortalError::unauthenticated("statement-mismatch", "the signature is over other bytes")));
        }
        self.consume_challenge(&nonce).map_err(fail)?;
        let Some(account) = account else {
            return Err(fail(PortalError::unauthenticated(
                "no-account",
                "Учетная запись для данного ИИН/БИН не найдена: зарегистрируйтесь на Портале",
            )));
        };
        self.store.change_password(&PasswordChange {
            account_id: account.id,
            password_hash: self.passwords.hash(&req.new_password)?,
            state: AccountState::Active,
            at: self.clock.now(),
            end_sessions: true,
            mail: None,
        })?;
        self.store.password_attempt_succeeded(&login)?;
        tracing::info!(login = %login, serial = %verified.signer.serial, "password recovered by signature");
        Ok(())
    }

    /// Always answers [`messages::RECOVERY_EMAIL_SENT`] for well-formed input.
    pub fn recover_by_email(&self, req: &EmailRecoveryRequest) -> Result<&'static str, PortalError> {
        let missing = |what: &str| PortalError::invalid("missing-field", format!("{what} is required"));
        // Decide what matches first, then do the same work whatever the outcome.
        let matched = match (&req.iin, &req.bin) {
            (Some(iin), None) => {
                let iin = Iin::from_str(iin.trim()).map_err(|e| PortalError::invalid("invalid-iin", e.to_string()))?;
                let number = req.document_number.as_deref().ok_or_else(|| missing("document_number"))?;
                let issued = req.document_issued.as_deref().ok_or_else(|| missing("document_issued"))?;
                let issued =
                    time::Date::parse(issued.trim(), time::macros::format_description!("[year]-[month]-[day]"))
                        .map_err(|_| PortalError::invalid("invalid-date", "document_issued is YYYY-MM-DD"))?;
                let record = self.registry.person(&iin).map_err(|e| PortalError::Unavailable(e.to_string()))?;
                let account = self.store.account_by_login(&iin.to_string())?;
                match (record, account) {
                    (Some(r), Some(a))
                        if a.kind == AccountKind::Individual
                            && same(&r.document_number, number) & (r.document_issued == issued) =>
                    {
                        Some(a)
                    }
                    _ => None,
                }
            }
            (None, Some(bin)) => {
                let bin = Bin::from_str(bin.trim()).map_err(|e| PortalError::invalid("invalid-bin", e.to_string()))?;
                let number = req.registration_number.as_deref().ok_or_else(|| missing("registration_number"))?;
                let record = self.registry.legal_entity(&bin).map_err(|e| PortalError::Unavailable(e.to_string()))?;
                let account = self.store.account_by_login(&bin.to_string())?;
                match (record, account) {
                    (Some(r), Some(a))
                        if a.kind == AccountKind::LegalEntity && same(&r.registration_number, number) =>
                    {
                        Some(a)
                    }
                    _ => None,
                }
            }
            _ => {
                return Err(PortalError::invalid(
                    "invalid-request",
                    "give either iin (with document_number and document_issued) or bin (with registration_number)",
                ))
            }
        };
        let password = Zeroizing::new(generate()?);
        let hash = self.passwords.hash(&password)?;
        let Some(account) = matched else { return Ok(messages::RECOVERY_EMAIL_SENT) };
        let body = format!(
            "Здравствуйте!\n\nПо Вашему запросу пароль учетной записи {login} на веб-Портале \"Электронного Правительства\" \
             Республики Казахстан восстановлен.\n\nНовый пароль: {password}\n\nПри следующем входе Портал попросит Вас сменить \
             этот пароль. Если Вы не запрашивали восстановление, обратитесь в службу поддержки.\n",
            login = account.login,
            password = *password,
        );
        self.store.change_password(&PasswordChange {
            account_id: account.id,
            password_hash: hash,
            state: AccountState::MustChangePassword,
            at: self.clock.now(),
            end_sessions: true,
            mail: Some(NewMail {
                to: account.email.clone(),
                subject: "Восстановление пароля на Портале электронного правительства".into(),
                body,
            }),
        })?;
        // The new password is known only to whoever reads the account's mail: the guesses
        // counted against the old one no longer matter.
        self.store.password_attempt_succeeded(&account.login)?;
        tracing::info!(login = %account.login, "password recovered by email");
        if let Some(mailer) = &self.mailer {
            if let Err(e) = mailer.deliver_pending() {
                tracing::warn!(error = %e, "outbox delivery failed; the message stays queued");
            }
        }
        Ok(messages::RECOVERY_EMAIL_SENT)
    }
}
