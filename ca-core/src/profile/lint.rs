//! Checks on a to-be-signed certificate before the real signature (Boulder's "lint before
//! sign"): whatever the builder did, a certificate that does not match its profile is never
//! signed.

use std::collections::HashSet;

use const_oid::db::rfc4519;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::{Decode, Tag, Tagged};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlDistributionPoints,
    ExtendedKeyUsage, FreshestCrl, KeyUsage, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::{certificate::Version, TbsCertificate};

use super::{key_identifier, Profile, SubjectKind};
use crate::identity::{name_attribute, Bin, Iin};
use crate::keys::check_key_policy;
use crate::signer::SignatureAlgorithm;

/// What the lint needs to know about the issuer.
pub struct IssuerFacts<'a> {
    pub subject: &'a Name,
    /// `None` for a self-signed root.
    pub key_id: Option<&'a [u8]>,
    pub algorithm: SignatureAlgorithm,
    /// The issuer certificate's validity as unix seconds, `None` for a self-signed root.
    pub validity: Option<(i64, i64)>,
}

/// Order in which the national profile lists end-entity extensions.
const EE_ORDER: [ObjectIdentifier; 8] = [
    KeyUsage::OID,
    ExtendedKeyUsage::OID,
    AuthorityKeyIdentifier::OID,
    SubjectKeyIdentifier::OID,
    CertificatePolicies::OID,
    CrlDistributionPoints::OID,
    FreshestCrl::OID,
    AuthorityInfoAccessSyntax::OID,
];

fn attr_tags(name: &Name, oid: ObjectIdentifier) -> Vec<Tag> {
    name.0.iter().flat_map(|r| r.0.iter()).filter(|a| a.oid == oid).map(|a| a.value.tag()).collect()
}

fn single(problems: &mut Vec<String>, name: &Name, oid: ObjectIdentifier, label: &str, tag: Tag) {
    match attr_tags(name, oid).as_slice() {
        [t] if *t == tag => {}
        [t] => problems.push(format!("subject {label} is {t:?}, the profile wants {tag:?}")),
        [] => problems.push(format!("subject has no {label}")),
        _ => problems.push(format!("subject has more than one {label}")),
    }
}

/// All problems found; an empty list means the certificate may be signed.
pub fn lint(tbs: &TbsCertificate, profile: &Profile, issuer: &IssuerFacts<'_>) -> Vec<String> {
    let mut p = Vec::new();
    if tbs.version != Version::V3 {
        p.push("certificate is not v3".into());
    }
    let serial = tbs.serial_number.as_bytes();
    if serial.len() != crate::serial::SERIAL_LEN || !(0x10..=0x7f).contains(&serial[0]) {
        p.push(format!("serial must be 20 octets starting with 0x10..0x7F, got {} octets", serial.len()));
    }
    if tbs.signature != issuer.algorithm.algorithm_identifier() {
        p.push("signature algorithm differs from the issuer key's".into());
    }
    if &tbs.issuer != issuer.subject {
        p.push("issuer name differs from the issuer certificate's subject".into());
    }
    let nb = tbs.validity.not_before.to_unix_duration().as_secs() as i64;
    let na = tbs.validity.not_after.to_unix_duration().as_secs() as i64;
    if nb >= na {
        p.push("notBefore is not before notAfter".into());
    }
    if let Some((inb, ina)) = issuer.validity {
        if nb < inb || na > ina {
            p.push("validity lies outside the issuer certificate's validity".into());
        }
    }
    if let Err(e) = check_key_policy(&tbs.subject_public_key_info) {
        p.push(format!("subject key: {e}"));
    }

    // Subject DN.
    let s = &tbs.subject;
    match profile.subject {
        SubjectKind::Individual | SubjectKind::Employee => {
            single(&mut p, s, rfc4519::CN, "CN", Tag::Utf8String);
            single(&mut p, s, rfc4519::SN, "SURNAME", Tag::Utf8String);
            single(&mut p, s, rfc4519::SERIAL_NUMBER, "SERIALNUMBER", Tag::PrintableString);
            single(&mut p, s, rfc4519::C, "C", Tag::PrintableString);
            if name_attribute(s, rfc4519::SERIAL_NUMBER).is_none_or(|v| Iin::from_dn_value(&v).is_err()) {
                p.push("SERIALNUMBER is not IIN followed by a valid IIN".into());
            }
            if profile.subject == SubjectKind::Employee {
                single(&mut p, s, rfc4519::O, "O", Tag::Utf8String);
                single(&mut p, s, rfc4519::OU, "OU", Tag::Utf8String);
                if name_attribute(s, rfc4519::OU).is_none_or(|v| Bin::from_dn_value(&v).is_err()) {
                    p.push("OU is not BIN followed by a valid BIN".into());
                }
            } else if !attr_tags(s, rfc4519::O).is_empty() || !attr_tags(s, rfc4519::OU).is_empty() {
                p.push("an individual's subject carries O or OU".into());
            }
        }
        SubjectKind::Service | SubjectKind::CertificateAuthority => {
            single(&mut p, s, rfc4519::CN, "CN", Tag::Utf8String);
        }
    }

    // Extensions.
    let exts = tbs.extensions.as_deref().unwrap_or(&[]);
    let mut seen = HashSet::new();
    for e in exts {
        if !seen.insert(e.extn_id) {
            p.push(format!("extension {} appears twice", e.extn_id));
        }
    }
    let find = |oid: ObjectIdentifier| exts.iter().find(|e| e.extn_id == oid);
    match find(KeyUsage::OID) {
        Some(e) if e.critical => match KeyUsage::from_der(e.extn_value.as_bytes()) {
            Ok(ku) => {
                if ku != profile.key_usage_flags(&tbs.subject_public_key_info) {
                    p.push("keyUsage bits differ from the profile".into());
                }
            }
            Err(_) => p.push("keyUsage does not decode".into()),
        },
        Some(_) => p.push("keyUsage must be critical".into()),
        None => p.push("keyUsage is missing".into()),
    }
    match find(SubjectKeyIdentifier::OID).map(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes())) {
        Some(Ok(ski)) if ski.0.as_bytes() == key_identifier(&tbs.subject_public_key_info).as_slice() => {}
        Some(_) => p.push("subjectKeyIdentifier does not match the subject key".into()),
        None => p.push("subjectKeyIdentifier is missing".into()),
    }
    match (find(AuthorityKeyIdentifier::OID), issuer.key_id) {
        (Some(e), Some(id)) => match AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes()) {
            Ok(aki) if aki.key_identifier.as_ref().map(|k| k.as_bytes()) == Some(id) => {}
            _ => p.push("authorityKeyIdentifier does not match the issuer's key".into()),
        },
        (None, Some(_)) => p.push("authorityKeyIdentifier is missing".into()),
        (_, None) => {}
    }
    match find(CertificatePolicies::OID).map(|e| CertificatePolicies::from_der(e.extn_value.as_bytes())) {
        Some(Ok(cp)) if cp.0.iter().any(|pi| pi.policy_identifier == profile.policy) => {}
        _ => p.push(format!("certificatePolicies must contain {}", profile.policy)),
    }
    if profile.is_ca() {
        match find(BasicConstraints::OID) {
            Some(e) if e.critical => match BasicConstraints::from_der(e.extn_value.as_bytes()) {
                Ok(bc) if bc.ca => {}
                _ => p.push("basicConstraints must say CA:TRUE".into()),
            },
            _ => p.push("basicConstraints must be present and critical".into()),
        }
    } else {
        if find(BasicConstraints::OID)
            .is_some_and(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).map(|bc| bc.ca).unwrap_or(true))
        {
            p.push("an end-entity certificate must not be a CA".into());
        }
        match find(ExtendedKeyUsage::OID).map(|e| (e.critical, ExtendedKeyUsage::from_der(e.extn_value.as_bytes()))) {
            Some((critical, Ok(eku))) => {
                for want in profile.extended_key_usage {
                    if !eku.0.contains(want) {
                        p.push(format!("extKeyUsage lacks {want}"));
                    }
                }
                if let Some(role) = profile.base_role {
                    if !eku.0.contains(&role.oid()) {
                        p.push(format!("extKeyUsage lacks the role {role}"));
                    }
                }
                if critical != profile.extended_key_usage_critical {
                    p.push("extKeyUsage criticality differs from the profile".into());
                }
            }
            _ => p.push("extKeyUsage is missing or does not decode".into()),
        }
        let positions: Vec<usize> = exts.iter().filter_map(|e| EE_ORDER.iter().position(|o| *o == e.extn_id)).collect();
        if positions.windows(2).any(|w| w[0] >= w[1]) {
            p.push(
                "extensions are not in the profile's order (KU, EKU, AKI, SKI, policies, CDP, FreshestCRL, AIA)".into(),
            );
        }
        if profile.revocation_pointers {
            for (oid, label) in [
                (CrlDistributionPoints::OID, "cRLDistributionPoints"),
                (FreshestCrl::OID, "freshestCRL"),
                (AuthorityInfoAccessSyntax::OID, "authorityInfoAccess"),
            ] {
                if find(oid).is_none() {
                    p.push(format!("{label} is missing"));
                }
            }
        }
        if profile.ocsp_nocheck && find(super::OCSP_NOCHECK).is_none() {
            p.push("id-pkix-ocsp-nocheck is missing".into());
        }
        if let Some(e) = find(SubjectAltName::OID) {
            if SubjectAltName::from_der(e.extn_value.as_bytes()).is_err() {
                p.push("subjectAltName does not decode".into());
            }
        }
    }
    p
}
