//! The State Corporation («Правительство для граждан», ЦОН) counter, document 004 sections 7–8.
//!
//! Its operator, before anything is registered:
//! 1. takes the applicant's written consent to the use of information that is a secret
//!    protected by law, held in information systems («письменное согласие на использование
//!    сведений, составляющих охраняемую законом тайну, содержащихся в информационных
//!    системах»): who took it, when, and the SHA-256 of the scanned paper if there is one.
//!    Without it the application is refused ([`NO_CONSENT`]) and nothing is stored;
//! 2. checks the package for completeness against the list of its kind
//!    ([`required_documents`]). An incomplete package is refused with a numbered receipt of
//!    refusal naming what is missing (nothing else is registered); a complete one is registered
//!    with a numbered receipt of acceptance, in one transaction. Both receipts are emailed.
//!
//! A representative may act for the applicant («уполномоченный представитель … физического
//! лица по нотариально заверенной доверенности», a legal entity's by a document confirming his
//! authority): his IIN, name and the power of attorney are recorded on the application and in
//! its registration event; the certificates are still the applicant's.
//!
//! The list of documents: the document refers to item 9 of the service standard (order № 491
//! of 24.04.2015), which it does not reproduce; the list here is what sections 2, 7 and 8
//! themselves name for each flow — the originals of the identity documents the operator
//! compares with the registries, the application form the applicant presents (flow 1), the
//! ID card / SIM the certificates are written to (card flow), the paper revocation form, and a
//! representative's identity document and power of attorney.

use std::fmt;
use std::str::FromStr;

use time::{Date, OffsetDateTime};

use super::application::{ApplicationKind, Channel};
use super::counter::CounterSteps;
use super::receipt::{Receipt, ReceiptDetails, ReceiptKind, ReceiptNumber};
use super::service::RegistrationAuthority;
use super::store::NewEvent;
use super::{RaError, Registered, Submission};
use crate::identity::Iin;

/// The refusal of an application taken without the applicant's written consent.
pub const NO_CONSENT: &str = "Отказано в приеме заявления: отсутствует письменное согласие услугополучателя на \
     использование сведений, составляющих охраняемую законом тайну, содержащихся в информационных системах";

/// The refusal of an incomplete package (section 7), printed on the receipt of refusal.
pub const INCOMPLETE: &str = "В связи с неполнотой пакета документов, представляемых услугополучателем согласно \
     перечню, предусмотренному пунктом 9 Стандарта государственной услуги, оператор Государственной корпорации \
     отказывает в приеме заявления";

/// A document of the package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Document {
    /// The original of the applicant's identity document, compared with ГБД ФЛ.
    IdentityDocument,
    /// The application form the applicant was sent at the online registration (flow 1).
    ApplicationForm,
    /// The ID card with a chip and (or) the SIM card the certificates are written to.
    CardOrSim,
    /// The paper application for revocation.
    RevocationForm,
    /// The original of the representative's identity document.
    RepresentativeIdentity,
    /// The notarised power of attorney (an individual's representative) or the document
    /// confirming the authority (a legal entity's).
    PowerOfAttorney,
}

const DOCUMENTS: [(Document, &str, &str); 6] = [
    (Document::IdentityDocument, "identity-document", "документ, удостоверяющий личность услугополучателя (оригинал)"),
    (
        Document::ApplicationForm,
        "application-form",
        "заявление на выдачу регистрационных свидетельств, направленное услугополучателю при регистрации электронной заявки",
    ),
    (
        Document::CardOrSim,
        "card-or-sim",
        "удостоверение личности, содержащее электронный носитель информации (чип), и (или) sim-карта",
    ),
    (Document::RevocationForm, "revocation-form", "заявление на отзыв регистрационных свидетельств"),
    (Document::RepresentativeIdentity, "representative-identity", "документ, удостоверяющий личность представителя (оригинал)"),
    (
        Document::PowerOfAttorney,
        "power-of-attorney",
        "нотариально заверенная доверенность (для представителя юридического лица — документ, подтверждающий полномочия)",
    ),
];

impl Document {
    pub fn name(self) -> &'static str {
        DOCUMENTS.iter().find(|(d, _, _)| *d == self).map_or("?", |(_, n, _)| n)
    }

    /// How a receipt names it.
    pub fn title(self) -> &'static str {
        DOCUMENTS.iter().find(|(d, _, _)| *d == self).map_or("?", |(_, _, t)| t)
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Document {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DOCUMENTS.iter().find(|(_, n, _)| *n == s.trim()).map(|(d, _, _)| *d).ok_or_else(|| {
            format!(
                "unknown document {s:?}; expected one of: {}",
                DOCUMENTS.iter().map(|(_, n, _)| *n).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// The package an application of `kind` needs at the counter, with a representative's papers
/// when one acts for the applicant.
pub fn required_documents(kind: ApplicationKind, represented: bool) -> Vec<Document> {
    use ApplicationKind as K;
    let mut docs = vec![Document::IdentityDocument];
    match kind {
        K::NewIndividual | K::NewEmployee => docs.push(Document::ApplicationForm),
        K::Card => docs.push(Document::CardOrSim),
        K::RevokeCounter => docs.push(Document::RevocationForm),
        K::Repeat | K::RevokeSigned => {}
    }
    if represented {
        docs.extend([Document::RepresentativeIdentity, Document::PowerOfAttorney]);
    }
    docs
}

/// The applicant's written consent, as the operator took it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Consent {
    /// The operator who took it.
    pub taken_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: OffsetDateTime,
    /// SHA-256 of the scanned paper, hex, when it was scanned.
    pub scan_sha256: Option<String>,
}

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// A power of attorney: its number, date (`YYYY-MM-DD`) and who issued (certified) it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PowerOfAttorney {
    pub number: String,
    #[serde(with = "iso_date")]
    pub date: Date,
    pub issuer: String,
}

impl fmt::Display for PowerOfAttorney {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "№ {} от {:02}.{:02}.{:04}, выдана: {}",
            self.number,
            self.date.day(),
            u8::from(self.date.month()),
            self.date.year(),
            self.issuer
        )
    }
}

/// Someone acting for the applicant by power of attorney.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Representative {
    pub iin: Iin,
    pub name: String,
    pub power_of_attorney: PowerOfAttorney,
}

/// What the counter recorded on an application.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Paperwork {
    pub consent: Option<Consent>,
    pub representative: Option<Representative>,
    /// The documents checked and accepted.
    pub documents: Vec<Document>,
    /// The receipt of acceptance.
    pub receipt: Option<ReceiptNumber>,
}

/// What the State Corporation operator has in hand when he registers an application.
#[derive(Clone, Debug)]
pub struct Intake {
    pub operator: String,
    pub consent: Option<Consent>,
    pub representative: Option<Representative>,
    /// The documents handed in.
    pub documents: Vec<Document>,
    /// The steps at the counter before the registration (arrival, identification, forms).
    pub steps: Option<CounterSteps>,
}

/// What came of an intake at the counter.
#[derive(Clone, Debug)]
pub enum Taken {
    /// Registered (or the same application was already open: no new receipt), with the receipt
    /// of acceptance of a new one.
    Registered { registered: Box<Registered>, receipt: Option<Receipt> },
    /// The package was incomplete: only the receipt of refusal is stored.
    Incomplete(Receipt),
}

fn one_line(what: &str, value: &str, max: usize) -> Result<(), RaError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(RaError::Invalid(format!("{what}: one line of at most {max} characters")));
    }
    Ok(())
}

impl RegistrationAuthority<'_> {
    /// Register an application at a State Corporation counter: the consent, then the package,
    /// then the registration with a receipt of acceptance (or only a receipt of refusal).
    pub fn submit_at_state_corporation(&self, s: &Submission, intake: &Intake) -> Result<Taken, RaError> {
        if s.channel != Channel::StateCorporation {
            return Err(RaError::Invalid(format!(
                "a {} application is not taken at a State Corporation counter",
                s.channel
            )));
        }
        if !s.channel.serves(s.kind) {
            return Err(RaError::Invalid(format!(
                "a {} application is made online with the applicant's EDS, not at a State Corporation counter",
                s.kind
            )));
        }
        one_line("the operator", &intake.operator, 100)?;
        let Some(consent) = &intake.consent else {
            return Err(RaError::Refused(super::Refusal::NoConsent));
        };
        one_line("the consent's operator", &consent.taken_by, 100)?;
        if let Some(sha) = &consent.scan_sha256 {
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(RaError::Invalid("the consent scan's SHA-256 is 64 hex digits".into()));
            }
        }
        let now = self.clock.now();
        if consent.taken_at > now {
            return Err(RaError::Invalid("the consent cannot be taken in the future".into()));
        }
        if let Some(r) = &intake.representative {
            one_line("the representative's name", &r.name, 200)?;
            one_line("the power of attorney's number", &r.power_of_attorney.number, 100)?;
            one_line("the power of attorney's issuer", &r.power_of_attorney.issuer, 300)?;
            if r.iin == s.iin {
                return Err(RaError::Invalid("the representative is someone else than the applicant".into()));
            }
            if r.power_of_attorney.date > now.date() {
                return Err(RaError::Invalid("the power of attorney is dated in the future".into()));
            }
        }
        let mut presented = intake.documents.clone();
        presented.sort();
        presented.dedup();
        let missing: Vec<Document> = required_documents(s.kind, intake.representative.is_some())
            .into_iter()
            .filter(|d| !presented.contains(d))
            .collect();
        let person = self.registry.person(&s.iin)?;
        let details = ReceiptDetails {
            kind: if missing.is_empty() { ReceiptKind::Acceptance } else { ReceiptKind::Refusal },
            application_kind: s.kind,
            iin: s.iin,
            bin: s.bin,
            applicant_name: person.as_ref().map(|p| {
                [p.surname.as_str(), p.given_name.as_str(), p.patronymic.as_deref().unwrap_or("")]
                    .iter()
                    .filter(|n| !n.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
            representative: intake.representative.clone(),
            presented: presented.clone(),
            missing: missing.clone(),
            operator: intake.operator.clone(),
            issued_at: now,
            email: s.email.clone().or_else(|| person.and_then(|p| p.email)),
        };
        if !missing.is_empty() {
            return Ok(Taken::Incomplete(self.store.refuse_package(&details)?));
        }
        let paperwork = Paperwork {
            consent: Some(consent.clone()),
            representative: intake.representative.clone(),
            documents: presented,
            receipt: None,
        };
        let earlier: Vec<NewEvent> = match &intake.steps {
            Some(steps) => self.counter_events(s, steps)?,
            None => Vec::new(),
        };
        let (registered, receipt) = self.register_paperwork(s, earlier, paperwork, details)?;
        Ok(Taken::Registered { registered: Box::new(registered), receipt })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_of_each_kind_and_a_representatives_papers() {
        use ApplicationKind as K;
        assert_eq!(required_documents(K::Card, false), vec![Document::IdentityDocument, Document::CardOrSim]);
        assert_eq!(
            required_documents(K::RevokeCounter, true),
            vec![
                Document::IdentityDocument,
                Document::RevocationForm,
                Document::RepresentativeIdentity,
                Document::PowerOfAttorney
            ]
        );
        for (d, n, _) in DOCUMENTS {
            assert_eq!(n.parse::<Document>().unwrap(), d);
        }
        assert!("passport".parse::<Document>().unwrap_err().contains("identity-document"));
    }
}
