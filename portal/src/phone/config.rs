//! `[phone]` of `portal.toml`: the send limits of binding codes, the SMS transport, and the
//! partner systems allowed to bind numbers (document 001's mobile application and banks).
//!
//! ```toml
//! [phone]
//! resend_seconds = 60                 # at least this long between two codes (per IIN and per number)
//! codes_per_hour = 5                  # codes in any hour, per IIN and per number
//! max_attempts = 5                    # tries per code; then the session is spent
//! sender = "eGov"                     # the SMS sender name
//! send_from_serve = true              # false when a separate `portal-server sms-sender` runs
//!
//! [phone.sms]                         # exactly one transport
//! spool = "sms"                       # one JSON file per message (development)
//! # http = { url = "https://sms.example.kz/send", token_env = "SMS_GATEWAY_TOKEN" }
//! # smpp = { address = "smsc.example.kz:2775", system_id = "egov", password_env = "SMPP_PASSWORD" }
//!
//! [[phone.partners]]                  # systems that may bind numbers for people they authenticated
//! name = "egov-mobile"
//! channel = "mobile-app"              # or "bank-app"
//! bin = "000140000000"                # the system certificate's BIN, or:
//! # certificate_sha256 = "…"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::store::phone::{Channel, SendLimits};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhoneConfig {
    pub resend_seconds: u32,
    pub codes_per_hour: u32,
    pub max_attempts: u32,
    pub sender: String,
    /// Whether `portal-server serve` delivers the SMS outbox itself (false when a separate
    /// `portal-server sms-sender` does).
    pub send_from_serve: bool,
    pub sms: Option<SmsConfig>,
    pub partners: Vec<PartnerRule>,
}

impl Default for PhoneConfig {
    fn default() -> Self {
        Self {
            resend_seconds: 60,
            codes_per_hour: 5,
            max_attempts: 5,
            sender: "eGov".into(),
            send_from_serve: true,
            sms: None,
            partners: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub spool: Option<PathBuf>,
    pub http: Option<HttpGatewayConfig>,
    pub smpp: Option<SmppConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGatewayConfig {
    pub url: String,
    /// The variable holding the bearer token.
    pub token_env: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppConfig {
    /// host:port of the SMSC.
    pub address: String,
    pub system_id: String,
    /// The variable holding the SMPP password.
    pub password_env: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
}

fn default_timeout() -> u32 {
    10
}

/// A partner system: by its certificate's BIN, or one certificate by its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerRule {
    pub name: String,
    pub channel: Channel,
    pub bin: Option<String>,
    pub certificate_sha256: Option<String>,
}

impl PhoneConfig {
    pub fn limits(&self) -> SendLimits {
        SendLimits {
            resend_after: time::Duration::seconds(i64::from(self.resend_seconds)),
            per_hour: self.codes_per_hour,
        }
    }

    pub(crate) fn resolve(&mut self, base: &Path) {
        if let Some(spool) = self.sms.as_mut().and_then(|s| s.spool.as_mut()) {
            if spool.is_relative() {
                *spool = base.join(&*spool);
            }
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.codes_per_hour == 0 || self.max_attempts == 0 || self.max_attempts > 10 {
            return Err("[phone] codes_per_hour must be positive and max_attempts 1..=10".into());
        }
        if self.sender.is_empty() || self.sender.len() > 11 || !self.sender.is_ascii() {
            return Err("[phone] sender is 1..=11 ASCII characters (an alphanumeric sender)".into());
        }
        if let Some(sms) = &self.sms {
            let n =
                usize::from(sms.spool.is_some()) + usize::from(sms.http.is_some()) + usize::from(sms.smpp.is_some());
            if n != 1 {
                return Err("[phone.sms] needs exactly one of spool, http, smpp".into());
            }
        }
        for p in &self.partners {
            if !matches!(p.channel, Channel::MobileApp | Channel::BankApp) {
                return Err(format!("[[phone.partners]] {}: channel is mobile-app or bank-app", p.name));
            }
            match (&p.bin, &p.certificate_sha256) {
                (Some(bin), None) => {
                    bin.parse::<ca_core::identity::Bin>()
                        .map_err(|e| format!("[[phone.partners]] {}: bin: {e}", p.name))?;
                }
                (None, Some(sha)) if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) => {}
                _ => {
                    return Err(format!(
                        "[[phone.partners]] {}: needs either bin or certificate_sha256 (64 hex digits)",
                        p.name
                    ))
                }
            }
        }
        Ok(())
    }
}
