//! `ca init`: a root CA and the issuing CA under it, built in a scratch directory and moved
//! into place only when everything is written, so a failed init leaves nothing half-made.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ca_core::checkpoint::Checkpoint;
use ca_core::clock::{Clock, SystemClock};
use ca_core::identity::Subject;
use ca_core::issuer::{CertificateAuthority, IssuedCertificate};
use ca_core::profile::CaPolicies;
use ca_core::store::open::Reads;
use ca_core::store::{CaStore, Store};
use clap::Args;
use hsm::{KeyAlgorithm, SoftwareKey};
use serde::Serialize;
use time::Duration;

use crate::commands::audit::key::{self as audit_key, AuditKeyPlace, NewAuditKey};
use crate::commands::audit::print_checkpoint;
use crate::commands::crl::{PublicationDir, Publisher};
use crate::context::{hsm_pin_source, passphrase_source};
use crate::failure::Failure;
use crate::keys::open_token;
use crate::output::{print_json, when};
use crate::secrets::check_new_passphrase;
use crate::{Cli, Outcome};
use ca_core::ca_dir::{CaConfig, CaDir, KeyLocation};
use ca_core::signer::Signer;

#[derive(Args, Debug, Clone)]
pub struct InitArgs {
    /// Root CA key: rsa4096 (default), p384, rsa3072, rsa2048, p256.
    #[arg(long, default_value = "rsa4096")]
    pub root_key: String,
    /// Issuing CA key: rsa4096 (default), p384, rsa3072, rsa2048, p256.
    #[arg(long, default_value = "rsa4096")]
    pub issuing_key: String,
    /// Base URL under which CRLs (/crl), the OCSP responder (/ocsp), CA certificates (/ca) and
    /// the CPS (/cps) are published; written into every certificate.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// Common name of the root CA.
    #[arg(long)]
    pub root_cn: Option<String>,
    /// Common name of the issuing CA.
    #[arg(long)]
    pub issuing_cn: Option<String>,
    /// Policies the CA certificates assert for the certificates under them: end-entity (the
    /// four end-entity policies) or any-policy (anyPolicy).
    #[arg(long, default_value = "end-entity", value_parser = parse_ca_policies)]
    pub ca_policies: CaPolicies,
    /// Generate the CA keys inside this PKCS#11 module's token (HSM) instead of files.
    #[arg(long, requires = "hsm_token")]
    pub hsm_module: Option<PathBuf>,
    /// Label of the token for --hsm-module; its PIN comes from CA_HSM_PIN, --hsm-pin-file or a prompt.
    #[arg(long, requires = "hsm_module")]
    pub hsm_token: Option<String>,
    /// Keep the store in this PostgreSQL database (`postgres://user@host:port/db`, empty and
    /// without a password in it: the password comes from CA_STORE_PASSWORD or
    /// CA_STORE_PASSWORD_FILE) instead of the embedded ca.db.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

#[derive(Serialize)]
struct CaSummary {
    name: String,
    subject: String,
    serial: String,
    key: String,
    not_after: String,
    certificate: PathBuf,
}

#[derive(Serialize)]
struct AuditKeySummary {
    key: String,
    public_key: PathBuf,
    public_key_sha256: String,
}

#[derive(Serialize)]
struct InitReport {
    dir: PathBuf,
    root: CaSummary,
    issuing: CaSummary,
    audit_key: AuditKeySummary,
    checkpoint: Checkpoint,
}

fn parse_ca_policies(s: &str) -> Result<CaPolicies, String> {
    match s {
        "end-entity" => Ok(CaPolicies::EndEntity),
        "any-policy" => Ok(CaPolicies::AnyPolicy),
        _ => Err(format!("{s:?}: expected end-entity or any-policy")),
    }
}

fn parse_key(s: &str) -> Result<KeyAlgorithm, Failure> {
    s.parse::<KeyAlgorithm>().map_err(|e| Failure::Input(e.to_string()))
}

fn summary(dir: &CaDir, name: &str, c: &IssuedCertificate, key: KeyAlgorithm) -> CaSummary {
    CaSummary {
        name: name.to_owned(),
        subject: ca_core::identity::format_dn(&c.certificate.tbs_certificate.subject),
        serial: c.serial.to_hex(),
        key: key.to_string(),
        not_after: when(c.not_after),
        certificate: dir.certificate_pem(name),
    }
}

fn write_certificate(dir: &CaDir, name: &str, der_bytes: &[u8]) -> anyhow::Result<()> {
    let pem = crate::pem::encode("CERTIFICATE", der_bytes)?;
    std::fs::write(dir.certificate_pem(name), pem)?;
    std::fs::write(dir.certificate_der(name), der_bytes)?;
    Ok(())
}

fn make_private_dir(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A PostgreSQL database given to `ca init` must be new: a second CA in it would share (and
/// confuse) the first one's journal and serials. A new SQLite file is always empty.
fn refuse_a_used_database(store: &dyn CaStore) -> Result<(), Failure> {
    if store.audit_hash(1)?.is_some() {
        return Err(Failure::Input(format!(
            "the {} store already holds a CA (its audit journal is not empty); give ca init an empty database",
            store.kind()
        )));
    }
    Ok(())
}

pub fn run(cli: &Cli, args: &InitArgs) -> Outcome {
    let target = cli.dir.clone();
    if target.join(ca_core::ca_dir::CONFIG_FILE).exists() {
        return Err(Failure::Already(format!("a CA already exists at {}; nothing was changed", target.display())));
    }
    if target.exists() && std::fs::read_dir(&target).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Failure::Input(format!("{} exists and is not empty; choose a new directory", target.display())));
    }
    let root_alg = parse_key(&args.root_key)?;
    let issuing_alg = parse_key(&args.issuing_key)?;
    let mut config = CaConfig::defaults(&args.base_url, root_alg.name(), issuing_alg.name());
    config.urls.validate().map_err(Failure::Input)?;
    config.root.policies = args.ca_policies;
    config.issuing.policies = args.ca_policies;
    if let Some(cn) = &args.root_cn {
        config.root.common_name = cn.clone();
    }
    if let Some(cn) = &args.issuing_cn {
        config.issuing.common_name = cn.clone();
    }
    config.store.url = args.store.clone();
    // Keys on a token (HSM), or encrypted files under a passphrase.
    let token = match (&args.hsm_module, &args.hsm_token) {
        (Some(module), Some(label)) => {
            Some((module.clone(), label.clone(), open_token(module, label, &hsm_pin_source(cli))?))
        }
        (None, None) => None,
        _ => return Err(Failure::Input("--hsm-module and --hsm-token go together".into())),
    };
    let passphrase = match token {
        None => {
            let p = passphrase_source(cli).read(true)?;
            check_new_passphrase("CA key passphrase", &p)?;
            Some(p)
        }
        Some(_) => None,
    };

    // Build everything in a scratch directory beside the target, then rename.
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let scratch =
        tempfile::Builder::new().prefix(".ca-init-").tempdir_in(parent).context("cannot create a scratch directory")?;
    let dir = CaDir::new(scratch.path());
    std::fs::create_dir_all(dir.certs()).context("cannot create certs/")?;
    std::fs::create_dir_all(dir.issued()).context("cannot create issued/")?;
    make_private_dir(&dir.private()).context("cannot create private/")?;
    let store = ca_core::store::open::open(&dir.store(), &config.store, Reads::Primary)?;
    refuse_a_used_database(store.as_ref())?;
    let store: &dyn Store = store.as_ref();
    let clock = SystemClock;

    // A key made on the token is removed again if init fails later, so a re-run starts clean.
    let mut made_on_token: Vec<Vec<u8>> = Vec::new();
    #[allow(clippy::type_complexity)]
    let result = (|| -> Result<(IssuedCertificate, IssuedCertificate, NewAuditKey, Checkpoint), Failure> {
        let mut new_key =
            |section: &mut ca_core::ca_dir::CaSection, alg: KeyAlgorithm| -> Result<Box<dyn Signer>, Failure> {
                if !cli.json {
                    eprintln!(
                        "generating the {} CA key ({alg}){} …",
                        section.name,
                        if token.is_some() { " on the token" } else { "" }
                    );
                }
                match (&token, &passphrase) {
                    (Some((module, label, token)), _) => {
                        let key = token.generate_key_pair(alg, &format!("{} CA key", section.name))?;
                        made_on_token.push(key.id().to_vec());
                        section.key = Some(KeyLocation::Pkcs11 {
                            module: module.clone(),
                            token: label.clone(),
                            id: hex::encode(key.id()),
                        });
                        Ok(Box::new(key))
                    }
                    (None, Some(passphrase)) => {
                        let key = SoftwareKey::generate(alg)?;
                        hsm::write_encrypted_key_file(
                            &dir.key(&section.name),
                            &key.to_encrypted_pem(passphrase.as_bytes())?,
                        )?;
                        Ok(Box::new(key))
                    }
                    (None, None) => unreachable!("a passphrase is read when there is no token"),
                }
            };
        let root_key = new_key(&mut config.root, root_alg)?;
        let issuing_key = new_key(&mut config.issuing, issuing_alg)?;
        let root_subject = Subject::Service {
            common_name: config.root.common_name.clone(),
            organisation: config.root.organisation.clone(),
        };
        let root_cert = CertificateAuthority::create_root(
            &config.root.name,
            root_subject,
            root_key.as_ref(),
            Duration::days(config.root.validity_days.into()),
            store,
            &clock,
            &config.urls,
            &cli.actor,
            config.root.policies,
        )?;
        write_certificate(&dir, &config.root.name, &root_cert.der)?;
        let root = CertificateAuthority::new(config.root.name.clone(), root_cert.der.clone(), root_key)
            .map_err(|e| Failure::Internal(e.into()))?;
        let issuing_subject = Subject::Service {
            common_name: config.issuing.common_name.clone(),
            organisation: config.issuing.organisation.clone(),
        };
        let issuing_cert = root.create_subordinate(
            issuing_subject,
            issuing_key.public_key().clone(),
            Duration::days(config.issuing.validity_days.into()),
            store,
            &clock,
            &config.urls,
            &cli.actor,
            config.issuing.policies,
        )?;
        write_certificate(&dir, &config.issuing.name, &issuing_cert.der)?;
        // The issuing CA's CRL distribution point names the root's CRL: publish the first one
        // now, while the root key is at hand (later: `ca crl publish --root`).
        let publication = PublicationDir::lock(&dir.publish_crl())?;
        let publisher = Publisher {
            store,
            urls: &config.urls,
            actor: &cli.actor,
            ca: &root,
            dir: &publication,
            pem: false,
            now: clock.now(),
        };
        publisher.publish_root(config.crl.root_hours)?;
        // The audit key, under the same policy as the CA keys, and the first checkpoint: the
        // journal is protected from its first entries on.
        let place = match (&token, &passphrase) {
            (Some((module, label, token)), _) => AuditKeyPlace::Token { module, label, token },
            (None, Some(passphrase)) => AuditKeyPlace::File { passphrase: passphrase.as_bytes() },
            (None, None) => unreachable!("a passphrase is read when there is no token"),
        };
        let audit_key = audit_key::make(&dir, KeyAlgorithm::P256, place)?;
        if let Some(KeyLocation::Pkcs11 { id, .. }) = &audit_key.location {
            made_on_token.extend(hex::decode(id).ok());
        }
        config.server.audit_key = audit_key.location.clone();
        let checkpoint =
            audit_key::first_checkpoint(store, &dir, &config.issuing.name, &audit_key, &cli.actor, clock.now())?;
        config.write(&dir.config())?;
        Ok((root_cert, issuing_cert, audit_key, checkpoint))
    })();
    let (root_cert, issuing_cert, audit_key, checkpoint) = match result {
        Ok(certs) => certs,
        Err(e) => {
            if let Some((_, _, token)) = &token {
                for id in &made_on_token {
                    let _ = token.delete_objects_by_id(id);
                }
            }
            return Err(e);
        }
    };
    let scratch_path = scratch.keep();
    std::fs::rename(&scratch_path, &target)
        .or_else(|_| {
            // An existing empty directory cannot be replaced by rename on every platform.
            std::fs::remove_dir(&target)?;
            std::fs::rename(&scratch_path, &target)
        })
        .with_context(|| format!("cannot move the new CA into {}", target.display()))?;
    let final_dir = CaDir::new(&target);
    let report = InitReport {
        dir: target.clone(),
        root: summary(&final_dir, &config.root.name, &root_cert, root_alg),
        issuing: summary(&final_dir, &config.issuing.name, &issuing_cert, issuing_alg),
        audit_key: AuditKeySummary {
            key: match &audit_key.location {
                Some(_) => audit_key.place.clone(),
                None => format!("{} (encrypted under the CA passphrase)", final_dir.audit_key().display()),
            },
            public_key: final_dir.audit_public_key(),
            public_key_sha256: audit_key.fingerprint.clone(),
        },
        checkpoint,
    };
    let _ = clock.now();
    if cli.json {
        print_json(&report);
    } else {
        println!("Created a CA in {}", target.display());
        for ca in [&report.root, &report.issuing] {
            println!(
                "  {:<8} {} ({}), serial {}, valid until {}",
                ca.name, ca.subject, ca.key, ca.serial, ca.not_after
            );
        }
        match &token {
            Some((_, label, _)) => println!("CA keys are on the token {label:?} (non-extractable)"),
            None => println!("CA keys are encrypted (PKCS#8, PBES2/scrypt) under {}", final_dir.private().display()),
        }
        let audit = &report.audit_key;
        println!("Audit key (signs journal checkpoints): {}", audit.key);
        println!("  public key {} (SHA-256 {})", audit.public_key.display(), audit.public_key_sha256);
        println!("  Record that fingerprint away from this machine: checkpoints are verified with the key.");
        print_checkpoint(&report.checkpoint, &final_dir.audit_checkpoint());
    }
    Ok(())
}
