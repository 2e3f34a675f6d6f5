//! Making an enveloped XML signature over a whole document (`URI=""`), through a
//! [`Signer`]: the signature becomes the document element's last child, with the signer's
//! certificate and chain in `KeyInfo/X509Data`.

use base64::Engine;
use der::Decode;
use x509_cert::Certificate;

use super::document::parse;
use super::dsig::{
    self, canonical_reference, canonical_signed_info, digest_uri, is_ds, C14n, SignatureMethod, DSIG_NS,
};
use super::XmlError;
use crate::cms::Digest;
use crate::signer::{SignatureAlgorithm, Signer};

const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// How to sign.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XmlSignOptions {
    /// For `SignedInfo` and for the reference after the enveloped transform.
    pub c14n: C14n,
}

/// Sign the whole of `xml` with an enveloped signature (`URI=""`). `certificate_der` is the
/// signer's certificate, whose key `signer` holds; `chain` are further certificates to put in
/// `X509Data` (the issuing CA). RSA keys sign with RSA-SHA256, P-256 with ECDSA-SHA256, P-384
/// with ECDSA-SHA384; the digest matches.
pub fn sign(
    xml: &[u8],
    signer: &dyn Signer,
    certificate_der: &[u8],
    chain: &[Vec<u8>],
    options: &XmlSignOptions,
) -> Result<Vec<u8>, XmlError> {
    let certificate = Certificate::from_der(certificate_der).map_err(|e| XmlError::Certificate(e.to_string()))?;
    if certificate.tbs_certificate.subject_public_key_info != *signer.public_key() {
        return Err(XmlError::Certificate("the certificate is not for the signer's key".into()));
    }
    for der in chain {
        Certificate::from_der(der).map_err(|e| XmlError::Certificate(format!("chain: {e}")))?;
    }
    let (method, digest, field) = match signer.algorithm() {
        SignatureAlgorithm::RsaPkcs1Sha256 => (SignatureMethod::RsaSha256, Digest::Sha256, 0),
        SignatureAlgorithm::EcdsaP256Sha256 => (SignatureMethod::EcdsaSha256, Digest::Sha256, 32),
        SignatureAlgorithm::EcdsaP384Sha384 => (SignatureMethod::EcdsaSha384, Digest::Sha384, 48),
    };
    let mut document = parse(xml)?;
    let (root, canonical) = document.with_view(|view| {
        let doc = view.document();
        canonical_reference(doc, doc.root_element(), None, options.c14n, None).map(|c| (view.root_element(), c))
    })?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let certificates: String = std::iter::once(certificate_der)
        .chain(chain.iter().map(Vec::as_slice))
        .map(|der| format!("<ds:X509Certificate>{}</ds:X509Certificate>", b64(der)))
        .collect();
    let c14n = options.c14n.uri();
    // Only constants, URIs of this module and base64 go into the template: nothing to escape.
    let fragment = format!(
        concat!(
            "<ds:Signature xmlns:ds=\"{ns}\"><ds:SignedInfo>",
            "<ds:CanonicalizationMethod Algorithm=\"{c14n}\"/>",
            "<ds:SignatureMethod Algorithm=\"{method}\"/>",
            "<ds:Reference URI=\"\"><ds:Transforms>",
            "<ds:Transform Algorithm=\"{enveloped}\"/><ds:Transform Algorithm=\"{c14n}\"/>",
            "</ds:Transforms><ds:DigestMethod Algorithm=\"{digest}\"/>",
            "<ds:DigestValue>{digest_value}</ds:DigestValue></ds:Reference></ds:SignedInfo>",
            "<ds:SignatureValue></ds:SignatureValue>",
            "<ds:KeyInfo><ds:X509Data>{certificates}</ds:X509Data></ds:KeyInfo></ds:Signature>"
        ),
        ns = DSIG_NS,
        c14n = c14n,
        method = method.uri(),
        enveloped = ENVELOPED,
        digest = digest_uri(digest),
        digest_value = b64(&digest.digest(&canonical)),
        certificates = certificates,
    );
    document.append_child(root, &fragment).map_err(|e| XmlError::Malformed(e.to_string()))?;
    // SignedInfo is canonicalised in its place in the final document (inclusive C14N takes the
    // namespaces in scope there), exactly as a verifier will.
    let (signed_info, value_range, text) = document.with_view(|view| {
        let doc = view.document();
        let signature = doc
            .root_element()
            .children()
            .rev()
            .find(|n| is_ds(*n, "Signature"))
            .ok_or_else(|| XmlError::Malformed("the signature was not appended".into()))?;
        let mut children = signature.children().filter(|n| n.is_element());
        let (Some(info), Some(value)) = (children.next(), children.next()) else {
            return Err(XmlError::Malformed("the appended signature lost its structure".into()));
        };
        let canonical = canonical_signed_info(doc, info, options.c14n, None)?;
        Ok((canonical, value.range(), view.xml().to_string()))
    })?;
    let mut signature = signer.sign(&signed_info)?;
    if field != 0 {
        signature = dsig::ecdsa_der_to_fixed(&signature, field)
            .ok_or_else(|| XmlError::Malformed("the signer returned an unreadable ECDSA signature".into()))?;
    }
    let mut out = String::with_capacity(text.len() + 512);
    out.push_str(&text[..value_range.start]);
    out.push_str(&format!("<ds:SignatureValue>{}</ds:SignatureValue>", b64(&signature)));
    out.push_str(&text[value_range.end..]);
    Ok(out.into_bytes())
}
