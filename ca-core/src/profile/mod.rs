//! Certificate profiles of the national CA (see NCA-PROFILE.md): what each kind of certificate
//! carries, in which order, and the checks ("lint") a to-be-signed certificate must pass.

mod extensions;
pub mod lint;
mod roles;

use std::fmt;
use std::str::FromStr;

use const_oid::db::rfc5280;
use const_oid::ObjectIdentifier;
use x509_cert::ext::pkix::KeyUsages;

pub use extensions::{build_extensions, key_identifier, ExtensionContext, ANY_POLICY};
pub use roles::{Role, UnknownRole};

/// Policy of individual AUTH certificates.
pub const POLICY_INDIVIDUAL_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2.4");
/// Policy of individual SIGN certificates.
pub const POLICY_INDIVIDUAL_SIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2.3");
/// Policy of legal-entity AUTH certificates.
pub const POLICY_LEGAL_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2.2");
/// Policy of legal-entity SIGN certificates.
pub const POLICY_LEGAL_SIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.2.1");
/// Policy of CA certificates.
pub const POLICY_CA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.398.3.3.1.1");
/// The policies of end-entity certificates, which CA certificates carry for them.
pub const END_ENTITY_POLICIES: [ObjectIdentifier; 4] =
    [POLICY_INDIVIDUAL_AUTH, POLICY_INDIVIDUAL_SIGN, POLICY_LEGAL_AUTH, POLICY_LEGAL_SIGN];

/// Which certificate policies a CA certificate asserts besides the CA policy. A relying party
/// that requires a policy (`openssl verify -policy … -explicit_policy`, RFC 5280 6.1) accepts a
/// chain only if every CA certificate on it asserts that policy or anyPolicy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaPolicies {
    /// The four end-entity policies (1.2.398.3.3.2.1–4): the CA vouches for exactly these.
    #[default]
    EndEntity,
    /// anyPolicy (2.5.29.32.0): whatever policy the certificates under it carry.
    AnyPolicy,
}

/// id-pkix-ocsp-nocheck.
pub const OCSP_NOCHECK: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");

/// The profiles this CA issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileId {
    IndividualAuth,
    IndividualSign,
    LegalAuth,
    LegalSign,
    RootCa,
    IssuingCa,
    /// A new root's subject and key certified by the previous root (`ca rollover root`).
    CrossCa,
    OcspResponder,
    TimeStamping,
}

const NAMES: [(ProfileId, &str); 9] = [
    (ProfileId::IndividualAuth, "individual-auth"),
    (ProfileId::IndividualSign, "individual-sign"),
    (ProfileId::LegalAuth, "legal-auth"),
    (ProfileId::LegalSign, "legal-sign"),
    (ProfileId::RootCa, "root-ca"),
    (ProfileId::IssuingCa, "issuing-ca"),
    (ProfileId::CrossCa, "cross-ca"),
    (ProfileId::OcspResponder, "ocsp-responder"),
    (ProfileId::TimeStamping, "tsa"),
];

/// The profile name is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?}; expected one of: individual-auth, individual-sign, legal-auth, legal-sign, ocsp-responder, tsa (root-ca and issuing-ca are made by `ca init`, cross-ca by `ca rollover root`)")]
pub struct UnknownProfile(pub String);

impl ProfileId {
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(p, _)| *p == self).map(|(_, n)| *n).expect("every profile is named")
    }

    pub fn all() -> impl Iterator<Item = ProfileId> {
        NAMES.iter().map(|(p, _)| *p)
    }

    /// The full definition.
    pub fn profile(self) -> Profile {
        Profile::of(self)
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProfileId {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_lowercase().replace('_', "-");
        NAMES.iter().find(|(_, n)| *n == wanted).map(|(p, _)| *p).ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}

/// What kind of subject a profile is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectKind {
    Individual,
    Employee,
    Service,
    CertificateAuthority,
}

/// Everything that distinguishes one profile from another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub id: ProfileId,
    pub subject: SubjectKind,
    pub key_usage: &'static [KeyUsages],
    /// Base extended key usages (role OIDs are added from the application).
    pub extended_key_usage: &'static [ObjectIdentifier],
    pub extended_key_usage_critical: bool,
    pub policy: ObjectIdentifier,
    /// `Some(path length)` for CA certificates.
    pub ca_path_len: Option<Option<u8>>,
    /// The role every certificate of this profile carries.
    pub base_role: Option<Role>,
    /// Whether the certificate points at CRLs and the OCSP responder.
    pub revocation_pointers: bool,
    pub ocsp_nocheck: bool,
}

impl Profile {
    pub fn of(id: ProfileId) -> Self {
        use KeyUsages::*;
        const AUTH_KU: &[KeyUsages] = &[DigitalSignature, KeyEncipherment];
        const SIGN_KU: &[KeyUsages] = &[DigitalSignature, NonRepudiation];
        const CA_KU: &[KeyUsages] = &[KeyCertSign, CRLSign];
        const SIG_ONLY: &[KeyUsages] = &[DigitalSignature];
        const CLIENT_AUTH: &[ObjectIdentifier] = &[rfc5280::ID_KP_CLIENT_AUTH];
        const EMAIL_PROTECTION: &[ObjectIdentifier] = &[rfc5280::ID_KP_EMAIL_PROTECTION];
        const OCSP_SIGNING: &[ObjectIdentifier] = &[rfc5280::ID_KP_OCSP_SIGNING];
        const TIME_STAMPING: &[ObjectIdentifier] = &[rfc5280::ID_KP_TIME_STAMPING];
        let person = |subject, key_usage, eku, policy, role| Profile {
            id,
            subject,
            key_usage,
            extended_key_usage: eku,
            extended_key_usage_critical: false,
            policy,
            ca_path_len: None,
            base_role: Some(role),
            revocation_pointers: true,
            ocsp_nocheck: false,
        };
        match id {
            ProfileId::IndividualAuth => {
                person(SubjectKind::Individual, AUTH_KU, CLIENT_AUTH, POLICY_INDIVIDUAL_AUTH, Role::Individual)
            }
            ProfileId::IndividualSign => {
                person(SubjectKind::Individual, SIGN_KU, EMAIL_PROTECTION, POLICY_INDIVIDUAL_SIGN, Role::Individual)
            }
            ProfileId::LegalAuth => {
                person(SubjectKind::Employee, AUTH_KU, CLIENT_AUTH, POLICY_LEGAL_AUTH, Role::LegalEntity)
            }
            ProfileId::LegalSign => {
                person(SubjectKind::Employee, SIGN_KU, EMAIL_PROTECTION, POLICY_LEGAL_SIGN, Role::LegalEntity)
            }
            // A cross certificate stands for the new root in a chain to the old one: no path
            // length limit (as the root it certifies), revocation through the old root's CRL.
            ProfileId::RootCa | ProfileId::IssuingCa | ProfileId::CrossCa => Profile {
                id,
                subject: SubjectKind::CertificateAuthority,
                key_usage: CA_KU,
                extended_key_usage: &[],
                extended_key_usage_critical: false,
                policy: POLICY_CA,
                ca_path_len: Some(if id == ProfileId::IssuingCa { Some(0) } else { None }),
                base_role: None,
                revocation_pointers: id != ProfileId::RootCa,
                ocsp_nocheck: false,
            },
            ProfileId::OcspResponder => Profile {
                id,
                subject: SubjectKind::Service,
                key_usage: SIG_ONLY,
                extended_key_usage: OCSP_SIGNING,
                extended_key_usage_critical: false,
                policy: POLICY_CA,
                ca_path_len: None,
                base_role: None,
                revocation_pointers: false,
                ocsp_nocheck: true,
            },
            ProfileId::TimeStamping => Profile {
                id,
                subject: SubjectKind::Service,
                key_usage: SIG_ONLY,
                extended_key_usage: TIME_STAMPING,
                extended_key_usage_critical: true,
                policy: POLICY_CA,
                ca_path_len: None,
                base_role: None,
                revocation_pointers: true,
                ocsp_nocheck: false,
            },
        }
    }

    /// The keyUsage extension value of this profile for a certificate of `subject_key`.
    ///
    /// `key_usage` is written for RSA keys, as NCA-PROFILE.md lists it (AUTH: digitalSignature,
    /// keyEncipherment). An EC key cannot encipher keys (RFC 5480 §3 forbids keyEncipherment
    /// for id-ecPublicKey), so an EC AUTH certificate carries keyAgreement in its place: the
    /// same intent (others can send the holder encrypted content, by ECDH), in the form the key
    /// supports.
    pub fn key_usage_flags(&self, subject_key: &spki::SubjectPublicKeyInfoOwned) -> x509_cert::ext::pkix::KeyUsage {
        let ec = subject_key.algorithm.oid == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
        let mut ku = x509_cert::ext::pkix::KeyUsage(Default::default());
        for k in self.key_usage {
            ku.0 |= match *k {
                KeyUsages::KeyEncipherment if ec => KeyUsages::KeyAgreement,
                other => other,
            };
        }
        ku
    }

    pub fn is_ca(&self) -> bool {
        self.ca_path_len.is_some()
    }

    /// Check the roles an application asks for against this profile and return the complete,
    /// ordered role list that goes into extKeyUsage.
    pub fn roles_for(&self, requested: &[Role]) -> Result<Vec<Role>, String> {
        let mut roles: Vec<Role> = Vec::new();
        for r in requested {
            let allowed = match self.subject {
                SubjectKind::Individual => *r == Role::Individual || r.is_identification() || r.is_ca_staff(),
                SubjectKind::Employee => {
                    *r == Role::LegalEntity || r.is_legal_entity_sub_role() || r.is_identification() || r.is_ca_staff()
                }
                SubjectKind::Service | SubjectKind::CertificateAuthority => false,
            };
            if !allowed {
                return Err(format!("role {r} is not allowed in a {} certificate", self.id));
            }
        }
        if let Some(base) = self.base_role {
            roles.push(base);
        }
        let mut rest: Vec<Role> = requested.iter().copied().filter(|r| Some(*r) != self.base_role).collect();
        rest.sort();
        rest.dedup();
        if self.subject == SubjectKind::Employee && !rest.iter().any(|r| r.is_legal_entity_sub_role()) {
            return Err(format!(
                "a {} certificate needs one of the roles first-head, signing-right, financial-signing, hr, employee",
                self.id
            ));
        }
        roles.extend(rest);
        Ok(roles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_round_trip() {
        for p in ProfileId::all() {
            assert_eq!(p.name().parse::<ProfileId>().unwrap(), p);
        }
        assert!("gold".parse::<ProfileId>().is_err());
    }

    #[test]
    fn roles_are_checked_per_profile() {
        let legal = Profile::of(ProfileId::LegalSign);
        assert_eq!(legal.roles_for(&[Role::FirstHead]).unwrap(), vec![Role::LegalEntity, Role::FirstHead]);
        assert!(legal.roles_for(&[]).is_err());
        assert!(legal.roles_for(&[Role::Individual]).is_err());
        let ind = Profile::of(ProfileId::IndividualAuth);
        assert_eq!(ind.roles_for(&[]).unwrap(), vec![Role::Individual]);
        assert!(ind.roles_for(&[Role::Hr]).is_err());
        assert_eq!(ind.roles_for(&[Role::CaOperator]).unwrap(), vec![Role::Individual, Role::CaOperator]);
    }

    fn spki(algorithm: ObjectIdentifier) -> spki::SubjectPublicKeyInfoOwned {
        spki::SubjectPublicKeyInfoOwned {
            algorithm: spki::AlgorithmIdentifierOwned { oid: algorithm, parameters: None },
            subject_public_key: der::asn1::BitString::from_bytes(&[4; 65]).unwrap(),
        }
    }

    #[test]
    fn ec_keys_never_get_key_encipherment() {
        use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION};
        use KeyUsages::*;
        let (rsa, ec) = (spki(RSA_ENCRYPTION), spki(ID_EC_PUBLIC_KEY));
        for id in ProfileId::all() {
            let ku = Profile::of(id).key_usage_flags(&ec);
            assert!(!ku.0.contains(KeyEncipherment) && !ku.0.contains(DataEncipherment), "{id}: {ku:?}");
        }
        for id in [ProfileId::IndividualAuth, ProfileId::LegalAuth] {
            let profile = Profile::of(id);
            assert_eq!(profile.key_usage_flags(&rsa).0, DigitalSignature | KeyEncipherment, "{id}: as NCA-PROFILE.md");
            assert_eq!(profile.key_usage_flags(&ec).0, DigitalSignature | KeyAgreement, "{id}");
        }
        for id in [ProfileId::IndividualSign, ProfileId::LegalSign] {
            let profile = Profile::of(id);
            assert_eq!(profile.key_usage_flags(&rsa), profile.key_usage_flags(&ec), "{id}");
        }
    }
}
