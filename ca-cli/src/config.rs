//! `ca.toml`: the configuration of one CA directory. Everything the certificates point at
//! (CRL, OCSP, CA certificate and CPS URLs), names, key types and validity periods live here.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ca_core::config::PublicationUrls;
use serde::{Deserialize, Serialize};

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
}

impl Default for CrlSection {
    fn default() -> Self {
        Self { full_hours: 24, delta_hours: 1, partitions: 0 }
    }
}

impl CrlSection {
    pub fn partitions(&self) -> Option<u32> {
        (self.partitions > 1).then_some(self.partitions)
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
    pub fn key(&self, ca: &str) -> PathBuf {
        self.private().join(format!("{ca}.key.pem"))
    }

    pub fn load_config(&self) -> anyhow::Result<CaConfig> {
        let path = self.config();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("no CA at {} (run `ca init` first)", self.root.display()))?;
        let config: CaConfig =
            toml::from_str(&text).with_context(|| format!("{} is not a valid CA configuration", path.display()))?;
        config.urls.validate().map_err(anyhow::Error::msg)?;
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
            },
            issuing: CaSection {
                name: "nca".into(),
                common_name: "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (TEST)".into(),
                organisation: None,
                key_algorithm: issuing_key.into(),
                validity_days: 10 * 365 + 2,
            },
            end_entity: EndEntitySection { validity_days: 365, key_algorithm: "rsa2048".into() },
            crl: CrlSection::default(),
        }
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = toml::to_string_pretty(self)?;
        std::fs::write(path, format!("# Configuration of this CA directory; see README.md.\n{text}"))
            .with_context(|| format!("cannot write {}", path.display()))
    }
}
