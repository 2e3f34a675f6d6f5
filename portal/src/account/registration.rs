//! Registration by signature. The client asks for a challenge, shows the chosen certificate's
//! IIN, email, full name and validity, has the user accept the user agreement, pick individual
//! or legal entity, type the password twice and an email, and signs the registration statement
//! ([`statement`]: canonical bytes that include the challenge) with the AUTH key. The portal
//! verifies the signature (chain and revocation at its own time, AUTH key, the IIN/BIN of the
//! statement), uses the challenge up, asks the registry, and creates the account.

use std::str::FromStr;

use ca_core::cms::Requirements;
use ca_core::identity::{Bin, Iin, KeyType};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::password::check_new_password;
use super::{valid_email, AccountKind, AccountState, CreatedBy};
use crate::error::PortalError;
use crate::login::challenge::decode_challenge;
use crate::store::NewAccount;
use crate::{messages, registry, Portal};

/// What the user submits (the password fields are never logged).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    pub kind: AccountKind,
    pub iin: String,
    #[serde(default)]
    pub bin: Option<String>,
    pub email: String,
    pub password: Zeroizing<String>,
    pub password_repeat: Zeroizing<String>,
    pub agreement_accepted: bool,
    /// The challenge (base64) the statement includes.
    pub challenge: String,
    /// The CMS over the statement (base64/PEM; attached, or detached over the statement).
    pub cms: String,
}

/// The canonical bytes of the registration statement: UTF-8 lines `key: value`, LF-ended, in
/// this order, nothing else. What the user signs; the portal rebuilds them from the request.
pub fn statement(kind: AccountKind, iin: &str, bin: Option<&str>, email: &str, challenge: &str) -> Vec<u8> {
    format!(
        "egov-portal registration statement v1\nchallenge: {challenge}\nkind: {}\niin: {iin}\nbin: {}\nemail: {email}\nuser-agreement: accepted\n",
        kind.name(),
        bin.unwrap_or("-"),
    )
    .into_bytes()
}

impl Portal {
    /// Register; the answer is the document's success message.
    pub fn register(&self, req: &RegistrationRequest) -> Result<&'static str, PortalError> {
        if !req.agreement_accepted {
            return Err(PortalError::invalid(
                "agreement-not-accepted",
                "Необходимо принять пользовательское соглашение",
            ));
        }
        let iin = Iin::from_str(req.iin.trim()).map_err(|e| PortalError::invalid("invalid-iin", e.to_string()))?;
        let bin = match (req.kind, req.bin.as_deref().map(str::trim).filter(|b| !b.is_empty())) {
            (AccountKind::Individual, None) => None,
            (AccountKind::Individual, Some(_)) => {
                return Err(PortalError::invalid("invalid-bin", "an individual's registration has no BIN"))
            }
            (AccountKind::LegalEntity, None) => {
                return Err(PortalError::invalid("invalid-bin", "a legal entity's registration needs its BIN"))
            }
            (AccountKind::LegalEntity, Some(b)) => {
                Some(Bin::from_str(b).map_err(|e| PortalError::invalid("invalid-bin", e.to_string()))?)
            }
        };
        let email = req.email.trim();
        if !valid_email(email) {
            return Err(PortalError::invalid("invalid-email", "Адрес электронной почты введен неверно"));
        }
        let (iin_s, bin_s) = (iin.to_string(), bin.map(|b| b.to_string()));
        let login = bin_s.clone().unwrap_or_else(|| iin_s.clone());
        check_new_password(&req.password, &req.password_repeat, &login)?;
        let nonce = decode_challenge(&req.challenge)?;
        let signed = statement(req.kind, &iin_s, bin_s.as_deref(), email, req.challenge.trim());
        let requirements =
            Requirements { key_type: Some(KeyType::Auth), iin: Some(iin), bin, ..Requirements::default() };
        let verified = self.trust.verify(req.cms.as_bytes(), Some(&signed), requirements, self.clock.now())?;
        if verified.content.as_deref().is_some_and(|c| c != signed.as_slice()) {
            return Err(PortalError::unauthenticated("statement-mismatch", "the signature is over other bytes"));
        }
        self.consume_challenge(&nonce)?;
        registry::person_may_have_account(self.registry.as_ref(), &iin)?;
        if let Some(bin) = &bin {
            registry::legal_entity(self.registry.as_ref(), bin)?;
        }
        if self.store.account_by_login(&login)?.is_some() {
            return Err(PortalError::Duplicate(messages::ALREADY_REGISTERED.into()));
        }
        let account = NewAccount {
            login: login.clone(),
            kind: req.kind,
            iin: iin_s,
            bin: bin_s,
            email: email.to_owned(),
            password_hash: self.passwords.hash(&req.password)?,
            state: AccountState::Active,
            created_by: CreatedBy::SelfService,
            at: self.clock.now(),
        };
        if self.store.create_account(&account)?.is_none() {
            return Err(PortalError::Duplicate(messages::ALREADY_REGISTERED.into()));
        }
        self.metrics.registration("success");
        tracing::info!(login = %login, kind = req.kind.name(), serial = %verified.signer.serial, "account registered");
        Ok(messages::REGISTERED)
    }
}
