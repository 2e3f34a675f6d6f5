//! Role OIDs of the national profile, carried in extKeyUsage.

use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;

/// A role a certificate holder has, as a relying party reads it from extKeyUsage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// 1.2.398.3.3.4.1.1 — an individual.
    Individual,
    /// 1.2.398.3.3.4.1.2 — any employee of a legal entity.
    LegalEntity,
    /// 1.2.398.3.3.4.1.2.1 — first head (CEO).
    FirstHead,
    /// 1.2.398.3.3.4.1.2.2 — person with signing right.
    SigningRight,
    /// 1.2.398.3.3.4.1.2.3 — signing right for financial documents.
    FinancialSigning,
    /// 1.2.398.3.3.4.1.2.4 — HR (approves employees' certificate applications).
    Hr,
    /// 1.2.398.3.3.4.1.2.5 — employee.
    Employee,
    /// 1.2.398.3.3.4.2.1 — CA administrator.
    CaAdministrator,
    /// 1.2.398.3.3.4.2.2 — CA manager.
    CaManager,
    /// 1.2.398.3.3.4.2.3 — CA operator.
    CaOperator,
    /// 1.2.398.3.3.4.2.4 — State Corporation («Правительство для граждан», ЦОН) operator: confirms
    /// the applications taken at its counters. The national profile has no such role; this
    /// product assigns it in the CA-staff arc (1.2.398.3.3.4.2), see the README.
    StateCorporationOperator,
    /// 1.2.398.3.3.4.3.1 — identified in person at a counter.
    IdentifiedInPerson,
    /// 1.2.398.3.3.4.3.2 — identified remotely.
    IdentifiedRemotely,
}

const ALL: [(Role, &str, &str); 13] = [
    (Role::Individual, "1.2.398.3.3.4.1.1", "individual"),
    (Role::LegalEntity, "1.2.398.3.3.4.1.2", "legal-entity"),
    (Role::FirstHead, "1.2.398.3.3.4.1.2.1", "first-head"),
    (Role::SigningRight, "1.2.398.3.3.4.1.2.2", "signing-right"),
    (Role::FinancialSigning, "1.2.398.3.3.4.1.2.3", "financial-signing"),
    (Role::Hr, "1.2.398.3.3.4.1.2.4", "hr"),
    (Role::Employee, "1.2.398.3.3.4.1.2.5", "employee"),
    (Role::CaAdministrator, "1.2.398.3.3.4.2.1", "ca-administrator"),
    (Role::CaManager, "1.2.398.3.3.4.2.2", "ca-manager"),
    (Role::CaOperator, "1.2.398.3.3.4.2.3", "ca-operator"),
    (Role::StateCorporationOperator, "1.2.398.3.3.4.2.4", "state-corporation-operator"),
    (Role::IdentifiedInPerson, "1.2.398.3.3.4.3.1", "identified-in-person"),
    (Role::IdentifiedRemotely, "1.2.398.3.3.4.3.2", "identified-remotely"),
];

/// The role name is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; expected one of: individual, legal-entity, first-head, signing-right, financial-signing, hr, employee, ca-administrator, ca-manager, ca-operator, state-corporation-operator, identified-in-person, identified-remotely")]
pub struct UnknownRole(pub String);

impl Role {
    pub fn all() -> impl Iterator<Item = Role> {
        ALL.iter().map(|(r, _, _)| *r)
    }

    pub fn oid(self) -> ObjectIdentifier {
        let (_, oid, _) = ALL.iter().find(|(r, _, _)| *r == self).expect("every role is listed");
        ObjectIdentifier::new_unwrap(oid)
    }

    pub fn name(self) -> &'static str {
        ALL.iter().find(|(r, _, _)| *r == self).map(|(_, _, n)| *n).expect("every role is listed")
    }

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Role> {
        ALL.iter().find(|(_, o, _)| ObjectIdentifier::new_unwrap(o) == *oid).map(|(r, _, _)| *r)
    }

    /// Sub-roles of a legal entity's employee (1.2.398.3.3.4.1.2.x).
    pub fn is_legal_entity_sub_role(self) -> bool {
        matches!(self, Role::FirstHead | Role::SigningRight | Role::FinancialSigning | Role::Hr | Role::Employee)
    }

    /// Roles of the CA's own staff (1.2.398.3.3.4.2.x).
    pub fn is_ca_staff(self) -> bool {
        matches!(self, Role::CaAdministrator | Role::CaManager | Role::CaOperator | Role::StateCorporationOperator)
    }

    /// How the holder was identified (1.2.398.3.3.4.3.x).
    pub fn is_identification(self) -> bool {
        matches!(self, Role::IdentifiedInPerson | Role::IdentifiedRemotely)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_lowercase().replace('_', "-");
        ALL.iter()
            .find(|(_, oid, name)| *name == wanted || *oid == wanted)
            .map(|(r, _, _)| *r)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_oids_round_trip() {
        for r in Role::all() {
            assert_eq!(r.name().parse::<Role>().unwrap(), r);
            assert_eq!(Role::from_oid(&r.oid()), Some(r));
            assert_eq!(r.oid().to_string().parse::<Role>().unwrap(), r);
        }
        assert_eq!(Role::FirstHead.oid().to_string(), "1.2.398.3.3.4.1.2.1");
        assert!("boss".parse::<Role>().is_err());
        assert_eq!(Role::StateCorporationOperator.oid().to_string(), "1.2.398.3.3.4.2.4");
        assert!(Role::StateCorporationOperator.is_ca_staff());
    }
}
