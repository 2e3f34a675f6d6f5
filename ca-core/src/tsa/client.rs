//! A relying party's side of RFC 3161: build a request for a digest, and check the reply
//! against it — status granted, the token's messageImprint, nonce and policy are the
//! request's, and its one signer is a time-stamping authority the verifier trusts at genTime
//! (signature, path, revocation, id-kp-timeStamping). What the portal uses to stamp the
//! documents it stores; the token then goes into a signature with
//! [`add_signature_timestamp`](crate::cms::add_signature_timestamp).
//!
//! Without certReq the token carries no certificate, and the verifier must know the TSA
//! certificate another way (as an intermediate in [`VerifyContext::options`]).

use const_oid::ObjectIdentifier;
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use spki::AlgorithmIdentifier;
use time::OffsetDateTime;
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion};

use super::{FailureInfo, PkiStatus, TimeStampResp};
use crate::cms::{check_authority, read_token, Digest, VerifyContext};

/// What a request asks for besides the imprint.
#[derive(Clone, Debug)]
pub struct RequestOptions {
    /// A random 64-bit nonce, to be echoed (binds the reply to this request).
    pub nonce: bool,
    /// Ask for the TSA certificate in the token.
    pub cert_req: bool,
    /// A TSA policy to ask for; `None`: the TSA's default.
    pub policy: Option<ObjectIdentifier>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self { nonce: true, cert_req: true, policy: None }
    }
}

/// A request made, remembered to check its reply.
#[derive(Clone, Debug)]
pub struct StampRequest {
    der: Vec<u8>,
    imprint: MessageImprint,
    nonce: Option<Int>,
    policy: Option<ObjectIdentifier>,
}

impl StampRequest {
    /// The DER `TimeStampReq`, the body of `POST /tsa` (`application/timestamp-query`).
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// A checked time stamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The TimeStampToken (DER ContentInfo): what is kept with the signature.
    pub token: Vec<u8>,
    pub gen_time: OffsetDateTime,
    /// The token's serial number (big-endian magnitude).
    pub serial: Vec<u8>,
    pub policy: ObjectIdentifier,
    /// The authority's certificate subject.
    pub tsa: String,
    /// The authority's certificate (DER), as the token carried it or the trust store knew it:
    /// what a relying party keeps to check the token later.
    pub certificate: Vec<u8>,
}

/// The reply does not give a time stamp for the request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot encode the request: {0}")]
    Encode(#[from] der::Error),
    #[error("the hash is {got} octets long, {algorithm} gives {expected}")]
    DigestLength { algorithm: ObjectIdentifier, got: usize, expected: usize },
    #[error("the TSA refused: {status:?} {fail:?} {text}")]
    Refused { status: PkiStatus, fail: Vec<FailureInfo>, text: String },
    #[error("the reply is not a time-stamp response: {0}")]
    Malformed(String),
    #[error("the token is not for this request: {0}")]
    Mismatch(String),
    #[error("the token's signer is not a trusted time-stamping authority: {0}")]
    Untrusted(String),
}

/// A request for `hashed`, the `digest` of the data to stamp.
pub fn request(digest: Digest, hashed: &[u8], options: &RequestOptions) -> Result<StampRequest, ClientError> {
    let expected = digest.digest(b"").len();
    if hashed.len() != expected {
        return Err(ClientError::DigestLength { algorithm: digest.oid(), got: hashed.len(), expected });
    }
    let imprint = MessageImprint {
        hash_algorithm: AlgorithmIdentifier { oid: digest.oid(), parameters: None },
        hashed_message: OctetString::new(hashed)?,
    };
    let nonce = if options.nonce {
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ClientError::Malformed("no random source".into()))?;
        // Positive, no leading zero octet: a minimal DER INTEGER of 8 octets.
        bytes[0] = 1 + bytes[0] % 0x7f;
        Some(Int::new(&bytes)?)
    } else {
        None
    };
    let der = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: imprint.clone(),
        req_policy: options.policy,
        nonce: nonce.clone(),
        cert_req: options.cert_req,
        extensions: None,
    }
    .to_der()?;
    Ok(StampRequest { der, imprint, nonce, policy: options.policy })
}

/// A request for the `digest` of `data`.
pub fn request_for_data(digest: Digest, data: &[u8], options: &RequestOptions) -> Result<StampRequest, ClientError> {
    request(digest, &digest.digest(data), options)
}

/// Check the DER `reply` (`application/timestamp-reply`) against `request`; trust, revocation
/// and the clock come from `ctx`.
pub fn check_reply(request: &StampRequest, reply: &[u8], ctx: &VerifyContext<'_>) -> Result<Stamp, ClientError> {
    let response = TimeStampResp::from_der(reply).map_err(|e| ClientError::Malformed(e.to_string()))?;
    if !matches!(response.status.status, PkiStatus::Granted | PkiStatus::GrantedWithMods) {
        return Err(ClientError::Refused {
            status: response.status.status,
            fail: response.status.fail_info.as_ref().map(FailureInfo::from_bit_string).unwrap_or_default(),
            text: response.status.status_string.unwrap_or_default().join("; "),
        });
    }
    let token = response
        .time_stamp_token
        .ok_or_else(|| ClientError::Malformed("status granted but no token".into()))?
        .to_der()?;
    let (signed, info, gen_time) = read_token(&token).map_err(|(_, m)| ClientError::Malformed(m))?;
    let ours = &request.imprint;
    let theirs = &info.message_imprint;
    if theirs.hash_algorithm.oid != ours.hash_algorithm.oid || theirs.hashed_message != ours.hashed_message {
        return Err(ClientError::Mismatch("messageImprint differs".into()));
    }
    if request.nonce.is_some() && info.nonce != request.nonce {
        return Err(ClientError::Mismatch("nonce differs".into()));
    }
    if request.policy.is_some_and(|p| p != info.policy) {
        return Err(ClientError::Mismatch(format!("policy {} instead of the one asked for", info.policy)));
    }
    let tsa = check_authority(&signed, gen_time, ctx).map_err(|(_, m)| ClientError::Untrusted(m))?;
    Ok(Stamp {
        token,
        gen_time,
        serial: info.serial_number.as_bytes().to_vec(),
        policy: info.policy,
        tsa: tsa.subject.clone(),
        certificate: tsa.der.clone(),
    })
}
