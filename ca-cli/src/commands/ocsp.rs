//! `ca ocsp init` and `ca ocsp renew`: the delegated OCSP responder's key and certificate
//! (id-kp-OCSPSigning, id-pkix-ocsp-nocheck, 90 days), issued by the issuing CA; see
//! [`crate::service_keys`] for where the key goes and how a renewal replaces it.
//!
//! A delegated responder answers only for the CA that issued its certificate (RFC 6960
//! 4.2.2.2), so each issuing CA generation has its own (`--ca NAME` for a retired one, after
//! `ca rollover issuing`): `certs/ocsp.pem` for the current one, `certs/ocsp-<name>.pem` for
//! the others. The server routes each request by its CertID.

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
    /// The issuing CA generation it answers for, by name (default: the current issuing CA).
    #[arg(long, value_name = "NAME")]
    pub ca: Option<String>,
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
    /// The issuing CA generation whose responder to renew, by name (default: the current one).
    #[arg(long, value_name = "NAME")]
    pub ca: Option<String>,
    #[command(flatten)]
    pub hsm: HsmArgs,
}

pub fn run(ctx: &Context, cmd: &OcspCommand) -> Outcome {
    match cmd {
        OcspCommand::Init(args) => init(ctx, args),
        OcspCommand::Renew(args) => renew(ctx, args),
    }
}

/// The responder of the issuing CA generation `ca` (default: the current one), and its CA's name.
fn responder_of<'c>(ctx: &'c Context, ca: Option<&'c str>) -> Result<(Service, &'c str), Failure> {
    match ca {
        None => Ok((Service::Ocsp, &ctx.config.issuing.name)),
        Some(name) if name == ctx.config.issuing.name => Ok((Service::Ocsp, name)),
        Some(name) => match ctx.config.retired.iter().position(|r| r.name == name) {
            Some(i) => Ok((Service::RetiredOcsp(i), name)),
            None => Err(Failure::NotFound(format!(
                "no issuing CA named {name} in ca.toml (generations: {})",
                ctx.config.issuing_names().collect::<Vec<_>>().join(", ")
            ))),
        },
    }
}

fn init(ctx: &Context, args: &OcspInitArgs) -> Outcome {
    let (service, ca) = responder_of(ctx, args.ca.as_deref())?;
    if service.exists(ctx) {
        let renew = args.ca.as_ref().map_or(String::new(), |ca| format!(" --ca {ca}"));
        return Err(Failure::Already(format!(
            "an OCSP responder already exists ({}); nothing was changed (to replace it: ca ocsp renew{renew})",
            service.certificate_file(ctx).display()
        )));
    }
    let alg = service_keys::parse_algorithm(&args.key_algorithm)?;
    let key = ServiceKey::generate(ctx, service, alg, args.hsm.token())?;
    certify(ctx, service, ca, key, args.validity_days, false)
}

fn renew(ctx: &Context, args: &OcspRenewArgs) -> Outcome {
    let (service, ca) = responder_of(ctx, args.ca.as_deref())?;
    if !service.exists(ctx) {
        let init = args.ca.as_ref().map_or(String::new(), |ca| format!(" --ca {ca}"));
        return Err(Failure::NotFound(format!("no OCSP responder yet: run `ca ocsp init{init}`")));
    }
    let key = ServiceKey::renewal(ctx, service, args.keep_key, args.key_algorithm.as_deref(), args.hsm.token())?;
    certify(ctx, service, ca, key, args.validity_days, true)
}

/// Issue the responder certificate for `key` from the CA `ca_name` and put both in place.
fn certify(
    ctx: &Context,
    service: Service,
    ca_name: &str,
    key: ServiceKey,
    validity_days: u32,
    replace: bool,
) -> Outcome {
    let issued = (|| {
        let ca = ctx.authority(ca_name)?;
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
    let place = key.install(ctx, service, &issued, replace)?;
    let path = service.certificate_file(ctx);
    service_keys::report(ctx, "OCSP responder certificate", &issued, &kind, &place, &path, replace);
    Ok(())
}
