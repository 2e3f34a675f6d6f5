//! What can go wrong building, parsing or verifying a CRL.

use const_oid::ObjectIdentifier;
use time::OffsetDateTime;

/// A CRL could not be built, signed or written.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid CRL parameters: {0}")]
    InvalidParams(&'static str),
    #[error("invalid URL {0:?} for a CRL extension: only ASCII (IA5String) URLs can be encoded")]
    InvalidUrl(String),
    #[error("entry {index}: serial number must be 1 to 20 octets without leading zeros, got {len}")]
    InvalidSerial { index: u64, len: usize },
    #[error("entry {index}: time {time} cannot be encoded (before 1970 or beyond 9999)")]
    EntryTime { index: u64, time: OffsetDateTime },
    #[error("CRL time {0} cannot be encoded (before 1970 or beyond 9999)")]
    CrlTime(OffsetDateTime),
    #[error("the CRL grew beyond the largest DER length (256 MiB); partition it")]
    TooLarge,
    #[error("DER encoding failed: {0}")]
    Der(#[from] der::Error),
    #[error(transparent)]
    Signer(#[from] ca_core::signer::SignerError),
    #[error("writing the CRL failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The bytes are not a CRL this crate can read. Parsing never panics on any input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed CRL: {0}")]
    Der(#[from] der::Error),
    #[error("CRL version field v{0}: when present it must be v2 (RFC 5280 5.1.2.1)")]
    Version(u8),
    #[error("the signature algorithm of the TBSCertList does not match the outer signatureAlgorithm")]
    AlgorithmMismatch,
    #[error("the signature BIT STRING has unused bits")]
    SignatureBits,
    #[error("the CRL contains extension {0} more than once")]
    DuplicateExtension(ObjectIdentifier),
    #[error("unsupported critical CRL extension {0}")]
    UnsupportedCriticalExtension(ObjectIdentifier),
    #[error("entry {index}: unsupported critical entry extension {oid}")]
    UnsupportedCriticalEntryExtension { index: u64, oid: ObjectIdentifier },
    #[error("entry {index}: extension {oid} appears more than once")]
    DuplicateEntryExtension { index: u64, oid: ObjectIdentifier },
    #[error("entry {index}: CRLReason value {value} is not defined by RFC 5280")]
    UnknownReason { index: u64, value: u32 },
    #[error("entry {index}: {source}")]
    Entry { index: u64, source: der::Error },
    #[error("{0} is larger than 64 bits")]
    NumberTooLarge(&'static str),
    #[error("CRL time out of range")]
    Time,
}

/// A CRL did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("CRL signature: {0}")]
    Signature(#[from] ca_core::verify::SignatureError),
}
