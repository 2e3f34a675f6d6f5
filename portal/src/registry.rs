//! The person registry as the portal asks it: the refusals of document 002 (life status,
//! IIN exclusion, the prosecutor's special register, no record), and a registry read from an
//! export in the format of `ca registry import` (a deployment plugs the state gateway in
//! behind [`PersonRegistry`] instead).

use std::collections::HashMap;
use std::path::Path;

use ca_core::identity::{Bin, Iin};
use ca_core::ra::registry::{LegalEntityRecord, PersonRecord, PersonRegistry, RegistryError, LIFE_STATUS_DECEASED};

use crate::error::PortalError;
use crate::messages;

/// A registry held in memory, loaded from a CSV export.
#[derive(Debug, Default)]
pub struct CsvRegistry {
    persons: HashMap<Iin, PersonRecord>,
    entities: HashMap<Bin, LegalEntityRecord>,
}

impl CsvRegistry {
    /// Parse an export; every bad line is named.
    pub fn parse(text: &str) -> Result<Self, String> {
        let import = ca_core::ra::csv::parse(text).map_err(|errors| {
            errors.iter().map(|e| format!("line {}: {}", e.line, e.problem)).collect::<Vec<_>>().join("; ")
        })?;
        Ok(Self {
            persons: import.persons.into_iter().map(|p| (p.iin, p)).collect(),
            entities: import.entities.into_iter().map(|e| (e.bin, e)).collect(),
        })
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl PersonRegistry for CsvRegistry {
    fn person(&self, iin: &Iin) -> Result<Option<PersonRecord>, RegistryError> {
        Ok(self.persons.get(iin).cloned())
    }

    fn legal_entity(&self, bin: &Bin) -> Result<Option<LegalEntityRecord>, RegistryError> {
        Ok(self.entities.get(bin).cloned())
    }
}

/// The registry's verdict on creating an account for `iin` (registration, counter): the
/// person's record, or the refusal with the document's message. The order is the document's:
/// life status, then the IIN exclusion code, then the special register.
pub fn person_may_have_account(registry: &dyn PersonRegistry, iin: &Iin) -> Result<PersonRecord, PortalError> {
    let record = registry
        .person(iin)
        .map_err(|e| PortalError::Unavailable(e.to_string()))?
        .ok_or_else(|| PortalError::refused("registry-no-record", messages::NO_RECORD))?;
    if record.life_status == LIFE_STATUS_DECEASED {
        return Err(PortalError::refused("registry-deceased", messages::DECEASED));
    }
    let code = record.exclusion.code();
    if code != 0 {
        return Err(PortalError::refused("registry-excluded", messages::excluded(code)));
    }
    if record.special_register {
        return Err(PortalError::refused("registry-special-register", messages::SPECIAL_REGISTER));
    }
    Ok(record)
}

/// The legal entity of `bin`, or the refusal.
pub fn legal_entity(registry: &dyn PersonRegistry, bin: &Bin) -> Result<LegalEntityRecord, PortalError> {
    registry
        .legal_entity(bin)
        .map_err(|e| PortalError::Unavailable(e.to_string()))?
        .ok_or_else(|| PortalError::refused("registry-no-legal-entity", messages::NO_LEGAL_ENTITY))
}
