//! Reading identities back out of any certificate: ours, or another CA's in the same profile.
//! Lenient on string types (relying parties meet UTF8String, PrintableString, BMPString …),
//! strict on the IIN/BIN check digit.

use const_oid::db::{rfc4519, rfc5280};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{BmpString, Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use der::{Any, Decode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::Certificate;

use super::subject::GIVEN_NAME;
use super::{Bin, Iin};
use crate::profile::Role;

/// Which of a person's two key pairs a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum KeyType {
    /// Authentication (login): digitalSignature + keyEncipherment (keyAgreement for EC keys),
    /// clientAuth.
    #[serde(alias = "AUTHENTICATION")]
    Auth,
    /// Signature: digitalSignature + nonRepudiation, emailProtection.
    #[serde(alias = "SIGNATURE")]
    Sign,
}

impl KeyType {
    /// `AUTH` or `SIGN`, as the JSON and the national profile name them.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auth => "AUTH",
            Self::Sign => "SIGN",
        }
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything a relying party wants to know about who holds a certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CertificateIdentity {
    pub common_name: Option<String>,
    pub surname: Option<String>,
    /// The first name: CN is "SURNAME FIRSTNAME" in the national profile, so this is what
    /// follows the surname in CN (`None` when CN does not start with the surname).
    pub first_name: Option<String>,
    /// The patronymic, which the national profile writes into G (givenName).
    pub patronymic: Option<String>,
    pub iin: Option<Iin>,
    pub bin: Option<Bin>,
    pub organisation: Option<String>,
    pub country: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub key_type: Option<KeyType>,
    /// Problems found while reading (e.g. an IIN with a wrong check digit); never fatal.
    pub warnings: Vec<String>,
    /// Every subject attribute as written, in DN order: what the fields above interpret.
    pub attributes: Vec<NameAttribute>,
}

/// One attribute of a subject DN, uninterpreted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NameAttribute {
    /// The short name (CN, SN, SERIALNUMBER, C, O, OU, G, L, ST) or the OID.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value; `#` and the DER in hex when it is not a directory string.
    pub value: String,
}

/// The attributes of `name` in DN order (first RDN first).
pub fn name_attributes(name: &Name) -> Vec<NameAttribute> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .map(|atv| NameAttribute {
            kind: short_name(&atv.oid).map_or_else(|| atv.oid.to_string(), str::to_owned),
            value: directory_string(&atv.value)
                .unwrap_or_else(|| format!("#{}", hex::encode(der::Encode::to_der(&atv.value).unwrap_or_default()))),
        })
        .collect()
}

/// "SURNAME FIRSTNAME" minus the surname.
fn first_name(common_name: Option<&str>, surname: Option<&str>) -> Option<String> {
    let rest = common_name?.strip_prefix(surname?)?.strip_prefix(' ')?.trim();
    (!rest.is_empty()).then(|| rest.to_owned())
}

/// Decode a directory string of any of the usual types.
pub(crate) fn directory_string(value: &Any) -> Option<String> {
    match value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(value).ok().map(|s| s.as_str().to_owned()),
        Tag::PrintableString => PrintableStringRef::try_from(value).ok().map(|s| s.as_str().to_owned()),
        Tag::Ia5String => Ia5StringRef::try_from(value).ok().map(|s| s.as_str().to_owned()),
        Tag::TeletexString => TeletexStringRef::try_from(value).ok().map(|s| s.as_str().to_owned()),
        Tag::BmpString => BmpString::from_der(&value.to_der_vec()).ok().map(|s| s.to_string()),
        _ => None,
    }
}

trait AnyDer {
    fn to_der_vec(&self) -> Vec<u8>;
}
impl AnyDer for Any {
    fn to_der_vec(&self) -> Vec<u8> {
        der::Encode::to_der(self).unwrap_or_default()
    }
}

/// The first value of `oid` in a name.
pub fn name_attribute(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    name.0.iter().flat_map(|rdn| rdn.0.iter()).find(|atv| atv.oid == oid).and_then(|atv| directory_string(&atv.value))
}

impl CertificateIdentity {
    /// Read the identity of the certificate's subject.
    pub fn from_certificate(cert: &Certificate) -> Self {
        let tbs = &cert.tbs_certificate;
        let subject = &tbs.subject;
        let mut id = CertificateIdentity {
            common_name: name_attribute(subject, rfc4519::CN),
            surname: name_attribute(subject, rfc4519::SN),
            patronymic: name_attribute(subject, GIVEN_NAME),
            organisation: name_attribute(subject, rfc4519::O),
            country: name_attribute(subject, rfc4519::C),
            attributes: name_attributes(subject),
            ..Default::default()
        };
        id.first_name = first_name(id.common_name.as_deref(), id.surname.as_deref());
        if let Some(sn) = name_attribute(subject, rfc4519::SERIAL_NUMBER) {
            if sn.starts_with(Iin::DN_PREFIX) {
                match Iin::from_dn_value(&sn) {
                    Ok(iin) => id.iin = Some(iin),
                    Err(e) => id.warnings.push(e.to_string()),
                }
            }
        }
        if let Some(ou) = name_attribute(subject, rfc4519::OU) {
            if ou.starts_with(Bin::DN_PREFIX) {
                match Bin::from_dn_value(&ou) {
                    Ok(bin) => id.bin = Some(bin),
                    Err(e) => id.warnings.push(e.to_string()),
                }
            }
        }
        let mut key_usage = None;
        let mut eku = Vec::new();
        for ext in tbs.extensions.iter().flatten() {
            let value = ext.extn_value.as_bytes();
            if ext.extn_id == KeyUsage::OID {
                match KeyUsage::from_der(value) {
                    Ok(ku) => key_usage = Some(ku),
                    Err(e) => id.warnings.push(format!("unreadable keyUsage: {e}")),
                }
            } else if ext.extn_id == ExtendedKeyUsage::OID {
                match ExtendedKeyUsage::from_der(value) {
                    Ok(e) => eku = e.0,
                    Err(e) => id.warnings.push(format!("unreadable extKeyUsage: {e}")),
                }
            } else if ext.extn_id == SubjectAltName::OID {
                match SubjectAltName::from_der(value) {
                    Ok(san) => {
                        id.email = san.0.iter().find_map(|gn| match gn {
                            GeneralName::Rfc822Name(s) => Some(s.to_string()),
                            _ => None,
                        })
                    }
                    Err(e) => id.warnings.push(format!("unreadable subjectAltName: {e}")),
                }
            }
        }
        if id.email.is_none() {
            // Older certificates put the email into the DN.
            id.email = name_attribute(subject, const_oid::db::rfc3280::EMAIL_ADDRESS);
        }
        id.roles = eku.iter().filter_map(Role::from_oid).collect();
        id.roles.sort();
        id.roles.dedup();
        // AUTH and SIGN are told apart by keyUsage as relying parties do; a certificate with
        // neither pattern (a CA, an OCSP responder) has no key type.
        id.key_type = key_usage.and_then(|ku| {
            if ku.key_cert_sign() || ku.crl_sign() {
                None
            } else if ku.non_repudiation() {
                Some(KeyType::Sign)
            } else if ku.digital_signature() && (ku.key_encipherment() || eku.contains(&rfc5280::ID_KP_CLIENT_AUTH)) {
                Some(KeyType::Auth)
            } else {
                None
            }
        });
        id
    }
}

const SHORT_NAMES: [(ObjectIdentifier, &str); 9] = [
    (rfc4519::CN, "CN"),
    (rfc4519::SN, "SN"),
    (rfc4519::SERIAL_NUMBER, "SERIALNUMBER"),
    (rfc4519::C, "C"),
    (rfc4519::O, "O"),
    (rfc4519::OU, "OU"),
    (GIVEN_NAME, "G"),
    (rfc4519::L, "L"),
    (rfc4519::ST, "ST"),
];

fn short_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    SHORT_NAMES.iter().find(|(o, _)| o == oid).map(|(_, short)| *short)
}

/// A DN in RFC 4514 form (last RDN first), with short names for the attributes of the
/// national profile. Unlike `Name`'s `Display`, it does not search the whole OID database for
/// every attribute, which matters at thousands of certificates per second.
pub fn format_dn(name: &Name) -> String {
    let mut out = String::new();
    for (i, rdn) in name.0.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.0.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match short_name(&atv.oid) {
                Some(short) => out.push_str(short),
                None => out.push_str(&atv.oid.to_string()),
            }
            out.push('=');
            match directory_string(&atv.value) {
                Some(v) => escape_into(&mut out, &v),
                None => {
                    out.push('#');
                    out.push_str(&hex::encode(der::Encode::to_der(&atv.value).unwrap_or_default()));
                }
            }
        }
    }
    out
}

fn escape_into(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Organisation, Person, Subject};

    #[test]
    fn format_dn_is_rfc4514_with_profile_short_names() {
        let subject = Subject::Employee {
            person: Person {
                iin: Iin::with_check_digit("88010130001").unwrap(),
                surname: "Тестов".into(),
                given_name: "Тест".into(),
                patronymic: Some("Тестович".into()),
                email: None,
            },
            organisation: Organisation {
                bin: Bin::with_check_digit("12134001234").unwrap(),
                name: "ТОО \"A, B\"".into(),
            },
        };
        let dn = format_dn(&subject.to_name().unwrap());
        assert_eq!(
            dn,
            "G=ТЕСТОВИЧ,OU=BIN121340012348,O=ТОО \\\"A\\, B\\\",C=KZ,SERIALNUMBER=IIN880101300010,SN=ТЕСТОВ,CN=ТЕСТОВ ТЕСТ"
        );
    }

    #[test]
    fn first_name_and_patronymic_are_told_apart_and_raw_attributes_kept() {
        let subject = Subject::Individual(Person {
            iin: Iin::with_check_digit("88010130001").unwrap(),
            surname: "Тестов".into(),
            given_name: "Айгерім Тест".into(),
            patronymic: Some("Тестович".into()),
            email: None,
        });
        let name = subject.to_name().unwrap();
        let (cn, sn) = (name_attribute(&name, rfc4519::CN), name_attribute(&name, rfc4519::SN));
        assert_eq!(first_name(cn.as_deref(), sn.as_deref()).as_deref(), Some("АЙГЕРІМ ТЕСТ"));
        assert_eq!(first_name(Some("ИВАНОВ ИВАН"), Some("ПЕТРОВ")), None, "CN not led by the surname");
        assert_eq!(first_name(Some("ИВАНОВ"), Some("ИВАНОВ")), None);
        let attributes = name_attributes(&name);
        let kinds: Vec<&str> = attributes.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["CN", "SN", "SERIALNUMBER", "C", "G"]);
        assert_eq!(attributes[4].value, "ТЕСТОВИЧ");
        let json = serde_json::to_value(&attributes[4]).unwrap();
        assert_eq!(json, serde_json::json!({ "type": "G", "value": "ТЕСТОВИЧ" }));
    }
}
