//! The person registry as the portal asks it: the refusals of document 002 (life status,
//! IIN exclusion, the prosecutor's special register, no record), and a registry read from an
//! export in the format of `ca registry import` (a deployment plugs the state gateway in
//! behind [`PersonRegistry`] instead).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use ca_core::identity::{Bin, Iin};
use ca_core::ra::registry::{LegalEntityRecord, PersonRecord, PersonRegistry, RegistryError, LIFE_STATUS_DECEASED};

use crate::error::PortalError;
use crate::messages;

/// A registry held in memory, loaded from a CSV export.
#[derive(Debug, Default)]
pub struct CsvRegistry {
    persons: HashMap<Iin, PersonRecord>,
    entities: HashMap<Bin, LegalEntityRecord>,
    children: HashMap<Iin, Vec<RepresentedChild>>,
}

/// How a legal representative stands to a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    Parent,
    Guardian,
}

/// A child a person legally represents (from the state registries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepresentedChild {
    pub child: Iin,
    pub relation: Relation,
    pub birth_date: time::Date,
}

impl RepresentedChild {
    /// Whether the child is still a minor on `day` (turns 18 on the 18th birthday; one born
    /// on 29 February on 1 March of a common year).
    pub fn minor_on(&self, day: time::Date) -> bool {
        let year = self.birth_date.year() + 18;
        let adult = time::Date::from_calendar_date(year, self.birth_date.month(), self.birth_date.day())
            .or_else(|_| time::Date::from_calendar_date(year, time::Month::March, 1))
            .unwrap_or(time::Date::MAX);
        day < adult
    }
}

/// Legal representatives' links (parent/guardian → child), as the registries hold them.
pub trait Representatives: Send + Sync {
    /// The children `representative` represents (of any age: the caller decides on minority).
    fn children_of(&self, representative: &Iin) -> Result<Vec<RepresentedChild>, RegistryError>;
}

impl Representatives for CsvRegistry {
    fn children_of(&self, representative: &Iin) -> Result<Vec<RepresentedChild>, RegistryError> {
        Ok(self.children.get(representative).cloned().unwrap_or_default())
    }
}

/// The prefix of a representative line in the export (besides `ca registry import`'s lines):
/// `representative,REPRESENTATIVE_IIN,CHILD_IIN,parent|guardian,CHILD_BIRTH_DATE` (YYYY-MM-DD,
/// which must agree with the date the child's IIN begins with).
pub const REPRESENTATIVE_LINE: &str = "representative,";

fn representative_line(line: &str) -> Result<(Iin, RepresentedChild), String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [_, representative, child, relation, born] = fields.as_slice() else {
        return Err("a representative line has 5 fields".into());
    };
    let representative = Iin::from_str(representative).map_err(|e| format!("representative IIN: {e}"))?;
    let child = Iin::from_str(child).map_err(|e| format!("child IIN: {e}"))?;
    if representative == child {
        return Err("a person does not represent himself".into());
    }
    let relation = match *relation {
        "parent" => Relation::Parent,
        "guardian" => Relation::Guardian,
        other => return Err(format!("relation {other:?} is not parent or guardian")),
    };
    let birth_date = time::Date::parse(born, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|e| format!("birth date {born:?}: {e}"))?;
    let yymmdd =
        format!("{:02}{:02}{:02}", birth_date.year().rem_euclid(100), u8::from(birth_date.month()), birth_date.day());
    if !child.to_string().starts_with(&yymmdd) {
        return Err(format!("birth date {born} does not agree with the child's IIN"));
    }
    Ok((representative, RepresentedChild { child, relation, birth_date }))
}

impl CsvRegistry {
    /// Parse an export; every bad line is named.
    pub fn parse(text: &str) -> Result<Self, String> {
        // Representative lines are the portal's; the rest is `ca registry import`'s format
        // (the lines taken out are left empty so line numbers stay right).
        let mut children: HashMap<Iin, Vec<RepresentedChild>> = HashMap::new();
        let mut problems = Vec::new();
        let mut rest = String::with_capacity(text.len());
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with(REPRESENTATIVE_LINE) {
                match representative_line(line.trim()) {
                    Ok((who, child)) => children.entry(who).or_default().push(child),
                    Err(e) => problems.push(format!("line {}: {e}", i + 1)),
                }
            } else {
                rest.push_str(line);
            }
            rest.push('\n');
        }
        let import = ca_core::ra::csv::parse(&rest).map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("line {}: {}", e.line, e.problem))
                .chain(problems.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(Self {
            persons: import.persons.into_iter().map(|p| (p.iin, p)).collect(),
            entities: import.entities.into_iter().map(|e| (e.bin, e)).collect(),
            children,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn representative_lines_are_read_checked_and_minority_ends_at_18() {
        let parent = fixtures_like_iin();
        let text = format!("representative,{parent},080315500015,parent,2008-03-15\n");
        // The child's IIN must be valid for the test: find one with that birth date.
        let child = (0..10_000)
            .flat_map(|s| (0..10).map(move |d| format!("0803155{s:04}{d}")))
            .find(|c| Iin::from_str(c).is_ok())
            .unwrap();
        let text = text.replace("080315500015", &child);
        let registry = CsvRegistry::parse(&text).unwrap();
        let children = registry.children_of(&Iin::from_str(&parent).unwrap()).unwrap();
        assert_eq!(children.len(), 1);
        let link = &children[0];
        assert_eq!((link.relation, link.child.to_string()), (Relation::Parent, child.clone()));
        let day = |y, m, d| time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
        assert!(link.minor_on(day(2026, 3, 14)));
        assert!(!link.minor_on(day(2026, 3, 15)), "18 on the birthday");

        let wrong_date = format!("representative,{parent},{child},parent,2008-03-16\n");
        assert!(CsvRegistry::parse(&wrong_date).unwrap_err().contains("line 1"), "a date that disagrees with the IIN");
        let wrong_relation = format!("\nrepresentative,{parent},{child},uncle,2008-03-15\n");
        assert!(CsvRegistry::parse(&wrong_relation).unwrap_err().contains("line 2"));
        // Born on 29 February: an adult on 1 March of a common year.
        let leap = RepresentedChild { child: link.child, relation: Relation::Guardian, birth_date: day(2008, 2, 29) };
        assert!(leap.minor_on(day(2026, 2, 28)) && !leap.minor_on(day(2026, 3, 1)));
    }

    fn fixtures_like_iin() -> String {
        (0..10).map(|d| format!("90010130001{d}")).find(|c| Iin::from_str(c).is_ok()).unwrap()
    }
}
