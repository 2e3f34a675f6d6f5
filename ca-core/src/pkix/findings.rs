//! Obligations RFC 5280 puts on the issuing CA rather than on the relying party: a relying
//! party may accept such a certificate, but should hear about it (and a `strict` one refuses).

use super::cert::PkixCert;

/// One broken CA-side obligation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProfileFinding {
    /// Subject DN of the certificate.
    pub certificate: String,
    pub message: String,
}

/// The CA-side obligations `cert` breaks. `is_anchor`: a trust anchor (self-signed roots need
/// no authorityKeyIdentifier).
pub fn profile_findings(cert: &PkixCert, is_anchor: bool) -> Vec<ProfileFinding> {
    let tbs = &cert.cert.tbs_certificate;
    let mut found = Vec::new();
    let mut note = |m: &str| found.push(ProfileFinding { certificate: cert.subject_text(), message: m.to_owned() });
    let serial = tbs.serial_number.as_bytes();
    if serial.iter().all(|b| *b == 0) {
        note("serial number is zero (RFC 5280 §4.1.2.2: a positive integer)");
    } else if serial.first().is_some_and(|b| b & 0x80 != 0) {
        note("serial number is negative (RFC 5280 §4.1.2.2: a positive integer)");
    }
    if serial.len() > 20 {
        note("serial number is longer than 20 octets (RFC 5280 §4.1.2.2)");
    }
    if !is_anchor && cert.ext.authority_key_id.is_none() && !cert.is_self_issued() {
        note("no authorityKeyIdentifier (RFC 5280 §4.2.1.1)");
    }
    if cert.is_ca() && cert.ext.subject_key_id.is_none() {
        note("CA certificate without subjectKeyIdentifier (RFC 5280 §4.2.1.2)");
    }
    if tbs.subject.0.is_empty() && !(cert.ext.subject_alt_name.is_some() && cert.ext.subject_alt_name_critical) {
        note("empty subject without a critical subjectAltName (RFC 5280 §4.2.1.6)");
    }
    if cert.is_ca() && cert.ext.key_usage.is_none() {
        note("CA certificate without keyUsage (RFC 5280 §4.2.1.3: conforming CAs MUST include it)");
    }
    if tbs.extensions.is_some() && tbs.version != x509_cert::Version::V3 {
        note("extensions in a certificate that is not version 3 (RFC 5280 §4.1.2.1)");
    }
    found
}
