//! The CA's time-stamping authority (RFC 3161, with the ESS signingCertificateV2 of RFC 5816).
//!
//! [`TimeStampAuthority::respond`] turns any bytes into a DER `TimeStampResp`: a request that
//! is not for us gets `rejection` with the failInfo RFC 3161 2.4.2 prescribes (see
//! [`request`]); one we accept gets `granted` and a token — a CMS SignedData (eContentType
//! id-ct-TSTInfo; signed attributes contentType, messageDigest, signingCertificateV2) over a
//! `TSTInfo` with version 1, the requested policy if we accept it (else our default), the
//! messageImprint echoed, a serial of 20 random octets (160 bits from the system CSPRNG, as
//! certificate serials: unique per TSA without a counter to keep or lose, RFC 3161 2.4.2 asks
//! only for uniqueness), genTime in whole seconds with the configured accuracy, ordering false,
//! the nonce echoed and the TSA's name. The TSA certificate goes into the token only when the
//! request sets certReq.
//!
//! The key is a [`Signer`](crate::signer::Signer): an encrypted file or a PKCS#11 token, like
//! the OCSP responder's (`ca tsa init|renew`). [`client`] builds requests and checks replies for
//! relying parties (the portal).

mod asn1;
mod authority;
pub mod client;
pub mod request;

pub use asn1::{FailureInfo, PkiStatus, PkiStatusInfo, TimeStampResp};
pub use authority::{rejection, Outcome, TimeStampAuthority, TsaError};

use const_oid::ObjectIdentifier;
use serde::{Deserialize, Serialize};

use crate::ca_dir::KeyLocation;

/// The default TSA policy: the time-stamping policy of this CA's practice statement (a test
/// identifier beside the CA policy 1.2.398.3.3.1.1; a production CA sets its own in ca.toml).
pub const DEFAULT_POLICY: &str = "1.2.398.3.3.1.2";

/// `[tsa]` of ca.toml.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TsaSection {
    /// Whether the server answers `/tsa` (once `ca tsa init` has made the key and certificate).
    pub enabled: bool,
    /// The policy of tokens whose request names none (dotted OID).
    pub policy: String,
    /// Further policies a request may ask for (dotted OIDs); any other is `unacceptedPolicy`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted_policies: Vec<String>,
    /// The `accuracy` written into every token, in milliseconds: how far genTime may be from
    /// the true time. genTime is whole seconds (truncated), so at least 1000.
    pub accuracy_millis: u32,
    /// Whether tokens carry the TSA's name (`tsa` [0], its certificate's subject).
    pub tsa_name: bool,
    /// Where the TSA key is when it is not `private/tsa.key.pem` (a token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyLocation>,
}

impl Default for TsaSection {
    fn default() -> Self {
        Self {
            enabled: true,
            policy: DEFAULT_POLICY.into(),
            accepted_policies: Vec::new(),
            accuracy_millis: 1000,
            tsa_name: true,
            key: None,
        }
    }
}

/// What the authority needs from `[tsa]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsaSettings {
    pub policy: ObjectIdentifier,
    pub accepted_policies: Vec<ObjectIdentifier>,
    pub accuracy_millis: u32,
    pub tsa_name: bool,
}

impl TsaSection {
    /// The settings, or what is wrong with the section.
    pub fn settings(&self) -> Result<TsaSettings, String> {
        let oid =
            |s: &str| ObjectIdentifier::new(s).map_err(|e| format!("[tsa]: {s:?} is not an object identifier: {e}"));
        if self.accuracy_millis < 1000 {
            return Err(format!(
                "[tsa] accuracy_millis = {}: genTime is whole seconds, so the accuracy is at least 1000",
                self.accuracy_millis
            ));
        }
        Ok(TsaSettings {
            policy: oid(&self.policy)?,
            accepted_policies: self.accepted_policies.iter().map(|p| oid(p)).collect::<Result<_, _>>()?,
            accuracy_millis: self.accuracy_millis,
            tsa_name: self.tsa_name,
        })
    }
}

impl TsaSettings {
    /// Whether a request may ask for `policy`.
    pub fn accepts(&self, policy: &ObjectIdentifier) -> bool {
        *policy == self.policy || self.accepted_policies.contains(policy)
    }
}

impl Default for TsaSettings {
    fn default() -> Self {
        TsaSection::default().settings().expect("the default [tsa] section is valid")
    }
}

#[cfg(test)]
mod tests;
