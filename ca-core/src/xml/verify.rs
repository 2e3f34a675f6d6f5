//! Verifying the enveloped signatures of an XML document: each signature's reference, digest
//! and value, what it covers against what the relying party reads, then its signer's
//! certificate exactly as a CMS signer's ([`crate::cms`]'s certificate check).

use time::OffsetDateTime;
use xml_sec::Node;

use super::document::{element_id, element_path, elements_with_id, parse, qualified_name, within};
use super::dsig::{self, canonical_reference, canonical_signed_info, digest_uri, is_ds, SignatureParts, Target};
use super::XmlError;
use crate::cms::{check_certificate, Finding, Reason, SignerReport, TimeSource, VerifyContext};

/// The most signatures one document may carry: each canonicalises what it covers (possibly the
/// whole document), so their number bounds the work.
pub const MAX_SIGNATURES: usize = 16;

/// The element whose content the relying party reads, and so must be signed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReliedElement {
    /// The whole document (its document element).
    #[default]
    Document,
    /// The one element with this ID (`Id`, `ID` or `id` attribute).
    Id(String),
}

/// Exactly what a signature covers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignedElement {
    /// The reference's URI as written (`""` or `#id`).
    pub reference: String,
    /// The covered element's qualified name.
    pub element: String,
    /// Its position in the document (`/a[1]/b[1]`).
    pub path: String,
    pub id: Option<String>,
}

impl SignedElement {
    fn of(node: Node<'_, '_>, reference: &str) -> Self {
        Self {
            reference: reference.to_string(),
            element: qualified_name(node),
            path: element_path(node),
            id: element_id(node).map(str::to_string),
        }
    }
}

/// One `ds:Signature` of the document, checked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct XmlSignatureReport {
    /// Where the `ds:Signature` element is.
    pub signature_path: String,
    /// What its reference covers (`None` when the reference could not be followed).
    pub signed_element: Option<SignedElement>,
    /// `SignedInfo`'s canonicalisation method.
    pub canonicalization: Option<String>,
    /// The signature and its signer, reported as for a CMS signer (`digest_algorithm` and
    /// `signature_algorithm` are the XMLDSig URIs; `digest_valid` is the reference digest).
    #[serde(flatten)]
    pub signer: SignerReport,
}

/// The verdict on a signed XML document.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct XmlVerification {
    /// There is at least one signature, every one is valid and covers the relied-on element.
    pub valid: bool,
    /// Findings about the document as a whole (no signature, relied-on element not found).
    pub findings: Vec<Finding>,
    /// The element the relying party reads, when found.
    pub relied_on: Option<SignedElement>,
    pub signatures: Vec<XmlSignatureReport>,
}

impl XmlVerification {
    /// Every reason found, globally or for any signature.
    pub fn reasons(&self) -> Vec<Reason> {
        let mut all = Vec::new();
        for f in self.findings.iter().chain(self.signatures.iter().flat_map(|s| &s.signer.findings)) {
            if !all.contains(&f.reason) {
                all.push(f.reason);
            }
        }
        all
    }

    pub fn has(&self, reason: Reason) -> bool {
        self.reasons().contains(&reason)
    }

    /// The first fatal finding, globally or for any signature.
    pub fn first_fatal(&self) -> Option<&Finding> {
        self.findings.iter().chain(self.signatures.iter().flat_map(|s| &s.signer.findings)).find(|f| f.fatal)
    }
}

/// Verify every enveloped signature of `xml` for a relying party that reads `relied`.
/// Errors are for input that is not an acceptable XML document (malformed, DTD, too large or
/// deep); everything about signatures is in the verdict.
pub fn verify(xml: &[u8], relied: &ReliedElement, ctx: &VerifyContext<'_>) -> Result<XmlVerification, XmlError> {
    let document = parse(xml)?;
    let count = document.with_view(|view| view.document().descendants().filter(|n| is_ds(*n, "Signature")).count());
    if count > MAX_SIGNATURES {
        return Err(XmlError::TooManySignatures { count, limit: MAX_SIGNATURES });
    }
    Ok(document.with_view(|view| {
        let doc = view.document();
        let mut findings = Vec::new();
        let relied_node = match relied {
            ReliedElement::Document => Some(doc.root_element()),
            ReliedElement::Id(id) => match elements_with_id(doc, id).as_slice() {
                [one] => Some(*one),
                found => {
                    findings.push(Finding::new(
                        Reason::NotCovered,
                        format!("the relied-on ID \"{id}\" names {} elements, not exactly one", found.len()),
                    ));
                    None
                }
            },
        };
        let relied_on = relied_node.map(|n| {
            let reference = match relied {
                ReliedElement::Document => String::new(),
                ReliedElement::Id(id) => format!("#{id}"),
            };
            SignedElement::of(n, &reference)
        });
        let signatures: Vec<XmlSignatureReport> = doc
            .descendants()
            .filter(|n| is_ds(*n, "Signature"))
            .map(|signature| check_signature(doc, signature, relied_node, ctx))
            .collect();
        if signatures.is_empty() {
            findings.push(Finding::new(Reason::NoSigner, "the document carries no ds:Signature"));
        }
        let valid =
            !signatures.is_empty() && signatures.iter().all(|s| s.signer.valid) && findings.iter().all(|f| !f.fatal);
        XmlVerification { valid, findings, relied_on, signatures }
    }))
}

fn check_signature(
    doc: &xml_sec::Document<'_>,
    signature: Node<'_, '_>,
    relied: Option<Node<'_, '_>>,
    ctx: &VerifyContext<'_>,
) -> XmlSignatureReport {
    let signature_path = element_path(signature);
    let mut report = XmlSignatureReport {
        signature_path: signature_path.clone(),
        signed_element: None,
        canonicalization: None,
        signer: SignerReport::unchecked(
            format!("ds:Signature at {signature_path}"),
            String::new(),
            String::new(),
            ctx.now,
        ),
    };
    let parts = match dsig::read(signature) {
        Ok(parts) => parts,
        Err(finding) => {
            report.signer.findings.push(finding);
            return report;
        }
    };
    report.canonicalization = Some(parts.canonicalization.uri().to_string());
    report.signer.digest_algorithm = digest_uri(parts.digest).to_string();
    report.signer.signature_algorithm = parts.method.uri().to_string();
    let findings = &mut report.signer.findings;

    // What the reference covers, and whether that is what the relying party reads.
    let target = match &parts.target {
        Target::Document => Some(doc.root_element()),
        Target::Id(id) => match elements_with_id(doc, id).as_slice() {
            [one] => Some(*one),
            found => {
                findings.push(Finding::new(
                    Reason::NotCovered,
                    format!(
                        "reference \"#{id}\" names {} elements: an ID must name exactly one (signature wrapping)",
                        found.len()
                    ),
                ));
                None
            }
        },
    };
    if let Some(target) = target {
        let signed = SignedElement::of(target, &parts.reference_uri);
        if !within(signature, target) {
            findings.push(Finding::new(
                Reason::ReferenceRefused,
                format!(
                    "the signature is not inside the element it covers ({}): not an enveloped signature",
                    signed.path
                ),
            ));
        }
        match relied {
            Some(relied) if within(relied, target) => {}
            Some(relied) => findings.push(Finding::new(
                Reason::NotCovered,
                format!(
                    "the signature covers {} ({}), not {} that the relying party reads",
                    signed.path,
                    signed.element,
                    element_path(relied)
                ),
            )),
            None => {}
        }
        report.signed_element = Some(signed);
        match canonical_reference(
            doc,
            target,
            Some(signature),
            parts.reference_c14n,
            parts.reference_prefixes.as_deref(),
        ) {
            Ok(canonical) => {
                let ok = parts.digest.digest(&canonical) == parts.digest_value;
                report.signer.digest_valid = Some(ok);
                if !ok {
                    report.signer.findings.push(Finding::new(
                        Reason::DigestMismatch,
                        format!(
                            "the digest of {} does not match: the signed content was changed",
                            element_path(target)
                        ),
                    ));
                }
            }
            Err(e) => report.signer.findings.push(Finding::new(Reason::Malformed, e.to_string())),
        }
    }

    check_value_and_signer(doc, &parts, &mut report.signer, ctx);
    report.signer.valid = report.signer.signature_valid
        && report.signer.digest_valid == Some(true)
        && report.signer.findings.iter().all(|f| !f.fatal);
    report
}

/// The signature value over `SignedInfo`, then the signer's certificate for the relying party,
/// at its validation time (XMLDSig carries no signing time: the relying party's, else now).
/// The signer is the carried certificate whose key verifies the signature (clients write the
/// chain in either order); when none does, the first one, reported with `SignatureInvalid`.
fn check_value_and_signer(
    doc: &xml_sec::Document<'_>,
    parts: &SignatureParts<'_, '_>,
    report: &mut SignerReport,
    ctx: &VerifyContext<'_>,
) {
    if parts.certificates.is_empty() {
        report.findings.push(Finding::new(
            Reason::CertificateNotFound,
            "the signature carries no certificate in KeyInfo/X509Data/X509Certificate",
        ));
        return;
    }
    let signed_info = match canonical_signed_info(
        doc,
        parts.signed_info,
        parts.canonicalization,
        parts.canonicalization_prefixes.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => {
            report.findings.push(Finding::new(Reason::Malformed, e.to_string()));
            return;
        }
    };
    let value = match parts.method.is_ecdsa() {
        true => dsig::ecdsa_fixed_to_der(&parts.signature_value),
        false => Some(parts.signature_value.clone()),
    };
    let mut leaf = None;
    let mut problem = None;
    for (index, der) in parts.certificates.iter().enumerate() {
        let Ok(candidate) = ctx.trust.certificate(der) else { continue };
        let spki = &candidate.parsed.cert.tbs_certificate.subject_public_key_info;
        let outcome =
            value.as_ref().map(|v| crate::verify::verify_signature(spki, &parts.method.oid(), &signed_info, v));
        if let Some(Ok(_)) = outcome {
            report.signature_valid = true;
            leaf = Some((index, candidate));
            break;
        }
        if leaf.is_none() {
            problem = Some(outcome);
            leaf = Some((index, candidate));
        }
    }
    let Some((index, leaf)) = leaf else {
        report.findings.push(Finding::new(Reason::CertificateNotFound, "no carried X509Certificate can be read"));
        return;
    };
    if !report.signature_valid {
        report.findings.push(match problem.flatten() {
            Some(Err(e @ crate::verify::SignatureError::KeyPolicy(_)))
            | Some(Err(e @ crate::verify::SignatureError::UnsupportedAlgorithm(_)))
            | Some(Err(e @ crate::verify::SignatureError::AlgorithmKeyMismatch { .. })) => {
                Finding::new(Reason::UnsupportedAlgorithm, e.to_string())
            }
            _ => Finding::new(Reason::SignatureInvalid, "the signature value does not match the signer's key"),
        });
    }
    let (at, source): (OffsetDateTime, TimeSource) = match ctx.validation_time {
        Some(t) => (t, TimeSource::RelyingParty),
        None => (ctx.now, TimeSource::Now),
    };
    report.validation_time = at;
    report.validation_time_source = source;
    let extra: Vec<&[u8]> =
        parts.certificates.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, c)| c.as_slice()).collect();
    check_certificate(&leaf, &extra, &[], at, false, ctx).record_in(report);
}
