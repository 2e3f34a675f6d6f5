//! Refusals: why an application is not served, with the user-facing message of
//! REQUIREMENTS.md where it gives one. A refusal is stored on the application.
//!
//! Legal capacity (not worded by the documents; decided here):
//! - 1 capable, 5 removed from the list of code 4: served;
//! - 2 limited by a court: served. Limited capacity restricts transactions beyond everyday
//!   ones, not the right to identify oneself and sign electronically; the relying party
//!   judges the transaction, as it would a handwritten signature;
//! - 3 incapable: refused;
//! - 4 convicted under articles 192, 216, 217 of the Criminal Code: refused for a
//!   legal-entity employee's certificates (these convictions bar acting for a company),
//!   served for an individual's own certificates.

use super::registry::{LegalCapacity, PersonRecord, LIFE_STATUS_DECEASED};

/// «…(код:9)» — life status 9 (died), as the portal regulation words it.
pub const MESSAGE_DECEASED: &str = "Невозможно создать учетную запись по введенному ИИН. За разъяснениями необходимо обратиться в отдел документирования населения в ЦОН (код:9)";

/// The prosecutor's special register; the message ends with the Committee's address, as the
/// document writes it.
pub const MESSAGE_SPECIAL_REGISTER: &str = "Невозможно создать учетную запись по введенному значению ИИН. За разъяснениями необходимо обратиться в Управление Комитета по правовой статистике и специальным учетам Генеральной прокуратуры Республики Казахстан <http://www.pravstat.kz>";

/// IIN exclusion code N: «…(код: 1)» for code 1 (Requirement 6), and Requirement 7's
/// «…(код: N - признак исключения ИИН)» for codes 2..9, the codes both requirements word: one
/// form for all of them, so the same code never reads two ways.
pub fn message_excluded(code: u8) -> String {
    let code =
        if code >= 2 { format!("{code} - признак исключения ИИН") } else { code.to_string() };
    format!("Невозможно создать учетную запись по введенному ИИН. За разъяснениями необходимо обратиться в отдел документирования населения в ЦОН (код: {code})")
}

/// Why an application was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// "process 3": no record of the individual in ГБД ФЛ.
    #[error("Сведения об услугополучателе с ИИН {0} отсутствуют в государственной базе данных \"Физические лица\". В оказании услуги отказано")]
    PersonNotInRegistry(String),
    /// "process 3": no record of the legal entity in ГБД ЮЛ.
    #[error("Сведения о юридическом лице с БИН {0} отсутствуют в государственной базе данных \"Юридические лица\". В оказании услуги отказано")]
    EntityNotInRegistry(String),
    #[error("{MESSAGE_DECEASED}")]
    Deceased,
    #[error("{}", message_excluded(*.0))]
    IinExcluded(u8),
    #[error("{MESSAGE_SPECIAL_REGISTER}")]
    SpecialRegister,
    #[error("Невозможно выпустить регистрационные свидетельства: услугополучатель признан судом недееспособным (дееспособность: код 3)")]
    Incapable,
    #[error("Невозможно выпустить регистрационные свидетельства сотрудника юридического лица: услугополучатель состоит в списке осужденных по статьям 192, 216, 217 Уголовного кодекса Республики Казахстан (дееспособность: код 4)")]
    ConvictedEconomic,
    /// "process 8": the operator found the person or the form not to match.
    #[error("Отказ оператора: {0}")]
    OperatorRefused(String),
    /// A State Corporation counter without the applicant's written consent (section 7):
    /// nothing is registered.
    #[error("{}", super::state_corporation::NO_CONSENT)]
    NoConsent,
    /// "process 10" and every other signature that does not fit what the step needs.
    #[error("Подпись не принята: {0}")]
    Signature(String),
}

impl Refusal {
    /// A stable code for scripts and the store.
    pub fn code(&self) -> String {
        match self {
            Self::PersonNotInRegistry(_) => "registry.person-not-found".into(),
            Self::EntityNotInRegistry(_) => "registry.entity-not-found".into(),
            Self::Deceased => "registry.life-status-9".into(),
            Self::IinExcluded(n) => format!("registry.iin-excluded-{n}"),
            Self::SpecialRegister => "registry.special-register".into(),
            Self::Incapable => "registry.legal-capacity-3".into(),
            Self::ConvictedEconomic => "registry.legal-capacity-4".into(),
            Self::OperatorRefused(_) => "operator.refused".into(),
            Self::Signature(_) => "signature.refused".into(),
            Self::NoConsent => "state-corporation.no-consent".into(),
        }
    }
}

/// Check what the registry says about a person who asks for certificates.
/// `for_legal_entity`: the certificates would let him act for a legal entity.
pub fn check_person(record: &PersonRecord, for_legal_entity: bool) -> Result<(), Refusal> {
    if record.life_status == LIFE_STATUS_DECEASED {
        return Err(Refusal::Deceased);
    }
    // Exclusion code 9 (death) is worded like the other exclusion codes (Requirement 7).
    if record.exclusion.code() != 0 {
        return Err(Refusal::IinExcluded(record.exclusion.code()));
    }
    if record.special_register {
        return Err(Refusal::SpecialRegister);
    }
    match record.legal_capacity {
        LegalCapacity::Incapable => Err(Refusal::Incapable),
        LegalCapacity::ConvictedEconomic if for_legal_entity => Err(Refusal::ConvictedEconomic),
        LegalCapacity::Capable
        | LegalCapacity::Limited
        | LegalCapacity::ConvictedEconomic
        | LegalCapacity::RemovedFromConvictedList => Ok(()),
    }
}
