//! An opened CA directory: configuration, store, and (when signing) the issuing CA's key.

use std::sync::Arc;

use anyhow::Context as _;
use ca_core::clock::SystemClock;
use ca_core::issuer::CertificateAuthority;
use ca_core::store::SqliteStore;
use hsm::SoftwareKey;

use crate::failure::Failure;
use crate::secrets::SecretSource;
use crate::Cli;
use ca_core::ca_dir::{CaConfig, CaDir};

pub struct Context {
    pub dir: CaDir,
    pub config: CaConfig,
    pub store: Arc<SqliteStore>,
    pub clock: SystemClock,
    pub actor: String,
    pub json: bool,
    pub passphrase: SecretSource,
}

impl Context {
    pub fn open(cli: &Cli) -> Result<Self, Failure> {
        let dir = CaDir::new(&cli.dir);
        if !dir.config().exists() {
            return Err(Failure::NotFound(format!(
                "no CA at {} (run `ca init` first, or pass --dir)",
                dir.root.display()
            )));
        }
        let config = dir.load_config()?;
        let store =
            SqliteStore::open(&dir.store()).with_context(|| format!("cannot open {}", dir.store().display()))?;
        Ok(Self {
            dir,
            config,
            store: Arc::new(store),
            clock: SystemClock,
            actor: cli.actor.clone(),
            json: cli.json,
            passphrase: passphrase_source(cli),
        })
    }

    /// Now, from the injected clock.
    pub fn clock_now(&self) -> time::OffsetDateTime {
        ca_core::clock::Clock::now(&self.clock)
    }

    /// Load a CA with its key, decrypting the key with the CA passphrase.
    pub fn authority(&self, ca: &str) -> Result<CertificateAuthority, Failure> {
        let cert_pem = std::fs::read_to_string(self.dir.certificate_pem(ca))
            .with_context(|| format!("cannot read the certificate of CA {ca}"))?;
        let cert_der =
            crate::pem::decode("CERTIFICATE", &cert_pem).with_context(|| format!("certificate of CA {ca}"))?;
        let key_pem = zeroize::Zeroizing::new(
            std::fs::read_to_string(self.dir.key(ca)).with_context(|| format!("cannot read the key of CA {ca}"))?,
        );
        let passphrase = self.passphrase.read(false)?;
        let key = SoftwareKey::from_encrypted_pem(&key_pem, passphrase.as_bytes())?;
        tracing::info!(ca, "CA key loaded");
        CertificateAuthority::new(ca, cert_der, Box::new(key)).map_err(|e| Failure::Internal(e.into()))
    }

    /// The issuing CA's chain, issuing certificate first, as DER.
    pub fn chain_der(&self) -> Result<Vec<Vec<u8>>, Failure> {
        [&self.config.issuing.name, &self.config.root.name]
            .into_iter()
            .map(|ca| {
                let pem = std::fs::read_to_string(self.dir.certificate_pem(ca))
                    .with_context(|| format!("cannot read the certificate of CA {ca}"))?;
                Ok(crate::pem::decode("CERTIFICATE", &pem).with_context(|| format!("certificate of CA {ca}"))?)
            })
            .collect()
    }
}

pub fn passphrase_source(cli: &Cli) -> SecretSource {
    SecretSource {
        what: "CA key passphrase",
        env: cli.passphrase.passphrase_env.clone(),
        file: cli.passphrase.passphrase_file.clone(),
    }
}
