//! `ca ocsp init`: the delegated OCSP responder's key and certificate (id-kp-OCSPSigning,
//! id-pkix-ocsp-nocheck), issued by the issuing CA.

use std::path::PathBuf;

use ca_core::ca_dir::KeyLocation;
use ca_core::identity::Subject;
use ca_core::issuer::{IssuanceRequest, Issuer};
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use clap::{Args, Subcommand};
use hsm::{KeyAlgorithm, SoftwareKey};
use time::Duration;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum OcspCommand {
    /// Create the OCSP responder's key (encrypted under the CA passphrase) and certificate.
    Init(OcspInitArgs),
}

#[derive(Args, Debug, Clone)]
pub struct OcspInitArgs {
    /// Responder key: rsa2048 (default), p256, rsa3072, p384.
    #[arg(long, default_value = "rsa2048")]
    pub key_algorithm: String,
    /// Validity of the responder certificate in days (it carries ocsp-nocheck, so keep it short).
    #[arg(long, default_value_t = 90)]
    pub validity_days: u32,
    /// Generate the responder key on this PKCS#11 module's token (HSM) instead of a file.
    #[arg(long, requires = "hsm_token")]
    pub hsm_module: Option<PathBuf>,
    /// Label of that token; its PIN comes from CA_HSM_PIN / --hsm-pin-file.
    #[arg(long, requires = "hsm_module")]
    pub hsm_token: Option<String>,
}

pub fn run(ctx: &Context, cmd: &OcspCommand) -> Outcome {
    let OcspCommand::Init(args) = cmd;
    if ctx.dir.ocsp_key().exists() || ctx.dir.ocsp_certificate().exists() || ctx.config.server.ocsp_key.is_some() {
        return Err(Failure::Already(format!(
            "an OCSP responder already exists ({}); nothing was changed",
            ctx.dir.ocsp_certificate().display()
        )));
    }
    let alg: KeyAlgorithm =
        args.key_algorithm.parse().map_err(|e: hsm::UnknownKeyAlgorithm| Failure::Input(e.to_string()))?;
    let ca = ctx.authority(&ctx.config.issuing.name)?;
    // Responder certificates are short-lived and never on a partitioned CRL.
    let issuer =
        Issuer { validity: Duration::days(args.validity_days.into()), crl_partitions: None, ..ctx.issuer(&ca) };
    let issue = |key: &dyn Signer| {
        issuer.issue(&IssuanceRequest {
            profile: ProfileId::OcspResponder,
            subject: Subject::Service { common_name: "OCSP RESPONDER".into(), organisation: None },
            roles: vec![],
            public_key: key.public_key().clone(),
        })
    };
    let issued = match (&args.hsm_module, &args.hsm_token) {
        (Some(module), Some(label)) => {
            // Made on the token, never extractable; removed again if issuance fails.
            let token = crate::keys::open_token(module, label, &ctx.hsm_pin)?;
            let key = token.generate_key_pair(alg, "OCSP responder key")?;
            let issued = issue(&key).inspect_err(|_| {
                let _ = token.delete_objects_by_id(key.id());
            })?;
            let mut config = ctx.config.clone();
            config.server.ocsp_key =
                Some(KeyLocation::Pkcs11 { module: module.clone(), token: label.clone(), id: hex::encode(key.id()) });
            let tmp = ctx.dir.config().with_extension("toml.tmp");
            config.write(&tmp)?;
            std::fs::rename(&tmp, ctx.dir.config()).map_err(|e| Failure::Internal(e.into()))?;
            issued
        }
        _ => {
            let passphrase = ctx.passphrase.read(false)?;
            let key = SoftwareKey::generate(alg)?;
            let pem = key.to_encrypted_pem(passphrase.as_bytes())?;
            let issued = issue(&key)?;
            hsm::write_encrypted_key_file(&ctx.dir.ocsp_key(), &pem)?;
            issued
        }
    };
    std::fs::write(ctx.dir.ocsp_certificate(), crate::pem::encode("CERTIFICATE", &issued.der)?)
        .map_err(|e| Failure::Internal(e.into()))?;
    if ctx.json {
        print_json(&serde_json::json!({
            "serial": issued.serial, "certificate": ctx.dir.ocsp_certificate(), "not_after": when(issued.not_after),
        }));
    } else {
        println!("OCSP responder certificate {} ({alg}), valid until {}", issued.serial, when(issued.not_after));
        println!("  {}", ctx.dir.ocsp_certificate().display());
    }
    Ok(())
}
