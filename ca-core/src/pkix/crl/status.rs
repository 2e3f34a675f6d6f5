//! RFC 5280 §6.3 over the CRLs of the environment: which CRL covers a certificate (scope,
//! reasons), its issuer's cRLSign and own path, delta CRLs; the status of one certificate of a
//! path from the other status sources first, then from the CRLs.

use std::cell::RefCell;
use std::sync::Arc;

use der::Encode;
use time::OffsetDateTime;
use x509_cert::ext::pkix::crl::dp::{DistributionPoint, ReasonFlags};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{CrlReason, KeyUsages};
use x509_cert::name::Name;

use super::PkixCrl;
use crate::pkix::algorithm::SignatureProblem;
use crate::pkix::cert::PkixCert;
use crate::pkix::name::names_equal;
use crate::pkix::validate::{inherited_key_parameters, CheckedPath, Validator};
use crate::pkix::{CertificateStatus, ExternalStatus, FailureKind, PathFailure, ValidationSettings, ANY_POLICY};

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
    Revoked {
        at: OffsetDateTime,
        reason: Option<CrlReason>,
        as_of: OffsetDateTime,
    },
    /// `as_of`: the oldest thisUpdate of the CRLs that decided (a delta's when applied).
    NotRevoked {
        as_of: Option<OffsetDateTime>,
    },
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
        let revoked =
            |source: &str, revoked_at: OffsetDateTime, reason: Option<String>, as_of: Option<OffsetDateTime>| {
                if revoked_at <= at {
                    let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                    Err(PathFailure::new(
                        FailureKind::Revoked,
                        Some(cert),
                        format!("revoked{reason} at {revoked_at} ({source})"),
                    ))
                } else {
                    Ok(CertificateStatus::RevokedLater { source: source.to_owned(), revoked_at, reason, as_of })
                }
            };
        // A delegated OCSP responder's certificate, checked by the CRLs at hand as if it stood
        // in the path in place of `cert` (same issuer, same path above it).
        let issued_status = |other: &Arc<PkixCert>| -> Result<(), String> {
            let certificates: Vec<Arc<PkixCert>> =
                std::iter::once(other.clone()).chain(path.certificates[k + 1..].iter().cloned()).collect();
            let key_parameters = inherited_key_parameters(&certificates);
            let sibling = CheckedPath {
                certificates,
                key_parameters,
                user_constrained_policy_set: Vec::new(),
                notes: Vec::new(),
            };
            match self.crl_status(&sibling, 0, depth + 1) {
                Ok(CrlVerdict::NotRevoked { .. }) => Ok(()),
                Ok(CrlVerdict::Revoked { at: revoked_at, reason, .. }) => {
                    let reason = reason.map(|r| format!(" ({r:?})")).unwrap_or_default();
                    Err(format!("revoked{reason} at {revoked_at}"))
                }
                Err(why) => Err(why),
            }
        };
        for source in &self.env.status {
            match source.status(cert, issuer, at, &issued_status) {
                None => continue,
                Some(Ok((name, ExternalStatus::Good { as_of }))) => {
                    return Ok(CertificateStatus::Good { source: name, as_of })
                }
                Some(Ok((name, ExternalStatus::Revoked { revoked_at, reason, as_of }))) => {
                    return revoked(&name, revoked_at, reason, as_of)
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
            Ok(CrlVerdict::NotRevoked { as_of }) => Ok(CertificateStatus::Good { source: "CRL".into(), as_of }),
            Ok(CrlVerdict::Revoked { at: revoked_at, reason, as_of }) => {
                revoked("CRL", revoked_at, reason.map(|r| format!("{r:?}")), Some(as_of))
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
        let mut as_of: Option<OffsetDateTime> = None;
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
                // What these CRLs state is complete up to the delta's thisUpdate, if one applies.
                let stated = delta.as_ref().map_or_else(|| crl.this_update(), |d| d.this_update());
                if let Some(e) = entry {
                    if e.reason != Some(CrlReason::RemoveFromCRL) {
                        return Ok(CrlVerdict::Revoked { at: e.revoked_at, reason: e.reason, as_of: stated });
                    }
                }
                as_of = Some(as_of.map_or(stated, |a| a.min(stated)));
                reasons_mask |= interim;
            }
        }
        if reasons_mask == ALL_REASONS {
            Ok(CrlVerdict::NotRevoked { as_of })
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
            let sub = ValidationSettings {
                initial_policy_set: vec![ANY_POLICY],
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
