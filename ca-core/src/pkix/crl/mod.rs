//! CRLs for RFC 5280 §6.3: a CRL read once ([`PkixCrl`]: its extensions, entries indexed by
//! serial, indirect entries' certificateIssuer, critical extensions that make it unusable, its
//! signature checked once per key), and in `status` the processing: scope (issuer,
//! distribution points, Issuing Distribution Point with its onlyContains… and onlySomeReasons
//! fields), delta CRLs, the CRL issuer's cRLSign and its own path to the same trust anchor.
//! Other status sources are asked first.

mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use const_oid::db::rfc5280 as oids;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BaseCrlNumber, CrlNumber, CrlReason};
use x509_cert::name::Name;

use super::algorithm::{verify_signature, SignatureProblem};
use super::cert::{signed_part, PkixCert};
use super::name::names_equal;

/// id-ce-issuingDistributionPoint (x509-cert 0.2's type carries a wrong OID).
const IDP: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.28");
const CERTIFICATE_ISSUER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.29");
const INVALIDITY_DATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.24");
const HOLD_INSTRUCTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.23");
/// CRL extensions this engine processes or may ignore.
const KNOWN_CRL_EXTENSIONS: &[ObjectIdentifier] = &[
    oids::ID_CE_AUTHORITY_KEY_IDENTIFIER,
    oids::ID_CE_ISSUER_ALT_NAME,
    oids::ID_CE_CRL_NUMBER,
    oids::ID_CE_DELTA_CRL_INDICATOR,
    IDP,
    oids::ID_CE_FRESHEST_CRL,
    oids::ID_PE_AUTHORITY_INFO_ACCESS,
];
const KNOWN_ENTRY_EXTENSIONS: &[ObjectIdentifier] =
    &[oids::ID_CE_CRL_REASONS, INVALIDITY_DATE, CERTIFICATE_ISSUER, HOLD_INSTRUCTION];

pub(crate) fn to_offset(t: &x509_cert::time::Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// One revoked entry, with the issuer of the certificate it names (the CRL issuer unless an
/// indirect CRL's certificateIssuer says otherwise).
#[derive(Clone, Debug)]
struct Entry {
    certificate_issuer: Name,
    revoked_at: OffsetDateTime,
    reason: Option<CrlReason>,
}

/// A key's SubjectPublicKeyInfo DER and the DSA parameters it inherits.
type VerifyingKey = (Vec<u8>, Option<Vec<u8>>);

/// A CRL read once.
#[derive(Clone, Debug)]
pub struct PkixCrl {
    pub der: Vec<u8>,
    tbs: Vec<u8>,
    pub crl: CertificateList,
    idp: Option<IssuingDistributionPoint>,
    crl_number: Option<Vec<u8>>,
    /// deltaCRLIndicator: the base CRL number of a delta CRL.
    base_crl_number: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    /// Why the CRL must not be used (a critical extension or entry extension we do not process).
    unusable: Option<String>,
    entries: Vec<Entry>,
    /// Serial → indexes into `entries`: a CRL fetched once answers every later look-up, and a
    /// national CA's CRL can list a million certificates.
    by_serial: HashMap<Vec<u8>, Vec<usize>>,
    /// Keys (SPKI DER, inherited parameters) whose check of the signature passed without an
    /// exception: a CRL fetched once and shared is hashed once, not on every look-up (a
    /// national CA's CRL runs to tens of megabytes). The algorithm policy is the verifier's,
    /// the same for every look-up of a CRL it fetched.
    verified_by: Arc<Mutex<Vec<VerifyingKey>>>,
}

fn integer(bytes: &[u8]) -> Vec<u8> {
    let stripped: Vec<u8> = bytes.iter().skip_while(|b| **b == 0).copied().collect();
    stripped
}

impl PkixCrl {
    pub fn from_der(der: &[u8]) -> Result<Self, super::PkixError> {
        let bad = |e: String| super::PkixError::Malformed(format!("CRL: {e}"));
        let crl = CertificateList::from_der(der).map_err(|e| bad(e.to_string()))?;
        let tbs = signed_part(der).map_err(|e| bad(e.to_string()))?;
        let list = &crl.tbs_cert_list;
        let mut out = PkixCrl {
            der: der.to_vec(),
            tbs,
            idp: None,
            crl_number: None,
            base_crl_number: None,
            authority_key_id: None,
            unusable: None,
            entries: Vec::new(),
            by_serial: HashMap::new(),
            verified_by: Arc::default(),
            crl: crl.clone(),
        };
        for ext in list.crl_extensions.iter().flatten() {
            let v = ext.extn_value.as_bytes();
            match ext.extn_id {
                IDP => {
                    out.idp = Some(
                        IssuingDistributionPoint::from_der(v)
                            .map_err(|e| bad(format!("issuingDistributionPoint: {e}")))?,
                    )
                }
                CrlNumber::OID => {
                    out.crl_number = Some(integer(CrlNumber::from_der(v).map_err(|e| bad(e.to_string()))?.0.as_bytes()))
                }
                oids::ID_CE_DELTA_CRL_INDICATOR => {
                    out.base_crl_number =
                        Some(integer(BaseCrlNumber::from_der(v).map_err(|e| bad(e.to_string()))?.0.as_bytes()))
                }
                AuthorityKeyIdentifier::OID => {
                    let aki = AuthorityKeyIdentifier::from_der(v).map_err(|e| bad(e.to_string()))?;
                    out.authority_key_id = aki.key_identifier.map(|k| k.as_bytes().to_vec());
                }
                other if ext.critical && !KNOWN_CRL_EXTENSIONS.contains(&other) => {
                    out.unusable = Some(format!("critical CRL extension {other} is not understood"));
                }
                _ => {}
            }
        }
        let indirect = out.idp.as_ref().is_some_and(|i| i.indirect_crl);
        let mut issuer = list.issuer.clone();
        for revoked in list.revoked_certificates.iter().flatten() {
            let mut reason = None;
            for ext in revoked.crl_entry_extensions.iter().flatten() {
                let v = ext.extn_value.as_bytes();
                match ext.extn_id {
                    oids::ID_CE_CRL_REASONS => {
                        reason = Some(CrlReason::from_der(v).map_err(|e| bad(format!("reasonCode: {e}")))?)
                    }
                    CERTIFICATE_ISSUER if indirect => {
                        let names =
                            x509_cert::ext::pkix::name::GeneralNames::from_der(v).map_err(|e| bad(e.to_string()))?;
                        match names.into_iter().find_map(|n| match n {
                            GeneralName::DirectoryName(d) => Some(d),
                            _ => None,
                        }) {
                            Some(d) => issuer = d,
                            None => out.unusable = Some("certificateIssuer without a directoryName".into()),
                        }
                    }
                    other if ext.critical && !KNOWN_ENTRY_EXTENSIONS.contains(&other) => {
                        out.unusable = Some(format!("critical CRL entry extension {other} is not understood"));
                    }
                    _ => {}
                }
            }
            let serial = revoked.serial_number.as_bytes().to_vec();
            out.by_serial.entry(serial).or_default().push(out.entries.len());
            out.entries.push(Entry {
                certificate_issuer: issuer.clone(),
                revoked_at: to_offset(&revoked.revocation_date),
                reason,
            });
        }
        Ok(out)
    }

    fn issuer(&self) -> &Name {
        &self.crl.tbs_cert_list.issuer
    }

    fn is_delta(&self) -> bool {
        self.base_crl_number.is_some()
    }

    /// nextUpdate (when present) is not before `at`. A CRL issued after `at` is evidence of the
    /// status at `at` too (it lists every revocation up to its thisUpdate, with the date): how
    /// a signature made last week is checked against today's CRL, its later revocations told
    /// apart by their dates. §6.3.3(a) itself asks nothing of thisUpdate.
    /// thisUpdate: the CRL states the revocations known up to this time.
    pub fn this_update(&self) -> OffsetDateTime {
        to_offset(&self.crl.tbs_cert_list.this_update)
    }

    fn current_at(&self, at: OffsetDateTime) -> bool {
        let list = &self.crl.tbs_cert_list;
        list.next_update.as_ref().is_none_or(|n| at <= to_offset(n))
    }

    /// [`verify_signature`] of this CRL by `key`, remembered when it passes without exception.
    fn verify_with(
        &self,
        key: &spki::SubjectPublicKeyInfoOwned,
        inherited: Option<&[u8]>,
        at: OffsetDateTime,
        policy: &super::AlgorithmPolicy,
    ) -> Result<Option<String>, SignatureProblem> {
        let memo = key.to_der().ok().map(|k| (k, inherited.map(<[u8]>::to_vec)));
        let verified = || self.verified_by.lock().unwrap_or_else(|p| p.into_inner());
        if memo.as_ref().is_some_and(|m| verified().contains(m)) {
            return Ok(None);
        }
        let result = verify_signature(
            &self.crl.signature_algorithm,
            key,
            inherited,
            &self.tbs,
            self.crl.signature.raw_bytes(),
            at,
            policy,
        );
        if let (Ok(None), Some(m)) = (&result, memo) {
            verified().push(m);
        }
        result
    }

    fn entry_for(&self, cert: &PkixCert) -> Option<&Entry> {
        let serial = cert.cert.tbs_certificate.serial_number.as_bytes();
        let indexes = self.by_serial.get(serial)?;
        indexes.iter().map(|i| &self.entries[*i]).find(|e| names_equal(&e.certificate_issuer, cert.issuer()))
    }
}
