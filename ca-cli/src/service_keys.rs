//! The keys and certificates of the server's own services — the OCSP responder, the
//! time-stamping authority and the system signing identity — made by `init` and replaced by `renew`, in a file encrypted under the CA
//! passphrase or on a PKCS#11 token, as ca.toml says.
//!
//! A renewal writes each file atomically (temporary file, fsync, rename): the running server
//! keeps answering with the old pair until it has loaded the new one (see `ca_server::reload`).
//! Certificate first, then the key (or ca.toml for a token key): if the command dies between
//! the two, the directory holds a certificate that is not its key's, the server keeps the old
//! pair it runs with (and would not start on the mismatch), and `renew` run again repairs it.

use std::path::{Path, PathBuf};

use ca_core::ca_dir::{CaConfig, KeyLocation};
use ca_core::issuer::IssuedCertificate;
use ca_core::signer::Signer;
use hsm::pkcs11::{KeySelector, Token};
use hsm::{KeyAlgorithm, SoftwareKey};

use crate::context::Context;
use crate::failure::Failure;

/// Which service key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The OCSP responder of the current issuing CA.
    Ocsp,
    /// The OCSP responder of the retired issuing CA at this index of `[[retired]]`.
    RetiredOcsp(usize),
    System,
    /// The time-stamping authority (`[tsa] key`).
    Tsa,
}

impl Service {
    /// Label of a key made on a token.
    fn key_label(self) -> &'static str {
        match self {
            Service::Ocsp | Service::RetiredOcsp(_) => "OCSP responder key",
            Service::System => "system signing key",
            Service::Tsa => "TSA key",
        }
    }
    pub fn key_file(self, ctx: &Context) -> PathBuf {
        match self {
            Service::Ocsp => ctx.dir.ocsp_key(),
            Service::RetiredOcsp(i) => ctx.dir.retired_ocsp_key(&ctx.config.retired[i].name),
            Service::System => ctx.dir.system_key(),
            Service::Tsa => ctx.dir.tsa_key(),
        }
    }
    pub fn certificate_file(self, ctx: &Context) -> PathBuf {
        match self {
            Service::Ocsp => ctx.dir.ocsp_certificate(),
            Service::RetiredOcsp(i) => ctx.dir.retired_ocsp_certificate(&ctx.config.retired[i].name),
            Service::System => ctx.dir.system_certificate(),
            Service::Tsa => ctx.dir.tsa_certificate(),
        }
    }
    pub fn location(self, config: &CaConfig) -> Option<&KeyLocation> {
        match self {
            Service::Ocsp => config.server.ocsp_key.as_ref(),
            Service::RetiredOcsp(i) => config.retired[i].ocsp_key.as_ref(),
            Service::System => config.server.system_key.as_ref(),
            Service::Tsa => config.tsa.key.as_ref(),
        }
    }
    fn set_location(self, config: &mut CaConfig, location: Option<KeyLocation>) {
        match self {
            Service::Ocsp => config.server.ocsp_key = location,
            Service::RetiredOcsp(i) => config.retired[i].ocsp_key = location,
            Service::System => config.server.system_key = location,
            Service::Tsa => config.tsa.key = location,
        }
    }
    /// Whether init has run: a certificate, a key file or a key on a token.
    pub fn exists(self, ctx: &Context) -> bool {
        self.certificate_file(ctx).exists() || self.key_file(ctx).exists() || self.location(&ctx.config).is_some()
    }
}

/// A PKCS#11 token named on the command line.
pub struct TokenArgs<'a> {
    pub module: &'a Path,
    pub label: &'a str,
}

/// `--hsm-module LIB --hsm-token LABEL`: make the key on that token.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HsmArgs {
    /// Generate the key on this PKCS#11 module's token (HSM) instead of a file.
    #[arg(long, requires = "hsm_token")]
    pub hsm_module: Option<PathBuf>,
    /// Label of that token; its PIN comes from CA_HSM_PIN / --hsm-pin-file.
    #[arg(long, requires = "hsm_module")]
    pub hsm_token: Option<String>,
}

impl HsmArgs {
    pub fn token(&self) -> Option<TokenArgs<'_>> {
        self.hsm_module.as_deref().zip(self.hsm_token.as_deref()).map(|(module, label)| TokenArgs { module, label })
    }
}

/// Tell the operator (or the script) what `init`/`renew` made.
pub fn report(
    ctx: &Context,
    what: &str,
    issued: &IssuedCertificate,
    kind: &str,
    place: &str,
    certificate: &Path,
    replace: bool,
) {
    use crate::output::{print_json, when};
    if ctx.json {
        print_json(&serde_json::json!({
            "serial": issued.serial, "certificate": certificate, "key": place, "not_after": when(issued.not_after),
        }));
        return;
    }
    let verb = if replace { "renewed" } else { "made" };
    println!("{what} {} {verb} ({kind}), valid until {}", issued.serial, when(issued.not_after));
    println!("  {}", certificate.display());
    println!("  key: {place}");
    if replace {
        println!("A running server switches to it within [server] reload_seconds, or at once on SIGHUP.");
    }
}

/// A key ready to be certified, and where it goes once it is.
pub struct ServiceKey {
    signer: Box<dyn Signer>,
    place: Place,
}

enum Place {
    /// A new key, to be written encrypted to the key file.
    NewFile { pem: zeroize::Zeroizing<String> },
    /// A new key made on a token (removed again if it is not used).
    NewOnToken { token: Token, module: PathBuf, label: String, id: Vec<u8> },
    /// The key in use stays.
    Kept,
}

impl ServiceKey {
    /// A new key: on the token given, else on the token the key is on now, else a file
    /// encrypted under the CA passphrase (read before anything is made: a wrong one changes
    /// nothing).
    pub fn generate(
        ctx: &Context,
        service: Service,
        alg: KeyAlgorithm,
        token: Option<TokenArgs<'_>>,
    ) -> Result<Self, Failure> {
        let on_token = match (token, service.location(&ctx.config)) {
            (Some(t), _) => Some((t.module.to_owned(), t.label.to_owned())),
            (None, Some(KeyLocation::Pkcs11 { module, token, .. })) => Some((module.clone(), token.clone())),
            (None, _) => None,
        };
        match on_token {
            Some((module, label)) => {
                // Made on the token, never extractable.
                let token = crate::keys::open_token(&module, &label, &ctx.hsm_pin)?;
                let key = token.generate_key_pair(alg, service.key_label())?;
                let id = key.id().to_vec();
                Ok(Self { signer: Box::new(key), place: Place::NewOnToken { token, module, label, id } })
            }
            None => {
                let passphrase = ctx.passphrase.read(false)?;
                let key = SoftwareKey::generate(alg)?;
                let pem = zeroize::Zeroizing::new(key.to_encrypted_pem(passphrase.as_bytes())?);
                Ok(Self { signer: Box::new(key), place: Place::NewFile { pem } })
            }
        }
    }

    /// The key of a renewal: the one in use with `keep_key`, else a new one of `algorithm`
    /// (default: the current certificate's), made where `generate` makes it.
    pub fn renewal(
        ctx: &Context,
        service: Service,
        keep_key: bool,
        algorithm: Option<&str>,
        token: Option<TokenArgs<'_>>,
    ) -> Result<Self, Failure> {
        if keep_key {
            return Self::current(ctx, service);
        }
        let alg = match algorithm {
            Some(name) => parse_algorithm(name)?,
            None => algorithm_of(&service.certificate_file(ctx))?,
        };
        Self::generate(ctx, service, alg, token)
    }

    /// The key in use now (`renew --keep-key`), opened to prove it is there and usable.
    pub fn current(ctx: &Context, service: Service) -> Result<Self, Failure> {
        let signer: Box<dyn Signer> = match service.location(&ctx.config) {
            Some(KeyLocation::Pkcs11 { module, token, id }) => {
                let token = crate::keys::open_token(module, token, &ctx.hsm_pin)?;
                let id = hex::decode(id).map_err(|_| Failure::Input(format!("ca.toml: key id {id:?} is not hex")))?;
                Box::new(token.find_key(&KeySelector::Id(id))?)
            }
            _ => {
                let path = service.key_file(ctx);
                let pem = std::fs::read_to_string(&path)
                    .map(zeroize::Zeroizing::new)
                    .map_err(|e| Failure::NotFound(format!("cannot read {}: {e}", path.display())))?;
                let passphrase = ctx.passphrase.read(false)?;
                Box::new(SoftwareKey::from_encrypted_pem(&pem, passphrase.as_bytes())?)
            }
        };
        Ok(Self { signer, place: Place::Kept })
    }

    pub fn signer(&self) -> &dyn Signer {
        self.signer.as_ref()
    }

    /// Give up a key that got no certificate: one made on a token is deleted again.
    pub fn discard(&self) {
        if let Place::NewOnToken { token, id, .. } = &self.place {
            let _ = token.delete_objects_by_id(id);
        }
    }

    /// Put the key and its certificate in place; `replace` allows overwriting (renew). Returns
    /// where the key is, for the operator.
    pub fn install(
        self,
        ctx: &Context,
        service: Service,
        issued: &IssuedCertificate,
        replace: bool,
    ) -> Result<String, Failure> {
        let internal = |e: std::io::Error, path: &Path| Failure::Internal(anyhow::anyhow!("{}: {e}", path.display()));
        let cert_path = service.certificate_file(ctx);
        let key_path = service.key_file(ctx);
        let pem = crate::pem::encode("CERTIFICATE", &issued.der)?;
        let write_certificate = || {
            ca_core::fs::write_atomically(&cert_path, pem.as_bytes(), ca_core::fs::AtomicWrite::PUBLIC)
                .map_err(|e| internal(e, &cert_path))
        };
        match self.place {
            Place::NewFile { pem: key_pem } => {
                write_certificate()?;
                if replace {
                    hsm::replace_encrypted_key_file(&key_path, &key_pem)?;
                } else {
                    hsm::write_encrypted_key_file(&key_path, &key_pem)?;
                }
                if service.location(&ctx.config).is_some() {
                    // Moved from a token to a file: ca.toml stops pointing at the token.
                    let mut config = ctx.config.clone();
                    service.set_location(&mut config, None);
                    config.replace(&ctx.dir.config())?;
                }
                Ok(format!("{} (encrypted under the CA passphrase)", key_path.display()))
            }
            Place::NewOnToken { module, label, id, .. } => {
                write_certificate()?;
                let mut config = ctx.config.clone();
                let id = hex::encode(id);
                service.set_location(
                    &mut config,
                    Some(KeyLocation::Pkcs11 { module, token: label.clone(), id: id.clone() }),
                );
                config.replace(&ctx.dir.config())?;
                if key_path.exists() {
                    // Moved from a file to a token: the file key is no longer used.
                    std::fs::remove_file(&key_path).map_err(|e| internal(e, &key_path))?;
                }
                Ok(format!("token {label:?}, CKA_ID {id} (ca.toml {})", service.config_key()))
            }
            Place::Kept => {
                write_certificate()?;
                Ok("unchanged".into())
            }
        }
    }
}

impl Service {
    /// Where ca.toml says the key is.
    fn config_key(self) -> &'static str {
        match self {
            Service::Ocsp => "[server] ocsp_key",
            Service::RetiredOcsp(_) => "[[retired]] ocsp_key",
            Service::System => "[server] system_key",
            Service::Tsa => "[tsa] key",
        }
    }
}

/// A key algorithm named on the command line.
pub fn parse_algorithm(name: &str) -> Result<KeyAlgorithm, Failure> {
    name.parse().map_err(|e: hsm::UnknownKeyAlgorithm| Failure::Input(e.to_string()))
}

/// The algorithm of the key certified in `certificate` (PEM), for a renewal that keeps it.
pub fn algorithm_of(certificate: &Path) -> Result<KeyAlgorithm, Failure> {
    use ca_core::keys::PublicKeyKind;
    use der::Decode;
    let text = std::fs::read_to_string(certificate)
        .map_err(|e| Failure::NotFound(format!("cannot read {}: {e}", certificate.display())))?;
    let der = crate::pem::decode("CERTIFICATE", &text)?;
    let cert = x509_cert::Certificate::from_der(&der).map_err(|e| Failure::Internal(e.into()))?;
    let kind = ca_core::keys::check_key_policy(&cert.tbs_certificate.subject_public_key_info)
        .map_err(|e| Failure::Input(format!("{}: {e}", certificate.display())))?;
    Ok(match kind {
        PublicKeyKind::EcP256 => KeyAlgorithm::P256,
        PublicKeyKind::EcP384 => KeyAlgorithm::P384,
        PublicKeyKind::Rsa { bits: 3072 } => KeyAlgorithm::Rsa3072,
        PublicKeyKind::Rsa { bits: 4096 } => KeyAlgorithm::Rsa4096,
        PublicKeyKind::Rsa { .. } => KeyAlgorithm::Rsa2048,
    })
}
