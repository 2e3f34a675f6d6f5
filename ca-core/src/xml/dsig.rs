//! The XMLDSig vocabulary this module accepts, reading one `ds:Signature` under that profile,
//! and the two canonicalisations a signature involves (the referenced element without the
//! signature, and `SignedInfo`).

use base64::Engine;
use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use xml_sec::c14n::{canonicalize, C14nAlgorithm, C14nMode};
use xml_sec::Node;

use super::XmlError;
use crate::cms::{Digest, Finding, Reason};

/// The XMLDSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// A canonicalisation algorithm (C14N 1.0, inclusive or exclusive, with or without comments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum C14n {
    /// `http://www.w3.org/TR/2001/REC-xml-c14n-20010315`, what the national signing client uses.
    #[default]
    Inclusive,
    InclusiveWithComments,
    /// `http://www.w3.org/2001/10/xml-exc-c14n#`
    Exclusive,
    ExclusiveWithComments,
}

impl C14n {
    pub(crate) const ALL: [Self; 4] =
        [Self::Inclusive, Self::InclusiveWithComments, Self::Exclusive, Self::ExclusiveWithComments];

    pub fn uri(self) -> &'static str {
        match self {
            Self::Inclusive => "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
            Self::InclusiveWithComments => "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
            Self::Exclusive => "http://www.w3.org/2001/10/xml-exc-c14n#",
            Self::ExclusiveWithComments => "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
        }
    }

    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.uri() == uri)
    }

    fn is_exclusive(self) -> bool {
        matches!(self, Self::Exclusive | Self::ExclusiveWithComments)
    }

    /// The algorithm, with an exclusive canonicalisation's InclusiveNamespaces PrefixList.
    pub(crate) fn algorithm(self, prefix_list: Option<&str>) -> C14nAlgorithm {
        let comments = matches!(self, Self::InclusiveWithComments | Self::ExclusiveWithComments);
        let mode = if self.is_exclusive() { C14nMode::Exclusive1_0 } else { C14nMode::Inclusive1_0 };
        let algorithm = C14nAlgorithm::new(mode, comments);
        match prefix_list {
            Some(list) if self.is_exclusive() => algorithm.with_prefix_list(list),
            _ => algorithm,
        }
    }
}

/// `SignatureMethod`s accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignatureMethod {
    RsaSha256,
    RsaSha384,
    RsaSha512,
    EcdsaSha256,
    EcdsaSha384,
}

impl SignatureMethod {
    const ALL: [Self; 5] = [Self::RsaSha256, Self::RsaSha384, Self::RsaSha512, Self::EcdsaSha256, Self::EcdsaSha384];

    pub(crate) fn uri(self) -> &'static str {
        match self {
            Self::RsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            Self::RsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            Self::RsaSha512 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
            Self::EcdsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            Self::EcdsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        }
    }

    fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.uri() == uri)
    }

    /// The X.509 signature algorithm the same signature has.
    pub(crate) fn oid(self) -> ObjectIdentifier {
        match self {
            Self::RsaSha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            Self::RsaSha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            Self::RsaSha512 => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
            Self::EcdsaSha256 => rfc5912::ECDSA_WITH_SHA_256,
            Self::EcdsaSha384 => rfc5912::ECDSA_WITH_SHA_384,
        }
    }

    pub(crate) fn is_ecdsa(self) -> bool {
        matches!(self, Self::EcdsaSha256 | Self::EcdsaSha384)
    }
}

pub(crate) fn digest_uri(digest: Digest) -> &'static str {
    match digest {
        Digest::Sha256 => "http://www.w3.org/2001/04/xmlenc#sha256",
        Digest::Sha384 => "http://www.w3.org/2001/04/xmldsig-more#sha384",
        Digest::Sha512 => "http://www.w3.org/2001/04/xmlenc#sha512",
    }
}

fn digest_from_uri(uri: &str) -> Option<Digest> {
    [Digest::Sha256, Digest::Sha384, Digest::Sha512].into_iter().find(|d| digest_uri(*d) == uri)
}

/// What a reference points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `URI=""`: the whole document.
    Document,
    /// `URI="#id"`.
    Id(String),
}

/// A `ds:Signature` read under the accepted profile.
pub(crate) struct SignatureParts<'a, 'i> {
    pub signed_info: Node<'a, 'i>,
    pub canonicalization: C14n,
    pub canonicalization_prefixes: Option<String>,
    pub method: SignatureMethod,
    pub reference_uri: String,
    pub target: Target,
    /// The canonicalisation after the enveloped transform (inclusive C14N 1.0 without comments
    /// when none is named, as XMLDSig §4.3.3.2 says).
    pub reference_c14n: C14n,
    pub reference_prefixes: Option<String>,
    pub digest: Digest,
    pub digest_value: Vec<u8>,
    pub signature_value: Vec<u8>,
    /// `X509Certificate`s in document order: the signer's first.
    pub certificates: Vec<Vec<u8>>,
}

pub(crate) fn is_ds(node: Node<'_, '_>, local: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(DSIG_NS) && node.tag_name().name() == local
}

fn element_children<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(|n| n.is_element())
}

fn text_of(node: Node<'_, '_>) -> String {
    node.children().filter(|n| n.is_text()).filter_map(|n| n.text()).collect()
}

fn base64_of(node: Node<'_, '_>) -> Option<Vec<u8>> {
    let text: String = text_of(node).chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// The PrefixList of an `ec:InclusiveNamespaces` child, if any.
fn prefix_list(node: Node<'_, '_>) -> Option<String> {
    element_children(node)
        .find(|n| n.tag_name().namespace() == Some(EXC_C14N_NS) && n.tag_name().name() == "InclusiveNamespaces")
        .and_then(|n| n.attribute("PrefixList").map(str::to_string))
}

fn malformed(message: impl Into<String>) -> Finding {
    Finding::new(Reason::Malformed, message)
}

fn refused(message: impl Into<String>) -> Finding {
    Finding::new(Reason::ReferenceRefused, message)
}

/// Read `signature` (a `ds:Signature` element). A structure outside the profile is a finding.
pub(crate) fn read<'a, 'i>(signature: Node<'a, 'i>) -> Result<SignatureParts<'a, 'i>, Finding> {
    let children: Vec<_> = element_children(signature).collect();
    let signed_info = match children.first() {
        Some(n) if is_ds(*n, "SignedInfo") => *n,
        _ => return Err(malformed("ds:Signature must begin with ds:SignedInfo")),
    };
    let signature_value = match children.get(1) {
        Some(n) if is_ds(*n, "SignatureValue") => {
            base64_of(*n).ok_or_else(|| malformed("ds:SignatureValue is not base64"))?
        }
        _ => return Err(malformed("ds:SignedInfo must be followed by ds:SignatureValue")),
    };
    let certificates = children
        .iter()
        .filter(|n| is_ds(**n, "KeyInfo"))
        .flat_map(|k| element_children(*k).filter(|n| is_ds(*n, "X509Data")))
        .flat_map(|d| element_children(d).filter(|n| is_ds(*n, "X509Certificate")))
        .map(|c| base64_of(c).ok_or_else(|| malformed("ds:X509Certificate is not base64")))
        .collect::<Result<Vec<_>, _>>()?;

    let info: Vec<_> = element_children(signed_info).collect();
    let algorithm = |n: Option<&Node<'_, '_>>, name: &str| -> Result<String, Finding> {
        match n {
            Some(n) if is_ds(*n, name) => n
                .attribute("Algorithm")
                .map(str::to_string)
                .ok_or_else(|| malformed(format!("ds:{name} has no Algorithm"))),
            _ => Err(malformed(format!("ds:SignedInfo lacks ds:{name} in its place"))),
        }
    };
    let c14n_uri = algorithm(info.first(), "CanonicalizationMethod")?;
    let canonicalization = C14n::from_uri(&c14n_uri).ok_or_else(|| {
        Finding::new(Reason::UnsupportedAlgorithm, format!("canonicalisation {c14n_uri} is not accepted"))
    })?;
    let canonicalization_prefixes = prefix_list(info[0]);
    let method_uri = algorithm(info.get(1), "SignatureMethod")?;
    let method = SignatureMethod::from_uri(&method_uri).ok_or_else(|| {
        Finding::new(Reason::UnsupportedAlgorithm, format!("signature method {method_uri} is not accepted"))
    })?;
    if info.get(1).is_some_and(|m| element_children(*m).next().is_some()) {
        return Err(refused("ds:SignatureMethod parameters (such as HMACOutputLength) are not accepted"));
    }
    let references: Vec<_> = info[2..].iter().copied().filter(|n| is_ds(*n, "Reference")).collect();
    if references.len() + 2 != info.len() {
        return Err(malformed("ds:SignedInfo holds elements other than ds:Reference after ds:SignatureMethod"));
    }
    let reference = match references.as_slice() {
        [one] => *one,
        [] => return Err(malformed("ds:SignedInfo has no ds:Reference")),
        _ => {
            return Err(refused(format!(
                "{} references in one signature: only one, covering the signed element, is accepted",
                references.len()
            )))
        }
    };
    if let Some(kind) = reference.attribute("Type") {
        if kind.ends_with("#Manifest") {
            return Err(refused(format!("reference Type {kind} is not accepted")));
        }
    }
    let reference_uri = reference
        .attribute("URI")
        .ok_or_else(|| refused("a ds:Reference without URI (content supplied out of band) is not accepted"))?
        .to_string();
    let target = match reference_uri.strip_prefix('#') {
        None if reference_uri.is_empty() => Target::Document,
        Some(id) if is_ncname(id) => Target::Id(id.to_string()),
        _ => {
            return Err(refused(format!(
                "reference URI \"{reference_uri}\" is not accepted: only \"\" (the document) or \"#id\" (an element of it); external and XPointer URIs are refused"
            )))
        }
    };

    let parts: Vec<_> = element_children(reference).collect();
    let (transforms, rest) = match parts.first() {
        Some(t) if is_ds(*t, "Transforms") => (element_children(*t).collect::<Vec<_>>(), &parts[1..]),
        _ => (Vec::new(), &parts[..]),
    };
    let transform_uris = transforms
        .iter()
        .map(|t| match (is_ds(*t, "Transform"), t.attribute("Algorithm")) {
            (true, Some(uri)) => Ok(uri),
            _ => Err(malformed("ds:Transforms holds something other than ds:Transform with an Algorithm")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (reference_c14n, reference_prefixes) = match transform_uris.as_slice() {
        [ENVELOPED] => (C14n::Inclusive, None),
        [ENVELOPED, c14n] => match C14n::from_uri(c14n) {
            Some(c) => (c, prefix_list(transforms[1])),
            None => return Err(refused(format!("transform {c14n} is not accepted after the enveloped-signature transform"))),
        },
        _ => {
            return Err(refused(format!(
                "transforms [{}] are not accepted: an enveloped signature takes the enveloped-signature transform, optionally followed by one C14N 1.0 canonicalisation",
                transform_uris.join(", ")
            )))
        }
    };
    let digest_uri = match rest.first() {
        Some(d) if is_ds(*d, "DigestMethod") => {
            d.attribute("Algorithm").ok_or_else(|| malformed("ds:DigestMethod has no Algorithm"))?
        }
        _ => return Err(malformed("ds:Reference lacks ds:DigestMethod")),
    };
    let digest = digest_from_uri(digest_uri).ok_or_else(|| {
        Finding::new(Reason::UnsupportedAlgorithm, format!("digest method {digest_uri} is not accepted"))
    })?;
    let digest_value = match rest.get(1) {
        Some(v) if is_ds(*v, "DigestValue") => {
            base64_of(*v).ok_or_else(|| malformed("ds:DigestValue is not base64"))?
        }
        _ => return Err(malformed("ds:Reference lacks ds:DigestValue")),
    };
    Ok(SignatureParts {
        signed_info,
        canonicalization,
        canonicalization_prefixes,
        method,
        reference_uri,
        target,
        reference_c14n,
        reference_prefixes,
        digest,
        digest_value,
        signature_value,
        certificates,
    })
}

/// An XML NCName as IDs are (letters, digits, `_`, `-`, `.`; not starting with a digit, `-`, `.`).
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The canonical form of `element`'s subtree without comments and without the subtree of
/// `signature` (the enveloped-signature transform), as a `""` or `#id` reference selects it.
pub(crate) fn canonical_reference(
    document: &xml_sec::Document<'_>,
    element: Node<'_, '_>,
    signature: Option<Node<'_, '_>>,
    c14n: C14n,
    prefixes: Option<&str>,
) -> Result<Vec<u8>, XmlError> {
    let whole_document = element.parent().is_some_and(|p| p.is_root());
    let predicate = |node: Node<'_, '_>| {
        !node.is_comment()
            && (whole_document || super::document::within(node, element))
            && !signature.is_some_and(|s| super::document::within(node, s))
    };
    let mut out = Vec::new();
    canonicalize(document, Some(&predicate), &c14n.algorithm(prefixes), &mut out)
        .map_err(|e| XmlError::Canonicalization(e.to_string()))?;
    Ok(out)
}

/// The canonical form of `signed_info` (what the signature value signs).
pub(crate) fn canonical_signed_info(
    document: &xml_sec::Document<'_>,
    signed_info: Node<'_, '_>,
    c14n: C14n,
    prefixes: Option<&str>,
) -> Result<Vec<u8>, XmlError> {
    let predicate = |node: Node<'_, '_>| super::document::within(node, signed_info);
    let mut out = Vec::new();
    canonicalize(document, Some(&predicate), &c14n.algorithm(prefixes), &mut out)
        .map_err(|e| XmlError::Canonicalization(e.to_string()))?;
    Ok(out)
}

/// ECDSA-Sig-Value (RFC 3279), to carry XMLDSig's fixed-width `r || s` to and from the DER form
/// X.509 verification and the [`Signer`](crate::signer::Signer)s use.
#[derive(der::Sequence)]
struct EcdsaSigValue<'a> {
    r: der::asn1::UintRef<'a>,
    s: der::asn1::UintRef<'a>,
}

/// `r || s` (two halves of equal length) → DER.
pub(crate) fn ecdsa_fixed_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    use der::Encode;
    if raw.is_empty() || raw.len() % 2 != 0 {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let value = EcdsaSigValue { r: der::asn1::UintRef::new(r).ok()?, s: der::asn1::UintRef::new(s).ok()? };
    value.to_der().ok()
}

/// DER → `r || s`, each left-padded to `field` bytes.
pub(crate) fn ecdsa_der_to_fixed(der_signature: &[u8], field: usize) -> Option<Vec<u8>> {
    use der::Decode;
    let value = EcdsaSigValue::from_der(der_signature).ok()?;
    let mut out = vec![0u8; 2 * field];
    for (i, n) in [value.r.as_bytes(), value.s.as_bytes()].into_iter().enumerate() {
        if n.len() > field {
            return None;
        }
        out[(i + 1) * field - n.len()..(i + 1) * field].copy_from_slice(n);
    }
    Some(out)
}
