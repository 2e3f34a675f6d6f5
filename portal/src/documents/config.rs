//! `[documents]` in `portal.toml`: the time-stamping authority, the authorities allowed to
//! submit documents (and which types), the integrated systems allowed to receive them (and
//! which types), and the open-access policy.
//!
//! ```toml
//! [documents]
//! public_url = "https://egov.kz/documents/open"   # the QR code's URL; the token is appended
//!
//! [documents.tsa]
//! url = "https://pki.example.kz/tsa"     # RFC 3161 over HTTP
//! certificate_sha256 = ["…"]             # optional: only these TSA certificates are accepted
//!
//! [[documents.authorities]]
//! bin = "000140000005"                   # the BIN in the signer's certificate
//! name = "Министерство внутренних дел"
//! types = ["identity-card", "driving-licence"]
//! # role = "signing-right"                # optional: the role the signer must hold
//! # certificate_sha256 = "…"              # optional: pin one signing certificate
//!
//! [[documents.systems]]                  # integrated systems admitted by the authorised body
//! id = "bank-7"
//! name = "АО Банк"
//! bin = "000240000007"
//! types = ["identity-card"]
//!
//! [documents.access]
//! minutes = 5                            # QR token and short code lifetime
//! code_tries_per_viewer = 5              # wrong short codes per third party …
//! viewer_window_minutes = 15             # … within this window
//! code_failures_global = 100             # wrong short codes by everyone …
//! global_window_seconds = 60             # … within this window
//! code_lock_after = 10                   # wrong codes during a code's life that lock it
//! ```

use std::str::FromStr;

use ca_core::cms::CertificateReport;
use ca_core::identity::Bin;
use ca_core::profile::Role;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentsConfig {
    /// Where a QR code sends the third party: the token is appended (`…?token=…`).
    #[serde(default = "default_public_url")]
    pub public_url: String,
    pub tsa: Option<TsaConfig>,
    #[serde(default)]
    pub authorities: Vec<AuthorityRule>,
    #[serde(default)]
    pub systems: Vec<SystemRule>,
    #[serde(default)]
    pub access: AccessPolicy,
}

fn default_public_url() -> String {
    "https://egov.kz/documents/open".into()
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        Self {
            public_url: default_public_url(),
            tsa: None,
            authorities: Vec::new(),
            systems: Vec::new(),
            access: AccessPolicy::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaConfig {
    pub url: String,
    /// When not empty, the token's signer must be one of these certificates.
    #[serde(default)]
    pub certificate_sha256: Vec<String>,
    #[serde(default = "default_tsa_timeout")]
    pub timeout_seconds: u32,
}

fn default_tsa_timeout() -> u32 {
    10
}

/// Who may sign as a party: a BIN in the signer's certificate (with an optional role), and
/// optionally one pinned certificate.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityRule {
    pub bin: String,
    pub name: String,
    /// Document types this authority may issue.
    pub types: Vec<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub certificate_sha256: Option<String>,
}

/// An integrated system admitted to receive documents (document 003 point 4).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemRule {
    pub id: String,
    pub name: String,
    pub bin: String,
    /// Document types this system may receive.
    pub types: Vec<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub certificate_sha256: Option<String>,
}

/// Open access: lifetimes and the limits on short-code guessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessPolicy {
    pub minutes: u32,
    pub code_tries_per_viewer: u32,
    pub viewer_window_minutes: u32,
    pub code_failures_global: u32,
    pub global_window_seconds: u32,
    pub code_lock_after: u32,
    /// How far a signed system request's time may lie from the portal's clock.
    pub request_window_seconds: u32,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        Self {
            minutes: 5,
            code_tries_per_viewer: 5,
            viewer_window_minutes: 15,
            code_failures_global: 100,
            global_window_seconds: 60,
            code_lock_after: 10,
            request_window_seconds: 600,
        }
    }
}

impl AccessPolicy {
    pub fn lifetime(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.minutes))
    }
    pub fn limits(&self) -> crate::store::documents::CodeLimits {
        crate::store::documents::CodeLimits {
            per_viewer: self.code_tries_per_viewer,
            viewer_window: time::Duration::minutes(i64::from(self.viewer_window_minutes)),
            global: self.code_failures_global,
            global_window: time::Duration::seconds(i64::from(self.global_window_seconds)),
            lock_after: self.code_lock_after,
        }
    }
    pub fn request_window(&self) -> time::Duration {
        time::Duration::seconds(i64::from(self.request_window_seconds))
    }
}

fn check_party(
    what: &str,
    bin: &str,
    role: &Option<String>,
    sha: &Option<String>,
    types: &[String],
) -> Result<(), String> {
    Bin::from_str(bin).map_err(|e| format!("{what} bin {bin:?}: {e}"))?;
    if let Some(role) = role {
        Role::from_str(role).map_err(|e| format!("{what} role: {e}"))?;
    }
    if let Some(sha) = sha {
        if !(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(format!("{what} certificate_sha256 {sha:?} is not 64 hex digits"));
        }
    }
    if types.is_empty() || types.iter().any(|t| t.trim().is_empty() || t.len() > 64) {
        return Err(format!("{what} needs types: non-empty names of at most 64 characters"));
    }
    Ok(())
}

/// Whether `signer` is the party a rule names: its certificate carries the BIN (and the role),
/// and is the pinned certificate when one is pinned.
pub fn signer_matches(bin: &str, role: &Option<String>, sha: &Option<String>, signer: &CertificateReport) -> bool {
    let id = &signer.identity;
    id.bin.is_some_and(|b| b.to_string() == bin)
        && role.as_deref().is_none_or(|r| Role::from_str(r).is_ok_and(|r| id.roles.contains(&r)))
        && sha.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(&hex::encode(Sha256::digest(&signer.der))))
}

impl DocumentsConfig {
    pub fn validate(&self) -> Result<(), String> {
        for a in &self.authorities {
            check_party("[[documents.authorities]]", &a.bin, &a.role, &a.certificate_sha256, &a.types)?;
        }
        let mut ids = std::collections::BTreeSet::new();
        for s in &self.systems {
            check_party("[[documents.systems]]", &s.bin, &s.role, &s.certificate_sha256, &s.types)?;
            if s.id.trim().is_empty() || !ids.insert(s.id.as_str()) {
                return Err(format!("[[documents.systems]] id {:?} is empty or repeated", s.id));
            }
        }
        if let Some(tsa) = &self.tsa {
            if !(tsa.url.starts_with("http://") || tsa.url.starts_with("https://")) {
                return Err(format!("[documents.tsa] url {:?} is not an http(s) URL", tsa.url));
            }
            if tsa.certificate_sha256.iter().any(|s| !(s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))) {
                return Err("[documents.tsa] certificate_sha256 entries are 64 hex digits".into());
            }
        }
        let a = &self.access;
        if a.minutes == 0 || a.minutes > 60 {
            return Err("[documents.access] minutes must be 1..=60".into());
        }
        if a.code_tries_per_viewer == 0
            || a.viewer_window_minutes == 0
            || a.code_failures_global == 0
            || a.global_window_seconds == 0
            || a.code_lock_after == 0
            || a.request_window_seconds == 0
        {
            return Err("[documents.access] limits and windows must be positive".into());
        }
        Ok(())
    }
}
