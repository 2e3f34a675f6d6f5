//! Binding through another system: a State Corporation counter (document 000 p. 7–8) and the
//! partner channels of document 001 (the e-government mobile application with biometric
//! authentication, a bank's mobile application). Each request is an attached CMS signed with
//! the system's certificate — the operator's service EDS at a counter (allow-listed as the
//! counter registration's workstations are: `[[counter.workstations]]`), or a partner's system
//! certificate (`[[phone.partners]]`, by BIN or certificate) — fresh (its time within the
//! window of `[counter] request_window_seconds`) and single-use (its random request id).
//!
//! Both take two requests: one asks for the code to be sent to the person's number (the
//! answer names the OTP session), the second carries the code the person read out or typed
//! and, for a counter, the applicant's form (IIN, names, email, phone, both consents); for a
//! partner, its assertion of how it authenticated the person. A counter creates the account
//! with a generated password that must be changed at first login when the person has none;
//! a partner binds to an existing account. The answer is signed with the portal's EDS.

use std::str::FromStr;

use ca_core::cms::{CertificateReport, Requirements};
use ca_core::identity::{Iin, KeyType};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::cabinet::{change_mail, old_number_notice};
use super::{messages, parse_phone, Attempt, CodeSent, PhoneNumber};
use crate::account::counter::{authorised, Consents};
use crate::account::password::generate;
use crate::account::{valid_email, AccountKind, AccountState, CreatedBy};
use crate::error::PortalError;
use crate::store::phone::{BindOutcome, BindingAccount, Channel, NewBinding};
use crate::store::NewAccount;
use crate::{registry, Client, Portal};

/// Asks for a code to be sent to `phone` for the person `iin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemCodeRequest {
    /// 32 random bytes, hex: single use.
    pub request_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub iin: String,
    pub phone: String,
}

/// The counter's binding request: the applicant's form and the code he read out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterBindingRequest {
    pub request_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub session_id: String,
    pub code: String,
    pub iin: String,
    pub surname: String,
    pub given_name: String,
    #[serde(default)]
    pub patronymic: Option<String>,
    pub email: String,
    pub phone: String,
    pub consents: Consents,
}

/// How a partner authenticated the person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    /// `biometric` (the mobile application) or `bank-kyc` (a bank).
    pub method: String,
    /// `match` or `no-match`.
    pub result: String,
    /// The partner's reference of the check.
    pub reference: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A partner's binding request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerBindingRequest {
    pub request_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub session_id: String,
    pub code: String,
    pub iin: String,
    pub phone: String,
    pub authentication: Assertion,
}

/// The portal's signed answer to a binding by a system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemBindingAnswer {
    pub request_id: String,
    pub login: String,
    pub phone: String,
    pub channel: Channel,
    /// `bound` or `changed`.
    pub outcome: String,
    /// `created` (the counter made the account now) or `existing`.
    pub account: String,
    /// The generated password of a new account, for the sealed envelope.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Which kind of system signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemKind {
    Counter,
    Partner,
}

#[derive(Deserialize)]
struct Header {
    request_id: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// A verified system request.
struct Verified<T> {
    request: T,
    channel: Channel,
    actor: String,
}

impl Portal {
    /// The channel and name of an allowed signer of `kind`, if it is one.
    fn allowed_system(&self, kind: SystemKind, signer: &CertificateReport) -> Option<(Channel, String)> {
        match kind {
            SystemKind::Counter => authorised(&self.counter.workstations, signer)
                .then(|| (Channel::Counter, format!("operator {} ({})", signer.serial, signer.subject))),
            SystemKind::Partner => {
                let digest = hex::encode(Sha256::digest(&signer.der));
                let bin = signer.identity.bin.map(|b| b.to_string());
                self.phone
                    .config
                    .partners
                    .iter()
                    .find(|p| match (&p.bin, &p.certificate_sha256) {
                        (_, Some(sha)) => sha.eq_ignore_ascii_case(&digest),
                        (Some(b), None) => bin.as_deref() == Some(b.as_str()),
                        (None, None) => false,
                    })
                    .map(|p| (p.channel, format!("partner {} ({})", p.name, signer.serial)))
            }
        }
    }

    /// Verify a system's signed request: signature (SIGN key, chain, revocation), the
    /// allow-list, freshness and single use.
    fn verify_system_request<T: DeserializeOwned>(
        &self,
        cms: &[u8],
        kind: SystemKind,
        client: &Client,
    ) -> Result<Verified<T>, PortalError> {
        let now = self.clock.now();
        let fallback = if kind == SystemKind::Counter { Channel::Counter } else { Channel::MobileApp };
        let attempt = |actor: Option<String>| Attempt {
            login: "",
            phone: None,
            channel: fallback,
            actor,
            session_id: None,
            client,
        };
        let requirements = Requirements { key_type: Some(KeyType::Sign), ..Requirements::default() };
        let verified =
            self.trust.verify(cms, None, requirements, now).map_err(|e| self.refuse_phone(&attempt(None), e))?;
        let who = Some(format!("{} ({})", verified.signer.serial, verified.signer.subject));
        let Some((channel, actor)) = self.allowed_system(kind, &verified.signer) else {
            tracing::warn!(serial = %verified.signer.serial, subject = %verified.signer.subject, "phone binding request from an unlisted system");
            let e = match kind {
                SystemKind::Counter => PortalError::refused(
                    "workstation-not-authorised",
                    "the signer is not an authorised counter workstation",
                ),
                SystemKind::Partner => {
                    PortalError::refused("partner-not-authorised", "the signer is not an authorised partner system")
                }
            };
            return Err(self.refuse_phone(&attempt(who), e));
        };
        let fail = |e: PortalError| self.refuse_phone(&Attempt { channel, ..attempt(Some(actor.clone())) }, e);
        let content = verified.content.ok_or_else(|| {
            fail(PortalError::invalid("content-missing", "the request must be an attached signature"))
        })?;
        let header: Header = serde_json::from_slice(&content)
            .map_err(|e| fail(PortalError::invalid("invalid-request", format!("not a signed request: {e}"))))?;
        let id: [u8; 32] = hex::decode(&header.request_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fail(PortalError::invalid("invalid-request", "request_id is 32 bytes in hex")))?;
        let window = time::Duration::seconds(i64::from(self.counter.request_window_seconds));
        if (header.created_at - now).abs() > window {
            return Err(fail(PortalError::invalid(
                "request-stale",
                "the request's time is too far from the portal's clock",
            )));
        }
        let request: T = serde_json::from_slice(&content)
            .map_err(|e| fail(PortalError::invalid("invalid-request", format!("the signed request: {e}"))))?;
        if !self.store.use_request_id(&id, now, now + window * 2)? {
            return Err(fail(PortalError::refused("request-replayed", "this request was already handled")));
        }
        Ok(Verified { request, channel, actor })
    }

    /// A system asks for a binding code for a person.
    pub fn system_request_phone_code(
        &self,
        cms: &[u8],
        kind: SystemKind,
        client: &Client,
    ) -> Result<CodeSent, PortalError> {
        let v: Verified<SystemCodeRequest> = self.verify_system_request(cms, kind, client)?;
        let login = v.request.iin.trim().to_owned();
        let mut attempt = Attempt {
            login: &login,
            phone: None,
            channel: v.channel,
            actor: Some(v.actor.clone()),
            session_id: None,
            client,
        };
        Iin::from_str(&login)
            .map_err(|e| self.refuse_phone(&attempt, PortalError::invalid("invalid-iin", e.to_string())))?;
        let phone = parse_phone(&v.request.phone).map_err(|e| self.refuse_phone(&attempt, e))?;
        attempt.phone = Some(phone.as_str());
        let account = self.store.account_by_login(&login)?;
        if kind == SystemKind::Partner && account.is_none() {
            return Err(self.refuse_phone(&attempt, PortalError::refused("no-account", messages::NO_ACCOUNT)));
        }
        if let Some(a) = &account {
            if self.store.current_binding(a.id)?.is_some_and(|b| b.phone == phone.as_str()) {
                return Err(self.refuse_phone(&attempt, PortalError::invalid("already-bound", messages::ALREADY_BOUND)));
            }
        }
        let sent = self
            .send_binding_code(account.map(|a| a.id), &login, &phone, v.channel, &v.actor)
            .map_err(|e| self.refuse_phone(&attempt, e))?;
        attempt.session_id = Some(&sent.session_id);
        self.journal_phone(&attempt, "code-sent", "");
        Ok(sent)
    }

    /// The counter's binding: the operator-signed form with the applicant's code. The answer
    /// is the portal's signed [`SystemBindingAnswer`] (DER CMS).
    pub fn counter_bind_phone(&self, cms: &[u8], client: &Client) -> Result<Vec<u8>, PortalError> {
        let signer = self.portal_signer()?;
        let v: Verified<CounterBindingRequest> = self.verify_system_request(cms, SystemKind::Counter, client)?;
        let req = &v.request;
        let login = req.iin.trim().to_owned();
        let mut attempt = Attempt {
            login: &login,
            phone: None,
            channel: Channel::Counter,
            actor: Some(v.actor.clone()),
            session_id: Some(req.session_id.trim()),
            client,
        };
        let refuse = |a: &Attempt<'_>, e| self.refuse_phone(a, e);
        let iin =
            Iin::from_str(&login).map_err(|e| refuse(&attempt, PortalError::invalid("invalid-iin", e.to_string())))?;
        let phone = parse_phone(&req.phone).map_err(|e| refuse(&attempt, e))?;
        attempt.phone = Some(phone.as_str());
        if !valid_email(req.email.trim()) {
            return Err(refuse(
                &attempt,
                PortalError::invalid("invalid-email", "Адрес электронной почты введен неверно"),
            ));
        }
        if !req.consents.user_agreement {
            return Err(refuse(&attempt, PortalError::refused("agreement-missing", messages::NO_AGREEMENT)));
        }
        if !req.consents.personal_data {
            return Err(refuse(&attempt, PortalError::refused("consent-missing", messages::NO_CONSENT)));
        }
        let session = self
            .open_binding_session(req.session_id.trim(), Channel::Counter, &login, Some(phone.as_str()))
            .map_err(|e| refuse(&attempt, e))?;
        let record =
            registry::person_may_have_account(self.registry.as_ref(), &iin).map_err(|e| refuse(&attempt, e))?;
        let same = |a: &str, b: &str| a.trim().to_lowercase() == b.trim().to_lowercase();
        let patronymic_matches = match (&record.patronymic, &req.patronymic) {
            (Some(a), Some(b)) => same(a, b),
            (None, None) => true,
            (None, Some(b)) => b.trim().is_empty(),
            (Some(_), None) => false,
        };
        if !same(&record.surname, &req.surname) || !same(&record.given_name, &req.given_name) || !patronymic_matches {
            return Err(refuse(&attempt, PortalError::refused("registry-mismatch", messages::REGISTRY_MISMATCH)));
        }
        self.check_binding_code(&session, &req.code).map_err(|e| refuse(&attempt, e))?;
        let password = Zeroizing::new(generate()?);
        let new_account = NewAccount {
            login: login.clone(),
            kind: AccountKind::Individual,
            iin: login.clone(),
            bin: None,
            email: req.email.trim().to_owned(),
            password_hash: self.passwords.hash(&password)?,
            state: AccountState::MustChangePassword,
            created_by: CreatedBy::Counter,
            at: self.clock.now(),
        };
        let existing = self.store.account_by_login(&login)?;
        if existing.as_ref().is_some_and(|a| a.kind != AccountKind::Individual) {
            return Err(refuse(&attempt, PortalError::refused("individuals-only", messages::INDIVIDUALS_ONLY)));
        }
        let mail = self.change_notice(existing.as_ref(), &phone)?;
        let evidence =
            serde_json::json!({ "operator": v.actor, "request_id": req.request_id, "consents": req.consents });
        let outcome = self.store.bind_phone(&NewBinding {
            session_id: session.id.clone(),
            account: BindingAccount::CreateUnlessExists(new_account),
            phone: phone.as_str().to_owned(),
            channel: Channel::Counter,
            at: self.clock.now(),
            evidence: evidence.to_string(),
            signed_request: cms.to_vec(),
            old_number_notice: Some(old_number_notice()),
            mail,
        })?;
        let created = matches!(outcome, BindOutcome::Bound { created: true, .. });
        let bound = self.finish_binding(&attempt, &session, outcome)?;
        let answer = SystemBindingAnswer {
            request_id: req.request_id.clone(),
            login: login.clone(),
            phone: bound.phone,
            channel: Channel::Counter,
            outcome: if bound.previous.is_some() { "changed" } else { "bound" }.into(),
            account: if created { "created" } else { "existing" }.into(),
            password: created.then(|| (*password).clone()),
            at: self.clock.now(),
        };
        let json = Zeroizing::new(serde_json::to_vec(&answer).map_err(PortalError::internal)?);
        signer.sign(&json, self.clock.now()).map_err(PortalError::internal)
    }

    /// A partner's binding: its assertion and the person's code, for an existing account.
    pub fn partner_bind_phone(&self, cms: &[u8], client: &Client) -> Result<Vec<u8>, PortalError> {
        let signer = self.portal_signer()?;
        let v: Verified<PartnerBindingRequest> = self.verify_system_request(cms, SystemKind::Partner, client)?;
        let req = &v.request;
        let login = req.iin.trim().to_owned();
        let mut attempt = Attempt {
            login: &login,
            phone: None,
            channel: v.channel,
            actor: Some(v.actor.clone()),
            session_id: Some(req.session_id.trim()),
            client,
        };
        let refuse = |a: &Attempt<'_>, e| self.refuse_phone(a, e);
        let iin =
            Iin::from_str(&login).map_err(|e| refuse(&attempt, PortalError::invalid("invalid-iin", e.to_string())))?;
        let phone = parse_phone(&req.phone).map_err(|e| refuse(&attempt, e))?;
        attempt.phone = Some(phone.as_str());
        let a = &req.authentication;
        let (method, failed) = match v.channel {
            Channel::MobileApp => ("biometric", PortalError::refused("biometric-failed", messages::BIOMETRY_FAILED)),
            _ => ("bank-kyc", PortalError::refused("kyc-failed", messages::KYC_FAILED)),
        };
        if a.method != method {
            let e = PortalError::invalid("assertion-invalid", format!("this channel asserts {method} authentication"));
            return Err(refuse(&attempt, e));
        }
        let window = time::Duration::seconds(i64::from(self.counter.request_window_seconds));
        if (a.at - self.clock.now()).abs() > window {
            let e = PortalError::invalid("assertion-stale", "the authentication is too far from the portal's clock");
            return Err(refuse(&attempt, e));
        }
        match a.result.as_str() {
            "match" => {}
            "no-match" => return Err(refuse(&attempt, failed)),
            _ => {
                return Err(refuse(&attempt, PortalError::invalid("assertion-invalid", "result is match or no-match")))
            }
        }
        let account = self
            .store
            .account_by_login(&login)?
            .filter(|a| a.kind == AccountKind::Individual)
            .ok_or_else(|| refuse(&attempt, PortalError::refused("no-account", messages::NO_ACCOUNT)))?;
        let session = self
            .open_binding_session(req.session_id.trim(), v.channel, &login, Some(phone.as_str()))
            .map_err(|e| refuse(&attempt, e))?;
        registry::person_may_have_account(self.registry.as_ref(), &iin).map_err(|e| refuse(&attempt, e))?;
        self.check_binding_code(&session, &req.code).map_err(|e| refuse(&attempt, e))?;
        let mail = self.change_notice(Some(&account), &phone)?;
        let evidence = serde_json::json!({ "partner": v.actor, "request_id": req.request_id, "authentication": a });
        let outcome = self.store.bind_phone(&NewBinding {
            session_id: session.id.clone(),
            account: BindingAccount::Existing(account.id),
            phone: phone.as_str().to_owned(),
            channel: v.channel,
            at: self.clock.now(),
            evidence: evidence.to_string(),
            signed_request: cms.to_vec(),
            old_number_notice: Some(old_number_notice()),
            mail,
        })?;
        let bound = self.finish_binding(&attempt, &session, outcome)?;
        let answer = SystemBindingAnswer {
            request_id: req.request_id.clone(),
            login,
            phone: bound.phone,
            channel: v.channel,
            outcome: if bound.previous.is_some() { "changed" } else { "bound" }.into(),
            account: "existing".into(),
            password: None,
            at: self.clock.now(),
        };
        let json = serde_json::to_vec(&answer).map_err(PortalError::internal)?;
        signer.sign(&json, self.clock.now()).map_err(PortalError::internal)
    }

    fn portal_signer(&self) -> Result<&crate::signing::PortalSigner, PortalError> {
        self.signer.as_ref().ok_or_else(|| PortalError::Unavailable("the portal's EDS is not configured".into()))
    }

    /// The email notice of a change, when `account` has another number bound now.
    fn change_notice(
        &self,
        account: Option<&crate::store::Account>,
        new: &PhoneNumber,
    ) -> Result<Option<crate::store::NewMail>, PortalError> {
        let Some(account) = account else { return Ok(None) };
        let Some(old) = self.store.current_binding(account.id)? else { return Ok(None) };
        let old = PhoneNumber::from_str(&old.phone).map(|p| p.masked()).unwrap_or_default();
        Ok(Some(change_mail(&account.email, &old, &new.masked())))
    }
}
