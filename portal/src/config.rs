//! `portal.toml`: where the portal listens and keeps its database, whom it trusts, where the
//! person registry comes from, the lockout and session policy, Argon2id parameters, mail, its
//! own signing identity and the counter workstations allowed to register people.
//!
//! ```toml
//! listen = "127.0.0.1:8090"
//! store = "portal.db"                 # relative paths are relative to this file
//! # or PostgreSQL (several portal processes on one database), instead of the line above:
//! # [store]
//! # url = "postgres://portal@db.internal:5432/portal"   # never with a password in it
//! # password_env = "PORTAL_STORE_PASSWORD"              # the default
//! # password_file = "/run/secrets/portal-store"         # or PORTAL_STORE_PASSWORD_FILE
//!
//! [server]
//! trusted_proxies = ["127.0.0.1"]     # reverse proxies whose X-Forwarded-For names the client
//!
//! [trust]
//! ca_dir = "../ca"                    # roots, issuing CAs and published CRLs of a CA directory
//! anchors = []                        # further trust anchors (PEM files)
//! intermediates = []                  # further intermediate CAs (PEM files)
//! crl_dirs = []                       # further directories of CRLs (DER *.crl)
//!
//! [registry]
//! csv = "../ca/registry.csv"          # the person registry export (`ca registry import` format)
//!
//! [argon2]                            # never below OWASP's minimum (m=19456 KiB, t=2, p=1)
//! memory_kib = 19456
//! iterations = 2
//! parallelism = 1
//!
//! [login]
//! max_failures = 10
//! lockout_minutes = 15
//! session_hours = 8
//! idle_minutes = 30
//! challenge_seconds = 300
//!
//! [mail]
//! maildir = "mail"
//! from = "noreply@egov.kz"
//!
//! [signing]                           # the portal's own EDS (a system certificate)
//! certificate = "system.pem"
//! key = "system.key"                  # encrypted PKCS#8; passphrase from PORTAL_KEY_PASSPHRASE
//! # passphrase_file = "system.pass"   # or from a file (first line)
//! chain = ["../ca/certs/nca.pem"]
//!
//! [[counter.workstations]]            # who may register people at a counter
//! bin = "000140000000"
//! role = "employee"
//! [[counter.workstations]]
//! certificate_sha256 = "…"
//!
//! [pages]
//! signer_url = "ws://127.0.0.1:13579"  # the signing client, as the browser reaches it
//!
//! [documents.tsa]                     # digital documents: see `documents::config`
//! url = "http://127.0.0.1:8080/tsa"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::account::password::Argon2Config;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The SQLite file (`store = "portal.db"`) or a PostgreSQL database (`[store] url = …`).
    pub store: StoreConfig,
    pub trust: TrustConfig,
    pub registry: RegistryConfig,
    #[serde(default)]
    pub argon2: Argon2Config,
    #[serde(default)]
    pub login: LoginPolicy,
    pub mail: Option<MailConfig>,
    pub signing: Option<SigningConfig>,
    #[serde(default)]
    pub counter: CounterConfig,
    /// Digital documents (see [`crate::documents::config`]).
    #[serde(default)]
    pub documents: crate::documents::config::DocumentsConfig,
    /// Phone binding and SMS (see [`crate::phone::config`]).
    #[serde(default)]
    pub phone: crate::phone::config::PhoneConfig,
    #[serde(default)]
    pub server: ServerConfig,
    /// The web pages (see [`crate::web`]).
    #[serde(default)]
    pub pages: crate::web::PagesConfig,
}

/// Where the portal keeps its data: the embedded SQLite file (the default), or a PostgreSQL
/// database shared by several portal processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// `store = "portal.db"`.
    Sqlite(PathBuf),
    /// `[store] url = "postgres://…"`.
    Postgres(PostgresStoreConfig),
}

/// `[store]` for PostgreSQL. The password never sits in the file or on a command line: it is
/// read from `password_env` (`PORTAL_STORE_PASSWORD` by default), or from `password_file` or
/// the file `PORTAL_STORE_PASSWORD_FILE` names; a URL carrying a password is refused.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresStoreConfig {
    /// `postgres://user@host:port/database` (or a libpq `key=value` string).
    pub url: String,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

impl PostgresStoreConfig {
    /// The password from the environment or a file; `None` when none is given (a unix socket
    /// with peer authentication, or `.pgpass`, needs none).
    pub fn password(&self) -> Result<Option<String>, ca_core::store::StoreError> {
        use crate::store::{PASSWORD_ENV, PASSWORD_FILE_ENV};
        ca_core::store::open::read_password(
            self.password_env.as_deref().unwrap_or(PASSWORD_ENV),
            self.password_file.as_deref(),
            PASSWORD_FILE_ENV,
        )
    }
}

impl StoreConfig {
    /// The SQLite file, if the store is one.
    pub fn sqlite_file(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }
}

impl From<PathBuf> for StoreConfig {
    fn from(path: PathBuf) -> Self {
        Self::Sqlite(path)
    }
}

/// For messages: the file, or the URL (which holds no password).
impl std::fmt::Display for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(pg) => write!(f, "{}", pg.url),
        }
    }
}

/// `store` is either a path (a string) or the `[store]` table.
impl<'de> Deserialize<'de> for StoreConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StoreConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"the SQLite file (store = "portal.db") or [store] with url = "postgres://…""#)
            }
            fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<StoreConfig, E> {
                Ok(StoreConfig::Sqlite(PathBuf::from(path)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<StoreConfig, A::Error> {
                PostgresStoreConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(StoreConfig::Postgres)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The HTTP side.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` names the client, for the journal
    /// and the session list; from anyone else the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8090))
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    pub ca_dir: Option<PathBuf>,
    #[serde(default)]
    pub anchors: Vec<PathBuf>,
    #[serde(default)]
    pub intermediates: Vec<PathBuf>,
    #[serde(default)]
    pub crl_dirs: Vec<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub csv: PathBuf,
}

/// Lockout, sessions and challenges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginPolicy {
    pub max_failures: u32,
    pub lockout_minutes: u32,
    pub session_hours: u32,
    pub idle_minutes: u32,
    pub challenge_seconds: u32,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self { max_failures: 10, lockout_minutes: 15, session_hours: 8, idle_minutes: 30, challenge_seconds: 300 }
    }
}

impl LoginPolicy {
    pub fn lockout(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.lockout_minutes))
    }
    pub fn session(&self) -> time::Duration {
        time::Duration::hours(i64::from(self.session_hours))
    }
    pub fn idle(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.idle_minutes))
    }
    pub fn challenge(&self) -> time::Duration {
        time::Duration::seconds(i64::from(self.challenge_seconds))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub maildir: PathBuf,
    #[serde(default = "default_from")]
    pub from: String,
}

fn default_from() -> String {
    "noreply@egov.kz".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    pub certificate: PathBuf,
    /// Encrypted PKCS#8 PEM (as `ca system init` writes `system/system.key`).
    pub key: PathBuf,
    /// The variable holding the key's passphrase.
    #[serde(default = "default_passphrase_env")]
    pub passphrase_env: String,
    /// A file holding the passphrase (first line); used instead of the variable when given.
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
    /// Certificates put into every signed response (the issuing CA).
    #[serde(default)]
    pub chain: Vec<PathBuf>,
}

fn default_passphrase_env() -> String {
    "PORTAL_KEY_PASSPHRASE".into()
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterConfig {
    #[serde(default)]
    pub workstations: Vec<WorkstationRule>,
    /// How far a request's time may lie from the portal's clock.
    #[serde(default = "default_request_window")]
    pub request_window_seconds: u32,
}

fn default_request_window() -> u32 {
    600
}

/// One entry of the allow-list: a BIN with a role, or one certificate by its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkstationRule {
    pub bin: Option<String>,
    pub role: Option<String>,
    pub certificate_sha256: Option<String>,
}

/// The configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl PortalConfig {
    /// Read `path`; relative paths inside are made relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read = |message: String| ConfigError::Read { path: path.to_path_buf(), message };
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        let mut config: PortalConfig = toml::from_str(&text).map_err(|e| read(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve(base);
        config.validate()?;
        Ok(config)
    }

    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        match &mut self.store {
            StoreConfig::Sqlite(path) => fix(path),
            StoreConfig::Postgres(pg) => {
                if let Some(f) = &mut pg.password_file {
                    fix(f);
                }
            }
        }
        if let Some(d) = &mut self.trust.ca_dir {
            fix(d);
        }
        self.trust
            .anchors
            .iter_mut()
            .chain(&mut self.trust.intermediates)
            .chain(&mut self.trust.crl_dirs)
            .for_each(fix);
        fix(&mut self.registry.csv);
        if let Some(m) = &mut self.mail {
            fix(&mut m.maildir);
        }
        if let Some(s) = &mut self.signing {
            fix(&mut s.certificate);
            fix(&mut s.key);
            if let Some(f) = &mut s.passphrase_file {
                fix(f);
            }
            s.chain.iter_mut().for_each(fix);
        }
        self.phone.resolve(base);
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.trust.ca_dir.is_none() && self.trust.anchors.is_empty() {
            return Err(ConfigError::Invalid("[trust] needs ca_dir or anchors".into()));
        }
        let p = &self.login;
        if p.max_failures == 0 || p.lockout_minutes == 0 || p.session_hours == 0 || p.idle_minutes == 0 {
            return Err(ConfigError::Invalid("[login] limits and durations must be positive".into()));
        }
        if p.challenge_seconds == 0 || p.challenge_seconds > 3600 {
            return Err(ConfigError::Invalid("[login] challenge_seconds must be 1..=3600".into()));
        }
        for rule in &self.counter.workstations {
            crate::account::counter::check_rule(rule).map_err(ConfigError::Invalid)?;
        }
        self.documents.validate().map_err(ConfigError::Invalid)?;
        self.phone.validate().map_err(ConfigError::Invalid)?;
        self.pages.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(store: &str) -> Result<PortalConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portal.toml");
        let text = format!("{store}\n[trust]\nanchors = [\"root.pem\"]\n[registry]\ncsv = \"registry.csv\"\n");
        std::fs::write(&path, text).unwrap();
        PortalConfig::load(&path).map(|mut c| {
            // Relative to the file's directory, whatever it was.
            if let StoreConfig::Sqlite(p) | StoreConfig::Postgres(PostgresStoreConfig { password_file: Some(p), .. }) =
                &mut c.store
            {
                *p = p.strip_prefix(dir.path()).unwrap().to_path_buf();
            }
            c
        })
    }

    #[test]
    fn the_store_is_a_sqlite_file_or_a_postgresql_url() {
        assert_eq!(load(r#"store = "portal.db""#).unwrap().store, StoreConfig::Sqlite("portal.db".into()));
        let pg = load("[store]\nurl = \"postgres://portal@db:5432/portal\"\npassword_file = \"store.pass\"").unwrap();
        assert_eq!(
            pg.store,
            StoreConfig::Postgres(PostgresStoreConfig {
                url: "postgres://portal@db:5432/portal".into(),
                password_env: None,
                password_file: Some("store.pass".into()),
            })
        );
        assert_eq!(pg.store.to_string(), "postgres://portal@db:5432/portal");
        let typo = load("[store]\nurl = \"postgres://portal@db/portal\"\npassword = \"secret\"").unwrap_err();
        assert!(typo.to_string().contains("unknown field `password`"), "{typo}");
        assert!(load("[store]\npassword_env = \"X\"").unwrap_err().to_string().contains("missing field `url`"));
        assert!(load("store = 5").is_err());
    }
}
