//! The RFC 5280 §6.1 basic path validation algorithm over one candidate path, then the
//! revocation status of every certificate in it (§6.3, and the other status sources).

use std::cell::RefCell;
use std::sync::Arc;

use x509_cert::ext::pkix::KeyUsages;
use x509_cert::Version;

use super::algorithm::{describe_key, dsa_parameters, needs_inherited_parameters, verify_signature, SignatureProblem};
use super::build::candidate_paths;
use super::cert::PkixCert;
use super::constraints::NameConstraintState;
use super::findings::profile_findings;
use super::name::names_equal;
use super::policy::{PolicyTree, ANY_POLICY};
use super::{
    CertificateStatus, Environment, FailureKind, PathFailure, RevocationPolicy, ValidatedPath, ValidationSettings,
};

/// anyExtendedKeyUsage.
const ANY_EKU: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("2.5.29.37.0");

/// One validation: the environment, the settings, and the CRL issuers being validated (to
/// stop a CRL issuer whose status depends on itself).
pub(crate) struct Validator<'e, 'a> {
    pub env: &'e Environment<'a>,
    pub settings: &'e ValidationSettings,
    pub in_progress: RefCell<Vec<[u8; 32]>>,
}

/// What the structural pass over a path leaves for the revocation pass.
pub(crate) struct CheckedPath {
    pub certificates: Vec<Arc<PkixCert>>,
    /// Effective DSA parameters of every certificate's key, in path order (inheritance).
    pub key_parameters: Vec<Option<Vec<u8>>>,
    pub user_constrained_policy_set: Vec<const_oid::ObjectIdentifier>,
    pub notes: Vec<String>,
}

impl<'e, 'a> Validator<'e, 'a> {
    pub fn new(env: &'e Environment<'a>, settings: &'e ValidationSettings) -> Self {
        Self { env, settings, in_progress: RefCell::new(Vec::new()) }
    }

    /// Validate `target`; `anchor`: the trust anchor the path must end in (a CRL issuer's path
    /// must end in the target's anchor, §6.3.3(f)).
    pub fn validate(&self, target: &Arc<PkixCert>, anchor: Option<&[u8; 32]>) -> Result<ValidatedPath, PathFailure> {
        self.validate_at_depth(target, anchor, 0)
    }

    pub(crate) fn validate_at_depth(
        &self,
        target: &Arc<PkixCert>,
        anchor: Option<&[u8; 32]>,
        depth: usize,
    ) -> Result<ValidatedPath, PathFailure> {
        let anchors: Vec<Arc<PkixCert>> =
            self.env.anchors.iter().filter(|a| anchor.is_none_or(|f| a.fingerprint == *f)).cloned().collect();
        if let Some(a) = anchors.iter().find(|a| a.fingerprint == target.fingerprint) {
            // The target is itself a trust anchor.
            return Ok(ValidatedPath {
                certificates: vec![a.clone()],
                user_constrained_policy_set: self.settings.initial_policy_set.clone(),
                statuses: Vec::new(),
                notes: Vec::new(),
                findings: Vec::new(),
            });
        }
        let paths = candidate_paths(target, &anchors, &self.env.certificates);
        let mut first_failure: Option<PathFailure> = None;
        for path in paths {
            let outcome = self.check_path(path).and_then(|checked| self.finish(checked, depth));
            match outcome {
                Ok(valid) => return Ok(valid),
                Err(failure) => {
                    // Keep the most telling failure: a revocation or policy failure of a path
                    // whose signatures hold beats "signature invalid" on a wrong-key path.
                    let replace = match &first_failure {
                        None => true,
                        Some(f) => f.kind == FailureKind::Signature && failure.kind != FailureKind::Signature,
                    };
                    if replace {
                        first_failure = Some(failure);
                    }
                }
            }
        }
        Err(first_failure.unwrap_or_else(|| {
            PathFailure::new(
                FailureKind::NoPath,
                Some(target),
                format!("no issuer named {} leads to a trust anchor", crate::identity::format_dn(target.issuer())),
            )
        }))
    }

    /// §6.1.2–§6.1.5 over `path` (target first, anchor last).
    fn check_path(&self, path: Vec<Arc<PkixCert>>) -> Result<CheckedPath, PathFailure> {
        let s = self.settings;
        let anchor = path.last().expect("a candidate path ends in an anchor").clone();
        let n = path.len() - 1;
        if s.max_intermediates.is_some_and(|max| n.saturating_sub(1) > max) {
            return Err(PathFailure::new(
                FailureKind::PathLength,
                Some(&path[0]),
                format!(
                    "the path has {} intermediate certificates, more than the {} allowed",
                    n - 1,
                    s.max_intermediates.unwrap_or_default()
                ),
            ));
        }
        check_anchor(&anchor, s)?;
        let mut notes = Vec::new();
        let mut tree = Some(PolicyTree::new());
        let mut explicit_policy = if s.initial_explicit_policy { 0 } else { n + 1 };
        let mut inhibit_any = if s.initial_inhibit_any_policy { 0 } else { n + 1 };
        let mut policy_mapping = if s.initial_policy_mapping_inhibit { 0 } else { n + 1 };
        let mut max_path_length = n;
        let mut constraints = NameConstraintState::default();
        if let Some(nc) = &anchor.ext.name_constraints {
            constraints.add(nc).map_err(|e| PathFailure::new(FailureKind::NameConstraints, Some(&anchor), e))?;
        }
        let mut working_key = anchor.cert.tbs_certificate.subject_public_key_info.clone();
        let mut working_params = dsa_parameters(&working_key);
        let mut working_issuer = anchor.subject().clone();
        let mut key_parameters = vec![None; path.len()];
        key_parameters[n] = working_params.clone();
        // Certificate i (1-based, §6.1) is path[n - i].
        for i in 1..=n {
            let cert = &path[n - i];
            let last = i == n;
            let fail = |kind, message: String| PathFailure::new(kind, Some(cert), message);
            let tbs = &cert.cert.tbs_certificate;
            if tbs.signature != cert.cert.signature_algorithm {
                return Err(fail(
                    FailureKind::Malformed,
                    "signature algorithm differs inside and outside the signed part".into(),
                ));
            }
            // (a)(1)
            match verify_signature(
                &cert.cert.signature_algorithm,
                &working_key,
                working_params.as_deref(),
                &cert.tbs,
                cert.cert.signature.raw_bytes(),
                s.time,
                &s.algorithms,
            ) {
                Ok(note) => notes.extend(note.map(|n| format!("{}: {n}", cert.subject_text()))),
                Err(SignatureProblem::Invalid) => {
                    return Err(fail(
                        FailureKind::Signature,
                        "the signature does not verify with the issuer's key".into(),
                    ))
                }
                Err(SignatureProblem::Refused(why)) => {
                    return Err(fail(FailureKind::Algorithm, format!("the issuer's signature is not accepted: {why}")))
                }
            }
            // (a)(2)
            let v = &tbs.validity;
            let (from, until) = (super::crl::to_offset(&v.not_before), super::crl::to_offset(&v.not_after));
            if s.time < from {
                return Err(fail(FailureKind::NotYetValid, format!("valid only from {from}, checked at {}", s.time)));
            }
            if s.time > until {
                return Err(fail(FailureKind::Expired, format!("expired at {until}, checked at {}", s.time)));
            }
            // (a)(4)
            if !names_equal(cert.issuer(), &working_issuer) {
                return Err(fail(FailureKind::NoPath, "issuer name does not match the issuer's subject".into()));
            }
            // (b)(c)
            if last || !cert.is_self_issued() {
                constraints.check(cert).map_err(|e| fail(FailureKind::NameConstraints, e))?;
            }
            // (d)-(f)
            if let Some(t) = tree.as_mut() {
                let alive = if cert.ext.policies.is_some() {
                    t.process_certificate(cert, inhibit_any > 0 || (!last && cert.is_self_issued()))
                } else {
                    false
                };
                if !alive {
                    tree = None;
                }
            }
            if explicit_policy == 0 && tree.is_none() {
                return Err(fail(
                    FailureKind::Policy,
                    "no acceptable certificate policy (explicit policy required)".into(),
                ));
            }
            if last {
                break;
            }
            // §6.1.4 (a)(b)
            if let Some(m) = &cert.ext.policy_mappings {
                if m.0.iter().any(|m| m.issuer_domain_policy == ANY_POLICY || m.subject_domain_policy == ANY_POLICY) {
                    return Err(fail(FailureKind::Policy, "policyMappings maps to or from anyPolicy".into()));
                }
                if let Some(t) = tree.as_mut() {
                    if !t.apply_mappings(cert, policy_mapping > 0) {
                        tree = None;
                    }
                }
            }
            // (c)-(f)
            working_issuer = cert.subject().clone();
            let key = &tbs.subject_public_key_info;
            if needs_inherited_parameters(key) && key.algorithm.oid == working_key.algorithm.oid {
                // keep working_params
            } else {
                working_params = dsa_parameters(key);
            }
            working_key = key.clone();
            key_parameters[n - i] = working_params.clone();
            // (g)
            if let Some(nc) = &cert.ext.name_constraints {
                constraints.add(nc).map_err(|e| fail(FailureKind::NameConstraints, e))?;
            }
            // (h)
            if !cert.is_self_issued() {
                explicit_policy = explicit_policy.saturating_sub(1);
                policy_mapping = policy_mapping.saturating_sub(1);
                inhibit_any = inhibit_any.saturating_sub(1);
            }
            // (i)
            if let Some(pc) = &cert.ext.policy_constraints {
                if let Some(r) = pc.require_explicit_policy {
                    explicit_policy = explicit_policy.min(r as usize);
                }
                if let Some(m) = pc.inhibit_policy_mapping {
                    policy_mapping = policy_mapping.min(m as usize);
                }
            }
            // (j)
            if let Some(x) = cert.ext.inhibit_any_policy {
                inhibit_any = inhibit_any.min(x.0 as usize);
            }
            // (k)
            if tbs.version != Version::V3 || !cert.is_ca() {
                return Err(fail(
                    FailureKind::BasicConstraints,
                    "not a CA certificate (basicConstraints cA is not TRUE)".into(),
                ));
            }
            // (l)
            if !cert.is_self_issued() {
                if max_path_length == 0 {
                    return Err(fail(
                        FailureKind::PathLength,
                        "the path is longer than a pathLenConstraint allows".into(),
                    ));
                }
                max_path_length -= 1;
            }
            // (m)
            if let Some(len) = cert.ext.basic_constraints.as_ref().and_then(|bc| bc.path_len_constraint) {
                max_path_length = max_path_length.min(len as usize);
            }
            // (n)
            if !cert.allows(KeyUsages::KeyCertSign) {
                return Err(fail(FailureKind::KeyUsage, "keyUsage does not allow certificate signing".into()));
            }
            // (o)
            if let Some(oid) = cert.ext.unknown_critical.first() {
                return Err(fail(
                    FailureKind::UnknownCriticalExtension,
                    format!("unrecognised critical extension {oid}"),
                ));
            }
        }
        // §6.1.5
        let target = &path[0];
        let fail = |kind, message: String| PathFailure::new(kind, Some(target), message);
        explicit_policy = explicit_policy.saturating_sub(1);
        if target.ext.policy_constraints.as_ref().and_then(|pc| pc.require_explicit_policy) == Some(0) {
            explicit_policy = 0;
        }
        if let Some(oid) = target.ext.unknown_critical.first() {
            return Err(fail(FailureKind::UnknownCriticalExtension, format!("unrecognised critical extension {oid}")));
        }
        if let Some(t) = tree.as_mut() {
            if !t.intersect(&s.initial_policy_set) {
                tree = None;
            }
        }
        if explicit_policy == 0 && tree.is_none() {
            return Err(fail(FailureKind::Policy, "no certificate policy acceptable to the relying party".into()));
        }
        check_target(target, s)?;
        let user_constrained_policy_set = tree.map(|t| t.user_constrained_policies()).unwrap_or_default();
        Ok(CheckedPath { certificates: path, key_parameters, user_constrained_policy_set, notes })
    }

    /// The revocation pass and the findings, on a structurally valid path.
    fn finish(&self, checked: CheckedPath, depth: usize) -> Result<ValidatedPath, PathFailure> {
        let mut statuses = Vec::new();
        let mut notes = checked.notes.clone();
        let n = checked.certificates.len() - 1;
        for k in 0..n {
            let status = match self.settings.revocation {
                RevocationPolicy::None => {
                    CertificateStatus::NotChecked { why: "revocation checking was not requested".into() }
                }
                policy => match self.status_of(&checked, k, depth) {
                    Ok(status) => status,
                    Err(f) if f.kind == FailureKind::RevocationUnavailable && policy == RevocationPolicy::Prefer => {
                        notes.push(f.to_string());
                        CertificateStatus::NotChecked { why: f.message }
                    }
                    Err(f) => return Err(f),
                },
            };
            statuses.push(status);
        }
        let findings: Vec<_> =
            checked.certificates.iter().enumerate().flat_map(|(k, c)| profile_findings(c, k == n)).collect();
        if self.settings.strict {
            if let Some(f) = findings.first() {
                let cert = checked.certificates.iter().find(|c| c.subject_text() == f.certificate);
                return Err(PathFailure::new(
                    FailureKind::Profile,
                    cert.map(|c| c.as_ref()),
                    format!("{} (fatal: strict validation)", f.message),
                ));
            }
        }
        Ok(ValidatedPath {
            certificates: checked.certificates,
            user_constrained_policy_set: checked.user_constrained_policy_set,
            statuses,
            notes,
            findings,
        })
    }
}

/// Effective DSA parameters of every certificate's key along `path` (target first, anchor
/// last), as §6.1.4(d)-(f) carries them down from the anchor; the target's own stay `None`
/// unless it carries them, as in [`Validator::check_path`].
pub(crate) fn inherited_key_parameters(path: &[Arc<PkixCert>]) -> Vec<Option<Vec<u8>>> {
    let n = path.len() - 1;
    let mut out = vec![None; path.len()];
    let mut working_key = &path[n].cert.tbs_certificate.subject_public_key_info;
    let mut working_params = dsa_parameters(working_key);
    out[n] = working_params.clone();
    for i in 1..n {
        let key = &path[n - i].cert.tbs_certificate.subject_public_key_info;
        if !(needs_inherited_parameters(key) && key.algorithm.oid == working_key.algorithm.oid) {
            working_params = dsa_parameters(key);
        }
        working_key = key;
        out[n - i] = working_params.clone();
    }
    out
}

/// A trust anchor given as a certificate must itself be fit to be one: a CA certificate (when
/// version 3), allowed to sign certificates, without critical extensions we do not know, with
/// a key the algorithm policy accepts.
fn check_anchor(anchor: &PkixCert, s: &ValidationSettings) -> Result<(), PathFailure> {
    let fail = |kind, m: String| PathFailure::new(kind, Some(anchor), format!("trust anchor: {m}"));
    if anchor.cert.tbs_certificate.version == Version::V3 && !anchor.is_ca() {
        return Err(fail(FailureKind::BasicConstraints, "not a CA certificate".into()));
    }
    if !anchor.allows(KeyUsages::KeyCertSign) {
        return Err(fail(FailureKind::KeyUsage, "keyUsage does not allow certificate signing".into()));
    }
    if let Some(oid) = anchor.ext.unknown_critical.first() {
        return Err(fail(FailureKind::UnknownCriticalExtension, format!("unrecognised critical extension {oid}")));
    }
    describe_key(&anchor.cert.tbs_certificate.subject_public_key_info, &s.algorithms)
        .map_err(|e| fail(FailureKind::Algorithm, e))?;
    Ok(())
}

/// What RFC 5280 and the relying party require of the target beyond §6.1.
fn check_target(target: &PkixCert, s: &ValidationSettings) -> Result<(), PathFailure> {
    let fail = |kind, m: String| PathFailure::new(kind, Some(target), m);
    describe_key(&target.cert.tbs_certificate.subject_public_key_info, &s.algorithms)
        .map_err(|e| fail(FailureKind::Algorithm, format!("weak or unsupported key: {e}")))?;
    // §4.2.1.3: keyCertSign only with cA; §4.2.1.9: pathLenConstraint only with cA and keyCertSign.
    let key_cert_sign = target.ext.key_usage.as_ref().is_some_and(|ku| ku.0.contains(KeyUsages::KeyCertSign));
    if key_cert_sign && !target.is_ca() {
        return Err(fail(FailureKind::KeyUsage, "keyCertSign in a certificate that is not a CA's".into()));
    }
    if !s.required_eku.is_empty() {
        if let Some(eku) = &target.ext.extended_key_usage {
            if !eku.contains(&ANY_EKU) {
                if let Some(missing) = s.required_eku.iter().find(|p| !eku.contains(p)) {
                    return Err(fail(
                        FailureKind::ExtendedKeyUsage,
                        format!("extendedKeyUsage does not allow {missing}"),
                    ));
                }
            }
        }
    }
    Ok(())
}
