//! `ca tsa init|renew|show`: the time-stamping authority's key and certificate (profile `tsa`:
//! critical extendedKeyUsage id-kp-timeStamping, digitalSignature), issued by the current
//! issuing CA; the key in `private/tsa.key.pem` encrypted under the CA passphrase or on a
//! PKCS#11 token (`--hsm-module/--hsm-token`, recorded as `[tsa] key` in ca.toml). See
//! [`crate::service_keys`] for how a renewal replaces the pair while the server runs.

use ca_core::identity::Subject;
use ca_core::issuer::{IssuanceRequest, Issuer};
use ca_core::profile::ProfileId;
use ca_core::store::AuditEvent;
use clap::{Args, Subcommand};
use time::Duration;

use crate::context::Context;
use crate::failure::Failure;
use crate::service_keys::{self, HsmArgs, Service, ServiceKey};
use crate::Outcome;

/// The subject common name of the TSA certificate (RFC 3161 tokens name it as `tsa`).
pub const TSA_COMMON_NAME: &str = "TIME-STAMPING AUTHORITY";

#[derive(Subcommand, Debug)]
pub enum TsaCommand {
    /// Create the TSA key (encrypted under the CA passphrase, or on a token) and certificate.
    Init(TsaInitArgs),
    /// A new TSA certificate (and by default a new key) before the old one expires; a running
    /// server switches to it without a restart.
    Renew(TsaRenewArgs),
    /// The TSA certificate, where its key is, and the `[tsa]` settings.
    Show,
}

#[derive(Args, Debug, Clone)]
pub struct TsaInitArgs {
    /// TSA key: rsa2048 (default), p256, rsa3072, p384.
    #[arg(long, default_value = "rsa2048")]
    pub key_algorithm: String,
    /// Validity of the TSA certificate in days (tokens stay verifiable after it: they are
    /// checked at their genTime).
    #[arg(long, default_value_t = 365)]
    pub validity_days: u32,
    #[command(flatten)]
    pub hsm: HsmArgs,
}

#[derive(Args, Debug, Clone)]
pub struct TsaRenewArgs {
    /// Certify the key in use again instead of making a new one.
    #[arg(long, conflicts_with_all = ["key_algorithm", "hsm_module", "hsm_token"])]
    pub keep_key: bool,
    /// Algorithm of the new key (default: the current key's).
    #[arg(long)]
    pub key_algorithm: Option<String>,
    /// Validity of the new TSA certificate in days.
    #[arg(long, default_value_t = 365)]
    pub validity_days: u32,
    #[command(flatten)]
    pub hsm: HsmArgs,
}

pub fn run(ctx: &Context, cmd: &TsaCommand) -> Outcome {
    match cmd {
        TsaCommand::Init(args) => init(ctx, args),
        TsaCommand::Renew(args) => renew(ctx, args),
        TsaCommand::Show => show(ctx),
    }
}

fn init(ctx: &Context, args: &TsaInitArgs) -> Outcome {
    let service = Service::Tsa;
    if service.exists(ctx) {
        return Err(Failure::Already(format!(
            "a time-stamping authority already exists ({}); nothing was changed (to replace it: ca tsa renew)",
            service.certificate_file(ctx).display()
        )));
    }
    let alg = service_keys::parse_algorithm(&args.key_algorithm)?;
    let key = ServiceKey::generate(ctx, service, alg, args.hsm.token())?;
    certify(ctx, key, args.validity_days, false)
}

fn renew(ctx: &Context, args: &TsaRenewArgs) -> Outcome {
    let service = Service::Tsa;
    if !service.exists(ctx) {
        return Err(Failure::NotFound("no time-stamping authority yet: run `ca tsa init`".into()));
    }
    let key = ServiceKey::renewal(ctx, service, args.keep_key, args.key_algorithm.as_deref(), args.hsm.token())?;
    certify(ctx, key, args.validity_days, true)
}

/// Issue the TSA certificate for `key` from the current issuing CA, put both in place and
/// journal it (`tsa.init` / `tsa.renew`).
fn certify(ctx: &Context, key: ServiceKey, validity_days: u32, replace: bool) -> Outcome {
    let service = Service::Tsa;
    let issued = (|| {
        let ca = ctx.authority(&ctx.config.issuing.name)?;
        Ok::<_, Failure>(
            Issuer { validity: Duration::days(validity_days.into()), crl_partitions: None, ..ctx.issuer(&ca) }.issue(
                &IssuanceRequest {
                    profile: ProfileId::TimeStamping,
                    subject: Subject::Service { common_name: TSA_COMMON_NAME.into(), organisation: None },
                    roles: vec![],
                    public_key: key.signer().public_key().clone(),
                },
            )?,
        )
    })()
    .inspect_err(|_| key.discard())?;
    let kind = ca_core::keys::check_key_policy(key.signer().public_key()).map(|k| k.to_string()).unwrap_or_default();
    let place = key.install(ctx, service, &issued, replace)?;
    let event = AuditEvent::new(&ctx.actor, if replace { "tsa.renew" } else { "tsa.init" })
        .target(issued.serial.to_string())
        .details(serde_json::json!({ "key": place, "key_kind": kind }));
    ctx.store.append_audit(&event)?;
    let path = service.certificate_file(ctx);
    service_keys::report(ctx, "TSA certificate", &issued, &kind, &place, &path, replace);
    Ok(())
}

fn show(ctx: &Context) -> Outcome {
    use crate::output::{print_json, when};
    let service = Service::Tsa;
    let path = service.certificate_file(ctx);
    if !path.exists() {
        return Err(Failure::NotFound("no time-stamping authority yet: run `ca tsa init`".into()));
    }
    let own = ca_core::expiry::OwnCertificate::read(ca_core::expiry::Role::Tsa, "tsa", &path)
        .map_err(|e| Failure::Input(e.to_string()))?;
    let tsa = &ctx.config.tsa;
    let key = match &tsa.key {
        Some(ca_core::ca_dir::KeyLocation::Pkcs11 { token, id, .. }) => format!("token {token:?}, CKA_ID {id}"),
        _ => format!("{} (encrypted under the CA passphrase)", service.key_file(ctx).display()),
    };
    if ctx.json {
        print_json(&serde_json::json!({
            "serial": own.serial, "subject": own.subject, "not_before": when(own.not_before),
            "not_after": when(own.not_after), "sha256": own.sha256, "certificate": path, "key": key,
            "enabled": tsa.enabled, "policy": tsa.policy, "accepted_policies": tsa.accepted_policies,
            "accuracy_millis": tsa.accuracy_millis, "tsa_name": tsa.tsa_name,
        }));
        return Ok(());
    }
    println!("TSA certificate {} ({})", own.serial, own.subject);
    println!("  valid {} to {}", when(own.not_before), when(own.not_after));
    println!("  SHA-256 {}", own.sha256);
    println!("  {}", path.display());
    println!("  key: {key}");
    let state = if tsa.enabled { "enabled" } else { "disabled ([tsa] enabled = false)" };
    println!("POST /tsa {state}; policy {}, accuracy {} ms", tsa.policy, tsa.accuracy_millis);
    if !tsa.accepted_policies.is_empty() {
        println!("  also accepts policies {}", tsa.accepted_policies.join(", "));
    }
    Ok(())
}
