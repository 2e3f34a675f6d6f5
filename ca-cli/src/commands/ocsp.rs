//! `ca ocsp init` and `ca ocsp renew`: the delegated OCSP responder's key and certificate
//! (id-kp-OCSPSigning, id-pkix-ocsp-nocheck, 90 days), issued by the issuing CA; see
//! [`crate::service_keys`] for where the key goes and how a renewal replaces it.

use ca_core::identity::Subject;
use ca_core::issuer::{IssuanceRequest, Issuer};
use ca_core::profile::ProfileId;
use clap::{Args, Subcommand};
use time::Duration;

use crate::context::Context;
use crate::failure::Failure;
use crate::service_keys::{self, HsmArgs, Service, ServiceKey};
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
    #[command(flatten)]
    pub hsm: HsmArgs,
}

#[derive(Args, Debug, Clone)]
pub struct OcspRenewArgs {
    /// Certify the key in use again instead of making a new one.
    #[arg(long, conflicts_with_all = ["key_algorithm", "hsm_module", "hsm_token"])]
    pub keep_key: bool,
    /// Algorithm of the new key (default: the current key's).
    #[arg(long)]
    pub key_algorithm: Option<String>,
    /// Validity of the new responder certificate in days.
    #[arg(long, default_value_t = 90)]
    pub validity_days: u32,
    #[command(flatten)]
    pub hsm: HsmArgs,
}

pub fn run(ctx: &Context, cmd: &OcspCommand) -> Outcome {
    match cmd {
        OcspCommand::Init(args) => init(ctx, args),
        OcspCommand::Renew(args) => renew(ctx, args),
    }
}

fn init(ctx: &Context, args: &OcspInitArgs) -> Outcome {
    if Service::Ocsp.exists(ctx) {
        return Err(Failure::Already(format!(
            "an OCSP responder already exists ({}); nothing was changed (to replace it: ca ocsp renew)",
            ctx.dir.ocsp_certificate().display()
        )));
    }
    let alg = service_keys::parse_algorithm(&args.key_algorithm)?;
    let key = ServiceKey::generate(ctx, Service::Ocsp, alg, args.hsm.token())?;
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
            Some(name) => service_keys::parse_algorithm(name)?,
            None => service_keys::algorithm_of(&ctx.dir.ocsp_certificate())?,
        };
        ServiceKey::generate(ctx, Service::Ocsp, alg, args.hsm.token())?
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
    let path = ctx.dir.ocsp_certificate();
    service_keys::report(ctx, "OCSP responder certificate", &issued, &kind, &place, &path, replace);
    Ok(())
}
