//! The person registry (ГБД ФЛ / ГБД ЮЛ): what the state databases say about an applicant.
//!
//! [`PersonRegistry`] is the boundary: this toolkit ships a store-backed implementation loaded
//! from a CSV export ([`super::csv`]); a deployment plugs in the state gateway (ШЭП) behind the
//! same trait.

use time::Date;

use crate::identity::{Bin, Iin};
use crate::store::StoreError;

/// Life status code of ГБД ФЛ. Only 9 (died) refuses issuance; other codes are kept as given.
pub const LIFE_STATUS_DECEASED: u8 = 9;

/// IIN exclusion code (признак исключения ИИН), 0 = not excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExclusionCode(u8);

impl ExclusionCode {
    pub const NONE: ExclusionCode = ExclusionCode(0);

    /// 0..=9; anything else is not a code of the registry.
    pub fn new(code: u8) -> Option<Self> {
        (code <= 9).then_some(Self(code))
    }

    pub fn code(self) -> u8 {
        self.0
    }

    /// What the code means, from the portal regulation (002).
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0 => "not excluded",
            1 => "IIN restored",
            2 => "left for permanent residence abroad / changed citizenship",
            3 => "non-resident closed a resident bank account",
            4 => "non-resident's taxable objects ended",
            5 => "non-resident ended business and left",
            6 => "non-resident left (conditional)",
            7 => "declared missing by a court (conditional)",
            8 => "declared dead by a court",
            _ => "death",
        }
    }
}

/// Legal-capacity code of ГБД ФЛ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegalCapacity {
    /// 1 — capable.
    Capable = 1,
    /// 2 — limited by a court. Issuance is allowed (see [`super::refusal`]).
    Limited = 2,
    /// 3 — incapable. Issuance is refused.
    Incapable = 3,
    /// 4 — convicted under articles 192, 216, 217 of the Criminal Code: refused for a
    /// legal-entity employee, allowed for an individual.
    ConvictedEconomic = 4,
    /// 5 — removed from the list of code 4.
    RemovedFromConvictedList = 5,
}

impl LegalCapacity {
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Capable,
            2 => Self::Limited,
            3 => Self::Incapable,
            4 => Self::ConvictedEconomic,
            5 => Self::RemovedFromConvictedList,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An individual as ГБД ФЛ knows him.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PersonRecord {
    pub iin: Iin,
    pub surname: String,
    pub given_name: String,
    pub patronymic: Option<String>,
    /// Life status code; 9 = died.
    pub life_status: u8,
    pub exclusion: ExclusionCode,
    pub legal_capacity: LegalCapacity,
    /// On the General Prosecutor's special register.
    pub special_register: bool,
    pub document_number: String,
    pub document_issued: Date,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl PersonRecord {
    /// The person as a certificate subject.
    pub fn person(&self) -> crate::identity::Person {
        crate::identity::Person {
            iin: self.iin,
            surname: self.surname.clone(),
            given_name: self.given_name.clone(),
            patronymic: self.patronymic.clone(),
            email: self.email.clone(),
        }
    }
}

/// A legal entity as ГБД ЮЛ knows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LegalEntityRecord {
    pub bin: Bin,
    pub name: String,
    pub registration_number: String,
    /// IIN of the first head.
    pub head_iin: Iin,
}

impl LegalEntityRecord {
    pub fn organisation(&self) -> crate::identity::Organisation {
        crate::identity::Organisation { bin: self.bin, name: self.name.clone() }
    }
}

/// How many records an import touched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    pub persons_added: u64,
    pub persons_updated: u64,
    pub persons_unchanged: u64,
    pub entities_added: u64,
    pub entities_updated: u64,
    pub entities_unchanged: u64,
}

/// The registry could not answer (gateway down, database error); not a refusal.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("person registry: {0}")]
    Store(#[from] StoreError),
    #[error("person registry unavailable: {0}")]
    Unavailable(String),
}

/// The state databases of individuals and legal entities.
pub trait PersonRegistry: Send + Sync {
    fn person(&self, iin: &Iin) -> Result<Option<PersonRecord>, RegistryError>;
    fn legal_entity(&self, bin: &Bin) -> Result<Option<LegalEntityRecord>, RegistryError>;
}

/// The registry held in the store (loaded by `ca registry import`).
pub struct StoreRegistry<'a>(pub &'a dyn super::RaStore);

impl PersonRegistry for StoreRegistry<'_> {
    fn person(&self, iin: &Iin) -> Result<Option<PersonRecord>, RegistryError> {
        Ok(self.0.registry_person(iin)?)
    }

    fn legal_entity(&self, bin: &Bin) -> Result<Option<LegalEntityRecord>, RegistryError> {
        Ok(self.0.registry_entity(bin)?)
    }
}
