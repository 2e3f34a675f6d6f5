//! CRL extensions (RFC 5280 5.2): AKI, CRL Number, Issuing Distribution Point, Delta CRL
//! Indicator and FreshestCRL, built in that order and read back.
//!
//! The OIDs are written out here rather than taken from x509-cert's `AssociatedOid`:
//! x509-cert 0.2.5 gives `IssuingDistributionPoint` the OID of subjectInfoAccess.

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_DELTA_CRL_INDICATOR, ID_CE_FRESHEST_CRL,
    ID_CE_ISSUING_DISTRIBUTION_POINT,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Ia5String, OctetString, Uint};
use der::{Decode, Encode};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, FreshestCrl, IssuingDistributionPoint as X509Idp};
use x509_cert::ext::Extension;

use crate::error::{BuildError, ParseError};

/// The scope of a partitioned CRL (RFC 5280 5.2.5), as it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuingDistributionPoint {
    /// The URL this CRL is published at; the same URL is in the covered certificates' CRL
    /// distribution point.
    pub uri: String,
    /// The CRL covers end-entity certificates only.
    pub only_contains_user_certs: bool,
}

/// An Issuing Distribution Point as read from any CRL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedIssuingDistributionPoint {
    /// The first URI of a fullName distribution point, if there is one.
    pub uri: Option<String>,
    pub only_contains_user_certs: bool,
    pub only_contains_ca_certs: bool,
    pub only_contains_attribute_certs: bool,
    /// onlySomeReasons is present: the CRL does not cover every reason.
    pub only_some_reasons: bool,
    pub indirect_crl: bool,
}

/// What the CRL-level extensions say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CrlExtensionValues {
    pub authority_key_id: Option<Vec<u8>>,
    pub crl_number: Option<u64>,
    pub delta_base: Option<u64>,
    pub issuing_distribution_point: Option<ParsedIssuingDistributionPoint>,
    pub freshest_crl: Option<String>,
}

fn ext<T: Encode>(extn_id: ObjectIdentifier, critical: bool, value: &T) -> Result<Extension, BuildError> {
    Ok(Extension { extn_id, critical, extn_value: OctetString::new(value.to_der()?)? })
}

fn full_name(url: &str) -> Result<DistributionPointName, BuildError> {
    let uri = Ia5String::new(url).map_err(|_| BuildError::InvalidUrl(url.to_owned()))?;
    Ok(DistributionPointName::FullName(vec![GeneralName::UniformResourceIdentifier(uri)]))
}

/// The extensions of a CRL, in the order AKI, CRL Number, IDP, Delta CRL Indicator, FreshestCRL.
pub(crate) fn build(
    authority_key_id: &[u8],
    crl_number: u64,
    idp: Option<&IssuingDistributionPoint>,
    delta_base: Option<u64>,
    freshest_crl: Option<&str>,
) -> Result<Vec<Extension>, BuildError> {
    let mut out = Vec::with_capacity(5);
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(authority_key_id)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    out.push(ext(ID_CE_AUTHORITY_KEY_IDENTIFIER, false, &aki)?);
    out.push(ext(ID_CE_CRL_NUMBER, false, &crl_number)?);
    if let Some(idp) = idp {
        let value = X509Idp {
            distribution_point: Some(full_name(&idp.uri)?),
            only_contains_user_certs: idp.only_contains_user_certs,
            only_contains_ca_certs: false,
            only_some_reasons: None,
            indirect_crl: false,
            only_contains_attribute_certs: false,
        };
        out.push(ext(ID_CE_ISSUING_DISTRIBUTION_POINT, true, &value)?);
    }
    if let Some(base) = delta_base {
        out.push(ext(ID_CE_DELTA_CRL_INDICATOR, true, &base)?);
    }
    if let Some(url) = freshest_crl {
        let value = FreshestCrl(vec![DistributionPoint {
            distribution_point: Some(full_name(url)?),
            reasons: None,
            crl_issuer: None,
        }]);
        out.push(ext(ID_CE_FRESHEST_CRL, false, &value)?);
    }
    Ok(out)
}

fn first_uri(name: Option<&DistributionPointName>) -> Option<String> {
    match name? {
        DistributionPointName::FullName(names) => names.iter().find_map(|n| match n {
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
            _ => None,
        }),
        DistributionPointName::NameRelativeToCRLIssuer(_) => None,
    }
}

fn number(value: &[u8], what: &'static str) -> Result<u64, ParseError> {
    let n = Uint::from_der(value)?;
    let bytes = n.as_bytes();
    if bytes.len() > 8 {
        return Err(ParseError::NumberTooLarge(what));
    }
    Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Read the CRL extensions. Unknown non-critical extensions are skipped, unknown critical ones
/// refused (RFC 5280 5.2), repeated ones refused.
pub(crate) fn parse(extensions: &[Extension]) -> Result<CrlExtensionValues, ParseError> {
    let mut out = CrlExtensionValues::default();
    let mut seen: Vec<ObjectIdentifier> = Vec::with_capacity(extensions.len());
    for e in extensions {
        if seen.contains(&e.extn_id) {
            return Err(ParseError::DuplicateExtension(e.extn_id));
        }
        seen.push(e.extn_id);
        let value = e.extn_value.as_bytes();
        match e.extn_id {
            ID_CE_AUTHORITY_KEY_IDENTIFIER => {
                let aki = AuthorityKeyIdentifier::from_der(value)?;
                out.authority_key_id = aki.key_identifier.map(|k| k.as_bytes().to_vec());
            }
            ID_CE_CRL_NUMBER => out.crl_number = Some(number(value, "the CRL number")?),
            ID_CE_DELTA_CRL_INDICATOR => out.delta_base = Some(number(value, "the base CRL number")?),
            ID_CE_ISSUING_DISTRIBUTION_POINT => {
                let idp = X509Idp::from_der(value)?;
                out.issuing_distribution_point = Some(ParsedIssuingDistributionPoint {
                    uri: first_uri(idp.distribution_point.as_ref()),
                    only_contains_user_certs: idp.only_contains_user_certs,
                    only_contains_ca_certs: idp.only_contains_ca_certs,
                    only_contains_attribute_certs: idp.only_contains_attribute_certs,
                    only_some_reasons: idp.only_some_reasons.is_some(),
                    indirect_crl: idp.indirect_crl,
                });
            }
            ID_CE_FRESHEST_CRL => {
                let fresh = FreshestCrl::from_der(value)?;
                out.freshest_crl = fresh.0.iter().find_map(|dp| first_uri(dp.distribution_point.as_ref()));
            }
            oid if e.critical => return Err(ParseError::UnsupportedCriticalExtension(oid)),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_criticality_and_round_trip() {
        let idp = IssuingDistributionPoint {
            uri: "http://pki.test.kz/crl/nca_p3.crl".into(),
            only_contains_user_certs: true,
        };
        let exts = build(&[7; 20], 300, Some(&idp), Some(299), None).unwrap();
        let oids: Vec<_> = exts.iter().map(|e| (e.extn_id, e.critical)).collect();
        assert_eq!(
            oids,
            [
                (ID_CE_AUTHORITY_KEY_IDENTIFIER, false),
                (ID_CE_CRL_NUMBER, false),
                (ID_CE_ISSUING_DISTRIBUTION_POINT, true),
                (ID_CE_DELTA_CRL_INDICATOR, true),
            ]
        );
        let parsed = parse(&exts).unwrap();
        assert_eq!(parsed.authority_key_id.as_deref(), Some(&[7u8; 20][..]));
        assert_eq!(parsed.crl_number, Some(300));
        assert_eq!(parsed.delta_base, Some(299));
        let pidp = parsed.issuing_distribution_point.unwrap();
        assert_eq!(pidp.uri.as_deref(), Some(idp.uri.as_str()));
        assert!(pidp.only_contains_user_certs && !pidp.indirect_crl);

        let full = build(&[1], u64::MAX, None, None, Some("http://pki.test.kz/crl/nca_d.crl")).unwrap();
        let parsed = parse(&full).unwrap();
        assert_eq!(parsed.crl_number, Some(u64::MAX));
        assert_eq!(parsed.freshest_crl.as_deref(), Some("http://pki.test.kz/crl/nca_d.crl"));
    }

    #[test]
    fn duplicates_unknown_critical_and_big_numbers_are_refused() {
        let mut exts = build(&[1], 1, None, None, None).unwrap();
        exts.push(exts[1].clone());
        assert!(matches!(parse(&exts), Err(ParseError::DuplicateExtension(ID_CE_CRL_NUMBER))));
        let unknown = ObjectIdentifier::new_unwrap("1.2.3.4");
        let e = Extension { extn_id: unknown, critical: true, extn_value: OctetString::new(vec![5, 0]).unwrap() };
        assert_eq!(parse(std::slice::from_ref(&e)), Err(ParseError::UnsupportedCriticalExtension(unknown)));
        assert!(parse(&[Extension { critical: false, ..e }]).is_ok());
        let big = Extension {
            extn_id: ID_CE_CRL_NUMBER,
            critical: false,
            extn_value: OctetString::new(Uint::new(&[1; 9]).unwrap().to_der().unwrap()).unwrap(),
        };
        assert_eq!(parse(&[big]), Err(ParseError::NumberTooLarge("the CRL number")));
        assert!(matches!(build(&[1], 1, None, None, Some("http://пример.kz")), Err(BuildError::InvalidUrl(_))));
    }
}
