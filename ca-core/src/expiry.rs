//! The CA's own certificates — root, issuing CA, OCSP responder, TSA, system signing — and how long
//! each has left, for `ca status` and the server's `ca_certificate_expiry_seconds` gauges.

use std::path::{Path, PathBuf};

use der::Decode;
use time::OffsetDateTime;
use x509_cert::Certificate;

use crate::ca_dir::{CaConfig, CaDir, ExpirySection};

/// What a certificate of the CA itself is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Root,
    Issuing,
    Ocsp,
    System,
    Tsa,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Issuing => "issuing",
            Role::Ocsp => "ocsp",
            Role::System => "system",
            Role::Tsa => "tsa",
        }
    }

    /// Days before the end from which it is warned about.
    pub fn warn_days(self, expiry: &ExpirySection) -> u32 {
        match self {
            Role::Root | Role::Issuing => expiry.ca_warn_days,
            Role::Ocsp | Role::System | Role::Tsa => expiry.service_warn_days,
        }
    }
}

/// One certificate of the CA itself.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OwnCertificate {
    pub role: Role,
    /// The CA's name in ca.toml, or `ocsp` / `system` / `tsa`.
    pub name: String,
    pub path: PathBuf,
    /// Hex.
    pub serial: String,
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER, hex.
    pub sha256: String,
}

impl OwnCertificate {
    /// Seconds until notAfter (negative once expired).
    pub fn seconds_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_seconds()
    }

    /// Whole days until notAfter (negative once expired).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }

    /// A warning when it has expired or fewer than the configured days are left.
    pub fn warning(&self, now: OffsetDateTime, expiry: &ExpirySection) -> Option<String> {
        let days = self.days_left(now);
        let what = match self.role {
            Role::Root => "the root CA certificate",
            Role::Issuing => "the issuing CA certificate",
            Role::Ocsp => "the OCSP responder certificate",
            Role::System => "the system signing certificate",
            Role::Tsa => "the time-stamping authority certificate",
        };
        let remedy = match self.role {
            Role::Root | Role::Issuing => "plan a CA rollover",
            Role::Ocsp => "run `ca ocsp renew`",
            Role::System => "run `ca system renew`",
            Role::Tsa => "run `ca tsa renew`",
        };
        if self.not_after <= now {
            Some(format!("{what} ({}) has expired: {remedy}", self.name))
        } else if days < i64::from(self.role.warn_days(expiry)) {
            Some(format!("{what} ({}) expires in {days} days: {remedy}", self.name))
        } else {
            None
        }
    }

    /// Read one PEM certificate file.
    pub fn read(role: Role, name: &str, path: &Path) -> Result<Self, ExpiryError> {
        let err = |message: String| ExpiryError { path: path.to_owned(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let (label, der) = der::pem::decode_vec(text.as_bytes()).map_err(|e| err(format!("not PEM: {e}")))?;
        if label != "CERTIFICATE" {
            return Err(err(format!("PEM label {label:?}, expected CERTIFICATE")));
        }
        Self::from_der(role, name, path, &der).map_err(err)
    }

    fn from_der(role: Role, name: &str, path: &Path, der: &[u8]) -> Result<Self, String> {
        let cert = Certificate::from_der(der).map_err(|e| e.to_string())?;
        let tbs = &cert.tbs_certificate;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        let serial = hex::encode(tbs.serial_number.as_bytes());
        Ok(Self {
            role,
            name: name.to_owned(),
            path: path.to_owned(),
            serial,
            subject: tbs.subject.to_string(),
            not_before: to_offset(&tbs.validity.not_before),
            not_after: to_offset(&tbs.validity.not_after),
            sha256: hex::encode(digest.as_ref()),
        })
    }
}

fn to_offset(t: &x509_cert::time::Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A certificate file of the CA cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ExpiryError {
    pub path: PathBuf,
    pub message: String,
}

/// The root and issuing CA certificates, and the OCSP responder's and system certificates when
/// they have been made.
pub fn own_certificates(dir: &CaDir, config: &CaConfig) -> Result<Vec<OwnCertificate>, ExpiryError> {
    let mut out = vec![
        OwnCertificate::read(Role::Root, &config.root.name, &dir.certificate_pem(&config.root.name))?,
        OwnCertificate::read(Role::Issuing, &config.issuing.name, &dir.certificate_pem(&config.issuing.name))?,
    ];
    for (role, name, path) in [
        (Role::Ocsp, "ocsp", dir.ocsp_certificate()),
        (Role::System, "system", dir.system_certificate()),
        (Role::Tsa, "tsa", dir.tsa_certificate()),
    ] {
        if path.exists() {
            out.push(OwnCertificate::read(role, name, &path)?);
        }
    }
    Ok(out)
}
