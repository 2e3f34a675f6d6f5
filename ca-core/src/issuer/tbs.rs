//! Building the to-be-signed certificate from a validated request.

use der::asn1::{GeneralizedTime, UtcTime};
use time::OffsetDateTime;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::name::Name;
use x509_cert::time::{Time, Validity};

use super::{IssuanceRequest, IssueError};
use crate::config::PublicationUrls;
use crate::identity::{Bin, Iin};
use crate::keys::check_key_policy;
use crate::profile::{build_extensions, CaPolicies, ExtensionContext, Profile};
use crate::serial::SerialNumber;
use crate::signer::SignatureAlgorithm;

/// The issuer as seen by a certificate it signs.
pub(crate) struct IssuerContext<'a> {
    pub name: &'a Name,
    pub key_id: Option<&'a [u8]>,
    pub ca_name: &'a str,
    pub algorithm: SignatureAlgorithm,
    /// Number of CRL partitions of the issuing CA, if partitioned.
    pub crl_partitions: Option<u32>,
    /// The policies a CA certificate signed here asserts (end-entity certificates: unused).
    pub ca_policies: CaPolicies,
}

/// A validated, not yet reserved, to-be-signed certificate.
pub(crate) struct Prepared {
    pub serial: SerialNumber,
    pub profile: Profile,
    pub tbs: TbsCertificate,
    pub iin: Option<Iin>,
    pub bin: Option<Bin>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub crl_partition: Option<u32>,
}

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
pub fn to_x509_time(t: OffsetDateTime) -> Result<Time, der::Error> {
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| der::ErrorKind::DateTime)?;
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))?;
    if dt.year() < 2050 {
        Ok(Time::UtcTime(UtcTime::from_date_time(dt)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

pub(crate) fn prepare(
    request: &IssuanceRequest,
    profile: Profile,
    issuer: &IssuerContext<'_>,
    urls: &PublicationUrls,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Prepared, IssueError> {
    check_key_policy(&request.public_key)?;
    let subject = request.subject.to_name()?;
    let roles = profile.roles_for(&request.roles).map_err(IssueError::Roles)?;
    let alt_names = request.subject.alt_names()?;
    let serial = SerialNumber::random();
    let crl_partition = issuer.crl_partitions.map(|n| crate::revocation::crl_partition(&serial, n));
    let extensions = build_extensions(
        &profile,
        &ExtensionContext {
            subject_public_key: &request.public_key,
            issuer_key_id: issuer.key_id,
            roles: &roles,
            alt_names,
            urls,
            issuer_name: issuer.ca_name,
            crl_partition,
            ca_policies: issuer.ca_policies,
        },
    )?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: serial.to_x509(),
        signature: issuer.algorithm.algorithm_identifier(),
        issuer: issuer.name.clone(),
        validity: Validity { not_before: to_x509_time(not_before)?, not_after: to_x509_time(not_after)? },
        subject,
        subject_public_key_info: request.public_key.clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    Ok(Prepared {
        serial,
        profile,
        tbs,
        iin: request.subject.iin(),
        bin: request.subject.bin(),
        not_before,
        not_after,
        crl_partition,
    })
}
