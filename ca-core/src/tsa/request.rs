//! Reading a `TimeStampReq` (RFC 3161 2.4.1) and deciding whether we stamp it. Each refusal
//! carries the failInfo of RFC 3161 2.4.2 (the same choices OpenSSL's responder makes):
//!
//! | request | failInfo |
//! |---|---|
//! | not a DER `TimeStampReq` | badDataFormat |
//! | version other than 1 | badRequest |
//! | hash other than SHA-256/384/512, or hash parameters other than absent/NULL | badAlg |
//! | hashedMessage not the hash's length | badDataFormat |
//! | reqPolicy we do not accept | unacceptedPolicy |
//! | any extension (critical or not: "not recognized … SHALL not issue a token") | unacceptedExtension |
//!
//! SHA-1 imprints are refused: a collision lets one token vouch for two documents.

use const_oid::ObjectIdentifier;
use der::asn1::Int;
use der::{Decode, Tag, Tagged};
use x509_tsp::{MessageImprint, TimeStampReq};

use super::{FailureInfo, TsaSettings};
use crate::cms::Digest;

/// Largest nonce echoed (RFC 3161 suggests 64 bits; clients use up to 160).
pub const MAX_NONCE_LEN: usize = 64;

/// A request we will stamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedRequest {
    pub message_imprint: MessageImprint,
    /// The requested policy, or our default.
    pub policy: ObjectIdentifier,
    pub nonce: Option<Int>,
    pub cert_req: bool,
}

/// Why a request is refused, for the `PKIStatusInfo` of the rejection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text} ({})", .fail.name())]
pub struct Rejection {
    pub fail: FailureInfo,
    /// Goes into statusString: says what to change, never more than the request showed.
    pub text: String,
}

impl Rejection {
    pub fn new(fail: FailureInfo, text: impl Into<String>) -> Self {
        Self { fail, text: text.into() }
    }
}

/// Decide on the DER `request` under `settings`.
pub fn check(request: &[u8], settings: &TsaSettings) -> Result<AcceptedRequest, Rejection> {
    let bad_format = |e: der::Error| Rejection::new(FailureInfo::BadDataFormat, format!("not a DER TimeStampReq: {e}"));
    // The version is looked at before the whole structure: x509-tsp's TimeStampReq only decodes
    // v1, and another version is badRequest, not badDataFormat.
    let fields = Vec::<der::Any>::from_der(request).map_err(bad_format)?;
    match fields.first() {
        Some(v) if v.tag() == Tag::Integer => {
            let version = v.decode_as::<Int>().map_err(bad_format)?;
            if version.as_bytes() != [1] {
                return Err(Rejection::new(
                    FailureInfo::BadRequest,
                    format!("unsupported TimeStampReq version (0x{}); only v1 is", hex::encode(version.as_bytes())),
                ));
            }
        }
        _ => return Err(Rejection::new(FailureInfo::BadDataFormat, "not a TimeStampReq: no version")),
    }
    let req = TimeStampReq::from_der(request).map_err(bad_format)?;
    let alg = &req.message_imprint.hash_algorithm;
    let digest = Digest::from_oid(&alg.oid).ok_or_else(|| {
        Rejection::new(
            FailureInfo::BadAlg,
            format!("messageImprint hash algorithm {} is not supported (SHA-256, SHA-384, SHA-512)", alg.oid),
        )
    })?;
    if alg.parameters.as_ref().is_some_and(|p| p.tag() != Tag::Null || !p.value().is_empty()) {
        return Err(Rejection::new(
            FailureInfo::BadAlg,
            "messageImprint hash algorithm parameters must be absent or NULL",
        ));
    }
    let expected = digest.digest(b"").len();
    let got = req.message_imprint.hashed_message.as_bytes().len();
    if got != expected {
        return Err(Rejection::new(
            FailureInfo::BadDataFormat,
            format!("messageImprint has {got} octets; {} gives {expected}", alg.oid),
        ));
    }
    if let Some(nonce) = &req.nonce {
        if nonce.as_bytes().len() > MAX_NONCE_LEN {
            return Err(Rejection::new(
                FailureInfo::BadDataFormat,
                format!("nonce longer than {MAX_NONCE_LEN} octets"),
            ));
        }
    }
    let policy = match req.req_policy {
        Some(policy) if settings.accepts(&policy) => policy,
        Some(policy) => {
            return Err(Rejection::new(
                FailureInfo::UnacceptedPolicy,
                format!("policy {policy} is not one of this TSA's (default {})", settings.policy),
            ))
        }
        None => settings.policy,
    };
    if let Some(extension) = req.extensions.iter().flatten().next() {
        let critical = if extension.critical { "critical " } else { "" };
        return Err(Rejection::new(
            FailureInfo::UnacceptedExtension,
            format!("{critical}extension {} is not supported", extension.extn_id),
        ));
    }
    Ok(AcceptedRequest { message_imprint: req.message_imprint, policy, nonce: req.nonce, cert_req: req.cert_req })
}
