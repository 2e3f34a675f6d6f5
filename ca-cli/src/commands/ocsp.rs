//! `ca ocsp init` and `ca ocsp renew`: the delegated OCSP responder's key and certificate
//! (id-kp-OCSPSigning, id-pkix-ocsp-nocheck, 90 days), issued by the issuing CA; see
//! [`crate::service_keys`] for where the key goes and how a renewal replaces it.

use std::path::PathBuf;

use ca_core::identity::Subject;
use ca_core::issuer::{IssuanceRequest, Issuer};
use ca_core::profile::ProfileId;
use clap::{Args, Subcommand};
use hsm::KeyAlgorithm;
use time::Duration;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::service_keys::{self, Service, ServiceKey, TokenArgs};
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum OcspCommand {
    /// Create the OCSP responder's key (encrypted under the CA passphrase) and certificate.
    Init(OcspInitArgs),
    /// A new responder certificate (and by default a new key) before the old one expires; a
    /// running server switches to it without a restart.
    Renew(OcspRenewArgs),
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

#[derive(Args, Debug, Clone)]
pub struct OcspRenewArgs {
    /// Certify the key in use again instead of making a new one.
    #[arg(long, conflicts_with_all = ["key_algorithm", "hsm_module"])]
    pub keep_key: bool,
    /// Algorithm of the new key (default: the current key's).
    #[arg(long)]
    pub key_algorithm: Option<String>,
    /// Validity of the new responder certificate in days.
    #[arg(long, default_value_t = 90)]
    pub validity_days: u32,
    /// Make the new key on this PKCS#11 module's token (default: where the current key is).
    #[arg(long, requires = "hsm_token")]
    pub hsm_module: Option<PathBuf>,
    /// Label of that token.
    #[arg(long, requires = "hsm_module")]
    pub hsm_token: Option<String>,
}

pub fn run(ctx: &Context, cmd: &OcspCommand) -> Outcome {
    match cmd {
        OcspCommand::Init(args) => init(ctx, args),
        OcspCommand::Renew(args) => renew(ctx, args),
    }
}

fn parse_algorithm(name: &str) -> Result<KeyAlgorithm, Failure> {
    name.parse().map_err(|e: hsm::UnknownKeyAlgorithm| Failure::Input(e.to_string()))
}

fn init(ctx: &Context, args: &OcspInitArgs) -> Outcome {
    if Service::Ocsp.exists(ctx) {
        return Err(Failure::Already(format!(
            "an OCSP responder already exists ({}); nothing was changed (to replace it: ca ocsp renew)",
            ctx.dir.ocsp_certificate().display()
        )));
    }
    let alg = parse_algorithm(&args.key_algorithm)?;
    let token =
        args.hsm_module.as_deref().zip(args.hsm_token.as_deref()).map(|(module, label)| TokenArgs { module, label });
    let key = ServiceKey::generate(ctx, Service::Ocsp, alg, token)?;
    certify(ctx, key, args.validity_days, false)
}

fn renew(ctx: &Context, args: &OcspRenewArgs) -> Outcome {
    if !Service::Ocsp.exists(ctx) {
        return Err(Failure::NotFound("no OCSP responder yet: run `ca ocsp init`".into()));
    }
    let key = if args.keep_key {
        ServiceKey::current(ctx, Service::Ocsp)?
    } else {
        let alg = match &args.key_algorithm {
            Some(name) => parse_algorithm(name)?,
            None => service_keys::algorithm_of(&ctx.dir.ocsp_certificate())?,
        };
        let token = args
            .hsm_module
            .as_deref()
            .zip(args.hsm_token.as_deref())
            .map(|(module, label)| TokenArgs { module, label });
        ServiceKey::generate(ctx, Service::Ocsp, alg, token)?
    };
    certify(ctx, key, args.validity_days, true)
}

/// Issue the responder certificate for `key` and put both in place.
fn certify(ctx: &Context, key: ServiceKey, validity_days: u32, replace: bool) -> Outcome {
    let issued = (|| {
        let ca = ctx.authority(&ctx.config.issuing.name)?;
        // Responder certificates are short-lived and never on a partitioned CRL.
        let issuer = Issuer { validity: Duration::days(validity_days.into()), crl_partitions: None, ..ctx.issuer(&ca) };
        Ok::<_, Failure>(issuer.issue(&IssuanceRequest {
            profile: ProfileId::OcspResponder,
            subject: Subject::Service { common_name: "OCSP RESPONDER".into(), organisation: None },
            roles: vec![],
            public_key: key.signer().public_key().clone(),
        })?)
    })()
    .inspect_err(|_| key.discard())?;
    let kind = ca_core::keys::check_key_policy(key.signer().public_key()).map(|k| k.to_string()).unwrap_or_default();
    let place = key.install(ctx, Service::Ocsp, &issued, replace)?;
    if ctx.json {
        print_json(&serde_json::json!({
            "serial": issued.serial, "certificate": ctx.dir.ocsp_certificate(), "key": place,
            "not_after": when(issued.not_after),
        }));
    } else {
        let verb = if replace { "renewed" } else { "made" };
        println!(
            "OCSP responder certificate {} {verb} ({kind}), valid until {}",
            issued.serial,
            when(issued.not_after)
        );
        println!("  {}", ctx.dir.ocsp_certificate().display());
        println!("  key: {place}");
        if replace {
            println!("A running server switches to it within [server] reload_seconds, or at once on SIGHUP.");
        }
    }
    Ok(())
}
