//! The subject distinguished name of the national profile, built from application data.
//!
//! RDN order as issued: CN, SURNAME, SERIALNUMBER, C, [O, OU,] G — one attribute per RDN.
//! CN, SURNAME, O, OU and G are UTF8String; SERIALNUMBER and C are PrintableString.

use const_oid::db::rfc4519;
use const_oid::ObjectIdentifier;
use der::asn1::{Any, Ia5String, PrintableStringRef, SetOfVec, Utf8StringRef};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use super::{Bin, Iin};

/// `givenName` (G): in this profile it carries the patronymic.
pub const GIVEN_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.42");

/// A subject value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is too long ({len} characters, at most {max})")]
    TooLong { field: &'static str, len: usize, max: usize },
    #[error("{field} contains a control character")]
    ControlCharacter { field: &'static str },
    #[error("email {0:?} is not a plain ASCII address of the form local@domain")]
    Email(String),
    #[error("cannot encode the subject: {0}")]
    Encoding(String),
}

/// A natural person as the person registry knows him.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Person {
    pub iin: Iin,
    pub surname: String,
    /// First name.
    pub given_name: String,
    /// Patronymic, written into G (givenName) as the national profile does.
    pub patronymic: Option<String>,
    pub email: Option<String>,
}

/// A legal entity (organisation) for its employees' certificates.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Organisation {
    pub bin: Bin,
    pub name: String,
}

/// Whom an end-entity certificate is for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Subject {
    /// A citizen acting for himself.
    Individual(Person),
    /// A person acting for a legal entity.
    Employee { person: Person, organisation: Organisation },
    /// A service of the CA itself (OCSP responder, TSA) or a CA.
    Service { common_name: String, organisation: Option<String> },
}

/// Longest CN, SURNAME and G value in characters (RFC 5280 ub-common-name, ub-name).
pub const UB_NAME: usize = 64;
/// Longest organisation name (O) in characters: national registry names are long, and O is a
/// UTF8String anyway.
pub const UB_ORGANISATION: usize = 200;

fn clean(field: &'static str, value: &str, max: usize) -> Result<String, SubjectError> {
    let v = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if v.is_empty() {
        return Err(SubjectError::Empty { field });
    }
    if v.chars().any(char::is_control) {
        return Err(SubjectError::ControlCharacter { field });
    }
    let len = v.chars().count();
    if len > max {
        return Err(SubjectError::TooLong { field, len, max });
    }
    Ok(v)
}

/// A person's names as they go into the DN: whitespace collapsed, checked, in capitals.
struct DnNames {
    surname: String,
    given_name: String,
    patronymic: Option<String>,
}

impl DnNames {
    fn of(surname: &str, given_name: &str, patronymic: Option<&str>) -> Result<Self, SubjectError> {
        let surname = clean("surname", surname, UB_NAME)?.to_uppercase();
        let given_name = clean("given name", given_name, UB_NAME)?.to_uppercase();
        // CN is "SURNAME GIVENNAME" and has the same upper bound as each part.
        let cn = surname.chars().count() + 1 + given_name.chars().count();
        if cn > UB_NAME {
            return Err(SubjectError::TooLong { field: "surname and given name together (CN)", len: cn, max: UB_NAME });
        }
        let patronymic = match patronymic {
            Some(p) if !p.trim().is_empty() => Some(clean("patronymic", p, UB_NAME)?.to_uppercase()),
            _ => None,
        };
        Ok(Self { surname, given_name, patronymic })
    }
}

/// Check a person's names against the limits of the subject DN without building it, so that
/// data accepted elsewhere (the registry import) is never refused later at issuance.
pub fn check_person_names(surname: &str, given_name: &str, patronymic: Option<&str>) -> Result<(), SubjectError> {
    DnNames::of(surname, given_name, patronymic).map(|_| ())
}

/// Check an organisation name against the limits of O.
pub fn check_organisation_name(name: &str) -> Result<(), SubjectError> {
    clean("organisation name", name, UB_ORGANISATION).map(|_| ())
}

/// Validate an email for rfc822Name: ASCII, one `@`, non-empty parts, no spaces.
pub fn validate_email(email: &str) -> Result<Ia5String, SubjectError> {
    let bad = || SubjectError::Email(email.chars().take(80).collect());
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || !email.is_ascii()
        || email.len() > 255
        || email.chars().any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(bad());
    }
    Ia5String::new(email).map_err(|_| bad())
}

fn rdn(oid: ObjectIdentifier, value: Any) -> Result<RelativeDistinguishedName, SubjectError> {
    let set = SetOfVec::try_from(vec![AttributeTypeAndValue { oid, value }])
        .map_err(|e| SubjectError::Encoding(e.to_string()))?;
    Ok(RelativeDistinguishedName(set))
}

fn utf8(oid: ObjectIdentifier, value: &str) -> Result<RelativeDistinguishedName, SubjectError> {
    let s = Utf8StringRef::new(value).map_err(|e| SubjectError::Encoding(e.to_string()))?;
    rdn(oid, Any::from(s))
}

fn printable(oid: ObjectIdentifier, value: &str) -> Result<RelativeDistinguishedName, SubjectError> {
    let s = PrintableStringRef::new(value).map_err(|e| SubjectError::Encoding(e.to_string()))?;
    rdn(oid, Any::from(s))
}

impl Person {
    /// `SURNAME GIVENNAME` in capitals, as CN is written.
    pub fn common_name(&self) -> String {
        format!("{} {}", self.surname, self.given_name).to_uppercase()
    }
}

impl Subject {
    pub fn person(&self) -> Option<&Person> {
        match self {
            Self::Individual(p) | Self::Employee { person: p, .. } => Some(p),
            Self::Service { .. } => None,
        }
    }

    pub fn iin(&self) -> Option<Iin> {
        self.person().map(|p| p.iin)
    }

    pub fn bin(&self) -> Option<Bin> {
        match self {
            Self::Employee { organisation, .. } => Some(organisation.bin),
            _ => None,
        }
    }

    pub fn email(&self) -> Option<&str> {
        self.person().and_then(|p| p.email.as_deref())
    }

    /// Check every value and build the DN in the national profile's order and string types.
    pub fn to_name(&self) -> Result<Name, SubjectError> {
        let mut rdns = Vec::with_capacity(7);
        match self {
            Self::Individual(person) | Self::Employee { person, .. } => {
                let names = DnNames::of(&person.surname, &person.given_name, person.patronymic.as_deref())?;
                let cn = format!("{} {}", names.surname, names.given_name);
                rdns.push(utf8(rfc4519::CN, &cn)?);
                rdns.push(utf8(rfc4519::SN, &names.surname)?);
                rdns.push(printable(rfc4519::SERIAL_NUMBER, &person.iin.dn_value())?);
                rdns.push(printable(rfc4519::C, "KZ")?);
                if let Self::Employee { organisation, .. } = self {
                    let org = clean("organisation name", &organisation.name, UB_ORGANISATION)?;
                    rdns.push(utf8(rfc4519::O, &org)?);
                    rdns.push(utf8(rfc4519::OU, &organisation.bin.dn_value())?);
                }
                if let Some(p) = &names.patronymic {
                    rdns.push(utf8(GIVEN_NAME, p)?);
                }
                if let Some(email) = &person.email {
                    validate_email(email)?;
                }
            }
            Self::Service { common_name, organisation } => {
                rdns.push(utf8(rfc4519::CN, &clean("common name", common_name, UB_NAME)?)?);
                rdns.push(printable(rfc4519::C, "KZ")?);
                if let Some(o) = organisation {
                    rdns.push(utf8(rfc4519::O, &clean("organisation name", o, UB_ORGANISATION)?)?);
                }
            }
        }
        Ok(RdnSequence(rdns))
    }

    /// The subjectAltName entries: the email as rfc822Name, if any.
    pub fn alt_names(&self) -> Result<Vec<GeneralName>, SubjectError> {
        match self.email() {
            Some(e) => Ok(vec![GeneralName::Rfc822Name(validate_email(e)?)]),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode, Tagged};

    fn person() -> Person {
        Person {
            iin: Iin::with_check_digit("88010130001").unwrap(),
            surname: "Тестов".into(),
            given_name: "Тест".into(),
            patronymic: Some("Тестович".into()),
            email: Some("test@example.kz".into()),
        }
    }

    fn oids_and_tags(name: &Name) -> Vec<(String, der::Tag)> {
        name.0
            .iter()
            .map(|r| {
                let atv = r.0.iter().next().unwrap();
                (atv.oid.to_string(), atv.value.tag())
            })
            .collect()
    }

    #[test]
    fn individual_dn_has_profile_order_and_string_types() {
        let name = Subject::Individual(person()).to_name().unwrap();
        let got = oids_and_tags(&name);
        assert_eq!(
            got,
            vec![
                ("2.5.4.3".into(), der::Tag::Utf8String),
                ("2.5.4.4".into(), der::Tag::Utf8String),
                ("2.5.4.5".into(), der::Tag::PrintableString),
                ("2.5.4.6".into(), der::Tag::PrintableString),
                ("2.5.4.42".into(), der::Tag::Utf8String),
            ]
        );
        let dn = name.to_string();
        assert!(dn.contains("CN=ТЕСТОВ ТЕСТ"), "{dn}");
        assert!(dn.contains("SERIALNUMBER=IIN880101300"), "{dn}");
        // DER round trip keeps the order.
        let der = name.to_der().unwrap();
        assert_eq!(Name::from_der(&der).unwrap(), name);
    }

    #[test]
    fn employee_dn_adds_o_and_ou_with_bin() {
        let org = Organisation { bin: Bin::with_check_digit("12134001234").unwrap(), name: "АО \"ТЕСТ\"".into() };
        let name = Subject::Employee { person: person(), organisation: org.clone() }.to_name().unwrap();
        let oids: Vec<String> = oids_and_tags(&name).into_iter().map(|(o, _)| o).collect();
        assert_eq!(oids, ["2.5.4.3", "2.5.4.4", "2.5.4.5", "2.5.4.6", "2.5.4.10", "2.5.4.11", "2.5.4.42"]);
        assert!(name.to_string().contains(&format!("OU=BIN{}", org.bin)));
    }

    #[test]
    fn rejects_bad_values() {
        let mut p = person();
        p.surname = "  ".into();
        assert_eq!(Subject::Individual(p).to_name().unwrap_err(), SubjectError::Empty { field: "surname" });
        let mut p = person();
        p.email = Some("тест@пример.kz".into());
        assert!(matches!(Subject::Individual(p).to_name(), Err(SubjectError::Email(_))));
        let mut p = person();
        p.given_name = "a\u{0007}b".into();
        assert!(matches!(Subject::Individual(p).to_name(), Err(SubjectError::ControlCharacter { .. })));
        let mut p = person();
        p.surname = "Я".repeat(65);
        assert!(matches!(Subject::Individual(p).to_name(), Err(SubjectError::TooLong { .. })));
        // Each part fits, CN ("SURNAME GIVENNAME") does not.
        let mut p = person();
        p.surname = "Я".repeat(40);
        p.given_name = "Я".repeat(30);
        assert!(matches!(Subject::Individual(p).to_name(), Err(SubjectError::TooLong { len: 71, max: 64, .. })));
    }

    #[test]
    fn name_checks_agree_with_the_dn_builder() {
        let cases = [
            ("Тестов", "Тест", Some("Тестович")),
            ("Я", &*"Я".repeat(63), None),
            ("Я", &*"Я".repeat(62), None),
            (&*"Я".repeat(65), "Т", None),
            ("Т", "Т", Some(&*"Я".repeat(65))),
            ("Т", "a\u{0007}b", None),
            ("  ", "Т", None),
        ];
        for (surname, given, patronymic) in cases {
            let mut p = person();
            p.surname = surname.into();
            p.given_name = given.into();
            p.patronymic = patronymic.map(Into::into);
            let built = Subject::Individual(p).to_name().map(|_| ());
            assert_eq!(check_person_names(surname, given, patronymic), built, "{surname} {given}");
        }
        assert!(check_organisation_name(&"Я".repeat(200)).is_ok());
        assert!(matches!(check_organisation_name(&"Я".repeat(201)), Err(SubjectError::TooLong { .. })));
    }
}
