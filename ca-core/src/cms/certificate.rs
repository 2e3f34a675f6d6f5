//! Checking one certificate for a relying party: path to a trust anchor at a validation time,
//! revocation of every link at that time, identity and the relying party's requirements.
//! A CMS signer is checked this way after its signature; [`verify_certificate`] does the same
//! for a bare certificate.

use std::sync::Arc;

use time::OffsetDateTime;
use x509_cert::Certificate;

use super::chain::KnownCertificate;
use super::evidence::{ask_sources, fetch_evidence, Answer, Evidence, Fetched};
use super::report::{CertificateReport, Finding, PathReport, Reason, Requirements, RevocationReport, RevocationState};
use super::revocation::RevocationFacts;
use super::{CmsError, VerifyContext};
use crate::identity::{format_dn, CertificateIdentity};
use crate::pkix::{CertificateStatus, FailureKind, PathFailure, PkixCrl, ProfileFinding, RevocationPolicy};

/// What was found about one certificate.
pub(crate) struct CertificateCheck {
    pub findings: Vec<Finding>,
    pub chain: Arc<[String]>,
    pub chain_trusted: bool,
    pub path: PathReport,
    pub policies: Arc<[String]>,
    pub profile_findings: Arc<[ProfileFinding]>,
    pub revocation: RevocationReport,
    pub certificate: Arc<CertificateReport>,
}

impl CertificateCheck {
    /// Put what was found into a signer's report (a CMS SignerInfo or an XML signature).
    pub(crate) fn record_in(self, report: &mut super::report::SignerReport) {
        report.findings.extend(self.findings);
        report.chain = self.chain;
        report.chain_trusted = self.chain_trusted;
        report.path = self.path;
        report.user_constrained_policy_set = self.policies;
        report.profile_findings = self.profile_findings;
        report.revocation = self.revocation;
        report.certificate = Some(self.certificate);
    }
}

/// The verdict on a bare certificate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CertificateVerification {
    /// A trusted path exists, nothing fatal was found.
    pub valid: bool,
    pub findings: Vec<Finding>,
    #[serde(with = "time::serde::rfc3339")]
    pub validation_time: OffsetDateTime,
    /// Shared with every report on the same certificate while it is remembered.
    pub certificate: Arc<CertificateReport>,
    /// Subjects of the path from the certificate's issuer to the trust anchor.
    pub chain: Arc<[String]>,
    pub chain_trusted: bool,
    /// The validated path, the certificate first, trust anchor last (empty without one).
    pub path: PathReport,
    /// RFC 5280 §6.1.6's user-constrained policy set (dotted OIDs; anyPolicy,
    /// `2.5.29.32.0`, when any is acceptable; empty when none is).
    pub user_constrained_policy_set: Arc<[String]>,
    /// Obligations RFC 5280 puts on the issuing CA that certificates of the path break
    /// (non-fatal unless `strict`).
    pub profile_findings: Arc<[ProfileFinding]>,
    pub revocation: RevocationReport,
}

impl CertificateVerification {
    pub fn has(&self, reason: Reason) -> bool {
        self.findings.iter().any(|f| f.reason == reason)
    }
}

/// Check a certificate (DER) at `ctx.validation_time` (or `ctx.now`): chain, revocation at
/// that time, requirements. Untrusted, expired or revoked is a verdict; only a certificate that
/// cannot be parsed is an error.
pub fn verify_certificate(der: &[u8], ctx: &VerifyContext<'_>) -> Result<CertificateVerification, CmsError> {
    let leaf = ctx.trust.certificate(der)?;
    let at = ctx.validation_time.unwrap_or(ctx.now);
    let checked = check_certificate(&leaf, &[], &[], at, false, ctx);
    Ok(CertificateVerification {
        valid: checked.chain_trusted && checked.findings.iter().all(|f| !f.fatal),
        findings: checked.findings,
        validation_time: at,
        certificate: checked.certificate,
        chain: checked.chain,
        chain_trusted: checked.chain_trusted,
        path: checked.path,
        user_constrained_policy_set: checked.policies,
        profile_findings: checked.profile_findings,
        revocation: checked.revocation,
    })
}

/// `at_is_claimed`: `at` is the signer's own signingTime, which nothing else vouches for.
/// `carried_crls`: CRLs the signature carries (RevocationInfoChoices).
pub(crate) fn check_certificate(
    leaf: &Arc<KnownCertificate>,
    extra: &[&[u8]],
    carried_crls: &[Arc<PkixCrl>],
    at: OffsetDateTime,
    at_is_claimed: bool,
    ctx: &VerifyContext<'_>,
) -> CertificateCheck {
    let mut findings = Vec::new();
    let mut revocation = RevocationReport::not_checked();
    let outcome = ctx.trust.validate(leaf, extra, at, &ctx.options);
    for (reason, message) in outcome.problems {
        findings.push(Finding::new(reason, message));
    }
    // What depends only on the path is shared from it, not copied.
    let (mut chain, mut path_report, mut policies, mut profile_findings) =
        (Arc::default(), PathReport::default(), Arc::default(), Arc::default());
    if let Some(path) = &outcome.path {
        chain = path.ca.subjects.clone();
        path_report = PathReport::new(path.facts.target.clone(), path.ca.described.clone());
        policies = path.facts.policies.clone();
        profile_findings = path.facts.findings.clone();
        let cas = &path.ca.certificates;
        let links: Vec<(&Certificate, &Certificate)> = cas
            .first()
            .map(|issuer| (&leaf.parsed.cert, &issuer.cert))
            .into_iter()
            .chain(cas.windows(2).map(|w| (&w[0].cert, &w[1].cert)))
            .collect();
        let policy = ctx.options.revocation;
        let (mut answers, answered_as_of) = match policy {
            RevocationPolicy::None => (links.iter().map(|_| None).collect(), Vec::new()),
            _ => ask_sources(ctx, &links),
        };
        if let Some(as_of) = answered_as_of.first().copied().flatten() {
            revocation.as_of = Some(as_of);
        }
        let fetched = match policy {
            RevocationPolicy::None => Fetched::default(),
            _ => fetch_evidence(ctx, &links, &mut answers),
        };
        let mut evidence = Evidence::new(leaf, cas, extra, fetched, carried_crls, at, ctx);
        for (i, ((cert, _), answer)) in links.iter().zip(answers).enumerate() {
            let what = || {
                if i == 0 {
                    "the certificate".to_string()
                } else {
                    format!("CA certificate {}", format_dn(&cert.tbs_certificate.subject))
                }
            };
            let (state, found) = match answer {
                Some((source, Ok(facts))) => {
                    link_revocation((source, Ok(facts)), at, at_is_claimed, &mut revocation, i == 0, &what)
                }
                None if policy == RevocationPolicy::None => (RevocationState::NotChecked, Vec::new()),
                // No source covers the certificate, or the one that does failed (a CRL that
                // cannot be fetched): the evidence at hand decides if it can, the certificate's
                // OCSP responder asked too when the fetched CRLs decide nothing.
                failed => match with_ocsp_fallback(&mut evidence, i, failed) {
                    (Some(status), _) if decisive(&status) => {
                        evidence_revocation(status, policy, at, at_is_claimed, &mut revocation, i == 0, &what)
                    }
                    (_, Some(failed)) => link_revocation(failed, at, at_is_claimed, &mut revocation, i == 0, &what),
                    (Some(status), None) => {
                        evidence_revocation(status, policy, at, at_is_claimed, &mut revocation, i == 0, &what)
                    }
                    (None, None) => missing_status(policy, &what(), NO_SOURCE),
                },
            };
            for (reason, message) in found {
                findings.push(Finding::new(reason, message));
            }
            if i == 0 {
                revocation.state = state;
            }
        }
    }
    revocation.age_secs = revocation.as_of.map(|t| u64::try_from((ctx.now - t).whole_seconds()).unwrap_or(0));
    for (reason, message) in requirement_problems(&ctx.requirements, &leaf.report.identity) {
        findings.push(Finding::new(reason, message));
    }
    let chain_trusted = outcome.path.is_some() && !findings.iter().any(|f| matches!(f.reason, Reason::Untrusted));
    if chain_trusted {
        ctx.trust.remember(leaf);
    }
    let certificate = leaf.report.clone();
    CertificateCheck {
        findings,
        chain,
        chain_trusted,
        path: path_report,
        policies,
        profile_findings,
        revocation,
        certificate,
    }
}

/// The evidence's status of link `k` and the failure of the source that should have answered;
/// when the status is not decisive, after asking the link's OCSP responder (an unusable CRL
/// falls back to OCSP before the link is left without a status). A responder that fails adds
/// its reason to what the CRLs lacked.
fn with_ocsp_fallback<'s>(
    evidence: &mut Evidence<'s>,
    k: usize,
    failed: Answer<'s>,
) -> (Option<Result<CertificateStatus, PathFailure>>, Answer<'s>) {
    let status = evidence.status(k);
    if status.as_ref().is_some_and(decisive) {
        return (status, failed);
    }
    let Some((responder, why)) = evidence.fall_back_to_ocsp(k) else {
        return (evidence.status(k), failed);
    };
    let status = evidence.status(k);
    if status.as_ref().is_some_and(decisive) {
        return (status, failed);
    }
    let lacked = match (&status, &failed) {
        (_, Some((source, Err(e)))) => Some(format!("{source}: {e}")),
        (Some(Ok(CertificateStatus::NotChecked { why })), None) => Some(why.clone()),
        (Some(Err(f)), None) => Some(f.message.clone()),
        _ => None,
    };
    let why = match lacked {
        Some(lacked) => format!("{lacked}; {responder}: {why}"),
        None => why,
    };
    (None, Some((failed.map_or(responder, |(source, _)| source), Err(why))))
}

/// Why a certificate has no status when nothing at all answers for it.
const NO_SOURCE: &str = "no revocation source covers it (not issued by this CA, no CRL sent with the request or \
                         carried in the signature, no distribution point that can be fetched)";

/// Whether the engine's answer from the evidence is a status (rather than "none to be had").
fn decisive(status: &Result<CertificateStatus, PathFailure>) -> bool {
    match status {
        Ok(CertificateStatus::NotChecked { .. }) => false,
        Ok(_) => true,
        Err(f) => f.kind == FailureKind::Revoked,
    }
}

/// No usable status for a certificate of the path: fatal when the relying party requires one.
fn missing_status(policy: RevocationPolicy, what: &str, why: &str) -> (RevocationState, Vec<(Reason, String)>) {
    match policy {
        RevocationPolicy::Require => (
            RevocationState::Unavailable,
            vec![(Reason::RevocationUnavailable, format!("no usable revocation status for {what}: {why}"))],
        ),
        RevocationPolicy::Prefer => (
            RevocationState::NotChecked,
            vec![(Reason::RevocationNotChecked, format!("no revocation status for {what}: {why}"))],
        ),
        RevocationPolicy::None => (RevocationState::NotChecked, Vec::new()),
    }
}

/// The engine's answer from the CRLs at hand, as a state and findings.
fn evidence_revocation(
    status: Result<CertificateStatus, PathFailure>,
    policy: RevocationPolicy,
    at: OffsetDateTime,
    at_is_claimed: bool,
    report: &mut RevocationReport,
    is_leaf: bool,
    what: &dyn Fn() -> String,
) -> (RevocationState, Vec<(Reason, String)>) {
    let what = &what();
    match status {
        Ok(CertificateStatus::Good { source, as_of }) => {
            if is_leaf {
                report.source = Some(source);
                report.as_of = as_of;
            }
            (RevocationState::Good, Vec::new())
        }
        Ok(CertificateStatus::RevokedLater { source, revoked_at, reason, as_of }) => {
            if is_leaf {
                report.source = Some(source);
                report.revoked_at = Some(revoked_at);
                report.as_of = as_of;
            }
            let named = reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            let mut found = vec![(
                Reason::RevokedAfterSigning,
                format!("{what} was valid at {at}; revoked later{named} at {revoked_at}"),
            )];
            // The CRL's reasonCode names (x509-cert's CrlReason); no reason code may hide one.
            let compromise = reason.as_deref().is_none_or(|r| r.ends_with("Compromise"));
            if at_is_claimed && compromise {
                found.push((
                    Reason::SigningTimeUnproven,
                    format!(
                        "{what} was revoked{named}; only the signer's own signingTime ({at}) says the signature is \
                         older, and whoever holds a compromised key can write any signingTime"
                    ),
                ));
            }
            (RevocationState::RevokedLater, found)
        }
        Ok(CertificateStatus::NotChecked { why }) => missing_status(policy, what, &why),
        Err(f) if f.kind == FailureKind::Revoked => {
            if is_leaf {
                report.source = Some("CRL".into());
            }
            (RevocationState::Revoked, vec![(Reason::Revoked, format!("{what}: {}, before {at}", f.message))])
        }
        Err(f) => missing_status(policy, what, &f.message),
    }
}

/// Turn the answer about one link of the path into a state and findings; fills `report` for
/// the leaf.
fn link_revocation(
    (source, answer): (&str, Result<RevocationFacts, String>),
    at: OffsetDateTime,
    at_is_claimed: bool,
    report: &mut RevocationReport,
    is_leaf: bool,
    // Formatted only when a finding needs it: the common answer ("good") names nobody.
    what: &dyn Fn() -> String,
) -> (RevocationState, Vec<(Reason, String)>) {
    if is_leaf {
        report.source = Some(source.to_owned());
    }
    match answer {
        Ok(RevocationFacts::Good) => (RevocationState::Good, Vec::new()),
        Ok(RevocationFacts::Unknown) => {
            (RevocationState::Unknown, vec![(Reason::UnknownToStore, format!("{} is unknown to the {source}", what()))])
        }
        Ok(RevocationFacts::Revoked { reason, revoked_at, invalidity_date }) => {
            if is_leaf {
                report.reason = Some(reason);
                report.revoked_at = Some(revoked_at);
            }
            // A compromised key is untrustworthy from the suspected compromise on, which the
            // invalidity date may put before the revocation.
            let compromised_since = invalidity_date.filter(|d| reason.is_compromise() && *d < revoked_at);
            let cut_off = compromised_since.unwrap_or(revoked_at);
            if cut_off <= at {
                let since = match compromised_since {
                    Some(d) => format!("revoked ({reason}) at {revoked_at}, compromised since {d}"),
                    None => format!("revoked ({reason}) at {revoked_at}"),
                };
                return (
                    RevocationState::Revoked,
                    vec![(Reason::Revoked, format!("{} was {since}, before {at}", what()))],
                );
            }
            let mut found = vec![(
                Reason::RevokedAfterSigning,
                format!("{} was valid at {at}; revoked later ({reason}) at {revoked_at}", what()),
            )];
            if at_is_claimed && reason.is_compromise() {
                found.push((
                    Reason::SigningTimeUnproven,
                    format!(
                        "{} was revoked for {reason}; only the signer's own signingTime ({at}) says the signature \
                         is older, and whoever holds a compromised key can write any signingTime",
                        what()
                    ),
                ));
            }
            (RevocationState::RevokedLater, found)
        }
        Err(e) => (
            RevocationState::Unavailable,
            vec![(Reason::RevocationUnavailable, format!("revocation status of {} unavailable: {e}", what()))],
        ),
    }
}

fn requirement_problems(req: &Requirements, id: &CertificateIdentity) -> Vec<(Reason, String)> {
    let mut problems = Vec::new();
    if let Some(wanted) = req.key_type {
        if id.key_type != Some(wanted) {
            problems.push((
                Reason::WrongKeyType,
                match id.key_type {
                    Some(found) => {
                        format!("an {} key is required, the certificate is for a {} key", wanted.name(), found.name())
                    }
                    None => {
                        format!("an {} key is required, the certificate is for neither AUTH nor SIGN", wanted.name())
                    }
                },
            ));
        }
    }
    for role in &req.roles {
        if !id.roles.contains(role) {
            problems.push((Reason::MissingRole, format!("the certificate lacks the role {role} ({})", role.oid())));
        }
    }
    if let Some(iin) = &req.iin {
        if id.iin.as_ref() != Some(iin) {
            problems.push((
                Reason::WrongPerson,
                match &id.iin {
                    Some(found) => format!("IIN {iin} is required, the certificate is for IIN {found}"),
                    None => format!("IIN {iin} is required, the certificate carries no IIN"),
                },
            ));
        }
    }
    if let Some(bin) = &req.bin {
        if id.bin.as_ref() != Some(bin) {
            problems.push((
                Reason::WrongOrganisation,
                match &id.bin {
                    Some(found) => format!("BIN {bin} is required, the certificate is for BIN {found}"),
                    None => format!("BIN {bin} is required, the certificate carries no BIN"),
                },
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Iin, KeyType};

    #[test]
    fn requirement_messages_are_written_for_people() {
        let iin: Iin = "880101300010".parse().unwrap();
        let req = Requirements { key_type: Some(KeyType::Auth), iin: Some(iin), ..Default::default() };
        let id = CertificateIdentity { key_type: Some(KeyType::Sign), ..Default::default() };
        let messages: Vec<String> = requirement_problems(&req, &id).into_iter().map(|(_, m)| m).collect();
        assert_eq!(
            messages,
            [
                "an AUTH key is required, the certificate is for a SIGN key",
                "IIN 880101300010 is required, the certificate carries no IIN"
            ]
        );
        let none = CertificateIdentity::default();
        let messages: Vec<String> = requirement_problems(&req, &none).into_iter().map(|(_, m)| m).collect();
        assert_eq!(messages[0], "an AUTH key is required, the certificate is for neither AUTH nor SIGN");
        assert!(messages.iter().all(|m| !m.contains("Some(") && !m.contains("None")), "{messages:?}");
    }
}
