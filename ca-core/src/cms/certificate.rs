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
    let checked = check_certificate(&leaf, &[], at, ctx);
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

pub(crate) fn check_certificate(
    leaf: &Arc<KnownCertificate>,
    extra: &[&[u8]],
    at: OffsetDateTime,
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
        let links =
            cas.first().map(|issuer| (&leaf.parsed.cert, issuer)).into_iter().chain(cas.windows(2).map(|w| (&w[0], &w[1])));
        for (i, (cert, issuer)) in links.enumerate() {
            let (state, finding) = link_revocation(ctx, cert, issuer, at, &mut revocation, i == 0);
            if let Some((reason, message)) = finding {
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

/// Ask the revocation sources about one link of the path; fills `report` for the leaf.
fn link_revocation(
    ctx: &VerifyContext<'_>,
    cert: &Certificate,
    issuer: &Certificate,
    at: OffsetDateTime,
    report: &mut RevocationReport,
    is_leaf: bool,
) -> (RevocationState, Option<(Reason, String)>) {
    let what = if is_leaf {
        "the certificate".to_string()
    } else {
        format!("CA certificate {}", format_dn(&cert.tbs_certificate.subject))
    };
    for source in &ctx.revocation {
        let answer = source.status(cert, issuer);
        if is_leaf && !matches!(answer, Ok(None)) {
            report.source = Some(source.name().to_owned());
        }
        return match answer {
            Ok(None) => continue,
            Ok(Some(RevocationFacts::Good)) => (RevocationState::Good, None),
            Ok(Some(RevocationFacts::Unknown)) => (
                RevocationState::Unknown,
                Some((Reason::UnknownToStore, format!("{what} is unknown to the {}", source.name()))),
            ),
            Ok(Some(RevocationFacts::Revoked { reason, revoked_at })) => {
                if is_leaf {
                    report.reason = Some(reason);
                    report.revoked_at = Some(revoked_at);
                }
                if revoked_at <= at {
                    (
                        RevocationState::Revoked,
                        Some((Reason::Revoked, format!("{what} was revoked ({reason}) at {revoked_at}, before {at}"))),
                    )
                } else {
                    (
                        RevocationState::RevokedLater,
                        Some((
                            Reason::RevokedAfterSigning,
                            format!("{what} was valid at {at}; revoked later ({reason}) at {revoked_at}"),
                        )),
                    )
                }
            }
            Err(e) => (
                RevocationState::Unavailable,
                Some((Reason::RevocationUnavailable, format!("revocation status of {what} unavailable: {e}"))),
            ),
        };
    }
    // Only the certificate's own status is worth a note; an uncovered CA certificate (a
    // root's subordinates are often in no store) is silent.
    let note = is_leaf.then(|| (Reason::RevocationNotChecked, format!("no revocation source covers {what}")));
    (RevocationState::NotChecked, note)
}

fn requirement_problems(req: &Requirements, id: &CertificateIdentity) -> Vec<(Reason, String)> {
    let mut problems = Vec::new();
    if let Some(wanted) = req.key_type {
        if id.key_type != Some(wanted) {
            problems.push((
                Reason::WrongKeyType,
                format!("a {wanted:?} key is required, the certificate is for {:?}", id.key_type),
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
                format!("IIN {iin} is required, the certificate is for {:?}", id.iin.map(|i| i.to_string())),
            ));
        }
    }
    if let Some(bin) = &req.bin {
        if id.bin.as_ref() != Some(bin) {
            problems.push((
                Reason::WrongOrganisation,
                format!("BIN {bin} is required, the certificate is for {:?}", id.bin.map(|b| b.to_string())),
            ));
        }
    }
    problems
}
