//! `ca card personalize` and `ca card inspect`: ID cards and SIM cards over PKCS#11 at the
//! counter (the regulation's third flow). Keys are generated on the card and never leave it.

use std::path::PathBuf;
use std::time::Instant;

use ca_core::card::{personalize, CardKeyKind, CardRequest};
use ca_core::identity::CertificateIdentity;
use ca_core::profile::ProfileId;
use ca_core::serial::SerialNumber;
use clap::{Args, Subcommand};
use der::Decode;
use serde::Serialize;

use crate::commands::issue::{check_application, subject_from_args, IssueArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::keys::open_token;
use crate::output::{print_json, when};
use crate::secrets::SecretSource;
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum CardCommand {
    /// Generate AUTH and SIGN keys on the card, issue both certificates, write them and the chain.
    Personalize(Box<PersonalizeArgs>),
    /// Show what is on a card: keys, certificates, owners and their status in this CA.
    Inspect(CardArgs),
    /// List the readers' tokens (cards) a PKCS#11 module sees.
    Tokens(TokensArgs),
}

#[derive(Args, Debug, Clone)]
pub struct TokensArgs {
    /// The card reader's PKCS#11 module.
    #[arg(long)]
    pub module: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct CardArgs {
    /// The card reader's PKCS#11 module.
    #[arg(long)]
    pub module: PathBuf,
    /// The card's token label.
    #[arg(long)]
    pub token: String,
    /// Environment variable with the card PIN (the applicant enters it; a prompt by default).
    #[arg(long, default_value = "CA_CARD_PIN", value_name = "VAR")]
    pub pin_env: String,
    /// File whose first line is the card PIN.
    #[arg(long, value_name = "PATH")]
    pub pin_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct PersonalizeArgs {
    /// The PKCS#11 module, card and PIN.
    #[command(flatten)]
    pub card: CardArgs,
    /// The confirmed card application (the counter flow); its holder comes from the registry.
    #[arg(long, conflicts_with_all = ["iin", "surname", "given_name", "bin"])]
    pub application: Option<String>,
    /// Without an application: the holder's data (CA staff re-personalizing a card).
    #[arg(long, required_unless_present = "application")]
    pub iin: Option<String>,
    /// The holder's surname (without an application).
    #[arg(long, required_unless_present = "application")]
    pub surname: Option<String>,
    /// The holder's first name (without an application).
    #[arg(long, required_unless_present = "application")]
    pub given_name: Option<String>,
    /// The holder's patronymic, written into G (without an application).
    #[arg(long)]
    pub patronymic: Option<String>,
    /// The holder's email, written into subjectAltName (without an application).
    #[arg(long)]
    pub email: Option<String>,
    /// BIN and organisation for a legal entity's employee.
    #[arg(long, requires = "org")]
    pub bin: Option<String>,
    /// The organisation's name, as the legal-entity registry writes it.
    #[arg(long, requires = "bin")]
    pub org: Option<String>,
    /// Roles (legal entities: first-head, signing-right, financial-signing, hr, employee).
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Key type generated on the card: rsa2048 (default) or p256.
    #[arg(long, default_value = "rsa2048")]
    pub key_algorithm: String,
}

fn pin_source(card: &CardArgs) -> SecretSource {
    SecretSource { what: "card PIN", env: card.pin_env.clone(), file: card.pin_file.clone() }
}

#[derive(Serialize)]
struct PersonalizeReport {
    application: Option<String>,
    certificates: Vec<ca_core::card::CardCertificate>,
    seconds: f64,
}

fn key_kind(name: &str) -> Result<CardKeyKind, Failure> {
    match name {
        "rsa2048" => Ok(CardKeyKind::Rsa2048),
        "p256" => Ok(CardKeyKind::P256),
        other => Err(Failure::Input(format!("cards get rsa2048 or p256 keys, not {other:?}"))),
    }
}

fn print_report(ctx: &Context, report: &PersonalizeReport) {
    if ctx.json {
        print_json(report);
        return;
    }
    if let Some(n) = &report.application {
        println!("application {n}: issued");
    }
    for c in &report.certificates {
        let resumed = match (c.key_resumed, c.certificate_resumed) {
            (_, true) => " (resumed: certificate issued earlier, now on the card)",
            (true, false) => " (resumed: key from an interrupted run)",
            _ => "",
        };
        println!("{:<16} {}  on the card as {:?}{resumed}", c.profile.name(), c.serial, c.label);
    }
    println!("card personalized in {:.1} s (budget for this step: 4 minutes)", report.seconds);
}

/// The counter flow: a confirmed card application, the applicant's PIN, the card.
fn personalize_application(ctx: &Context, args: &PersonalizeArgs, number: &str) -> Outcome {
    use ca_core::ra::{RegistrationAuthority, StoreRegistry};
    let started = Instant::now();
    let number: ca_core::ra::application::ApplicationNumber =
        number.parse().map_err(|e: ca_core::ra::application::BadNumber| Failure::Input(e.to_string()))?;
    let kind = key_kind(&args.key_algorithm)?;
    let module = hsm::pkcs11::Pkcs11Module::load(&args.card.module)?;
    let token = module.open_token(&hsm::pkcs11::TokenSelector::Label(args.card.token.clone()))?;
    let ca = ctx.authority(&ctx.config.issuing.name)?;
    let issuer = ctx.issuer(&ca);
    let chain = ctx.chain_der()?;
    let registry = StoreRegistry(ctx.store.as_ref());
    let verifier = crate::commands::application::Verifier::new(ctx)?;
    let signatures = verifier.check(ctx)?;
    let ra = RegistrationAuthority {
        store: ctx.store.as_ref(),
        certificates: ctx.store.as_ref(),
        registry: &registry,
        signatures: &signatures,
        clock: &ctx.clock,
        install_url: "",
        install_ttl: time::Duration::hours(72),
    };
    let pin = pin_source(&args.card);
    let login = || -> Result<(), String> {
        let secret = hsm::pkcs11::SecretPin::new(pin.read(false).map_err(|e| e.to_string())?);
        token.login(&secret).map_err(|e| e.to_string())
    };
    let (executed, certificates) =
        ra.personalize_card(&number, &issuer, &token, &login, kind, &chain, &ctx.actor).map_err(Failure::from)?;
    let report = PersonalizeReport {
        application: Some(executed.application.number.to_string()),
        certificates,
        seconds: started.elapsed().as_secs_f64(),
    };
    print_report(ctx, &report);
    Ok(())
}

fn run_personalize(ctx: &Context, args: &PersonalizeArgs) -> Outcome {
    if let Some(number) = &args.application {
        return personalize_application(ctx, args, number);
    }
    let started = Instant::now();
    let (profile, bin) = match &args.bin {
        Some(_) => (ProfileId::LegalSign, args.bin.clone()),
        None => (ProfileId::IndividualSign, None),
    };
    let subject = subject_from_args(
        &IssueArgs {
            profile: profile.name().into(),
            iin: args.iin.clone(),
            surname: args.surname.clone(),
            given_name: args.given_name.clone(),
            patronymic: args.patronymic.clone(),
            email: args.email.clone(),
            bin,
            org: args.org.clone(),
            ..Default::default()
        },
        profile,
    )?;
    let roles = check_application(profile, &subject, &args.roles)?;
    let key_kind = key_kind(&args.key_algorithm)?;
    // The applicant's PIN first: a wrong PIN stops here, before anything is issued.
    let token = open_token(&args.card.module, &args.card.token, &pin_source(&args.card))?;
    let ca = ctx.authority(&ctx.config.issuing.name)?;
    let issuer = ctx.issuer(&ca);
    let chain = ctx.chain_der()?;
    let request = CardRequest { subject, roles, key_kind };
    let certificates = personalize(&token, &issuer, &request, &chain).map_err(|e| Failure::Internal(e.into()))?;
    let report = PersonalizeReport { application: None, certificates, seconds: started.elapsed().as_secs_f64() };
    print_report(ctx, &report);
    Ok(())
}

#[derive(Serialize)]
struct InspectedCertificate {
    label: String,
    id: String,
    serial: String,
    identity: CertificateIdentity,
    not_before: String,
    not_after: String,
    /// Status in this CA's store; `None` for a certificate this CA does not know.
    status: Option<String>,
}

fn run_inspect(ctx: &Context, args: &CardArgs) -> Outcome {
    let token = open_token(&args.module, &args.token, &pin_source(args))?;
    let objects = token.list_objects()?;
    let mut keys = Vec::new();
    let mut certificates = Vec::new();
    for o in &objects {
        match &o.certificate_der {
            Some(der) => {
                let Ok(cert) = x509_cert::Certificate::from_der(der) else { continue };
                let serial = SerialNumber::from_bytes(cert.tbs_certificate.serial_number.as_bytes()).ok();
                let status = match &serial {
                    Some(s) => ctx.store.certificate(s)?.map(|r| match r.revocation {
                        Some(rev) => format!("revoked ({})", rev.reason),
                        None => r.status.as_str().to_owned(),
                    }),
                    None => None,
                };
                let v = &cert.tbs_certificate.validity;
                let t = |x: &x509_cert::time::Time| {
                    time::OffsetDateTime::from_unix_timestamp(x.to_unix_duration().as_secs() as i64)
                        .map(when)
                        .unwrap_or_default()
                };
                certificates.push(InspectedCertificate {
                    label: o.label.clone(),
                    id: o.id_hex(),
                    serial: serial.map(|s| s.to_hex()).unwrap_or_default(),
                    identity: CertificateIdentity::from_certificate(&cert),
                    not_before: t(&v.not_before),
                    not_after: t(&v.not_after),
                    status,
                });
            }
            None => keys.push(o),
        }
    }
    if ctx.json {
        print_json(&serde_json::json!({ "token": args.token, "keys": keys, "certificates": certificates }));
        return Ok(());
    }
    println!("token {:?}: {} key objects, {} certificates", args.token, keys.len(), certificates.len());
    for k in keys {
        let protection = k.private_key.as_ref().map_or(String::new(), |p| {
            format!(
                "  extractable={:?} never_extractable={:?}",
                p.extractable.unwrap_or(true),
                p.never_extractable.unwrap_or(false)
            )
        });
        println!("  {:?} {:<20} id {}{protection}", k.class, k.label, k.id_hex());
    }
    for c in certificates {
        let who = match (c.identity.iin, c.identity.bin) {
            (Some(i), Some(b)) => format!("IIN {i}, BIN {b}"),
            (Some(i), None) => format!("IIN {i}"),
            _ => c.identity.common_name.clone().unwrap_or_default(),
        };
        println!(
            "  certificate {:<20} id {}  {who}  {} .. {}  {}",
            c.label,
            c.id,
            c.not_before,
            c.not_after,
            c.status.as_deref().unwrap_or("not issued by this CA")
        );
    }
    Ok(())
}

pub fn run(ctx: &Context, cmd: &CardCommand) -> Outcome {
    match cmd {
        CardCommand::Personalize(args) => run_personalize(ctx, args),
        CardCommand::Inspect(args) => run_inspect(ctx, args),
        CardCommand::Tokens(args) => run_tokens(ctx, args),
    }
}

fn run_tokens(ctx: &Context, args: &TokensArgs) -> Outcome {
    let module = hsm::pkcs11::Pkcs11Module::load(&args.module)?;
    let tokens = module.tokens()?;
    if ctx.json {
        print_json(&tokens);
        return Ok(());
    }
    if tokens.is_empty() {
        println!("no token present");
    }
    for t in tokens {
        let free = match (t.free_public_memory, t.free_private_memory) {
            (Some(p), Some(q)) => format!("free {p} B public, {q} B private"),
            _ => "free space not reported".to_owned(),
        };
        println!("{:<24} serial {:<18} {} {}  PIN {:?}  {free}", t.label, t.serial, t.manufacturer, t.model, t.pin);
    }
    Ok(())
}
