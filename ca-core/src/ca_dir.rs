//! A CA directory and its `ca.toml`: everything the certificates point at (CRL, OCSP, CA
//! certificate and CPS URLs), names, key types, validity periods and CRL publication settings,
//! and where each file lives. Shared by the `ca` command and `ca-server`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::PublicationUrls;
use crate::store::StoreSection;

/// The configuration cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no CA at {0} (run `ca init` first, or pass --dir)")]
    NoCa(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid CA configuration: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
}

pub const CONFIG_FILE: &str = "ca.toml";
pub const STORE_FILE: &str = "ca.db";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    pub urls: PublicationUrls,
    pub root: CaSection,
    pub issuing: CaSection,
    pub end_entity: EndEntitySection,
    #[serde(default)]
    pub crl: CrlSection,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub expiry: ExpirySection,
    #[serde(default)]
    pub audit: AuditSection,
    /// The time-stamping authority (`ca tsa init`, `POST /tsa`).
    #[serde(default)]
    pub tsa: crate::tsa::TsaSection,
    /// Where the store is: the embedded `ca.db` unless `[store] url` names a PostgreSQL database.
    #[serde(default, skip_serializing_if = "StoreSection::is_embedded")]
    pub store: StoreSection,
    /// The RA's automatic worker (`ca worker`): its rounds and CRL schedule.
    #[serde(default)]
    pub worker: crate::ra::worker::WorkerSettings,
    /// The regulation's budgets and working-day calendar (document 004 is a repealed edition).
    #[serde(default)]
    pub regulation: crate::ra::regulation::Regulation,
    /// Earlier generations of the issuing CA (`ca rollover issuing`), oldest first: they sign
    /// nothing new, but their CRLs and OCSP answers are published until `until`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredCa>,
    /// Earlier roots (`ca rollover root`), oldest first: they sign nothing new but their CRL
    /// (`ca crl publish --root`), until the CA certificates they issued expire.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_roots: Vec<RetiredCa>,
}

/// An issuing CA replaced by a newer generation: kept for the CRLs and OCSP answers of the
/// certificates it issued until the last of them expires.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetiredCa {
    /// Its name (certificate, key and CRL files; `issuer` in the store).
    pub name: String,
    pub common_name: String,
    pub key_algorithm: String,
    /// Where its key is; absent means the encrypted file `private/<name>.key.pem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyLocation>,
    /// Where its OCSP responder's key is when it is not `private/ocsp-<name>.key.pem` (a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_key: Option<KeyLocation>,
    /// The latest notAfter of the certificates it issued, when it was retired: its CRLs are
    /// published until then.
    #[serde(with = "time::serde::rfc3339")]
    pub until: time::OffsetDateTime,
}

impl RetiredCa {
    /// Whether its certificates may still be valid at `now` (its CRLs are still published).
    pub fn serving(&self, now: time::OffsetDateTime) -> bool {
        now <= self.until
    }
}

/// When `ca status` and `/metrics` warn that a certificate of the CA itself nears its end.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExpirySection {
    /// Warn this many days before a CA certificate (root, issuing) expires. Longer than the
    /// end-entity validity: an issuing CA must be rolled over before the certificates it
    /// issues would outlive it.
    pub ca_warn_days: u32,
    /// Warn this many days before the OCSP responder's or the system certificate expires.
    pub service_warn_days: u32,
}

impl Default for ExpirySection {
    fn default() -> Self {
        Self { ca_warn_days: 400, service_warn_days: 21 }
    }
}

/// Signed checkpoints of the audit journal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// `ca serve` / `ca-server` sign a checkpoint of the journal's head this often, when the
    /// audit key is available to them and the head moved (0: never; `ca audit checkpoint` from a
    /// timer instead).
    pub checkpoint_minutes: u32,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self { checkpoint_minutes: 60 }
    }
}

impl AuditSection {
    /// The interval of the server's checkpoints, `None` when off.
    pub fn checkpoint_interval(&self) -> Option<std::time::Duration> {
        (self.checkpoint_minutes > 0).then(|| std::time::Duration::from_secs(u64::from(self.checkpoint_minutes) * 60))
    }
}

/// The HTTP server's limits on anonymous, state-creating requests (login challenges).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Reverse proxies whose `X-Forwarded-For` names the client (IP addresses).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Login challenges per second one client (IP address) may ask for, sustained.
    pub challenges_per_second: f64,
    /// ... and at once.
    pub challenge_burst: u32,
    /// Login challenges per second for all clients together, sustained.
    pub challenges_per_second_total: f64,
    /// ... and at once.
    pub challenge_burst_total: u32,
    /// Where the system signing key lives when it is not `system/system.key` (a token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_key: Option<KeyLocation>,
    /// Where the OCSP responder's key lives when it is not `private/ocsp.key.pem` (a token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsp_key: Option<KeyLocation>,
    /// Where the audit key (`ca init`, `ca audit init-key`) lives when it is not
    /// `private/audit.key.pem` (a token). `ca audit checkpoint` opens it, and the server when it
    /// signs checkpoints at an interval (`[audit] checkpoint_minutes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_key: Option<KeyLocation>,
    /// The certification practice statement served at `/cps` (the CPS URL in every
    /// certificate): an HTML (`.html`, `.htm`) or plain-text file, relative to the CA
    /// directory. Without it `/cps` serves a notice that names the CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cps_file: Option<PathBuf>,
    /// How often (seconds) the server looks for a renewed OCSP or system certificate and key
    /// and switches to them; 0: only on SIGHUP.
    pub reload_seconds: u64,
    /// The public base URL of this server as applicants reach it (`https://…`, no trailing
    /// path): the issuance notice links to `<base>/install/<application>?t=<token>`, the
    /// registration notice to the applicant's status look-up. Unset: notices carry no link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_base_url: Option<String>,
    /// How long an install link stays valid, in hours.
    pub install_link_hours: u32,
}

impl ServerSection {
    /// The base URL of the notices' links ("" when none is configured).
    pub fn link_base(&self) -> &str {
        self.public_base_url.as_deref().unwrap_or("").trim_end_matches('/')
    }

    /// How long an install link stays valid.
    pub fn install_ttl(&self) -> time::Duration {
        time::Duration::hours(self.install_link_hours.into())
    }

    /// Whether the server needs a token PIN to start.
    pub fn keys_on_tokens(&self) -> bool {
        [&self.system_key, &self.ocsp_key].iter().any(|k| matches!(k, Some(KeyLocation::Pkcs11 { .. })))
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            challenges_per_second: 2.0,
            challenge_burst: 20,
            challenges_per_second_total: 500.0,
            challenge_burst_total: 2000,
            system_key: None,
            ocsp_key: None,
            audit_key: None,
            cps_file: None,
            reload_seconds: 60,
            public_base_url: None,
            install_link_hours: 72,
        }
    }
}

/// CRL publication of the issuing CA.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrlSection {
    /// Validity of a full CRL (nextUpdate - thisUpdate), hours.
    pub full_hours: u32,
    /// Validity of a delta CRL, hours.
    pub delta_hours: u32,
    /// Shard the CRL into this many partitions (0 or 1: one CRL). Fixed for each certificate
    /// at issuance; certificates issued before partitioning stay on the unpartitioned CRL.
    pub partitions: u32,
    /// Validity of the root CA's CRL (`ca crl publish --root`), hours. The root key may be
    /// kept offline, so this is long: publish again before it runs out.
    #[serde(default = "default_root_hours")]
    pub root_hours: u32,
}

/// 90 days.
fn default_root_hours() -> u32 {
    90 * 24
}

impl Default for CrlSection {
    fn default() -> Self {
        Self { full_hours: 24, delta_hours: 1, partitions: 0, root_hours: default_root_hours() }
    }
}

impl CrlSection {
    pub fn partitions(&self) -> Option<u32> {
        (self.partitions > 1).then_some(self.partitions)
    }

    /// A CRL valid for no time is already stale when published, and a delta that outlives its
    /// full CRL makes relying parties combine a delta with an expired base.
    pub fn validate(&self) -> Result<(), String> {
        if self.full_hours == 0 {
            return Err("[crl] full_hours = 0: a full CRL must be valid for at least one hour".into());
        }
        if self.delta_hours == 0 {
            return Err("[crl] delta_hours = 0: a delta CRL must be valid for at least one hour".into());
        }
        if self.delta_hours > self.full_hours {
            return Err(format!(
                "[crl] delta_hours = {} is longer than full_hours = {}: a delta CRL must not outlive its full CRL",
                self.delta_hours, self.full_hours
            ));
        }
        Ok(())
    }
}

/// One CA of the hierarchy.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// Name in this deployment; names the certificate, key and CRL files.
    pub name: String,
    pub common_name: String,
    pub organisation: Option<String>,
    pub key_algorithm: String,
    pub validity_days: u32,
    /// The policies this CA's certificate asserts for the certificates under it:
    /// `end-entity` (default: the four end-entity policies) or `any-policy`.
    #[serde(default)]
    pub policies: crate::profile::CaPolicies,
    /// Where the CA's private key is; absent means the encrypted file `private/<name>.key.pem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyLocation>,
}

/// Where a key of the CA (a CA key, the system signing key) lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyLocation {
    /// Encrypted PKCS#8 under `private/`.
    File,
    /// A key on a PKCS#11 token (HSM or card), found by CKA_ID (the SKI, hex).
    Pkcs11 { module: PathBuf, token: String, id: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndEntitySection {
    pub validity_days: u32,
    /// Key algorithm for server-side key generation ("on the applicant's computer").
    pub key_algorithm: String,
}

/// Paths inside a CA directory.
#[derive(Clone, Debug)]
pub struct CaDir {
    pub root: PathBuf,
}

impl CaDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }
    pub fn store(&self) -> PathBuf {
        self.root.join(STORE_FILE)
    }
    pub fn certs(&self) -> PathBuf {
        self.root.join("certs")
    }
    pub fn private(&self) -> PathBuf {
        self.root.join("private")
    }
    pub fn issued(&self) -> PathBuf {
        self.root.join("issued")
    }
    pub fn certificate_pem(&self, ca: &str) -> PathBuf {
        self.certs().join(format!("{ca}.pem"))
    }
    /// DER copy, published for AIA caIssuers.
    pub fn certificate_der(&self, ca: &str) -> PathBuf {
        self.certs().join(format!("{ca}.cer"))
    }
    /// The cross certificate of root `ca` (its key certified by the root before it), PEM; the
    /// DER copy is `<ca>-cross.cer`, published at `/ca/`.
    pub fn cross_certificate_pem(&self, ca: &str) -> PathBuf {
        self.certificate_pem(&format!("{ca}-cross"))
    }
    pub fn key(&self, ca: &str) -> PathBuf {
        self.private().join(format!("{ca}.key.pem"))
    }

    /// Where published CRLs are written (served under `/crl/`).
    pub fn publish_crl(&self) -> PathBuf {
        self.root.join("publish").join("crl")
    }
    /// The OCSP responder's certificate (PEM).
    pub fn ocsp_certificate(&self) -> PathBuf {
        self.certs().join("ocsp.pem")
    }
    /// The certificate of the OCSP responder of a retired issuing CA `ca` (PEM).
    pub fn retired_ocsp_certificate(&self, ca: &str) -> PathBuf {
        self.certs().join(format!("ocsp-{ca}.pem"))
    }
    /// The encrypted key of the OCSP responder of a retired issuing CA `ca`.
    pub fn retired_ocsp_key(&self, ca: &str) -> PathBuf {
        self.private().join(format!("ocsp-{ca}.key.pem"))
    }
    /// The service's own signing identity (`/api/v1/cms/sign`) and its callers' token hashes.
    pub fn system(&self) -> PathBuf {
        self.root.join("system")
    }
    /// The system signing key, encrypted under the CA passphrase.
    pub fn system_key(&self) -> PathBuf {
        self.system().join("system.key")
    }
    /// The system signing certificate (PEM).
    pub fn system_certificate(&self) -> PathBuf {
        self.system().join("system.pem")
    }
    /// The OCSP responder's encrypted key.
    pub fn ocsp_key(&self) -> PathBuf {
        self.private().join("ocsp.key.pem")
    }
    /// The time-stamping authority's certificate (PEM).
    pub fn tsa_certificate(&self) -> PathBuf {
        self.certs().join("tsa.pem")
    }
    /// The time-stamping authority's encrypted key.
    pub fn tsa_key(&self) -> PathBuf {
        self.private().join("tsa.key.pem")
    }
    /// The audit key (signs journal checkpoints), encrypted under the CA passphrase.
    pub fn audit_key(&self) -> PathBuf {
        self.private().join("audit.key.pem")
    }
    /// The audit key's public key (SPKI, PEM): checkpoints are verified with it.
    pub fn audit_public_key(&self) -> PathBuf {
        self.certs().join("audit.pub.pem")
    }
    /// The latest signed checkpoint of the audit journal, published beside the CRLs.
    pub fn audit_checkpoint(&self) -> PathBuf {
        self.publish_crl().join("audit-checkpoint.json")
    }
    /// The bearer tokens allowed to call `/api/v1/cms/sign` (SHA-256 of each; see
    /// [`crate::api_tokens`]).
    pub fn api_tokens(&self) -> PathBuf {
        self.system().join("api-tokens")
    }

    pub fn load_config(&self) -> Result<CaConfig, ConfigError> {
        let path = self.config();
        if !path.exists() {
            return Err(ConfigError::NoCa(self.root.clone()));
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        let config: CaConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Invalid { path: path.clone(), message: e.to_string() })?;
        config.urls.validate().map_err(|message| ConfigError::Invalid { path: path.clone(), message })?;
        config.crl.validate().map_err(|message| ConfigError::Invalid { path: path.clone(), message })?;
        config.worker.validate().map_err(|message| ConfigError::Invalid { path: path.clone(), message })?;
        config.tsa.settings().map_err(|message| ConfigError::Invalid { path: path.clone(), message })?;
        config.regulation.timing().map_err(|message| ConfigError::Invalid { path, message })?;
        Ok(config)
    }
}

impl CaConfig {
    pub fn defaults(base_url: &str, root_key: &str, issuing_key: &str) -> Self {
        Self {
            urls: PublicationUrls::under(base_url),
            root: CaSection {
                name: "root".into(),
                common_name: "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚТЫҢ ТҮБІРЛІК КУӘЛІГІ (TEST)".into(),
                organisation: None,
                key_algorithm: root_key.into(),
                validity_days: 20 * 365 + 5,
                policies: Default::default(),
                key: None,
            },
            issuing: CaSection {
                name: "nca".into(),
                common_name: "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST)".into(),
                organisation: None,
                key_algorithm: issuing_key.into(),
                validity_days: 10 * 365 + 2,
                policies: Default::default(),
                key: None,
            },
            end_entity: EndEntitySection { validity_days: 365, key_algorithm: "rsa2048".into() },
            crl: CrlSection::default(),
            server: ServerSection::default(),
            expiry: ExpirySection::default(),
            audit: AuditSection::default(),
            tsa: Default::default(),
            store: StoreSection::default(),
            worker: Default::default(),
            regulation: Default::default(),
            retired: Vec::new(),
            retired_roots: Vec::new(),
        }
    }

    /// The issuing CA generations, current first, then the retired ones newest first.
    pub fn issuing_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.issuing.name.as_str()).chain(self.retired.iter().rev().map(|r| r.name.as_str()))
    }

    /// Where the key of the CA named `name` (root, issuing or retired) is: `Some(None)` for the
    /// encrypted file `private/<name>.key.pem`; `None` when no CA has that name.
    pub fn key_location(&self, name: &str) -> Option<Option<&KeyLocation>> {
        if let Some(section) = [&self.root, &self.issuing].into_iter().find(|s| s.name == name) {
            return Some(section.key.as_ref());
        }
        self.retired.iter().chain(&self.retired_roots).find(|r| r.name == name).map(|r| r.key.as_ref())
    }

    /// The roots, current first, then the retired ones newest first.
    pub fn root_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.root.name.as_str()).chain(self.retired_roots.iter().rev().map(|r| r.name.as_str()))
    }

    pub fn write(&self, path: &Path) -> Result<(), ConfigError> {
        let err = |message: String| ConfigError::Write { path: path.to_owned(), message };
        let text = toml::to_string_pretty(self).map_err(|e| err(e.to_string()))?;
        std::fs::write(path, format!("# Configuration of this CA directory; see README.md.\n{text}"))
            .map_err(|e| err(e.to_string()))
    }

    /// Replace `path` with this configuration atomically (see [`write_atomically`]).
    pub fn replace(&self, path: &Path) -> Result<(), ConfigError> {
        let err = |message: String| ConfigError::Write { path: path.to_owned(), message };
        let text = toml::to_string_pretty(self).map_err(|e| err(e.to_string()))?;
        let text = format!("# Configuration of this CA directory; see README.md.\n{text}");
        crate::fs::write_atomically(path, text.as_bytes(), crate::fs::AtomicWrite::PUBLIC)
            .map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with_crl(crl: &str) -> Result<CaConfig, ConfigError> {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CaDir::new(tmp.path());
        let text = toml::to_string(&CaConfig::defaults("http://pki.test.kz", "p256", "p256")).unwrap();
        let default = "[crl]\nfull_hours = 24\ndelta_hours = 1\npartitions = 0\n";
        assert!(text.contains(default), "{text}");
        let text = text.replace(default, crl);
        std::fs::write(dir.config(), text).unwrap();
        dir.load_config()
    }

    #[test]
    fn crl_periods_are_checked_at_load() {
        assert!(load_with_crl("[crl]\nfull_hours = 24\ndelta_hours = 1\npartitions = 0\n").is_ok());
        assert!(load_with_crl("[crl]\nfull_hours = 24\ndelta_hours = 24\npartitions = 0\n").is_ok());
        for (crl, expected) in [
            ("[crl]\nfull_hours = 24\ndelta_hours = 0\npartitions = 0\n", "delta_hours = 0"),
            (
                "[crl]\nfull_hours = 24\ndelta_hours = 25\npartitions = 0\n",
                "delta_hours = 25 is longer than full_hours = 24",
            ),
            ("[crl]\nfull_hours = 0\ndelta_hours = 0\npartitions = 0\n", "full_hours = 0"),
        ] {
            match load_with_crl(crl) {
                Err(e @ ConfigError::Invalid { .. }) => assert!(e.to_string().contains(expected), "{e}"),
                other => panic!("{crl:?} accepted: {other:?}"),
            }
        }
    }
}
