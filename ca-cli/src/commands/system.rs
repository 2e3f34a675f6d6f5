//! `ca system init|renew|token`: the service's own signing identity behind
//! `POST /api/v1/cms/sign` (a portal signing its answers to counter workstations). `init` makes
//! the key (encrypted under the CA passphrase, like the OCSP responder's, or on a token) and a
//! SIGN certificate for it in `<ca dir>/system/`; `renew` replaces them (same subject and
//! roles, read from the certificate in use) without stopping the server; `token` makes a bearer
//! token for one calling system, prints it once and keeps only its SHA-256 in
//! `<ca dir>/system/api-tokens` ([`ca_core::api_tokens`]); `token list|revoke` show and
//! withdraw them, and a running server refuses a revoked token from its next request on.

use base64::Engine;
use ca_core::api_tokens::{self, ApiToken, TokenListError};
use ca_core::identity::{name_attribute, CertificateIdentity, Organisation, Person, Subject, GIVEN_NAME};
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::{ProfileId, Role};
use ca_core::store::AuditEvent;
use clap::{Args, Subcommand};
use rand_core::{OsRng, RngCore};

use crate::commands::issue::{check_application, subject_from_args, IssueArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::service_keys::{self, HsmArgs, Service, ServiceKey};
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Create the service's signing key (encrypted under the CA passphrase) and certificate.
    Init(Box<SystemInitArgs>),
    /// A new system certificate (and by default a new key) for the same subject and roles; a
    /// running server switches to it without a restart.
    Renew(SystemRenewArgs),
    /// Bearer tokens of the systems allowed to call /api/v1/cms/sign: `--label NAME` makes one
    /// (printed once); `list`, `revoke ID`.
    Token(SystemTokenArgs),
}

#[derive(Args, Debug, Clone)]
pub struct SystemRenewArgs {
    /// Certify the key in use again instead of making a new one.
    #[arg(long, conflicts_with_all = ["key_algorithm", "hsm_module", "hsm_token"])]
    pub keep_key: bool,
    /// Algorithm of the new key (default: the current key's).
    #[arg(long)]
    pub key_algorithm: Option<String>,
    #[command(flatten)]
    pub hsm: HsmArgs,
}

#[derive(Args, Debug, Clone)]
pub struct SystemInitArgs {
    /// legal-sign (default: the organisation that runs the service) or individual-sign.
    #[arg(long, default_value = "legal-sign")]
    pub profile: String,
    /// The responsible person's IIN.
    #[arg(long)]
    pub iin: String,
    /// The responsible person's surname.
    #[arg(long)]
    pub surname: String,
    /// The responsible person's first name.
    #[arg(long)]
    pub given_name: String,
    /// The responsible person's patronymic, written into G.
    #[arg(long)]
    pub patronymic: Option<String>,
    /// Email, written into subjectAltName.
    #[arg(long)]
    pub email: Option<String>,
    /// BIN of the organisation (legal-sign).
    #[arg(long)]
    pub bin: Option<String>,
    /// Name of the organisation (legal-sign).
    #[arg(long)]
    pub org: Option<String>,
    /// Role of the responsible person (repeatable; legal-sign needs one, e.g. signing-right).
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// rsa2048 (default from ca.toml), rsa3072, rsa4096, p256, p384.
    #[arg(long)]
    pub key_algorithm: Option<String>,
    #[command(flatten)]
    pub hsm: HsmArgs,
}

#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SystemTokenArgs {
    /// Make a token for this caller (kept next to its hash in the list).
    #[arg(long, required = true)]
    pub label: Option<String>,
    #[command(subcommand)]
    pub action: Option<TokenAction>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum TokenAction {
    /// The tokens: id, label, created; with --all the revoked ones too.
    List {
        /// Also list the revoked tokens (with when they were revoked).
        #[arg(long)]
        all: bool,
    },
    /// Withdraw a token by its id (as `list` shows it, or its first 8+ hex digits).
    Revoke {
        /// The token's id, as `ca system token list` shows it (or its first 8+ hex digits).
        id: String,
    },
}

pub fn run(ctx: &Context, cmd: &SystemCommand) -> Outcome {
    match cmd {
        SystemCommand::Init(args) => init(ctx, args),
        SystemCommand::Renew(args) => renew(ctx, args),
        SystemCommand::Token(SystemTokenArgs { action: Some(TokenAction::List { all }), .. }) => list_tokens(ctx, *all),
        SystemCommand::Token(SystemTokenArgs { action: Some(TokenAction::Revoke { id }), .. }) => revoke_token(ctx, id),
        SystemCommand::Token(SystemTokenArgs { label: Some(label), action: None }) => token(ctx, label),
        SystemCommand::Token(SystemTokenArgs { label: None, action: None }) => {
            Err(Failure::Input("give --label NAME, or list / revoke ID".into()))
        }
    }
}

fn init(ctx: &Context, args: &SystemInitArgs) -> Outcome {
    if Service::System.exists(ctx) {
        return Err(Failure::Already(format!(
            "a system key already exists ({}); nothing was changed (to replace it: ca system renew)",
            ctx.dir.system_certificate().display()
        )));
    }
    let profile: ProfileId =
        args.profile.parse().map_err(|e: ca_core::profile::UnknownProfile| Failure::Input(e.to_string()))?;
    if !matches!(profile, ProfileId::LegalSign | ProfileId::IndividualSign) {
        return Err(Failure::Input(format!(
            "the system key signs documents: use legal-sign or individual-sign, not {profile}"
        )));
    }
    let as_issue = IssueArgs {
        profile: args.profile.clone(),
        iin: Some(args.iin.clone()),
        surname: Some(args.surname.clone()),
        given_name: Some(args.given_name.clone()),
        patronymic: args.patronymic.clone(),
        email: args.email.clone(),
        bin: args.bin.clone(),
        org: args.org.clone(),
        roles: args.roles.clone(),
        ..Default::default()
    };
    let subject = subject_from_args(&as_issue, profile)?;
    let roles = check_application(profile, &subject, &args.roles)?;
    let alg =
        service_keys::parse_algorithm(args.key_algorithm.as_deref().unwrap_or(&ctx.config.end_entity.key_algorithm))?;
    std::fs::create_dir_all(ctx.dir.system()).map_err(|e| Failure::Internal(e.into()))?;
    let key = ServiceKey::generate(ctx, Service::System, alg, args.hsm.token())?;
    certify(ctx, key, profile, subject, roles, false)
}

fn renew(ctx: &Context, args: &SystemRenewArgs) -> Outcome {
    if !Service::System.exists(ctx) {
        return Err(Failure::NotFound("no system key yet: run `ca system init`".into()));
    }
    let cert_path = ctx.dir.system_certificate();
    let text = std::fs::read_to_string(&cert_path)
        .map_err(|e| Failure::NotFound(format!("cannot read {}: {e}", cert_path.display())))?;
    let current = crate::pem::decode("CERTIFICATE", &text)?;
    let (profile, subject, roles) = application_of(&current)?;
    let key =
        ServiceKey::renewal(ctx, Service::System, args.keep_key, args.key_algorithm.as_deref(), args.hsm.token())?;
    certify(ctx, key, profile, subject, roles, true)
}

/// What the system certificate in use was issued for: profile, subject and roles, so that a
/// renewal certifies the same (and the issuer checks it all again).
fn application_of(der: &[u8]) -> Result<(ProfileId, Subject, Vec<Role>), Failure> {
    use der::Decode;
    use x509_cert::der::oid::db::rfc4519;
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| Failure::Internal(e.into()))?;
    let id = CertificateIdentity::from_certificate(&cert);
    let subject = &cert.tbs_certificate.subject;
    let missing = |what: &str| Failure::Input(format!("the system certificate has no {what}: renew cannot repeat it"));
    let surname = id.surname.clone().ok_or_else(|| missing("surname"))?;
    let common_name = id.common_name.clone().ok_or_else(|| missing("common name"))?;
    // CN is "SURNAME GIVEN-NAME" in this profile.
    let given_name =
        common_name.strip_prefix(&format!("{surname} ")).map(str::to_owned).ok_or_else(|| missing("given name"))?;
    let person = Person {
        iin: id.iin.ok_or_else(|| missing("IIN"))?,
        surname,
        given_name,
        patronymic: name_attribute(subject, GIVEN_NAME),
        email: id.email.clone(),
    };
    let (profile, subject) = match (id.bin, name_attribute(subject, rfc4519::O)) {
        (Some(bin), Some(name)) => {
            (ProfileId::LegalSign, Subject::Employee { person, organisation: Organisation { bin, name } })
        }
        _ => (ProfileId::IndividualSign, Subject::Individual(person)),
    };
    Ok((profile, subject, id.roles))
}

/// Issue the system certificate for `key` and put both in place.
fn certify(
    ctx: &Context,
    key: ServiceKey,
    profile: ProfileId,
    subject: Subject,
    roles: Vec<Role>,
    replace: bool,
) -> Outcome {
    let issued = (|| {
        let ca = ctx.authority(&ctx.config.issuing.name)?;
        Ok::<_, Failure>(ctx.issuer(&ca).issue(&IssuanceRequest {
            profile,
            subject,
            roles,
            public_key: key.signer().public_key().clone(),
        })?)
    })()
    .inspect_err(|_| key.discard())?;
    let kind = ca_core::keys::check_key_policy(key.signer().public_key()).map(|k| format!("{k}, {profile}"));
    let place = key.install(ctx, Service::System, &issued, replace)?;
    let path = ctx.dir.system_certificate();
    service_keys::report(ctx, "System certificate", &issued, &kind.unwrap_or_default(), &place, &path, replace);
    if !replace && !ctx.json {
        println!("Restart the server to use it; allow callers with `ca system token --label NAME`.");
    }
    Ok(())
}

fn token_failure(e: TokenListError) -> Failure {
    match e {
        TokenListError::UnknownId(_) => Failure::NotFound(e.to_string()),
        TokenListError::Ambiguous(_) | TokenListError::BadLabel | TokenListError::Line { .. } => {
            Failure::Input(e.to_string())
        }
        TokenListError::AlreadyRevoked { .. } => Failure::Already(e.to_string()),
        other => Failure::Internal(anyhow::Error::new(other)),
    }
}

fn token(ctx: &Context, label: &str) -> Outcome {
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    OsRng.try_fill_bytes(secret.as_mut()).map_err(|e| Failure::Internal(anyhow::anyhow!("random: {e}")))?;
    let token = zeroize::Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref()));
    let entry = ApiToken::new(token.as_bytes(), label, ctx.clock_now()).map_err(token_failure)?;
    let path = ctx.dir.api_tokens();
    api_tokens::add(&path, &entry).map_err(token_failure)?;
    audit(ctx, "system.token.add", &entry)?;
    if ctx.json {
        print_json(&serde_json::json!({
            "id": entry.id(), "label": entry.label, "token": token.as_str(), "sha256": hex::encode(entry.digest),
        }));
    } else {
        println!("{}", token.as_str());
        eprintln!(
            "Bearer token {} for {:?}: shown once, only its SHA-256 is kept in {}. A running server accepts it from now on.",
            entry.id(),
            entry.label,
            path.display()
        );
    }
    Ok(())
}

fn audit(ctx: &Context, action: &str, entry: &ApiToken) -> Outcome {
    let event =
        AuditEvent::new(&ctx.actor, action).target(entry.id()).details(serde_json::json!({ "label": entry.label }));
    ctx.store.append_audit(&event)?;
    Ok(())
}

fn token_json(t: &ApiToken) -> serde_json::Value {
    serde_json::json!({
        "id": t.id(), "label": t.label, "created": t.created.map(when), "revoked": t.revoked.map(when),
    })
}

fn list_tokens(ctx: &Context, all: bool) -> Outcome {
    let tokens: Vec<ApiToken> = api_tokens::read(&ctx.dir.api_tokens())
        .map_err(token_failure)?
        .into_iter()
        .filter(|t| all || t.is_active())
        .collect();
    if ctx.json {
        print_json(&tokens.iter().map(token_json).collect::<Vec<_>>());
        return Ok(());
    }
    if tokens.is_empty() {
        eprintln!("no tokens (make one with `ca system token --label NAME`)");
    }
    for t in &tokens {
        let created = t.created.map_or_else(|| "-".to_owned(), when);
        let state = t.revoked.map_or_else(String::new, |at| format!("  revoked {}", when(at)));
        println!("{}  {created}  {}{state}", t.id(), t.label);
    }
    Ok(())
}

fn revoke_token(ctx: &Context, id: &str) -> Outcome {
    let entry = api_tokens::revoke(&ctx.dir.api_tokens(), id, ctx.clock_now()).map_err(token_failure)?;
    audit(ctx, "system.token.revoke", &entry)?;
    if ctx.json {
        print_json(&token_json(&entry));
    } else {
        println!(
            "token {} ({}) revoked; a running server refuses it from its next request on",
            entry.id(),
            entry.label
        );
    }
    Ok(())
}
