//! Legal-entity roles on an employee's application: first head, signing right, financial
//! signing, HR (role OIDs 1.2.398.3.3.4.1.2.1–4, see `crate::profile`). Each is given by the
//! entity's first head, or by the person acting for him (recorded as such on the confirmation),
//! never by HR. The first head's own application has nobody above him: it goes straight to the
//! operator once the registry (ГБД ЮЛ) names the applicant as the entity's head.

use super::application::ApplicationKind;
use super::service::RegistrationAuthority;
use super::{RaError, Submission};
use crate::profile::Role;

/// The roles an employee's application may ask for.
pub const ASKABLE: [Role; 4] = [Role::FirstHead, Role::SigningRight, Role::FinancialSigning, Role::Hr];

/// Roles only on an employee's new certificates, and only the legal-entity ones.
pub(super) fn check_asked(s: &Submission) -> Result<(), RaError> {
    if s.roles.is_empty() {
        return Ok(());
    }
    if s.kind != ApplicationKind::NewEmployee {
        return Err(RaError::Invalid(format!(
            "roles are asked for on a new-employee application, not on a {}",
            s.kind
        )));
    }
    if let Some(r) = s.roles.iter().find(|r| !ASKABLE.contains(r)) {
        return Err(RaError::Invalid(format!(
            "an application cannot ask for the role {r}; it may ask for first-head, signing-right, financial-signing, hr"
        )));
    }
    Ok(())
}

/// The roles in an employee's certificates: those the first head confirmed, or "employee".
pub(super) fn certificate_roles(asked: &[Role]) -> Vec<Role> {
    let mut roles = if asked.is_empty() { vec![Role::Employee] } else { asked.to_vec() };
    roles.push(Role::IdentifiedInPerson);
    roles
}

impl RegistrationAuthority<'_> {
    /// Whether the registry names the applicant of an employee's application as the entity's
    /// first head.
    pub(super) fn is_registered_head(&self, s: &Submission) -> Result<bool, RaError> {
        let Some(bin) = &s.bin else { return Ok(false) };
        Ok(self.registry.legal_entity(bin)?.is_some_and(|e| e.head_iin == s.iin))
    }
}
