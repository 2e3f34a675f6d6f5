//! XML signatures (XMLDSig 1.0) as the national profile's portals use them: enveloped
//! signatures over the whole document (`URI=""`) or over one element (`URI="#id"`), made by the
//! signing client's `signXml` and checked like a CMS signer (identity, AUTH/SIGN, roles, chain,
//! revocation, requirements) by the same code ([`crate::cms`]).
//!
//! **What is accepted** (everything else is refused with a reason, never guessed at):
//! RSA-SHA256/384/512 and ECDSA-SHA256/384 (`SignatureMethod`); SHA-256/384/512 digests;
//! canonical XML 1.0 and exclusive canonical XML 1.0, each with or without comments; exactly one
//! `Reference` per signature, to `""` or `#id`, with the enveloped-signature transform and at
//! most one canonicalisation after it; the signer's certificate (and optionally its CA chain)
//! in `KeyInfo/X509Data/X509Certificate`. External URIs, XPath, XSLT, base64 and other
//! transforms, manifests and several references are refused ([`Reason::ReferenceRefused`]).
//!
//! **Signature wrapping.** A valid signature proves only what its reference covers. Each
//! signature reports exactly which element it covers ([`SignedElement`]: its name and path),
//! the signature must lie inside that element (enveloped), an `#id` must name exactly one
//! element, and the relying party says which element it reads ([`ReliedElement`]: the document
//! element by default): a signature over anything else is [`Reason::NotCovered`]. A signature
//! moved next to a forged element, a second element with the same ID, an unsigned element added
//! to a document signed by ID: all refused.
//!
//! **Input.** At most [`MAX_XML_BYTES`] bytes nested at most [`MAX_DEPTH`] deep, with at most
//! [`MAX_SIGNATURES`] signatures (each canonicalises what it covers); DTDs (and so entity
//! declarations and entity expansion) are refused before anything is expanded.
//!
//! **Crate.** Canonicalisation comes from `xml-sec` (pure Rust, maintained, W3C C14N test
//! vectors, its own bounded DTD-refusing parser; only its `c14n` feature is built, so none of
//! its cryptography is). Rejected: libxmlsec1 bindings (C, libxml2's history of parser CVEs, no
//! way to get at which element a reference covered without re-implementing the lookup), and
//! `xml-sec`'s own XMLDSig pipeline and `bergshamra` (each brings a second RSA/ECDSA stack, the
//! RustCrypto `rsa` crate among them, which this project does not use for its timing advisory,
//! and a far larger profile than the one above). The signature itself is checked with
//! aws-lc-rs through [`crate::verify::verify_signature`], like every other signature here.
//!
//! [`Reason::ReferenceRefused`]: crate::cms::Reason::ReferenceRefused
//! [`Reason::NotCovered`]: crate::cms::Reason::NotCovered

mod document;
mod dsig;
mod sign;
mod verify;

#[cfg(test)]
mod tests;

pub use document::{document_child_text, MAX_DEPTH, MAX_XML_BYTES};
pub use dsig::{C14n, DSIG_NS};
pub use sign::{sign, XmlSignOptions};
pub use verify::MAX_SIGNATURES;
pub use verify::{verify, ReliedElement, SignedElement, XmlSignatureReport, XmlVerification};

/// The input is not an XML document this verifier reads, or a signature could not be made.
/// A bad or misplaced signature is a verdict ([`XmlVerification::valid`] false), not an error.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("empty input: expected an XML document")]
    Empty,
    #[error("the XML document is {size} bytes, more than the {limit} accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("the XML document nests elements more than {limit} deep")]
    TooDeep { limit: usize },
    #[error("the XML document carries {count} signatures, more than the {limit} accepted")]
    TooManySignatures { count: usize, limit: usize },
    #[error("DTDs are refused (a DOCTYPE with entity declarations is what entity-expansion attacks use)")]
    Dtd,
    #[error("not a well-formed XML document: {0}")]
    Malformed(String),
    #[error("the document element carries more than one `{0}` element")]
    Ambiguous(String),
    #[error("cannot canonicalise the XML: {0}")]
    Canonicalization(String),
    #[error("the signer certificate cannot be read: {0}")]
    Certificate(String),
    #[error(transparent)]
    Signer(#[from] crate::signer::SignerError),
}
