//! Building a profile's extensions in the order of the national profile:
//! KU, EKU, AKI, SKI, policies, CRL distribution points, FreshestCRL, AIA (then SAN, nocheck).
//! CA certificates lead with basicConstraints.

use const_oid::db::rfc5280;
use const_oid::AssociatedOid;
use der::asn1::{Ia5String, Null, OctetString};
use der::{Any, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::pkix::certpolicy::{DisplayText, PolicyInformation, PolicyQualifierInfo, UserNotice};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, FreshestCrl, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;

use super::{CaPolicies, Profile, Role, END_ENTITY_POLICIES, OCSP_NOCHECK};
use crate::config::PublicationUrls;
use const_oid::ObjectIdentifier;

/// What, beyond the profile, decides a certificate's extensions.
pub struct ExtensionContext<'a> {
    pub subject_public_key: &'a SubjectPublicKeyInfoOwned,
    /// The issuer's key identifier; `None` for a self-signed root.
    pub issuer_key_id: Option<&'a [u8]>,
    /// The complete role list (see [`Profile::roles_for`]).
    pub roles: &'a [Role],
    pub alt_names: Vec<GeneralName>,
    pub urls: &'a PublicationUrls,
    /// The issuing CA's name in this deployment, which names its CRL files.
    pub issuer_name: &'a str,
    /// The CRL partition the certificate belongs to, when the CA's CRL is partitioned.
    pub crl_partition: Option<u32>,
    /// For a CA certificate: the policies it asserts for the certificates under it.
    pub ca_policies: CaPolicies,
}

/// RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING contents.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, spki.subject_public_key.raw_bytes())
        .as_ref()
        .to_vec()
}

fn ext<T: Encode + AssociatedOid>(value: &T, critical: bool) -> der::Result<Extension> {
    Ok(Extension { extn_id: T::OID, critical, extn_value: OctetString::new(value.to_der()?)? })
}

fn uri(url: &str) -> der::Result<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(url)?))
}

fn distribution_point(url: &str) -> der::Result<DistributionPoint> {
    Ok(DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
        reasons: None,
        crl_issuer: None,
    })
}

/// anyPolicy (RFC 5280 4.2.1.4).
pub const ANY_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32.0");

/// A CA certificate's policies: its own, with the qualifiers, then those it asserts for the
/// certificates under it.
fn ca_policies(profile: &Profile, ctx: &ExtensionContext<'_>) -> der::Result<CertificatePolicies> {
    let mut out = policies(profile, ctx.urls)?;
    let extra: &[ObjectIdentifier] = match ctx.ca_policies {
        CaPolicies::EndEntity => &END_ENTITY_POLICIES,
        CaPolicies::AnyPolicy => &[ANY_POLICY],
    };
    out.0.extend(extra.iter().map(|oid| PolicyInformation { policy_identifier: *oid, policy_qualifiers: None }));
    Ok(out)
}

fn policies(profile: &Profile, urls: &PublicationUrls) -> der::Result<CertificatePolicies> {
    let cps = PolicyQualifierInfo {
        policy_qualifier_id: rfc5280::ID_QT_CPS,
        qualifier: Some(Any::encode_from(&Ia5String::new(&urls.cps)?)?),
    };
    let notice = UserNotice { notice_ref: None, explicit_text: Some(DisplayText::Utf8String(urls.cps.clone())) };
    let unotice = PolicyQualifierInfo {
        policy_qualifier_id: rfc5280::ID_QT_UNOTICE,
        qualifier: Some(Any::encode_from(&notice)?),
    };
    Ok(CertificatePolicies(vec![PolicyInformation {
        policy_identifier: profile.policy,
        policy_qualifiers: Some(vec![cps, unotice]),
    }]))
}

/// The extensions of a to-be-signed certificate of `profile`.
pub fn build_extensions(profile: &Profile, ctx: &ExtensionContext<'_>) -> der::Result<Vec<Extension>> {
    let mut out = Vec::with_capacity(10);
    let ski = SubjectKeyIdentifier(OctetString::new(key_identifier(ctx.subject_public_key))?);
    let aki = ctx
        .issuer_key_id
        .map(|id| -> der::Result<_> {
            Ok(AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(id)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            })
        })
        .transpose()?;
    let key_usage = profile.key_usage_flags(ctx.subject_public_key);

    if let Some(path_len) = profile.ca_path_len {
        out.push(ext(&BasicConstraints { ca: true, path_len_constraint: path_len }, true)?);
        out.push(ext(&key_usage, true)?);
        out.push(ext(&ski, false)?);
        if let Some(aki) = &aki {
            out.push(ext(aki, false)?);
        }
        out.push(ext(&ca_policies(profile, ctx)?, false)?);
        if profile.revocation_pointers {
            out.push(ext(&CrlDistributionPoints(vec![distribution_point(&ctx.urls.crl(ctx.issuer_name))?]), false)?);
            let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
                access_method: rfc5280::ID_AD_CA_ISSUERS,
                access_location: uri(&ctx.urls.ca_certificate(ctx.issuer_name))?,
            }]);
            out.push(ext(&aia, false)?);
        }
        return Ok(out);
    }

    out.push(ext(&key_usage, true)?);
    let mut eku: Vec<_> = profile.extended_key_usage.to_vec();
    eku.extend(ctx.roles.iter().map(|r| r.oid()));
    out.push(ext(&ExtendedKeyUsage(eku), profile.extended_key_usage_critical)?);
    if let Some(aki) = &aki {
        out.push(ext(aki, false)?);
    }
    out.push(ext(&ski, false)?);
    out.push(ext(&policies(profile, ctx.urls)?, false)?);
    if profile.revocation_pointers {
        let (crl, delta) = (
            ctx.urls.crl_for(ctx.issuer_name, ctx.crl_partition),
            ctx.urls.delta_crl_for(ctx.issuer_name, ctx.crl_partition),
        );
        out.push(ext(&CrlDistributionPoints(vec![distribution_point(&crl)?]), false)?);
        out.push(ext(&FreshestCrl(vec![distribution_point(&delta)?]), false)?);
        let aia = AuthorityInfoAccessSyntax(vec![
            AccessDescription {
                access_method: rfc5280::ID_AD_CA_ISSUERS,
                access_location: uri(&ctx.urls.ca_certificate(ctx.issuer_name))?,
            },
            AccessDescription { access_method: rfc5280::ID_AD_OCSP, access_location: uri(&ctx.urls.ocsp)? },
        ]);
        out.push(ext(&aia, false)?);
    }
    if !ctx.alt_names.is_empty() {
        out.push(ext(&SubjectAltName(ctx.alt_names.clone()), false)?);
    }
    if profile.ocsp_nocheck {
        out.push(Extension { extn_id: OCSP_NOCHECK, critical: false, extn_value: OctetString::new(Null.to_der()?)? });
    }
    Ok(out)
}
