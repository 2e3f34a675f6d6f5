//! Receipts of the State Corporation counter (document 004, section 7): a complete package gets
//! a numbered receipt of acceptance («расписка о приеме соответствующих документов»), an
//! incomplete one a numbered receipt of refusal («расписка об отказе в приеме документов»)
//! listing what is missing. Numbers are `R-YYYY-NNNNNN`, sequential within the year of issue;
//! the store allocates them in the transaction that records the receipt, so two counters (two
//! processes) never get the same number and none is skipped.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use time::OffsetDateTime;

use super::application::{ApplicationKind, ApplicationNumber};
use super::state_corporation::{Document, Representative};
use super::store::NewMessage;
use crate::identity::{Bin, Iin};

/// The document's name of the service, as the receipts print it.
pub const SERVICE: &str =
    "Выдача и отзыв регистрационного свидетельства Национального удостоверяющего центра Республики Казахстан";

/// `R-2026-000123`: the year of issue and a sequence within the year.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReceiptNumber(String);

impl ReceiptNumber {
    pub fn new(year: i32, sequence: u64) -> Self {
        Self(format!("R-{year:04}-{sequence:06}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReceiptNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ReceiptNumber> for String {
    fn from(n: ReceiptNumber) -> Self {
        n.0
    }
}

impl TryFrom<String> for ReceiptNumber {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl FromStr for ReceiptNumber {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad =
            || format!("{:?} is not a receipt number (expected R-YYYY-NNNNNN)", s.chars().take(40).collect::<String>());
        let (year, seq) = s.strip_prefix("R-").and_then(|r| r.split_once('-')).ok_or_else(bad)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if year.len() != 4 || seq.len() < 6 || seq.len() > 12 || !digits(year) || !digits(seq) {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }
}

/// Which receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptKind {
    Acceptance,
    Refusal,
}

impl ReceiptKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Acceptance => "acceptance",
            Self::Refusal => "refusal",
        }
    }

    /// The receipt's title after its number.
    pub fn title(self) -> &'static str {
        match self {
            Self::Acceptance => "о приеме документов",
            Self::Refusal => "об отказе в приеме документов",
        }
    }
}

/// What a receipt says, before the store numbers it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceiptDetails {
    pub kind: ReceiptKind,
    pub application_kind: ApplicationKind,
    pub iin: Iin,
    pub bin: Option<Bin>,
    /// The applicant's name from the person registry, when it has him.
    pub applicant_name: Option<String>,
    pub representative: Option<Representative>,
    /// The documents handed in.
    pub presented: Vec<Document>,
    /// A refusal: what the package lacks.
    pub missing: Vec<Document>,
    /// The State Corporation operator who checked the package.
    pub operator: String,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// Where the receipt is emailed.
    pub email: Option<String>,
}

/// A numbered receipt as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub number: ReceiptNumber,
    /// The application registered with an acceptance.
    pub application: Option<ApplicationNumber>,
    #[serde(flatten)]
    pub details: ReceiptDetails,
}

/// Kazakhstan's time, as the receipts print it.
fn local(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::from_hms(5, 0, 0).unwrap_or(time::UtcOffset::UTC));
    format!("{:02}.{:02}.{:04} {:02}:{:02} (UTC+5)", t.day(), u8::from(t.month()), t.year(), t.hour(), t.minute())
}

impl Receipt {
    /// The receipt as printable lines (the PDF prints the same lines).
    pub fn lines(&self) -> Vec<String> {
        let d = &self.details;
        let mut out = vec![
            format!("РАСПИСКА № {}", self.number),
            d.kind.title().to_owned(),
            String::new(),
            format!("Государственная услуга: «{SERVICE}»"),
            format!("Вид заявки: {}", d.application_kind),
            format!(
                "Услугополучатель: ИИН {}{}{}",
                d.iin,
                d.applicant_name.as_deref().map(|n| format!(", {n}")).unwrap_or_default(),
                d.bin.map(|b| format!(" (БИН {b})")).unwrap_or_default()
            ),
        ];
        if let Some(r) = &d.representative {
            out.push(format!("Представитель: ИИН {}, {}, по доверенности {}", r.iin, r.name, r.power_of_attorney));
        }
        let list = |out: &mut Vec<String>, title: &str, docs: &[Document]| {
            out.push(title.to_owned());
            for (i, doc) in docs.iter().enumerate() {
                out.push(format!("  {}) {}", i + 1, doc.title()));
            }
        };
        match d.kind {
            ReceiptKind::Acceptance => {
                list(&mut out, "Приняты документы:", &d.presented);
                if let Some(a) = &self.application {
                    out.push(format!("Номер заявки: {a}"));
                }
                out.push(
                    "Письменное согласие на использование сведений, составляющих охраняемую законом тайну, \
                     содержащихся в информационных системах, получено."
                        .into(),
                );
            }
            ReceiptKind::Refusal => {
                out.push(format!("{}.", super::state_corporation::INCOMPLETE));
                list(&mut out, "Отсутствуют документы:", &d.missing);
                if !d.presented.is_empty() {
                    list(&mut out, "Представлены документы (возвращены услугополучателю):", &d.presented);
                }
            }
        }
        out.push(format!("Оператор Государственной корпорации: {}", d.operator));
        out.push(format!("Дата и время выдачи: {}", local(d.issued_at)));
        out
    }

    /// The receipt as text.
    pub fn text(&self) -> String {
        self.lines().iter().fold(String::new(), |mut s, l| {
            let _ = writeln!(s, "{l}");
            s
        })
    }

    /// The audit journal's entry of the receipt (its number, the applicant, what was missing).
    pub fn audit_event(&self) -> crate::store::AuditEvent {
        let d = &self.details;
        crate::store::AuditEvent::new(format!("operator:{}", d.operator), format!("receipt.{}", d.kind.name()))
            .target(self.number.as_str())
            .details(serde_json::json!({
                "application": self.application.as_ref().map(ApplicationNumber::as_str),
                "application_kind": d.application_kind.name(),
                "iin": d.iin.as_string(),
                "missing": d.missing,
                "representative": d.representative.as_ref().map(|r| r.iin.as_string()),
            }))
    }

    /// The receipt emailed to `to`.
    pub fn notice(&self, to: &str) -> NewMessage {
        NewMessage {
            to: to.to_owned(),
            subject: format!("Расписка № {} {}", self.number, self.details.kind.title()),
            body: self.text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_and_bad_ones_are_named() {
        let n = ReceiptNumber::new(2026, 7);
        assert_eq!(n.as_str(), "R-2026-000007");
        assert_eq!(n.as_str().parse::<ReceiptNumber>().unwrap(), n);
        for bad in ["R-26-000001", "A-2026-000001", "R-2026-00001x", ""] {
            assert!(bad.parse::<ReceiptNumber>().unwrap_err().contains("not a receipt number"), "{bad}");
        }
    }
}
