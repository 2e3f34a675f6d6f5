//! A certificate parsed once for path validation: the signed bytes as they were signed, and
//! every extension the §6.1 algorithm reads, decoded with the x509-cert types.

use const_oid::db::rfc5280 as oids;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::{Decode, Reader, SliceReader};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage,
    FreshestCrl, KeyUsage, KeyUsages, NameConstraints, PolicyConstraints, PolicyMappings, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::Certificate;

use super::name::names_equal;
use super::PkixError;

/// id-ce-inhibitAnyPolicy's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InhibitAnyPolicy(pub u32);

/// The extensions path validation reads, decoded.
#[derive(Clone, Debug, Default)]
pub struct CertExtensions {
    pub basic_constraints: Option<BasicConstraints>,
    pub key_usage: Option<KeyUsage>,
    pub policies: Option<Vec<PolicyInformation>>,
    pub policy_mappings: Option<PolicyMappings>,
    pub policy_constraints: Option<PolicyConstraints>,
    pub inhibit_any_policy: Option<InhibitAnyPolicy>,
    pub name_constraints: Option<NameConstraints>,
    pub subject_alt_name: Option<Vec<GeneralName>>,
    pub subject_alt_name_critical: bool,
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
    pub crl_distribution_points: Option<Vec<DistributionPoint>>,
    pub freshest_crl: Option<Vec<DistributionPoint>>,
    pub extended_key_usage: Option<Vec<ObjectIdentifier>>,
    /// Critical extensions this engine does not process (RFC 5280 §6.1.4(o) and §6.1.5(f)).
    pub unknown_critical: Vec<ObjectIdentifier>,
}

/// A certificate as path validation sees it.
#[derive(Clone, Debug)]
pub struct PkixCert {
    pub der: Vec<u8>,
    /// The TBSCertificate exactly as encoded in `der`: what the issuer signed.
    pub tbs: Vec<u8>,
    pub cert: Certificate,
    pub ext: CertExtensions,
    pub fingerprint: [u8; 32],
}

/// Extensions that are processed elsewhere in the answer (identity, AIA for fetching) and so
/// are not "unknown" when critical.
const UNDERSTOOD: &[ObjectIdentifier] = &[
    oids::ID_CE_BASIC_CONSTRAINTS,
    oids::ID_CE_KEY_USAGE,
    oids::ID_CE_CERTIFICATE_POLICIES,
    oids::ID_CE_POLICY_MAPPINGS,
    oids::ID_CE_POLICY_CONSTRAINTS,
    oids::ID_CE_INHIBIT_ANY_POLICY,
    oids::ID_CE_NAME_CONSTRAINTS,
    oids::ID_CE_SUBJECT_ALT_NAME,
    oids::ID_CE_ISSUER_ALT_NAME,
    oids::ID_CE_SUBJECT_KEY_IDENTIFIER,
    oids::ID_CE_AUTHORITY_KEY_IDENTIFIER,
    oids::ID_CE_CRL_DISTRIBUTION_POINTS,
    oids::ID_CE_FRESHEST_CRL,
    oids::ID_CE_EXT_KEY_USAGE,
    oids::ID_PE_AUTHORITY_INFO_ACCESS,
    oids::ID_PE_SUBJECT_INFO_ACCESS,
];

/// The first TLV inside the outer SEQUENCE of a signed structure (certificate or CRL): the
/// bytes the signature covers.
pub(crate) fn signed_part(der: &[u8]) -> Result<Vec<u8>, der::Error> {
    let mut reader = SliceReader::new(der)?;
    let tbs = reader.sequence(|inner| {
        let tbs = inner.tlv_bytes()?.to_vec();
        // The algorithm and the signature follow; they are read by the typed decoder.
        inner.tlv_bytes()?;
        inner.tlv_bytes()?;
        Ok(tbs)
    })?;
    reader.finish(tbs)
}

/// Offsets of the content of validity UTCTimes with years 1950–1969, which RFC 5280 §4.1.2.5.1
/// allows and `der` 0.7 cannot represent (its dates start in 1970).
fn pre_1970_validity(der: &[u8]) -> der::Result<Vec<usize>> {
    let mut offsets = Vec::new();
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|cert| {
        cert.sequence(|tbs| {
            if tbs.peek_tag()? == (der::Tag::ContextSpecific { constructed: true, number: der::TagNumber::N0 }) {
                tbs.tlv_bytes()?;
            }
            for _ in 0..3 {
                tbs.tlv_bytes()?; // serialNumber, signature, issuer
            }
            tbs.sequence(|validity| {
                for _ in 0..2 {
                    let tlv = validity.tlv_bytes()?;
                    // The reader hands out slices of `der`: their distance is the offset.
                    let start = tlv.as_ptr() as usize - der.as_ptr() as usize;
                    if tlv.len() == 15 && tlv[0] == 0x17 && (b"50".as_slice()..b"70".as_slice()).contains(&&tlv[2..4]) {
                        offsets.push(start + 2);
                    }
                }
                Ok(())
            })?;
            while !tbs.is_finished() {
                tbs.tlv_bytes()?;
            }
            Ok(())
        })?;
        while !cert.is_finished() {
            cert.tlv_bytes()?;
        }
        Ok(())
    })?;
    Ok(offsets)
}

/// Decode a certificate; validity times before 1970 are read as 1970-01-01 (only for the
/// decoded copy: signatures are checked over the original bytes). For validation at any time
/// after 1970 that changes nothing: such a notBefore is passed, such a notAfter is expired.
pub(crate) fn decode_certificate(der: &[u8]) -> der::Result<Certificate> {
    match Certificate::from_der(der) {
        Ok(cert) => Ok(cert),
        Err(e) => {
            let offsets = pre_1970_validity(der).map_err(|_| e)?;
            if offsets.is_empty() {
                return Err(e);
            }
            let mut copy = der.to_vec();
            for at in offsets {
                copy[at..at + 13].copy_from_slice(b"700101000000Z");
            }
            Certificate::from_der(&copy)
        }
    }
}

impl PkixCert {
    pub fn from_der(der: &[u8]) -> Result<Self, PkixError> {
        let bad = |e: String| PkixError::Malformed(e);
        let cert = decode_certificate(der).map_err(|e| bad(format!("certificate: {e}")))?;
        let tbs = signed_part(der).map_err(|e| bad(format!("certificate: {e}")))?;
        let ext = CertExtensions::parse(&cert).map_err(bad)?;
        let fingerprint = super::fingerprint(der);
        Ok(Self { der: der.to_vec(), tbs, cert, ext, fingerprint })
    }

    pub fn subject(&self) -> &x509_cert::name::Name {
        &self.cert.tbs_certificate.subject
    }

    pub fn issuer(&self) -> &x509_cert::name::Name {
        &self.cert.tbs_certificate.issuer
    }

    /// Subject and issuer are the same name (RFC 5280 §6.1: self-issued).
    pub fn is_self_issued(&self) -> bool {
        names_equal(self.subject(), self.issuer())
    }

    /// basicConstraints cA is TRUE.
    pub fn is_ca(&self) -> bool {
        self.ext.basic_constraints.as_ref().is_some_and(|bc| bc.ca)
    }

    /// keyUsage allows `usage`, or there is no keyUsage extension.
    pub fn allows(&self, usage: KeyUsages) -> bool {
        self.ext.key_usage.as_ref().is_none_or(|ku| ku.0.contains(usage))
    }

    /// The subject DN in the RFC 4514 order people read.
    pub fn subject_text(&self) -> String {
        crate::identity::format_dn(self.subject())
    }
}

fn decode<T: for<'a> Decode<'a>>(bytes: &[u8], what: &str) -> Result<T, String> {
    T::from_der(bytes).map_err(|e| format!("malformed {what} extension: {e}"))
}

impl CertExtensions {
    fn parse(cert: &Certificate) -> Result<Self, String> {
        let mut ext = CertExtensions::default();
        let mut seen: Vec<ObjectIdentifier> = Vec::new();
        for e in cert.tbs_certificate.extensions.iter().flatten() {
            if seen.contains(&e.extn_id) {
                // RFC 5280 §4.2: a certificate MUST NOT include more than one instance.
                return Err(format!("extension {} appears twice", e.extn_id));
            }
            seen.push(e.extn_id);
            let v = e.extn_value.as_bytes();
            match e.extn_id {
                BasicConstraints::OID => ext.basic_constraints = Some(decode(v, "basicConstraints")?),
                KeyUsage::OID => ext.key_usage = Some(decode(v, "keyUsage")?),
                CertificatePolicies::OID => {
                    let policies: CertificatePolicies = decode(v, "certificatePolicies")?;
                    let mut ids = Vec::new();
                    for p in &policies.0 {
                        // RFC 5280 §4.2.1.4: a policy OID MUST NOT appear more than once.
                        if ids.contains(&p.policy_identifier) {
                            return Err(format!("policy {} appears twice in certificatePolicies", p.policy_identifier));
                        }
                        ids.push(p.policy_identifier);
                    }
                    ext.policies = Some(policies.0);
                }
                PolicyMappings::OID => ext.policy_mappings = Some(decode(v, "policyMappings")?),
                PolicyConstraints::OID => {
                    let pc: PolicyConstraints = decode(v, "policyConstraints")?;
                    if pc.require_explicit_policy.is_none() && pc.inhibit_policy_mapping.is_none() {
                        return Err("empty policyConstraints extension".into());
                    }
                    ext.policy_constraints = Some(pc);
                }
                oids::ID_CE_INHIBIT_ANY_POLICY => {
                    ext.inhibit_any_policy = Some(InhibitAnyPolicy(decode(v, "inhibitAnyPolicy")?))
                }
                NameConstraints::OID => ext.name_constraints = Some(decode(v, "nameConstraints")?),
                SubjectAltName::OID => {
                    let san: SubjectAltName = decode(v, "subjectAltName")?;
                    ext.subject_alt_name = Some(san.0);
                    ext.subject_alt_name_critical = e.critical;
                }
                SubjectKeyIdentifier::OID => {
                    let ski: SubjectKeyIdentifier = decode(v, "subjectKeyIdentifier")?;
                    ext.subject_key_id = Some(ski.0.as_bytes().to_vec());
                }
                AuthorityKeyIdentifier::OID => {
                    let aki: AuthorityKeyIdentifier = decode(v, "authorityKeyIdentifier")?;
                    ext.authority_key_id = aki.key_identifier.map(|k| k.as_bytes().to_vec());
                }
                CrlDistributionPoints::OID => {
                    let dps: CrlDistributionPoints = decode(v, "cRLDistributionPoints")?;
                    ext.crl_distribution_points = Some(dps.0);
                }
                FreshestCrl::OID => {
                    let dps: FreshestCrl = decode(v, "freshestCRL")?;
                    ext.freshest_crl = Some(dps.0);
                }
                ExtendedKeyUsage::OID => {
                    let eku: ExtendedKeyUsage = decode(v, "extKeyUsage")?;
                    ext.extended_key_usage = Some(eku.0);
                }
                other if e.critical && !UNDERSTOOD.contains(&other) => ext.unknown_critical.push(other),
                _ => {}
            }
        }
        Ok(ext)
    }
}
