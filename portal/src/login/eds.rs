//! Login by signature (a certificate on a file or a card): the client signs a challenge
//! with its AUTH key; the portal verifies signature, chain and revocation at its own time,
//! uses the challenge up and opens a session for the IIN/BIN in the certificate. A certificate
//! with a BIN opens the legal entity's account when its holder registered it, or when the CA
//! certified the holder as one of the entity's people: an organisation role (employee, first
//! head, signing right, financial signing, HR) in a certificate with that BIN. Password lockout
//! does not apply here.

use ca_core::cms::Requirements;
use ca_core::identity::KeyType;
use ca_core::profile::Role;

use super::challenge::CHALLENGE_LEN;
use super::session::SessionGrant;
use crate::account::{AccountKind, AccountState};
use crate::error::PortalError;
use crate::journal::method;
use crate::{Client, Portal};

/// The challenge a signed content stands for: the raw 32 bytes, or their base64 text.
fn challenge_of(content: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    if content.len() == CHALLENGE_LEN {
        return Some(content.to_vec());
    }
    let text = std::str::from_utf8(content).ok()?.trim();
    base64::engine::general_purpose::STANDARD.decode(text).ok().filter(|n| n.len() == CHALLENGE_LEN)
}

/// Whether `roles` (of a certificate that carries a BIN) make its holder one of that legal
/// entity's people: the CA issues them only on the entity's confirmation (its head or HR).
fn of_the_entity(roles: &[Role]) -> bool {
    roles.iter().any(|r| {
        matches!(
            r,
            Role::LegalEntity
                | Role::FirstHead
                | Role::SigningRight
                | Role::FinancialSigning
                | Role::Hr
                | Role::Employee
        )
    })
}

impl Portal {
    /// `cms`: an attached signature over the challenge, or a detached one with `detached` the
    /// challenge.
    pub fn login_eds(&self, cms: &[u8], detached: Option<&[u8]>, client: &Client) -> Result<SessionGrant, PortalError> {
        let requirements = Requirements { key_type: Some(KeyType::Auth), ..Requirements::default() };
        let verified = match self.trust.verify(cms, detached, requirements, self.clock.now()) {
            Ok(v) => v,
            Err(e) => {
                self.journal_failure("", method::EDS, client, e.kind());
                return Err(e);
            }
        };
        let identity = &verified.signer.identity;
        let who = identity.bin.map(|b| b.to_string()).or(identity.iin.map(|i| i.to_string())).unwrap_or_default();
        let fail = |e: PortalError| {
            self.journal_failure(&who, method::EDS, client, e.kind());
            e
        };
        let content = verified.content.as_deref().or(detached);
        let nonce = content.and_then(challenge_of).ok_or_else(|| {
            fail(PortalError::unauthenticated("challenge-unknown", "the signed content is not a challenge"))
        })?;
        let challenge = self.check_challenge(&nonce).map_err(fail)?;
        let iin = identity
            .iin
            .map(|i| i.to_string())
            .ok_or_else(|| fail(PortalError::unauthenticated("no-iin", "the certificate carries no IIN")))?;
        let account = match identity.bin {
            Some(bin) => self
                .store
                .account_by_login(&bin.to_string())?
                .filter(|a| a.kind == AccountKind::LegalEntity && (a.iin == iin || of_the_entity(&identity.roles))),
            None => self.store.account_by_login(&iin)?,
        };
        let account = account.ok_or_else(|| {
            fail(PortalError::unauthenticated(
                "no-account",
                "Учетная запись для данного ИИН/БИН не найдена: зарегистрируйтесь на Портале",
            ))
        })?;
        if account.state == AccountState::Blocked {
            return Err(fail(PortalError::refused("account-blocked", "the account is blocked")));
        }
        self.open_session_using(&account, method::EDS, client, Some(challenge)).map_err(fail)
    }
}
