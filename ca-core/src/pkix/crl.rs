//! CRL processing by RFC 5280 §6.3: scope (issuer, distribution points, Issuing Distribution
//! Point with its onlyContains… and onlySomeReasons fields), indirect CRLs (certificateIssuer),
//! delta CRLs, the CRL issuer's cRLSign and its own path to the same trust anchor, critical
//! extensions that make a CRL unusable. Other status sources are asked first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use const_oid::db::rfc5280 as oids;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::{DistributionPoint, IssuingDistributionPoint, ReasonFlags};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BaseCrlNumber, CrlNumber, CrlReason, KeyUsages};
use x509_cert::name::Name;

use super::algorithm::{verify_signature, SignatureProblem};
use super::cert::{signed_part, PkixCert};
use super::name::names_equal;
use super::validate::{CheckedPath, Validator};
use super::{CertificateStatus, ExternalStatus, FailureKind, PathFailure};

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

const ALL_REASONS: u16 = 0x1fe;

fn reason_bits(flags: Option<&ReasonFlags>) -> u16 {
    flags.map_or(ALL_REASONS, |f| f.bits() & ALL_REASONS)
}

/// The names a DistributionPointName stands for; a name relative to the issuer is appended to
/// `issuer`.
fn dp_names(dp: &DistributionPointName, issuer: &Name) -> Vec<GeneralName> {
    match dp {
        DistributionPointName::FullName(names) => names.clone(),
        DistributionPointName::NameRelativeToCRLIssuer(rdn) => {
            let mut name = issuer.clone();
            name.0.push(rdn.clone());
            vec![GeneralName::DirectoryName(name)]
        }
    }
}

fn general_names_meet(a: &[GeneralName], b: &[GeneralName]) -> bool {
    a.iter().any(|x| {
        b.iter().any(|y| match (x, y) {
            (GeneralName::DirectoryName(m), GeneralName::DirectoryName(n)) => names_equal(m, n),
            _ => x.to_der().ok() == y.to_der().ok(),
        })
    })
}

fn directory_names(names: &[GeneralName]) -> impl Iterator<Item = &Name> {
    names.iter().filter_map(|n| match n {
        GeneralName::DirectoryName(d) => Some(d),
        _ => None,
    })
}

/// §6.3.3(b): the CRL is issued by the right party and its scope covers `cert` for `dp`.
fn in_scope(crl: &PkixCrl, dp: &DistributionPoint, cert: &PkixCert) -> bool {
    let indirect = crl.idp.as_ref().is_some_and(|i| i.indirect_crl);
    match &dp.crl_issuer {
        Some(issuers) => {
            if !indirect || !directory_names(issuers).any(|n| names_equal(n, crl.issuer())) {
                return false;
            }
        }
        None => {
            if !names_equal(crl.issuer(), cert.issuer()) {
                return false;
            }
        }
    }
    let Some(idp) = &crl.idp else {
        return true;
    };
    if let Some(idp_name) = &idp.distribution_point {
        let idp_names = dp_names(idp_name, crl.issuer());
        let matched = match (&dp.distribution_point, &dp.crl_issuer) {
            (Some(name), issuers) => {
                let base = issuers
                    .as_ref()
                    .and_then(|i| directory_names(i).next().cloned())
                    .unwrap_or_else(|| cert.issuer().clone());
                general_names_meet(&idp_names, &dp_names(name, &base))
            }
            (None, Some(issuers)) => general_names_meet(&idp_names, issuers),
            (None, None) => false,
        };
        if !matched {
            return false;
        }
    }
    if (idp.only_contains_user_certs && cert.is_ca())
        || (idp.only_contains_ca_certs && !cert.is_ca())
        || idp.only_contains_attribute_certs
    {
        return false;
    }
    true
}

/// The status a CRL (with its delta) gives.
enum CrlVerdict {
    Revoked { at: OffsetDateTime, reason: Option<CrlReason> },
    NotRevoked,
}

impl Validator<'_, '_> {
    /// Revocation status of path certificate `k` (0: target), by the other sources, then CRLs.
    pub(crate) fn status_of(
        &self,
        path: &CheckedPath,
        k: usize,
        depth: usize,
    ) -> Result<CertificateStatus, PathFailure> {
        let cert = &path.certificates[k];
        let issuer = &path.certificates[k + 1];
        let at = self.settings.time;
        let revoked = |source: &str, revoked_at: OffsetDateTime, reason: Option<String>| {
            if revoked_at <= at {
                let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                Err(PathFailure::new(
                    FailureKind::Revoked,
                    Some(cert),
                    format!("revoked{reason} at {revoked_at} ({source})"),
                ))
            } else {
                Ok(CertificateStatus::RevokedLater { source: source.to_owned(), revoked_at, reason })
            }
        };
        // A delegated OCSP responder's certificate, checked by the CRLs at hand as if it stood
        // in the path in place of `cert` (same issuer, same path above it).
        let issued_status = |other: &Arc<PkixCert>| -> Result<(), String> {
            let certificates: Vec<Arc<PkixCert>> =
                std::iter::once(other.clone()).chain(path.certificates[k + 1..].iter().cloned()).collect();
            let key_parameters = super::validate::inherited_key_parameters(&certificates);
            let sibling = CheckedPath { certificates, key_parameters, user_constrained_policy_set: Vec::new(), notes: Vec::new() };
            match self.crl_status(&sibling, 0, depth + 1) {
                Ok(CrlVerdict::NotRevoked) => Ok(()),
                Ok(CrlVerdict::Revoked { at: revoked_at, reason }) => {
                    let reason = reason.map(|r| format!(" ({r:?})")).unwrap_or_default();
                    Err(format!("revoked{reason} at {revoked_at}"))
                }
                Err(why) => Err(why),
            }
        };
        for source in &self.env.status {
            match source.status(cert, issuer, at, &issued_status) {
                None => continue,
                Some(Ok((name, ExternalStatus::Good))) => return Ok(CertificateStatus::Good { source: name }),
                Some(Ok((name, ExternalStatus::Revoked { revoked_at, reason }))) => {
                    return revoked(&name, revoked_at, reason)
                }
                Some(Ok((name, ExternalStatus::Unknown))) => {
                    return Err(PathFailure::new(
                        FailureKind::RevocationUnavailable,
                        Some(cert),
                        format!("unknown to the {name}"),
                    ))
                }
                Some(Err(e)) => {
                    return Err(PathFailure::new(
                        FailureKind::RevocationUnavailable,
                        Some(cert),
                        format!("revocation status unavailable: {e}"),
                    ))
                }
            }
        }
        match self.crl_status(path, k, depth) {
            Ok(CrlVerdict::NotRevoked) => Ok(CertificateStatus::Good { source: "CRL".into() }),
            Ok(CrlVerdict::Revoked { at: revoked_at, reason }) => {
                revoked("CRL", revoked_at, reason.map(|r| format!("{r:?}")))
            }
            Err(why) => Err(PathFailure::new(
                FailureKind::RevocationUnavailable,
                Some(cert),
                format!("no current CRL or other status covers the certificate: {why}"),
            )),
        }
    }

    /// §6.3.3 over the CRLs of the environment.
    fn crl_status(&self, path: &CheckedPath, k: usize, depth: usize) -> Result<CrlVerdict, String> {
        let cert = &path.certificates[k];
        let at = self.settings.time;
        let default_dp = [DistributionPoint { distribution_point: None, reasons: None, crl_issuer: None }];
        let dps: &[DistributionPoint] = cert.ext.crl_distribution_points.as_deref().unwrap_or(&default_dp);
        let mut reasons_mask: u16 = 0;
        let mut why = String::from("no CRL in scope");
        for dp in dps {
            for crl in self.env.crls.iter().filter(|c| !c.is_delta()) {
                if reasons_mask == ALL_REASONS {
                    break;
                }
                if !in_scope(crl, dp, cert) {
                    continue;
                }
                if !crl.current_at(at) {
                    why = "the CRL in scope is not current".into();
                    continue;
                }
                let interim = reason_bits(crl.idp.as_ref().and_then(|i| i.only_some_reasons.as_ref()))
                    & reason_bits(dp.reasons.as_ref());
                if interim & !reasons_mask == 0 {
                    continue;
                }
                if let Some(u) = &crl.unusable {
                    why = u.clone();
                    continue;
                }
                let Some(signer) = self.crl_signer(crl, path, k, depth) else {
                    why = "no CRL issuer certificate with cRLSign and a valid path verifies the CRL".into();
                    continue;
                };
                let delta = self.delta_for(crl, &signer, path, k);
                // (i)/(j): the delta's entry overrides the complete CRL's.
                let entry = match delta.as_ref().and_then(|d| d.entry_for(cert)) {
                    Some(e) => Some(e),
                    None => crl.entry_for(cert),
                };
                if let Some(e) = entry {
                    if e.reason != Some(CrlReason::RemoveFromCRL) {
                        return Ok(CrlVerdict::Revoked { at: e.revoked_at, reason: e.reason });
                    }
                }
                reasons_mask |= interim;
            }
        }
        if reasons_mask == ALL_REASONS {
            Ok(CrlVerdict::NotRevoked)
        } else {
            Err(why)
        }
    }

    /// §6.3.3(f): a certificate of the CRL issuer with cRLSign whose key verifies the CRL and
    /// whose path ends in the same trust anchor; returns its key (and inherited parameters).
    fn crl_signer(
        &self,
        crl: &PkixCrl,
        path: &CheckedPath,
        k: usize,
        depth: usize,
    ) -> Option<(spki::SubjectPublicKeyInfoOwned, Option<Vec<u8>>)> {
        let anchor = path.certificates.last().expect("path ends in an anchor");
        let mut candidates: Vec<(Arc<PkixCert>, Option<usize>)> = Vec::new();
        for (j, c) in path.certificates.iter().enumerate().skip(k + 1) {
            candidates.push((c.clone(), Some(j)));
        }
        for c in self.env.certificates.iter().chain(self.env.anchors.iter()) {
            if !candidates.iter().any(|(x, _)| x.fingerprint == c.fingerprint) {
                candidates.push((c.clone(), None));
            }
        }
        candidates.retain(|(c, _)| names_equal(c.subject(), crl.issuer()) && c.allows(KeyUsages::CRLSign));
        // A matching key identifier first.
        candidates.sort_by_key(|(c, j)| {
            (c.ext.subject_key_id.is_none() || c.ext.subject_key_id != crl.authority_key_id, j.is_none())
        });
        for (candidate, on_path) in candidates {
            let key = &candidate.cert.tbs_certificate.subject_public_key_info;
            let params = on_path.and_then(|j| path.key_parameters[j].clone());
            let verified = crl.verify_with(key, params.as_deref(), self.settings.time, &self.settings.algorithms);
            if matches!(verified, Err(SignatureProblem::Invalid | SignatureProblem::Refused(_))) {
                continue;
            }
            if on_path.is_some() {
                // Validated as part of this very path (the issuer, or a CA above it).
                return Some((key.clone(), params));
            }
            if self.in_progress.borrow().contains(&candidate.fingerprint) {
                // The CRL issuer's own certificate is in the scope of the CRL it signs (PKITS
                // 4.14.30): its path passed §6.1 before its status was asked, and RFC 5280 does
                // not forbid a CRL issuer to cover itself.
                return Some((key.clone(), None));
            }
            if depth >= MAX_DEPTH {
                continue;
            }
            self.in_progress.borrow_mut().push(candidate.fingerprint);
            let sub = super::ValidationSettings {
                initial_policy_set: vec![super::ANY_POLICY],
                initial_explicit_policy: false,
                initial_policy_mapping_inhibit: false,
                initial_inhibit_any_policy: false,
                required_eku: Vec::new(),
                max_intermediates: None,
                // The relying party's strictness is about the path it asked for.
                strict: false,
                ..self.settings.clone()
            };
            let nested = Validator {
                env: self.env,
                settings: &sub,
                in_progress: RefCell::new(self.in_progress.borrow().clone()),
            };
            let ok = nested.validate_at_depth(&candidate, Some(&anchor.fingerprint), depth + 1).is_ok();
            self.in_progress.borrow_mut().pop();
            if ok {
                return Some((key.clone(), None));
            }
        }
        None
    }

    /// §6.3.3(c)(d) of the delta: a current delta CRL of the same issuer and scope, signed with
    /// the same key, whose base is not newer than the complete CRL.
    fn delta_for(
        &self,
        complete: &PkixCrl,
        signer: &(spki::SubjectPublicKeyInfoOwned, Option<Vec<u8>>),
        _path: &CheckedPath,
        _k: usize,
    ) -> Option<Arc<PkixCrl>> {
        let at = self.settings.time;
        self.env
            .crls
            .iter()
            .filter(|d| d.is_delta() && d.unusable.is_none())
            .filter(|d| names_equal(d.issuer(), complete.issuer()))
            .filter(|d| d.idp == complete.idp)
            .filter(|d| {
                d.authority_key_id.is_none()
                    || complete.authority_key_id.is_none()
                    || d.authority_key_id == complete.authority_key_id
            })
            .filter(|d| d.current_at(at))
            .filter(|d| match (&d.base_crl_number, &complete.crl_number) {
                (Some(base), Some(number)) => compare_integers(base, number) != std::cmp::Ordering::Greater,
                _ => false,
            })
            .find(|d| d.verify_with(&signer.0, signer.1.as_deref(), at, &self.settings.algorithms).is_ok())
            .cloned()
    }
}

/// How deep CRL issuers' own paths are validated (a CRL signer's CRL signer's …).
const MAX_DEPTH: usize = 3;

fn compare_integers(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}
