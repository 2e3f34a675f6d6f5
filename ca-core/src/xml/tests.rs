//! Round trips through `sign` and `verify`, and the refusals that make XML signatures safe to
//! rely on. Interoperability with xmlsec1 is tested in `tests/tests/xml_xmlsec.rs`.

use time::Duration;

use super::*;
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::cms::tests::{signer, Setup, TestKey};
use crate::cms::{Reason, Requirements, RevocationState, StoreRevocationSource, TrustStore, VerifyContext};
use crate::identity::KeyType;

const LOGIN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<login xmlns="urn:example:login"><nonce>bm9uY2U=</nonce><!-- a comment --><user id="u1">Тест</user></login>"#;

struct World {
    setup: Setup,
    key: TestKey,
    cert: Vec<u8>,
    now: time::OffsetDateTime,
}

fn world() -> World {
    let clock = FixedClock(SystemClock.now());
    let (setup, key, cert) = signer(&clock);
    World { setup, key, cert: cert.der, now: clock.0 + Duration::minutes(1) }
}

impl World {
    fn sign(&self, xml: &str, c14n: C14n) -> String {
        let chain = [self.setup.issuing.certificate_der.clone()];
        String::from_utf8(sign(xml.as_bytes(), &self.key, &self.cert, &chain, &XmlSignOptions { c14n }).unwrap())
            .unwrap()
    }

    fn verify_as(&self, xml: &str, relied: &ReliedElement, key_type: KeyType) -> Result<XmlVerification, XmlError> {
        let trust = TrustStore::new(std::slice::from_ref(&self.setup.root.certificate_der), &[]).unwrap();
        let ours = [self.setup.issuing.certificate_der.clone(), self.setup.root.certificate_der.clone()];
        let store = StoreRevocationSource::new(&self.setup.store, &ours).unwrap();
        let ctx = VerifyContext {
            trust: &trust,
            revocation: vec![&store],
            now: self.now,
            validation_time: None,
            requirements: Requirements { key_type: Some(key_type), ..Default::default() },
            options: Default::default(),
        };
        verify(xml.as_bytes(), relied, &ctx)
    }

    fn verify(&self, xml: &str) -> XmlVerification {
        self.verify_as(xml, &ReliedElement::Document, KeyType::Sign).unwrap()
    }
}

#[test]
fn signed_with_every_canonicalisation_verifies_with_the_cms_analysis() {
    let w = world();
    for c14n in C14n::ALL {
        let signed = w.sign(LOGIN, c14n);
        assert!(signed.contains(c14n.uri()), "{signed}");
        let r = w.verify(&signed);
        assert!(r.valid, "{c14n:?}: {r:#?}");
        let s = &r.signatures[0];
        assert_eq!(s.signed_element.as_ref().unwrap().path, "/login[1]");
        assert_eq!(s.signature_path, "/login[1]/ds:Signature[1]");
        assert_eq!(s.signer.digest_valid, Some(true));
        assert_eq!(s.signer.revocation.state, RevocationState::Good);
        assert_eq!(s.signer.identity().unwrap().key_type, Some(KeyType::Sign));
        assert!(s.signer.findings.is_empty(), "{:?}", s.signer.findings);
    }
    // The same requirements as for a CMS: an AUTH key was asked for, this is a SIGN key.
    let r = w.verify_as(&w.sign(LOGIN, C14n::Exclusive), &ReliedElement::Document, KeyType::Auth).unwrap();
    assert!(!r.valid && r.has(Reason::WrongKeyType), "{:?}", r.reasons());
}

#[test]
fn a_changed_or_added_element_breaks_the_digest() {
    let w = world();
    let signed = w.sign(LOGIN, C14n::Inclusive);
    let changed = signed.replace("Тест</user>", "Другой</user>");
    let r = w.verify(&changed);
    assert!(!r.valid && r.has(Reason::DigestMismatch), "{:?}", r.reasons());
    assert!(r.signatures[0].signer.signature_valid, "SignedInfo itself is intact");
    let added = signed.replace("<nonce>", "<admin>true</admin><nonce>");
    assert!(w.verify(&added).has(Reason::DigestMismatch));
    // Comments are not signed (a `""` reference drops them), whatever the canonicalisation.
    let commented = w.sign(LOGIN, C14n::InclusiveWithComments).replace("a comment", "another");
    assert!(w.verify(&commented).valid);
}

#[test]
fn wrapping_and_uncovered_elements_are_refused() {
    let w = world();
    let signed = w.sign(LOGIN, C14n::Exclusive);
    // The relying party reads the element with ID u1: a whole-document signature covers it.
    let r = w.verify_as(&signed, &ReliedElement::Id("u1".into()), KeyType::Sign).unwrap();
    assert!(r.valid, "{:?}", r.reasons());
    assert_eq!(r.relied_on.as_ref().unwrap().path, "/login[1]/user[1]");

    // The signed document moved inside a forged one: the reference "" now means the forgery.
    let body = signed.trim_start_matches(r#"<?xml version="1.0" encoding="UTF-8"?>"#).trim();
    let wrapped = format!(r#"<envelope><forged>pay 1000000</forged>{body}</envelope>"#);
    let r = w.verify(&wrapped);
    assert!(!r.valid, "{r:#?}");
    assert!(r.has(Reason::DigestMismatch), "{:?}", r.reasons());

    // A signature on one element (by ID), the relying party reading the whole document.
    let inner = signed.replace(r#"<ds:Reference URI="">"#, r##"<ds:Reference URI="#u1">"##);
    let r = w.verify(&inner);
    assert!(r.has(Reason::NotCovered) && r.has(Reason::ReferenceRefused), "{:?}", r.reasons());
    let covered = r.signatures[0].signed_element.as_ref().unwrap();
    assert_eq!((covered.reference.as_str(), covered.path.as_str()), ("#u1", "/login[1]/user[1]"));

    // Two elements with the ID the reference or the relying party names.
    let twice = signed.replace("<nonce>", r#"<user id="u1">evil</user><nonce>"#);
    let r = w.verify_as(&twice, &ReliedElement::Id("u1".into()), KeyType::Sign).unwrap();
    assert!(!r.valid && r.has(Reason::NotCovered), "{:?}", r.reasons());
    let r = w.verify(&twice.replace(r#"<ds:Reference URI="">"#, r##"<ds:Reference URI="#u1">"##));
    assert!(r.signatures[0].signer.findings.iter().any(|f| f.message.contains("names 2 elements")), "{r:#?}");
}

#[test]
fn references_and_transforms_outside_the_profile_are_refused() {
    let w = world();
    let signed = w.sign(LOGIN, C14n::Inclusive);
    for uri in ["http://attacker.example/doc.xml", "file:///etc/passwd", "#xpointer(/)", "doc.xml#u1"] {
        let external = signed.replace(r#"<ds:Reference URI="">"#, &format!(r#"<ds:Reference URI="{uri}">"#));
        let r = w.verify(&external);
        assert!(!r.valid && r.has(Reason::ReferenceRefused), "{uri}: {:?}", r.reasons());
        assert!(r.signatures[0].signer.findings[0].message.contains("external"), "{uri}");
    }
    let xslt = signed.replacen(
        r#"<ds:Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>"#,
        r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>"#,
        1,
    );
    assert!(w.verify(&xslt).has(Reason::ReferenceRefused));
    let no_signature = LOGIN;
    let r = w.verify(no_signature);
    assert!(!r.valid && r.has(Reason::NoSigner));
    let sha1 = signed.replace("http://www.w3.org/2001/04/xmlenc#sha256", "http://www.w3.org/2000/09/xmldsig#sha1");
    assert!(w.verify(&sha1).has(Reason::UnsupportedAlgorithm));
    // A signature value made by another key.
    let value_start = signed.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let mut forged = signed.clone();
    forged.replace_range(
        value_start..value_start + 4,
        if &signed[value_start..value_start + 4] == "AAAA" { "BBBB" } else { "AAAA" },
    );
    assert!(w.verify(&forged).has(Reason::SignatureInvalid));
}

#[test]
fn dtds_entity_bombs_and_oversized_input_are_errors() {
    let w = world();
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<login>&lol3;</login>"#;
    let e = w.verify_as(bomb, &ReliedElement::Document, KeyType::Sign).unwrap_err();
    assert!(matches!(e, XmlError::Dtd), "{e}");
    let external = r#"<!DOCTYPE login SYSTEM "http://attacker.example/x.dtd"><login/>"#;
    assert!(matches!(w.verify_as(external, &ReliedElement::Document, KeyType::Sign), Err(XmlError::Dtd)));
    let deep = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
    assert!(matches!(w.verify_as(&deep, &ReliedElement::Document, KeyType::Sign), Err(XmlError::TooDeep { .. })));
    let big = format!("<a>{}</a>", "x".repeat(MAX_XML_BYTES));
    assert!(matches!(w.verify_as(&big, &ReliedElement::Document, KeyType::Sign), Err(XmlError::TooLarge { .. })));
    assert!(matches!(w.verify_as("<a><b></a>", &ReliedElement::Document, KeyType::Sign), Err(XmlError::Malformed(_))));
    assert!(matches!(w.verify_as("  ", &ReliedElement::Document, KeyType::Sign), Err(XmlError::Empty)));
    // Each signature canonicalises what it covers: their number is bounded.
    let signed = w.sign(LOGIN, C14n::Inclusive);
    let start = signed.find("<ds:Signature").unwrap();
    let end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let many = signed.replacen(&signed[start..end], &signed[start..end].repeat(MAX_SIGNATURES + 1), 1);
    let e = w.verify_as(&many, &ReliedElement::Document, KeyType::Sign).unwrap_err();
    assert!(matches!(e, XmlError::TooManySignatures { count, .. } if count == MAX_SIGNATURES + 1), "{e}");
}

#[test]
fn signing_refuses_a_certificate_of_another_key() {
    let w = world();
    let other = TestKey::new();
    let e = sign(LOGIN.as_bytes(), &other, &w.cert, &[], &XmlSignOptions::default()).unwrap_err();
    assert!(matches!(e, XmlError::Certificate(_)), "{e}");
}

#[test]
fn the_nonce_is_read_from_the_document_element() {
    assert_eq!(document_child_text(LOGIN.as_bytes(), "nonce").unwrap().as_deref(), Some("bm9uY2U="));
    assert_eq!(document_child_text(LOGIN.as_bytes(), "missing").unwrap(), None);
    let twice = "<login><nonce>a</nonce><nonce>b</nonce></login>";
    assert!(matches!(document_child_text(twice.as_bytes(), "nonce"), Err(XmlError::Ambiguous(_))));
}

#[test]
fn ecdsa_values_convert_between_fixed_and_der() {
    let mut raw = [0u8; 64];
    raw[31] = 1;
    raw[32] = 0x80;
    let der = dsig::ecdsa_fixed_to_der(&raw).unwrap();
    assert_eq!(dsig::ecdsa_der_to_fixed(&der, 32).unwrap(), raw);
    assert!(dsig::ecdsa_der_to_fixed(&der, 16).is_none(), "s does not fit 16 bytes");
    assert!(dsig::ecdsa_fixed_to_der(&raw[..63]).is_none());
}
