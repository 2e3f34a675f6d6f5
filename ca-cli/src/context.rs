//! An opened CA directory: configuration, store, and (when signing) the issuing CA's key.

use std::sync::Arc;

use anyhow::Context as _;
use ca_core::clock::SystemClock;
use ca_core::issuer::{CertificateAuthority, Issuer};
use ca_core::store::open::Reads;
use ca_core::store::CaStore;

use crate::failure::Failure;
use crate::secrets::SecretSource;
use crate::Cli;
use ca_core::ca_dir::{CaConfig, CaDir};

pub struct Context {
    pub dir: CaDir,
    pub config: CaConfig,
    /// The CA's store: `ca.db`, or the PostgreSQL database `[store] url` names.
    pub store: Arc<dyn CaStore>,
    pub clock: SystemClock,
    pub actor: String,
    pub json: bool,
    pub passphrase: SecretSource,
    pub hsm_pin: SecretSource,
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
        let store = ca_core::store::open::open(&dir.store(), &config.store, Reads::Primary).with_context(|| {
            match &config.store.url {
                None => format!("cannot open {}", dir.store().display()),
                Some(_) => "cannot open the PostgreSQL store named in ca.toml".to_owned(),
            }
        })?;
        // Checked when the configuration was loaded.
        store.set_timing(config.regulation.timing().map_err(Failure::Input)?);
        Ok(Self {
            dir,
            config,
            store,
            clock: SystemClock,
            actor: cli.actor.clone(),
            json: cli.json,
            passphrase: passphrase_source(cli),
            hsm_pin: hsm_pin_source(cli),
        })
    }

    /// An issuer of end-entity certificates from `ca` with this CA's configuration (validity,
    /// URLs, CRL partitions).
    pub fn issuer<'a>(&'a self, ca: &'a CertificateAuthority) -> Issuer<'a> {
        Issuer {
            ca,
            store: self.store.as_ref(),
            clock: &self.clock,
            urls: &self.config.urls,
            validity: time::Duration::days(self.config.end_entity.validity_days.into()),
            actor: &self.actor,
            crl_partitions: self.config.crl.partitions(),
        }
    }

    /// The key algorithm of end-entity keys generated here (`[end_entity] key_algorithm`).
    pub fn end_entity_key_algorithm(&self) -> Result<hsm::KeyAlgorithm, Failure> {
        self.config
            .end_entity
            .key_algorithm
            .parse()
            .map_err(|e: hsm::UnknownKeyAlgorithm| Failure::Input(e.to_string()))
    }

    /// Where generated key stores go: `given`, or issued/ in the CA directory; it must exist.
    pub fn key_store_dir(&self, given: Option<&std::path::Path>) -> Result<std::path::PathBuf, Failure> {
        let dir = given.map_or_else(|| self.dir.issued(), std::path::Path::to_path_buf);
        if !dir.is_dir() {
            return Err(Failure::Input(format!("{} is not a directory", dir.display())));
        }
        Ok(dir)
    }

    /// Now, from the injected clock.
    pub fn clock_now(&self) -> time::OffsetDateTime {
        ca_core::clock::Clock::now(&self.clock)
    }

    /// Load a CA with its key (a decrypted file or a token key).
    pub fn authority(&self, ca: &str) -> Result<CertificateAuthority, Failure> {
        let cert_pem = std::fs::read_to_string(self.dir.certificate_pem(ca))
            .with_context(|| format!("cannot read the certificate of CA {ca}"))?;
        let cert_der =
            crate::pem::decode("CERTIFICATE", &cert_pem).with_context(|| format!("certificate of CA {ca}"))?;
        let location =
            self.config.key_location(ca).ok_or_else(|| Failure::NotFound(format!("no CA named {ca} in ca.toml")))?;
        let signer = crate::keys::load_ca_signer(&self.dir, ca, location, &self.passphrase, &self.hsm_pin)?;
        tracing::info!(ca, "CA key opened");
        CertificateAuthority::new(ca, cert_der, signer).map_err(|e| Failure::Internal(e.into()))
    }

    /// The issuing CA's chain, issuing certificate first, as DER: the chain of every
    /// certificate issued now.
    /// After `ca rollover root` the chain goes on to the root that certified the issuing CA,
    /// and, when that root has a cross certificate, to it too (for relying parties who still
    /// trust only the previous root).
    pub fn chain_der(&self) -> Result<Vec<Vec<u8>>, Failure> {
        use der::Decode;
        let issuing = self.ca_certificate(&self.config.issuing.name)?;
        let issuer = x509_cert::Certificate::from_der(&issuing)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("certificate of CA {}: {e}", self.config.issuing.name)))?
            .tbs_certificate
            .issuer;
        let mut chain = vec![issuing];
        for root in self.config.root_names() {
            let der = self.ca_certificate(root)?;
            let subject = x509_cert::Certificate::from_der(&der).map(|c| c.tbs_certificate.subject);
            if subject.is_ok_and(|s| s == issuer) {
                chain.push(der);
                let cross = self.dir.cross_certificate_pem(root);
                if cross.exists() {
                    chain.push(self.ca_certificate(&format!("{root}-cross"))?);
                }
                return Ok(chain);
            }
        }
        chain.push(self.ca_certificate(&self.config.root.name)?);
        Ok(chain)
    }

    /// The root certificates (DER), current first: every one is a trust anchor here.
    pub fn root_certificates(&self) -> Result<Vec<Vec<u8>>, Failure> {
        self.config.root_names().map(|ca| self.ca_certificate(ca)).collect()
    }

    /// The certificate (DER) of the CA named `ca`.
    pub fn ca_certificate(&self, ca: &str) -> Result<Vec<u8>, Failure> {
        let pem = std::fs::read_to_string(self.dir.certificate_pem(ca))
            .with_context(|| format!("cannot read the certificate of CA {ca}"))?;
        Ok(crate::pem::decode("CERTIFICATE", &pem).with_context(|| format!("certificate of CA {ca}"))?)
    }

    /// The certificates (DER) of every issuing CA generation, current first.
    pub fn issuing_certificates(&self) -> Result<Vec<Vec<u8>>, Failure> {
        self.config.issuing_names().map(|ca| self.ca_certificate(ca)).collect()
    }
}

pub fn passphrase_source(cli: &Cli) -> SecretSource {
    SecretSource {
        what: "CA key passphrase",
        env: cli.passphrase.passphrase_env.clone(),
        file: cli.passphrase.passphrase_file.clone(),
    }
}

pub fn hsm_pin_source(cli: &Cli) -> SecretSource {
    SecretSource {
        what: "token PIN",
        env: cli.passphrase.hsm_pin_env.clone(),
        file: cli.passphrase.hsm_pin_file.clone(),
    }
}
