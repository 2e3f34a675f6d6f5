//! Registration at a State Corporation counter. The workstation sends a request (IIN, names,
//! email, phone, consents, a random request id and its time) as an attached CMS signed with the
//! workstation's EDS; it travels to the portal, which verifies the signature (chain and
//! revocation at its own time), that the signer is an authorised workstation (the allow-list
//! of `[counter]`), that the request is fresh and not replayed, and the person registry; then
//! creates the account or regenerates the password of an existing one (it must be changed at
//! the next login) and answers with a response signed by the portal's own EDS. The
//! workstation verifies that signature before printing login and password.

use std::str::FromStr;

use ca_core::cms::{CertificateReport, Requirements};
use ca_core::identity::{Bin, Iin};
use ca_core::profile::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::password::generate;
use super::{valid_email, AccountKind, AccountState, CreatedBy};
use crate::config::WorkstationRule;
use crate::error::PortalError;
use crate::store::{CounterOutcome, NewAccount};
use crate::{registry, Portal};

/// The request a workstation signs (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterRequest {
    /// 32 random bytes, hex: single use.
    pub request_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub iin: String,
    pub surname: String,
    pub given_name: String,
    #[serde(default)]
    pub patronymic: Option<String>,
    pub email: String,
    pub phone: String,
    pub consents: Consents,
}

/// What the person agreed to at the counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consents {
    pub user_agreement: bool,
    pub personal_data: bool,
}

/// The portal's answer (JSON, signed by the portal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterResponse {
    pub request_id: String,
    pub login: String,
    /// The generated password, for the sealed envelope.
    pub password: String,
    /// `created` or `password-regenerated`.
    pub outcome: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Whether an allow-list entry is well-formed: a BIN (with an optional role) or a
/// certificate's SHA-256, not both.
pub fn check_rule(rule: &WorkstationRule) -> Result<(), String> {
    match (&rule.bin, &rule.certificate_sha256) {
        (Some(bin), None) => {
            Bin::from_str(bin).map_err(|e| format!("[[counter.workstations]] bin {bin:?}: {e}"))?;
            if let Some(role) = &rule.role {
                Role::from_str(role).map_err(|e| format!("[[counter.workstations]] role: {e}"))?;
            }
            Ok(())
        }
        (None, Some(sha)) if rule.role.is_none() => {
            if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(())
            } else {
                Err(format!("[[counter.workstations]] certificate_sha256 {sha:?} is not 64 hex digits"))
            }
        }
        _ => Err("[[counter.workstations]] needs either bin (and optionally role) or certificate_sha256".into()),
    }
}

/// Whether the signer of a request is on the allow-list.
pub fn authorised(rules: &[WorkstationRule], signer: &CertificateReport) -> bool {
    let digest = hex::encode(Sha256::digest(&signer.der));
    let id = &signer.identity;
    rules.iter().any(|rule| match (&rule.bin, &rule.certificate_sha256) {
        (_, Some(sha)) => sha.eq_ignore_ascii_case(&digest),
        (Some(bin), None) => {
            id.bin.is_some_and(|b| b.to_string() == *bin)
                && rule.role.as_deref().is_none_or(|r| Role::from_str(r).is_ok_and(|r| id.roles.contains(&r)))
        }
        (None, None) => false,
    })
}

impl Portal {
    /// Handle a signed counter request; the answer is the signed response (DER CMS).
    pub fn counter_register(&self, cms: &[u8]) -> Result<Vec<u8>, PortalError> {
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| PortalError::Unavailable("the portal's EDS is not configured".into()))?;
        let now = self.clock.now();
        let verified = self.trust.verify(cms, None, Requirements::default(), now)?;
        if !authorised(&self.counter.workstations, &verified.signer) {
            tracing::warn!(serial = %verified.signer.serial, subject = %verified.signer.subject, "counter request from an unlisted workstation");
            return Err(PortalError::refused(
                "workstation-not-authorised",
                "the signer is not an authorised counter workstation",
            ));
        }
        let content = verified
            .content
            .ok_or_else(|| PortalError::invalid("content-missing", "the request must be an attached signature"))?;
        let req: CounterRequest = serde_json::from_slice(&content).map_err(|e| {
            PortalError::invalid("invalid-request", format!("the signed request is not a counter request: {e}"))
        })?;
        let id: [u8; 32] = hex::decode(&req.request_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| PortalError::invalid("invalid-request", "request_id is 32 bytes in hex"))?;
        let window = time::Duration::seconds(i64::from(self.counter.request_window_seconds));
        if (req.created_at - now).abs() > window {
            return Err(PortalError::invalid("request-stale", "the request's time is too far from the portal's clock"));
        }
        let iin = Iin::from_str(req.iin.trim()).map_err(|e| PortalError::invalid("invalid-iin", e.to_string()))?;
        if !valid_email(req.email.trim()) {
            return Err(PortalError::invalid("invalid-email", "Адрес электронной почты введен неверно"));
        }
        if !(req.consents.user_agreement && req.consents.personal_data) {
            return Err(PortalError::invalid(
                "consent-missing",
                "the user agreement and the consent to personal data processing are required",
            ));
        }
        if !self.store.use_request_id(&id, now, now + window * 2)? {
            return Err(PortalError::refused("request-replayed", "this request was already handled"));
        }
        let record = registry::person_may_have_account(self.registry.as_ref(), &iin)?;
        let same = |a: &str, b: &str| a.trim().to_lowercase() == b.trim().to_lowercase();
        if !same(&record.surname, &req.surname) || !same(&record.given_name, &req.given_name) {
            return Err(PortalError::refused("registry-mismatch", "the names differ from the person registry"));
        }
        let password = Zeroizing::new(generate()?);
        let login = iin.to_string();
        let outcome = self.store.create_or_reset_account(&NewAccount {
            login: login.clone(),
            kind: AccountKind::Individual,
            iin: login.clone(),
            bin: None,
            email: req.email.trim().to_owned(),
            password_hash: self.passwords.hash(&password)?,
            state: AccountState::MustChangePassword,
            created_by: CreatedBy::Counter,
            at: now,
        })?;
        // Document 002 gives the counter registration and a new password, not the lifting of a
        // block: a blocked account stays blocked, and the operator is told so.
        let created = match outcome {
            CounterOutcome::Created => true,
            CounterOutcome::Reset => false,
            CounterOutcome::Blocked => {
                tracing::warn!(login = %login, workstation = %verified.signer.serial, "counter request for a blocked account");
                return Err(PortalError::refused(
                    "account-blocked",
                    "the account is blocked: a counter registration does not unblock it",
                ));
            }
        };
        let response = CounterResponse {
            request_id: req.request_id.clone(),
            login: login.clone(),
            password: (*password).clone(),
            outcome: if created { "created" } else { "password-regenerated" }.into(),
            at: now,
        };
        let json = Zeroizing::new(serde_json::to_vec(&response).map_err(PortalError::internal)?);
        tracing::info!(login = %login, workstation = %verified.signer.serial, created, "counter registration");
        signer.sign(&json, now).map_err(PortalError::internal)
    }
}
