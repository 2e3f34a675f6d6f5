//! Time stamps for documents (RFC 3161): the portal asks a time-stamping authority for a token
//! over the authority's signature value (CAdES-T, RFC 3161 appendix A) and adds it to the
//! authority's CMS as the unsigned attribute id-aa-signatureTimeStampToken. The signature then
//! proves when it existed, and stays verifiable after the authority's certificate expires.
//!
//! [`TimeStamper`] is the boundary; [`HttpTimeStamper`] speaks RFC 3161 over HTTP
//! (`application/timestamp-query` → `application/timestamp-reply`) and checks what comes back:
//! status granted, the token's signature by a trusted TSA certificate with id-kp-timeStamping
//! (optionally one of the pinned ones), our message imprint, our nonce, and a genTime near the
//! portal's clock.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use ca_core::clock::Clock;
use ca_core::cms::{has_time_stamping, Requirements, ID_CT_TST_INFO, SIGNATURE_TIME_STAMP_TOKEN};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfos};
use der::asn1::{Int, OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

use super::config::TsaConfig;
use crate::trust::PortalTrust;

/// id-sha256
const ID_SHA256: der::oid::ObjectIdentifier = der::oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
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

/// A request for the SHA-256 `digest` with `nonce`, asking for the TSA's certificate.
pub fn request(digest: &[u8; 32], nonce: &[u8; 8]) -> Result<Vec<u8>, TimestampError> {
    let bad = |e: der::Error| TimestampError::BadReply(format!("encoding the request: {e}"));
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned { oid: ID_SHA256, parameters: None },
            hashed_message: OctetString::new(digest.as_slice()).map_err(bad)?,
        },
        req_policy: None,
        nonce: Some(Int::new(nonce).map_err(bad)?),
        cert_req: true,
        extensions: None,
    };
    req.to_der().map_err(bad)
}

fn random_nonce() -> Result<[u8; 8], TimestampError> {
    let mut nonce = [0u8; 8];
    OsRng.try_fill_bytes(&mut nonce).map_err(|e| TimestampError::Unreachable(format!("random: {e}")))?;
    // A positive INTEGER in its minimal form: top bit clear, first byte not zero.
    nonce[0] = (nonce[0] & 0x7f) | 0x01;
    Ok(nonce)
}

impl TimeStamper for HttpTimeStamper {
    fn stamp(&self, message: &[u8]) -> Result<TimeStampToken, TimestampError> {
        let digest: [u8; 32] = Sha256::digest(message).into();
        let nonce = random_nonce()?;
        let query = request(&digest, &nonce)?;
        let response = match self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/timestamp-query")
            .set("Accept", "application/timestamp-reply")
            .send_bytes(&query)
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
        self.check_reply(&reply, &digest, &nonce)
    }
}

impl HttpTimeStamper {
    /// Check a reply to our request for `digest` with `nonce`; the token.
    pub fn check_reply(
        &self,
        reply: &[u8],
        digest: &[u8; 32],
        nonce: &[u8; 8],
    ) -> Result<TimeStampToken, TimestampError> {
        let bad = |m: String| TimestampError::BadReply(m);
        let resp = TimeStampResp::from_der(reply).map_err(|e| bad(format!("not a TimeStampResp: {e}")))?;
        let status = resp.status.status as u8;
        if status > 1 {
            let text = resp
                .status
                .status_string
                .as_ref()
                .map(|s| s.iter().map(|t| t.as_str().to_owned()).collect::<Vec<_>>().join("; "))
                .unwrap_or_default();
            return Err(TimestampError::Refused(format!("status {status} {text}")));
        }
        let token = resp.time_stamp_token.ok_or_else(|| bad("granted without a token".into()))?;
        let der = token.to_der().map_err(|e| bad(e.to_string()))?;
        let now = self.clock.now();
        let verified = self
            .trust
            .verify(&der, None, Requirements::default(), now)
            .map_err(|e| bad(format!("the token's signature: {e}")))?;
        let signer = &verified.signer;
        if !has_time_stamping(&signer.der) {
            return Err(bad(format!("{} is not a time-stamping authority (no id-kp-timeStamping)", signer.subject)));
        }
        if !self.pins.is_empty() && !self.pins.contains(&hex::encode(Sha256::digest(&signer.der))) {
            return Err(bad(format!("{} is not a configured time-stamping authority", signer.subject)));
        }
        let signed: SignedData = token.content.decode_as().map_err(|e| bad(e.to_string()))?;
        if signed.encap_content_info.econtent_type != ID_CT_TST_INFO {
            return Err(bad("the token's content is not a TSTInfo".into()));
        }
        let content = verified.content.ok_or_else(|| bad("the token carries no TSTInfo".into()))?;
        let info = TstInfo::from_der(&content).map_err(|e| bad(format!("unreadable TSTInfo: {e}")))?;
        let imprint = &info.message_imprint;
        if imprint.hash_algorithm.oid != ID_SHA256 || imprint.hashed_message.as_bytes() != digest {
            return Err(bad("the token is for another message (messageImprint differs)".into()));
        }
        if info.nonce.as_ref().map(|n| n.as_bytes()) != Some(nonce.as_slice()) {
            return Err(bad("the token does not echo our nonce".into()));
        }
        let gen_time = OffsetDateTime::from_unix_timestamp(info.gen_time.to_unix_duration().as_secs() as i64)
            .map_err(|e| bad(format!("genTime: {e}")))?;
        if (gen_time - now).abs() > CLOCK_SKEW {
            return Err(bad(format!("genTime {gen_time} is too far from the portal's clock ({now})")));
        }
        Ok(TimeStampToken { der, gen_time, tsa: signer.subject.clone() })
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
