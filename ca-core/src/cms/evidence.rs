//! Revocation evidence for the links of a path: what the sources answer or fetch (CRLs, OCSP
//! responses), and the engine's RFC 5280 §6.3 / RFC 6960 processing of what is at hand.

use std::sync::Arc;

use time::OffsetDateTime;
use x509_cert::Certificate;

use super::chain::KnownCertificate;
use super::revocation::RevocationFacts;
use super::VerifyContext;
use crate::pkix::{self, CertificateStatus, OcspResponse, PathFailure, PkixCert, PkixCrl};

/// What a source answered about one link: its name and the answer.
pub(super) type Answer<'s> = Option<(&'s str, Result<RevocationFacts, String>)>;

/// Ask the revocation sources, in order, about every link of a path: each source gets the
/// links no earlier source covered, all at once. With each answer, the time its source's data
/// is complete up to (`ctx.now` unless the source says it lags).
pub(super) fn ask_sources<'s>(
    ctx: &VerifyContext<'s>,
    links: &[(&Certificate, &Certificate)],
) -> (Vec<Answer<'s>>, Vec<Option<OffsetDateTime>>) {
    let mut answers: Vec<Answer<'s>> = links.iter().map(|_| None).collect();
    let mut as_of: Vec<Option<OffsetDateTime>> = links.iter().map(|_| None).collect();
    for source in &ctx.revocation {
        let pending: Vec<usize> = (0..links.len()).filter(|i| answers[*i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        let asked: Vec<_> = pending.iter().map(|i| links[*i]).collect();
        let (statuses, complete_at) = source.statuses_as_of(&asked);
        for (i, answer) in pending.into_iter().zip(statuses) {
            answers[i] = match answer {
                Ok(None) => None,
                Ok(Some(facts)) => {
                    as_of[i] = Some(complete_at.unwrap_or(ctx.now).min(ctx.now));
                    Some((source.name(), Ok(facts)))
                }
                Err(e) => Some((source.name(), Err(e))),
            };
        }
    }
    (answers, as_of)
}

/// Revocation evidence the sources fetched.
#[derive(Default)]
pub(super) struct Fetched {
    crls: Vec<Arc<PkixCrl>>,
    ocsp: Vec<Arc<OcspResponse>>,
    /// Per link: its OCSP responder was asked already.
    ocsp_asked: Vec<bool>,
}

impl Fetched {
    fn add_crls(&mut self, crls: Vec<Arc<PkixCrl>>) {
        for crl in crls {
            if !self.crls.iter().any(|c| Arc::ptr_eq(c, &crl)) {
                self.crls.push(crl);
            }
        }
    }

    /// Ask the first source with a responder for `certificate` (its AIA) for OCSP responses,
    /// and fetch the CRLs of the delegated responders that sign them without
    /// id-pkix-ocsp-nocheck (their own revocation is checked, RFC 6960 §4.2.2.2.1). `Some`:
    /// the source that should have answered, and why it could not.
    fn ask_ocsp<'s>(
        &mut self,
        ctx: &VerifyContext<'s>,
        (certificate, issuer): (&Certificate, &Certificate),
    ) -> Option<(&'s str, String)> {
        for source in &ctx.revocation {
            match source.ocsp_responses(certificate, issuer) {
                Ok(responses) if responses.is_empty() => continue,
                Ok(responses) => {
                    for responder in responses.iter().flat_map(|r| r.responders_to_check()) {
                        if let Some(Ok(crls)) = ctx
                            .revocation
                            .iter()
                            .map(|s| s.crls(responder))
                            .find(|c| c.as_ref().map_or(true, |crls| !crls.is_empty()))
                        {
                            self.add_crls(crls);
                        }
                    }
                    self.ocsp.extend(responses);
                    return None;
                }
                Err(e) => return Some((source.name(), e)),
            }
        }
        None
    }
}

/// What the sources fetch for the links none of them gave a status for: CRLs, and OCSP
/// responses for the links whose CRLs could not be had (more are asked by
/// [`Evidence::fall_back_to_ocsp`] when the fetched CRLs decide nothing). A source that should
/// fetch but cannot makes that link's answer its error (what the evidence at hand may still
/// override).
pub(super) fn fetch_evidence<'s>(
    ctx: &VerifyContext<'s>,
    links: &[(&Certificate, &Certificate)],
    answers: &mut [Answer<'s>],
) -> Fetched {
    let mut fetched = Fetched { ocsp_asked: vec![false; links.len()], ..Fetched::default() };
    for (i, (link, answer)) in links.iter().zip(answers.iter_mut()).enumerate() {
        if answer.is_some() {
            continue;
        }
        let mut have_crls = false;
        for source in &ctx.revocation {
            match source.crls(link.0) {
                Ok(crls) if crls.is_empty() => continue,
                Ok(crls) => {
                    have_crls = true;
                    fetched.add_crls(crls);
                }
                Err(e) => *answer = Some((source.name(), Err(e))),
            }
            break;
        }
        if have_crls {
            continue;
        }
        fetched.ocsp_asked[i] = true;
        if let Some((source, e)) = fetched.ask_ocsp(ctx, *link) {
            if answer.is_none() {
                *answer = Some((source, Err(e)));
            }
        }
    }
    fetched
}

/// Revocation evidence at hand for the links no source covers: OCSP responses fetched or sent
/// with the request (asked first), CRLs fetched from distribution points, sent with the request
/// or carried in the signature, processed by RFC 5280 §6.3 (scope, reasons, delta and indirect
/// CRLs, the CRL issuer's own path to the same anchor).
pub(super) struct Evidence<'c> {
    leaf: &'c KnownCertificate,
    cas: &'c [Arc<PkixCert>],
    extra: &'c [&'c [u8]],
    crls: Vec<Arc<PkixCrl>>,
    /// Fetched OCSP responses and those the relying party sent.
    ocsp: Vec<Arc<OcspResponse>>,
    /// Per link: its OCSP responder was asked already.
    ocsp_asked: Vec<bool>,
    at: OffsetDateTime,
    ctx: &'c VerifyContext<'c>,
    /// The path as the engine reads it, made on first use.
    path: Option<Option<Vec<Arc<PkixCert>>>>,
    /// The engine's anchors and other certificates (the trust store's, the relying party's, the
    /// signature's), made on first use: every link's status reads the same.
    certificates: Option<EngineCertificates>,
}

/// Anchors, and the other certificates a path or a CRL issuer's path may use.
type EngineCertificates = (Vec<Arc<PkixCert>>, Vec<Arc<PkixCert>>);

impl<'c> Evidence<'c> {
    pub(super) fn new(
        leaf: &'c KnownCertificate,
        cas: &'c [Arc<PkixCert>],
        extra: &'c [&'c [u8]],
        fetched: Fetched,
        carried_crls: &[Arc<PkixCrl>],
        at: OffsetDateTime,
        ctx: &'c VerifyContext<'c>,
    ) -> Self {
        // Fetched CRLs first: they are the freshest, and §6.3 stops at the first complete CRL
        // that covers every reason.
        let crls = fetched.crls.iter().chain(&ctx.options.crls).chain(carried_crls).cloned().collect();
        let ocsp = fetched.ocsp.into_iter().chain(ctx.options.ocsp_responses.iter().cloned()).collect();
        Self { leaf, cas, extra, crls, ocsp, ocsp_asked: fetched.ocsp_asked, at, ctx, path: None, certificates: None }
    }

    /// When the CRLs fetched for link `k` (0: the leaf) decide nothing (signed by another key,
    /// out of scope, stale), ask its certificate's OCSP responder (AIA) too, once. `Some`: the
    /// responder's source and why it could not answer.
    pub(super) fn fall_back_to_ocsp(&mut self, k: usize) -> Option<(&'c str, String)> {
        if self.ocsp_asked.get(k).copied().unwrap_or(true) {
            return None;
        }
        self.ocsp_asked[k] = true;
        let certificate = match k {
            0 => &self.leaf.parsed.cert,
            _ => &self.cas.get(k - 1)?.cert,
        };
        let issuer = &self.cas.get(k)?.cert;
        let mut fetched = Fetched::default();
        let failure = fetched.ask_ocsp(self.ctx, (certificate, issuer));
        for crl in fetched.crls {
            if !self.crls.iter().any(|c| Arc::ptr_eq(c, &crl)) {
                self.crls.push(crl);
            }
        }
        self.ocsp.extend(fetched.ocsp);
        failure
    }

    /// The status of path certificate `k` (0: the leaf) by the CRLs at hand; `None` without any.
    pub(super) fn status(&mut self, k: usize) -> Option<Result<CertificateStatus, PathFailure>> {
        if self.crls.is_empty() && self.ocsp.is_empty() {
            return None;
        }
        let (leaf, cas, extra, ctx) = (self.leaf, self.cas, self.extra, self.ctx);
        let path = self.path.get_or_insert_with(|| {
            let leaf = leaf.engine()?;
            Some(std::iter::once(leaf).chain(cas.iter().cloned()).collect())
        });
        let path = path.as_ref()?;
        let (anchors, certificates) = self
            .certificates
            .get_or_insert_with(|| {
                let (anchors, mut certificates) = ctx.trust.environment();
                certificates.extend(ctx.options.intermediates.iter().cloned());
                // The signature's certificates; the leaf and those the store has already
                // (usually the CA's own) are not parsed again.
                let known = |der: &[u8]| certificates.iter().any(|c| c.der == der);
                let carried: Vec<Arc<PkixCert>> = extra
                    .iter()
                    .filter(|der| !known(der))
                    .filter_map(|der| match path.first() {
                        Some(leaf) if leaf.der == *der => Some(leaf.clone()),
                        _ => PkixCert::from_der(der).ok().map(Arc::new),
                    })
                    .collect();
                certificates.extend(carried);
                (anchors, certificates)
            })
            .clone();
        let settings = self.ctx.options.for_other_certificates().settings(self.at, self.ctx.trust.algorithms());
        let ocsp = pkix::OcspResponses { responses: &self.ocsp, settings: &settings };
        let env = pkix::Environment { anchors, certificates, crls: self.crls.clone(), status: vec![&ocsp] };
        Some(pkix::certificate_status(path, k, &env, &settings))
    }
}
