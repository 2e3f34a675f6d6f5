//! Checking one certificate for a relying party: path to a trust anchor at a validation time,
//! revocation of every link at that time, identity and the relying party's requirements.
//! A CMS signer is checked this way after its signature; [`verify_certificate`] does the same
//! for a bare certificate.

use std::sync::Arc;

use time::OffsetDateTime;
use x509_cert::Certificate;

use super::chain::KnownCertificate;
use super::report::{CertificateReport, Finding, Reason, Requirements, RevocationReport, RevocationState};
use super::revocation::RevocationFacts;
use super::{CmsError, VerifyContext};
use crate::identity::{format_dn, CertificateIdentity};

/// What was found about one certificate.
pub(crate) struct CertificateCheck {
    pub findings: Vec<Finding>,
    pub chain: Vec<String>,
    pub chain_trusted: bool,
    pub revocation: RevocationReport,
    pub certificate: CertificateReport,
}

/// The verdict on a bare certificate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CertificateVerification {
    /// A trusted path exists, nothing fatal was found.
    pub valid: bool,
    pub findings: Vec<Finding>,
    #[serde(with = "time::serde::rfc3339")]
    pub validation_time: OffsetDateTime,
    pub certificate: CertificateReport,
    /// Subjects of the path from the certificate's issuer to the trust anchor.
    pub chain: Vec<String>,
    pub chain_trusted: bool,
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
    let checked = check_certificate(&leaf, &[], at, false, ctx);
    Ok(CertificateVerification {
        valid: checked.chain_trusted && checked.findings.iter().all(|f| !f.fatal),
        findings: checked.findings,
        validation_time: at,
        certificate: checked.certificate,
        chain: checked.chain,
        chain_trusted: checked.chain_trusted,
        revocation: checked.revocation,
    })
}

/// `at_is_claimed`: `at` is the signer's own signingTime, which nothing else vouches for.
pub(crate) fn check_certificate(
    leaf: &Arc<KnownCertificate>,
    extra: &[&[u8]],
    at: OffsetDateTime,
    at_is_claimed: bool,
    ctx: &VerifyContext<'_>,
) -> CertificateCheck {
    let mut findings = Vec::new();
    let mut revocation =
        RevocationReport { state: RevocationState::NotChecked, source: None, reason: None, revoked_at: None };
    let outcome = ctx.trust.validate(leaf, extra, at);
    for (reason, message) in outcome.problems {
        findings.push(Finding::new(reason, message));
    }
    let mut chain = Vec::new();
    if let Some(path) = &outcome.path {
        chain = path.ca.subjects.clone();
        let cas = &path.ca.certificates;
        let links: Vec<(&Certificate, &Certificate)> = cas
            .first()
            .map(|issuer| (&leaf.parsed.cert, issuer))
            .into_iter()
            .chain(cas.windows(2).map(|w| (&w[0], &w[1])))
            .collect();
        let answers = ask_sources(ctx, &links);
        for (i, ((cert, _), answer)) in links.iter().zip(answers).enumerate() {
            let (state, found) = link_revocation(answer, cert, at, at_is_claimed, &mut revocation, i == 0);
            for (reason, message) in found {
                findings.push(Finding::new(reason, message));
            }
            if i == 0 {
                revocation.state = state;
            }
        }
    }
    for (reason, message) in requirement_problems(&ctx.requirements, &leaf.report.identity) {
        findings.push(Finding::new(reason, message));
    }
    let chain_trusted = outcome.path.is_some() && !findings.iter().any(|f| matches!(f.reason, Reason::Untrusted));
    if chain_trusted {
        ctx.trust.remember(leaf);
    }
    let certificate = leaf.report.clone();
    CertificateCheck { findings, chain, chain_trusted, revocation, certificate }
}

/// What a source answered about one link: its name and the answer.
type Answer<'s> = Option<(&'s str, Result<RevocationFacts, String>)>;

/// Ask the revocation sources, in order, about every link of a path: each source gets the
/// links no earlier source covered, all at once.
fn ask_sources<'s>(ctx: &VerifyContext<'s>, links: &[(&Certificate, &Certificate)]) -> Vec<Answer<'s>> {
    let mut answers: Vec<Answer<'s>> = links.iter().map(|_| None).collect();
    for source in &ctx.revocation {
        let pending: Vec<usize> = (0..links.len()).filter(|i| answers[*i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        let asked: Vec<_> = pending.iter().map(|i| links[*i]).collect();
        for (i, answer) in pending.into_iter().zip(source.statuses(&asked)) {
            answers[i] = match answer {
                Ok(None) => None,
                Ok(Some(facts)) => Some((source.name(), Ok(facts))),
                Err(e) => Some((source.name(), Err(e))),
            };
        }
    }
    answers
}

/// Turn the answer about one link of the path into a state and findings; fills `report` for
/// the leaf.
fn link_revocation(
    answer: Answer<'_>,
    cert: &Certificate,
    at: OffsetDateTime,
    at_is_claimed: bool,
    report: &mut RevocationReport,
    is_leaf: bool,
) -> (RevocationState, Vec<(Reason, String)>) {
    let what = || {
        if is_leaf {
            "the certificate".to_string()
        } else {
            format!("CA certificate {}", format_dn(&cert.tbs_certificate.subject))
        }
    };
    let Some((source, answer)) = answer else {
        // Only the certificate's own status is worth a note; an uncovered CA certificate (a
        // root's subordinates are often in no store) is silent.
        let note = is_leaf.then(|| (Reason::RevocationNotChecked, format!("no revocation source covers {}", what())));
        return (RevocationState::NotChecked, note.into_iter().collect());
    };
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
