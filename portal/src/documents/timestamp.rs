//! Time stamps for documents (RFC 3161): the portal asks a time-stamping authority for a token
//! over the authority's signature value (CAdES-T, RFC 3161 appendix A) and adds it to the
//! authority's CMS as the unsigned attribute id-aa-signatureTimeStampToken. The signature then
//! proves when it existed, and stays verifiable after the authority's certificate expires.
//!
//! [`TimeStamper`] is the boundary; [`HttpTimeStamper`] speaks RFC 3161 over HTTP
//! (`application/timestamp-query` → `application/timestamp-reply`) through
//! [`ca_core::tsa::client`], the product's one relying-party side of RFC 3161: the request (our
//! imprint, a random nonce, certReq) and the check of the reply — status granted, our imprint,
//! our nonce, one signer that is a time-stamping authority (id-kp-timeStamping) chaining to the
//! portal's trust anchors, valid and unrevoked at genTime by the portal's revocation sources.
//! On top of it the portal checks its own policy: optionally one of the pinned TSA
//! certificates, and a genTime near the portal's clock. The TSA certificate comes back with the
//! token.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use ca_core::clock::Clock;
use ca_core::cms::Digest as CmsDigest;
use ca_core::tsa::client::{self, ClientError, RequestOptions, StampRequest};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfos};
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_cert::attr::Attribute;

use super::config::TsaConfig;
use crate::trust::PortalTrust;
use ca_core::cms::SIGNATURE_TIME_STAMP_TOKEN;

/// id-signedData
const ID_SIGNED_DATA: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// Largest reply read.
const MAX_REPLY: u64 = 256 * 1024;
/// How far genTime may lie from the portal's clock.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// A time-stamp token and the time it vouches for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeStampToken {
    /// The token (a ContentInfo, DER).
    pub der: Vec<u8>,
    pub gen_time: OffsetDateTime,
    /// The TSA certificate's subject.
    pub tsa: String,
    /// The TSA certificate (DER) the token was verified with.
    pub certificate: Vec<u8>,
}

/// Getting a time stamp failed; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum TimestampError {
    #[error("the time-stamping authority cannot be reached: {0}")]
    Unreachable(String),
    #[error("the time-stamping authority refused: {0}")]
    Refused(String),
    #[error("the time-stamping authority's answer is not acceptable: {0}")]
    BadReply(String),
}

/// Gets RFC 3161 time stamps.
pub trait TimeStamper: Send + Sync {
    /// A token over the SHA-256 of `message`.
    fn stamp(&self, message: &[u8]) -> Result<TimeStampToken, TimestampError>;
}

/// RFC 3161 over HTTP.
pub struct HttpTimeStamper {
    url: String,
    pins: Vec<String>,
    trust: Arc<PortalTrust>,
    clock: Arc<dyn Clock>,
    agent: ureq::Agent,
}

impl HttpTimeStamper {
    pub fn new(config: &TsaConfig, trust: Arc<PortalTrust>, clock: Arc<dyn Clock>) -> Self {
        let agent =
            ureq::AgentBuilder::new().timeout(Duration::from_secs(u64::from(config.timeout_seconds.max(1)))).build();
        let pins = config.certificate_sha256.iter().map(|s| s.to_ascii_lowercase()).collect();
        Self { url: config.url.clone(), pins, trust, clock, agent }
    }
}

/// The request for the SHA-256 of `message`: a random nonce, the TSA's certificate asked for.
pub fn request(message: &[u8]) -> Result<StampRequest, TimestampError> {
    client::request_for_data(CmsDigest::Sha256, message, &RequestOptions::default())
        .map_err(|e| TimestampError::Unreachable(format!("making the request: {e}")))
}

impl TimeStamper for HttpTimeStamper {
    fn stamp(&self, message: &[u8]) -> Result<TimeStampToken, TimestampError> {
        let request = request(message)?;
        let response = match self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/timestamp-query")
            .set("Accept", "application/timestamp-reply")
            .send_bytes(request.der())
        {
            Ok(r) => r,
            Err(ureq::Error::Status(status, _)) => return Err(TimestampError::Refused(format!("HTTP {status}"))),
            Err(e) => return Err(TimestampError::Unreachable(e.to_string())),
        };
        if response.content_type() != "application/timestamp-reply" {
            return Err(TimestampError::BadReply(format!("content type {:?}", response.content_type())));
        }
        let mut reply = Vec::new();
        response
            .into_reader()
            .take(MAX_REPLY)
            .read_to_end(&mut reply)
            .map_err(|e| TimestampError::Unreachable(e.to_string()))?;
        self.check_reply(&request, &reply)
    }
}

impl HttpTimeStamper {
    /// Check a reply to `request` ([`ca_core::tsa::client::check_reply`] with the portal's
    /// trust and revocation sources), then the portal's pins and clock; the token.
    pub fn check_reply(&self, request: &StampRequest, reply: &[u8]) -> Result<TimeStampToken, TimestampError> {
        let bad = TimestampError::BadReply;
        let now = self.clock.now();
        let stamp =
            self.trust.with_context(now, |ctx| client::check_reply(request, reply, ctx)).map_err(|e| match e {
                ClientError::Refused { .. } => TimestampError::Refused(e.to_string()),
                other => bad(other.to_string()),
            })?;
        if !self.pins.is_empty() && !self.pins.contains(&hex::encode(Sha256::digest(&stamp.certificate))) {
            return Err(bad(format!("{} is not a configured time-stamping authority", stamp.tsa)));
        }
        if (stamp.gen_time - now).abs() > CLOCK_SKEW {
            return Err(bad(format!("genTime {} is too far from the portal's clock ({now})", stamp.gen_time)));
        }
        Ok(TimeStampToken {
            der: stamp.token,
            gen_time: stamp.gen_time,
            tsa: stamp.tsa,
            certificate: stamp.certificate,
        })
    }
}

/// The signature value of a CMS's only signer (what a CAdES-T time stamp covers).
pub fn signature_value(cms_der: &[u8]) -> Result<Vec<u8>, String> {
    let values = ca_core::cms::signature_values(cms_der).map_err(|e| format!("not a CMS SignedData: {e}"))?;
    match <[Vec<u8>; 1]>::try_from(values) {
        Ok([value]) => Ok(value),
        Err(_) => Err("the document must have exactly one signer".into()),
    }
}

/// The CMS with `token` added to its only signer as id-aa-signatureTimeStampToken (unsigned:
/// the authority's signature is untouched and still verifies as it did).
pub fn with_timestamp(cms_der: &[u8], token: &[u8]) -> Result<Vec<u8>, String> {
    let info = ContentInfo::from_der(cms_der).map_err(|e| format!("not a CMS: {e}"))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err("not a SignedData".into());
    }
    let mut sd: SignedData = info.content.decode_as().map_err(|e| format!("not a SignedData: {e}"))?;
    let mut signer = match sd.signer_infos.0.as_slice() {
        [one] => one.clone(),
        _ => return Err("the document must have exactly one signer".into()),
    };
    let attribute = Attribute {
        oid: SIGNATURE_TIME_STAMP_TOKEN,
        values: SetOfVec::try_from(vec![Any::from_der(token).map_err(|e| e.to_string())?])
            .map_err(|e| e.to_string())?,
    };
    let mut attrs: Vec<Attribute> = signer
        .unsigned_attrs
        .take()
        .map(|a| a.into_vec())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.oid != SIGNATURE_TIME_STAMP_TOKEN)
        .collect();
    attrs.push(attribute);
    signer.unsigned_attrs = Some(SetOfVec::try_from(attrs).map_err(|e| e.to_string())?);
    sd.signer_infos = SignerInfos(SetOfVec::try_from(vec![signer]).map_err(|e| e.to_string())?);
    ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&sd).map_err(|e| e.to_string())? }
        .to_der()
        .map_err(|e| e.to_string())
}
