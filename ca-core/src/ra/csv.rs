//! The registry import format: UTF-8 CSV, one record per line, fields separated by commas.
//! A field may be double-quoted (`"ТОО ""Ромашка"""`); quoted fields cannot span lines.
//! Empty lines and lines starting with `#` are skipped. The first field says what the line is:
//!
//! ```text
//! person,IIN,surname,given_name,patronymic,life_status,exclusion_code,legal_capacity,special_register,document_number,document_issued,email,phone
//! entity,BIN,name,registration_number,head_iin
//! ```
//!
//! `patronymic`, `email` and `phone` may be empty; `life_status` is the ГБД ФЛ code (9 = died);
//! `exclusion_code` is 0..9 (0 = none); `legal_capacity` 1..5; `special_register` is 0 or 1;
//! `document_issued` is `YYYY-MM-DD`. Names are checked with the limits of the subject DN
//! (`identity::check_person_names`, `identity::check_organisation_name`), so that a record the
//! registry holds is never refused at issuance for its names. A whole file is checked before
//! anything is written, and every bad line is reported with its number.

use time::macros::format_description;
use time::Date;

use super::registry::{ExclusionCode, LegalCapacity, LegalEntityRecord, PersonRecord};
use crate::identity::{check_organisation_name, check_person_names, Bin, Iin};

/// Longest document or registration number, in characters (they are shown, never in a DN).
pub const MAX_NUMBER_LEN: usize = 64;
/// Longest telephone number, in characters (E.164 is 15 digits; room for spaces and `+()-`).
pub const MAX_PHONE_LEN: usize = 32;

/// Number of fields of a `person` line, including the kind.
pub const PERSON_FIELDS: usize = 13;
/// Number of fields of an `entity` line, including the kind.
pub const ENTITY_FIELDS: usize = 5;

/// One bad line of an import file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("line {line}: {problem}")]
pub struct LineError {
    pub line: usize,
    pub problem: String,
}

/// A parsed import file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryImport {
    pub persons: Vec<PersonRecord>,
    pub entities: Vec<LegalEntityRecord>,
}

/// Parse a whole file; every bad line is reported, not only the first.
pub fn parse(text: &str) -> Result<RegistryImport, Vec<LineError>> {
    let mut out = RegistryImport::default();
    let mut errors = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let result = split(raw).and_then(|fields| match fields.first().map(String::as_str) {
            Some("person") => person(&fields).map(|p| out.persons.push(p)),
            Some("entity") => entity(&fields).map(|e| out.entities.push(e)),
            Some(other) => Err(format!("unknown record kind {other:?}: expected person or entity")),
            None => Err("empty record".into()),
        });
        if let Err(problem) = result {
            errors.push(LineError { line, problem });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Split one line into fields, honouring double quotes.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, '"') => return Err(format!("field {} has a quote in the middle", fields.len() + 1)),
            (false, ',') => {
                fields.push(finish(&field, was_quoted));
                field.clear();
                was_quoted = false;
            }
            (false, c) => {
                if was_quoted && !c.is_whitespace() {
                    return Err(format!("field {} has text after its closing quote", fields.len() + 1));
                }
                field.push(c);
            }
        }
    }
    if quoted {
        return Err(format!("field {} has no closing quote", fields.len() + 1));
    }
    fields.push(finish(&field, was_quoted));
    Ok(fields)
}

fn finish(field: &str, quoted: bool) -> String {
    if quoted {
        field.to_owned()
    } else {
        field.trim().to_owned()
    }
}

fn count(fields: &[String], expected: usize, kind: &str) -> Result<(), String> {
    if fields.len() == expected {
        Ok(())
    } else {
        Err(format!("a {kind} line has {expected} fields, this one has {}", fields.len()))
    }
}

fn required<'a>(value: &'a str, name: &str) -> Result<&'a str, String> {
    let v = value.trim();
    if v.is_empty() {
        Err(format!("{name} is empty"))
    } else if v.chars().any(char::is_control) {
        Err(format!("{name} contains a control character"))
    } else {
        Ok(v)
    }
}

fn bounded<'a>(value: &'a str, name: &str, max: usize) -> Result<&'a str, String> {
    let v = required(value, name)?;
    let len = v.chars().count();
    if len > max {
        Err(format!("{name} is too long ({len} characters, at most {max})"))
    } else {
        Ok(v)
    }
}

fn optional(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn code(value: &str, name: &str, max: u8) -> Result<u8, String> {
    value
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|c| *c <= max)
        .ok_or_else(|| format!("{name} {value:?} is not a number 0..{max}"))
}

fn person(f: &[String]) -> Result<PersonRecord, String> {
    count(f, PERSON_FIELDS, "person")?;
    let iin: Iin = f[1].parse().map_err(|e| format!("{e}"))?;
    let life_status = code(&f[5], "life_status", 9)?;
    let exclusion = ExclusionCode::new(code(&f[6], "exclusion_code", 9)?)
        .ok_or_else(|| format!("exclusion_code {:?} is not 0..9", f[6]))?;
    let legal_capacity = code(&f[7], "legal_capacity", 9)
        .ok()
        .and_then(LegalCapacity::from_code)
        .ok_or_else(|| format!("legal_capacity {:?} is not 1..5", f[7]))?;
    let special_register = match f[8].trim() {
        "0" => false,
        "1" => true,
        other => return Err(format!("special_register {other:?} is not 0 or 1")),
    };
    let document_issued = Date::parse(f[10].trim(), format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("document_issued {:?} is not a date YYYY-MM-DD", f[10]))?;
    let email = optional(&f[11]);
    if let Some(e) = &email {
        crate::identity::validate_email(e).map_err(|e| e.to_string())?;
    }
    let phone = optional(&f[12]);
    if let Some(p) = &phone {
        if p.chars().count() > MAX_PHONE_LEN || !p.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)) {
            let shown: String = p.chars().take(40).collect();
            return Err(format!("phone {shown:?} is not a telephone number"));
        }
    }
    let surname = required(&f[2], "surname")?;
    let given_name = required(&f[3], "given_name")?;
    let patronymic = optional(&f[4]);
    check_person_names(surname, given_name, patronymic.as_deref()).map_err(|e| e.to_string())?;
    Ok(PersonRecord {
        iin,
        surname: surname.to_owned(),
        given_name: given_name.to_owned(),
        patronymic,
        life_status,
        exclusion,
        legal_capacity,
        special_register,
        document_number: bounded(&f[9], "document_number", MAX_NUMBER_LEN)?.to_owned(),
        document_issued,
        email,
        phone,
    })
}

fn entity(f: &[String]) -> Result<LegalEntityRecord, String> {
    count(f, ENTITY_FIELDS, "entity")?;
    let bin: Bin = f[1].parse().map_err(|e| format!("{e}"))?;
    let head_iin: Iin = f[4].parse().map_err(|e| format!("head_iin: {e}"))?;
    let name = required(&f[2], "name")?;
    check_organisation_name(name).map_err(|e| e.to_string())?;
    Ok(LegalEntityRecord {
        bin,
        name: name.to_owned(),
        registration_number: bounded(&f[3], "registration_number", MAX_NUMBER_LEN)?.to_owned(),
        head_iin,
    })
}

/// Quote a field for writing, when it needs it.
pub fn quote(field: &str) -> String {
    if field.contains([',', '"']) || field.starts_with(' ') || field.ends_with(' ') {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// One `person` line (no newline).
pub fn person_line(p: &PersonRecord) -> String {
    let date = p
        .document_issued
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_else(|_| p.document_issued.to_string());
    [
        "person".to_owned(),
        p.iin.as_string(),
        quote(&p.surname),
        quote(&p.given_name),
        quote(p.patronymic.as_deref().unwrap_or("")),
        p.life_status.to_string(),
        p.exclusion.code().to_string(),
        p.legal_capacity.code().to_string(),
        u8::from(p.special_register).to_string(),
        quote(&p.document_number),
        date,
        quote(p.email.as_deref().unwrap_or("")),
        quote(p.phone.as_deref().unwrap_or("")),
    ]
    .join(",")
}

/// One `entity` line (no newline).
pub fn entity_line(e: &LegalEntityRecord) -> String {
    ["entity".to_owned(), e.bin.as_string(), quote(&e.name), quote(&e.registration_number), e.head_iin.as_string()]
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const IIN: &str = "880101300010";

    #[test]
    fn parses_quotes_comments_and_reports_every_bad_line() {
        let text = format!(
            "# comment\n\nperson,{IIN},Тестов,Тест,,1,0,1,0,N123,2020-01-31,t@example.kz,+7 701 000 00 00\n\
             entity,121340012348,\"ТОО \"\"Ромашка, плюс\"\"\",RC-1,{IIN}\n\
             person,123,a\nalien,1\nperson,{IIN},Тестов,Тест,,1,10,1,0,N1,2020-01-01,,\n"
        );
        let errors = parse(&text).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![5, 6, 7], "{errors:?}");
        assert!(errors[2].problem.contains("exclusion_code"), "{errors:?}");
        let good: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
        let import = parse(&good).unwrap();
        assert_eq!(import.persons.len(), 1);
        assert_eq!(import.entities[0].name, "ТОО \"Ромашка, плюс\"");
        assert_eq!(parse(&entity_line(&import.entities[0])).unwrap().entities, import.entities);
        assert_eq!(parse(&person_line(&import.persons[0])).unwrap().persons, import.persons);
    }

    #[test]
    fn refuses_unclosed_quotes_and_bad_codes() {
        assert!(parse("entity,\"x").is_err());
        assert!(parse(&format!("person,{IIN},a,b,,1,0,6,0,N,2020-01-01,,")).is_err());
        assert!(parse(&format!("person,{IIN},a,b,,1,0,1,2,N,2020-01-01,,")).is_err());
        assert!(parse(&format!("person,{IIN},a,b,,1,0,1,0,N,2020-13-01,,")).is_err());
        assert!(parse(&format!("person,{IIN},a,b,,1,0,1,0,N,2020-01-01,not-an-email,")).is_err());
    }

    #[test]
    fn refuses_what_issuance_would_refuse_with_the_line_number() {
        let long = "Я".repeat(5_000_000);
        let ok = format!("person,{IIN},Тестов,Тест,,1,0,1,0,N1,2020-01-01,,");
        let text = [
            ok.clone(),
            format!("person,{IIN},{long},Тест,,1,0,1,0,N1,2020-01-01,,"),
            format!("person,{IIN},Тестов,{},,1,0,1,0,N1,2020-01-01,,", "Я".repeat(65)),
            format!("person,{IIN},{},{},,1,0,1,0,N1,2020-01-01,,", "Я".repeat(40), "Я".repeat(30)),
            format!("person,{IIN},Тестов,Тест,{},1,0,1,0,N1,2020-01-01,,", "Я".repeat(65)),
            format!("entity,121340012348,{},RC-1,{IIN}", "Я".repeat(201)),
            format!("person,{IIN},Тестов,Тест,,1,0,1,0,{},2020-01-01,,", "N".repeat(65)),
            format!("entity,121340012348,ТОО,{},{IIN}", "R".repeat(65)),
            format!("person,{IIN},Тестов,Тест,,1,0,1,0,N1,2020-01-01,,{}", "1".repeat(33)),
        ]
        .join("\n");
        let errors = parse(&text).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, (2..=9).collect::<Vec<_>>(), "{errors:?}");
        assert_eq!(errors[0].to_string(), "line 2: surname is too long (5000000 characters, at most 64)");
        assert!(errors.iter().all(|e| e.problem.len() < 200), "no echo of huge values: {errors:?}");
        // The same limits as the DN builder: what passes here is issuable.
        let edge =
            format!("person,{IIN},{},{},{},1,0,1,0,N1,2020-01-01,,", "Я".repeat(31), "Я".repeat(32), "Я".repeat(64));
        let person = parse(&edge).unwrap().persons.remove(0);
        let subject = crate::identity::Person {
            iin: person.iin,
            surname: person.surname,
            given_name: person.given_name,
            patronymic: person.patronymic,
            email: None,
        };
        assert!(crate::identity::Subject::Individual(subject).to_name().is_ok());
    }
}
