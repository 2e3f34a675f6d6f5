//! CMS SignedData (RFC 5652) as the national profile's signing clients and portals use it:
//! signing through a [`Signer`](crate::signer::Signer) with CAdES-BES signed attributes, and
//! verifying what signing clients and OpenSSL produce (DER or BER, base64 or PEM, attached or
//! detached, one or several signers) into a per-signer report with machine-readable reasons.
//!
//! A bad signature, an expired, revoked, untrusted or wrong-kind signer is a *verdict*
//! ([`CmsVerification::valid`] false with [`Reason`]s); [`CmsError`] is only returned for input
//! that is not a CMS SignedData at all.

mod ber;
mod certificate;
mod chain;
mod ess;
mod evidence;
pub mod fetch;
mod input;
mod options;
mod parts;
mod path_cache;
mod report;
mod revocation;
mod sign;
mod timestamp;
mod verify;

#[cfg(test)]
pub(crate) mod tests;

pub use ber::{ber_to_der, BerError};
pub(crate) use certificate::check_certificate;
pub use certificate::{verify_certificate, CertificateVerification};
pub use chain::{TrustStore, DEFAULT_PATH_CACHE};
pub use ess::{EssCertIdV2, IssuerSerial, SigningCertificateV2, SIGNING_CERTIFICATE_V2};
pub use input::{decode_input, without_whitespace};
pub use options::PathOptions;
pub use path_cache::PathCacheStats;
pub use report::{
    CertificateReport, CmsVerification, Finding, PathCertificate, PathReport, Reason, Requirements, RevocationReport,
    RevocationState, SignerReport, TimeSource, TimestampReport,
};
pub use revocation::{ca_keys, RevocationFacts, RevocationSource, StoreRevocationSource};
pub use sign::{certs_only, sign};
pub(crate) use sign::{sign_encapsulated, Encapsulated};
pub use timestamp::{
    add_signature_timestamp, has_time_stamping, signature_values, ID_CT_TST_INFO, ID_KP_TIME_STAMPING,
    SIGNATURE_TIME_STAMP_TOKEN,
};
pub(crate) use timestamp::{check_authority, read_token};
pub use verify::{verify, SignedCms, VerifyContext};

use const_oid::ObjectIdentifier;

/// id-data
pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-contentType
pub const ATTR_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest
pub const ATTR_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime
pub const ATTR_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");

/// The input could not be read as a CMS SignedData, or a signature could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    #[error("empty input: expected a CMS SignedData (DER, BER or base64)")]
    Empty,
    #[error("not a CMS SignedData: the input is neither DER/BER nor base64 or PEM of it")]
    NotEncoded,
    #[error("not a CMS SignedData: malformed BER: {0}")]
    Ber(#[from] BerError),
    #[error("not a CMS SignedData: {0}")]
    Malformed(String),
    #[error("the CMS content type is {0}, not signedData (1.2.840.113549.1.7.2)")]
    NotSignedData(ObjectIdentifier),
    #[error("the signer certificate cannot be read: {0}")]
    Certificate(String),
    #[error("cannot encode the SignedData: {0}")]
    Encode(#[from] der::Error),
    #[error(transparent)]
    Signer(#[from] crate::signer::SignerError),
}

/// Digest algorithms accepted in SignerInfo and in a time stamp's messageImprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        use const_oid::db::rfc5912::{ID_SHA_256, ID_SHA_384, ID_SHA_512};
        match *oid {
            ID_SHA_256 => Some(Self::Sha256),
            ID_SHA_384 => Some(Self::Sha384),
            ID_SHA_512 => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn oid(self) -> ObjectIdentifier {
        use const_oid::db::rfc5912::{ID_SHA_256, ID_SHA_384, ID_SHA_512};
        match self {
            Self::Sha256 => ID_SHA_256,
            Self::Sha384 => ID_SHA_384,
            Self::Sha512 => ID_SHA_512,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use aws_lc_rs::digest;
        let alg = match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}
