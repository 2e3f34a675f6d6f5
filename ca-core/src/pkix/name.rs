//! Distinguished name comparison by RFC 5280 §7.1: attribute values of the directory string
//! types are compared after the RFC 4518 string preparation that matters in practice
//! (case folding, insignificant space handling), whatever string type carries them; other
//! values are compared as encoded.

use der::asn1::{AnyRef, BmpString, Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use der::{Encode, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RelativeDistinguishedName};

/// The RFC 4518 prepared form of a string value, or `None` when the value is not a string
/// type (or not decodable as one): then it compares by its encoding. (UniversalString
/// values never get here: `der` 0.7 refuses the tag when the certificate is read.)
fn prepared(value: &der::Any) -> Option<String> {
    let any = AnyRef::from(value);
    let text: String = match value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(any).ok()?.as_str().to_owned(),
        Tag::PrintableString => PrintableStringRef::try_from(any).ok()?.as_str().to_owned(),
        Tag::Ia5String => Ia5StringRef::try_from(any).ok()?.as_str().to_owned(),
        // T.61 strings in practice carry Latin-1 here; ASCII compares the same either way.
        Tag::TeletexString => TeletexStringRef::try_from(any).ok()?.as_str().to_owned(),
        Tag::BmpString => value.decode_as::<BmpString>().ok()?.to_string(),
        _ => return None,
    };
    Some(fold(&text))
}

/// Case folding and RFC 4518 §2.6 insignificant space handling: no leading or trailing
/// spaces, internal runs of spaces become one.
pub(crate) fn fold(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn atv_equal(a: &AttributeTypeAndValue, b: &AttributeTypeAndValue) -> bool {
    if a.oid != b.oid {
        return false;
    }
    match (prepared(&a.value), prepared(&b.value)) {
        (Some(x), Some(y)) => x == y,
        _ => a.value.to_der().ok() == b.value.to_der().ok(),
    }
}

fn rdn_equal(a: &RelativeDistinguishedName, b: &RelativeDistinguishedName) -> bool {
    a.0.len() == b.0.len() && a.0.iter().all(|x| b.0.iter().any(|y| atv_equal(x, y)))
}

/// RFC 5280 §7.1: same number of RDNs, each RDN the same set of attributes, values matched
/// after string preparation. Names encoded alike are equal without preparing anything (the
/// common case: an issuer name copied from its CA's subject), which spares the string
/// preparation's allocations on every comparison of a verification.
pub fn names_equal(a: &Name, b: &Name) -> bool {
    a == b || (a.0.len() == b.0.len() && a.0.iter().zip(b.0.iter()).all(|(x, y)| rdn_equal(x, y)))
}

/// `base` is an initial sequence of `name`'s RDNs (a directoryName subtree, §4.2.1.10).
pub fn name_within(name: &Name, base: &Name) -> bool {
    base.0.len() <= name.0.len() && base.0.iter().zip(name.0.iter()).all(|(x, y)| rdn_equal(x, y))
}

/// The emailAddress attributes of a subject DN (PKCS #9), which §4.2.1.10 subjects to rfc822Name
/// constraints.
pub fn email_addresses(name: &Name) -> Vec<String> {
    const EMAIL: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == EMAIL)
        .filter_map(|atv| Ia5StringRef::try_from(AnyRef::from(&atv.value)).ok().map(|s| s.as_str().to_owned()))
        .collect()
}
