//! `ca ocsp init`: the delegated OCSP responder's key and certificate (id-kp-OCSPSigning,
//! id-pkix-ocsp-nocheck), issued by the issuing CA.

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
}

pub fn run(ctx: &Context, cmd: &OcspCommand) -> Outcome {
    let OcspCommand::Init(args) = cmd;
    if ctx.dir.ocsp_key().exists() || ctx.dir.ocsp_certificate().exists() {
        return Err(Failure::Already(format!(
            "an OCSP responder already exists ({}); nothing was changed",
            ctx.dir.ocsp_certificate().display()
        )));
    }
    let alg: KeyAlgorithm =
        args.key_algorithm.parse().map_err(|e: hsm::UnknownKeyAlgorithm| Failure::Input(e.to_string()))?;
    let ca = ctx.authority(&ctx.config.issuing.name)?;
    let key = SoftwareKey::generate(alg)?;
    // Responder certificates are short-lived and never on a partitioned CRL.
    let issuer =
        Issuer { validity: Duration::days(args.validity_days.into()), crl_partitions: None, ..ctx.issuer(&ca) };
    let issued = issuer.issue(&IssuanceRequest {
        profile: ProfileId::OcspResponder,
        subject: Subject::Service { common_name: "OCSP RESPONDER".into(), organisation: None },
        roles: vec![],
        public_key: key.public_key().clone(),
    })?;
    let passphrase = ctx.passphrase.read(false)?;
    hsm::write_encrypted_key_file(&ctx.dir.ocsp_key(), &key.to_encrypted_pem(passphrase.as_bytes())?)?;
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
