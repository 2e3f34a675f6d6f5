//! `ca system init` and `ca system token`: the service's own signing identity behind
//! `POST /api/v1/cms/sign` (a portal signing its answers to counter workstations). `init` makes
//! the key (encrypted under the CA passphrase, like the OCSP responder's) and a SIGN certificate
//! for it in `<ca dir>/system/`; `token` makes a bearer token for one calling system, prints it
//! once and keeps only its SHA-256 in `<ca dir>/system/api-tokens`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine;
use ca_core::ca_dir::KeyLocation;
use ca_core::issuer::IssuanceRequest;
use ca_core::profile::ProfileId;
use ca_core::signer::Signer;
use clap::{Args, Subcommand};
use hsm::{KeyAlgorithm, SoftwareKey};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::commands::issue::{check_application, subject_from_args, IssueArgs};
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::Outcome;

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Create the service's signing key (encrypted under the CA passphrase) and certificate.
    Init(Box<SystemInitArgs>),
    /// Make a bearer token for a system allowed to call /api/v1/cms/sign; printed once.
    Token(SystemTokenArgs),
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
    /// Generate the key on this PKCS#11 module's token (HSM) instead of a file.
    #[arg(long, requires = "hsm_token")]
    pub hsm_module: Option<PathBuf>,
    /// Label of that token; its PIN comes from CA_HSM_PIN / --hsm-pin-file.
    #[arg(long, requires = "hsm_module")]
    pub hsm_token: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct SystemTokenArgs {
    /// Who the token is for (written as a comment next to its hash).
    #[arg(long)]
    pub label: String,
}

pub fn run(ctx: &Context, cmd: &SystemCommand) -> Outcome {
    match cmd {
        SystemCommand::Init(args) => init(ctx, args),
        SystemCommand::Token(args) => token(ctx, args),
    }
}

fn init(ctx: &Context, args: &SystemInitArgs) -> Outcome {
    let dir = ctx.dir.system();
    let (key_path, cert_path) = (ctx.dir.system_key(), ctx.dir.system_certificate());
    if key_path.exists() || cert_path.exists() || ctx.config.server.system_key.is_some() {
        return Err(Failure::Already(format!(
            "a system key already exists ({}); nothing was changed",
            cert_path.display()
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
    let alg: KeyAlgorithm = args
        .key_algorithm
        .as_deref()
        .unwrap_or(&ctx.config.end_entity.key_algorithm)
        .parse()
        .map_err(|e: hsm::UnknownKeyAlgorithm| Failure::Input(e.to_string()))?;
    let ca = ctx.authority(&ctx.config.issuing.name)?;
    std::fs::create_dir_all(&dir).map_err(|e| Failure::Internal(e.into()))?;
    let issue = |key: &dyn Signer| {
        ctx.issuer(&ca).issue(&IssuanceRequest {
            profile,
            subject: subject.clone(),
            roles: roles.clone(),
            public_key: key.public_key().clone(),
        })
    };
    let (issued, key_place) = match (&args.hsm_module, &args.hsm_token) {
        (Some(module), Some(label)) => {
            // Made on the token, never extractable; removed again if issuance fails.
            let token = crate::keys::open_token(module, label, &ctx.hsm_pin)?;
            let key = token.generate_key_pair(alg, "system signing key")?;
            let issued = issue(&key).inspect_err(|_| {
                let _ = token.delete_objects_by_id(key.id());
            })?;
            let mut config = ctx.config.clone();
            config.server.system_key =
                Some(KeyLocation::Pkcs11 { module: module.clone(), token: label.clone(), id: hex::encode(key.id()) });
            let tmp = ctx.dir.config().with_extension("toml.tmp");
            config.write(&tmp)?;
            std::fs::rename(&tmp, ctx.dir.config()).map_err(|e| Failure::Internal(e.into()))?;
            (issued, format!("token {label:?}, CKA_ID {} (ca.toml [server] system_key)", hex::encode(key.id())))
        }
        _ => {
            // The passphrase is read before anything is issued: a wrong one changes nothing.
            let passphrase = ctx.passphrase.read(false)?;
            let key = SoftwareKey::generate(alg)?;
            let pem = key.to_encrypted_pem(passphrase.as_bytes())?;
            let issued = issue(&key)?;
            hsm::write_encrypted_key_file(&key_path, &pem)?;
            (issued, format!("{} (encrypted under the CA passphrase)", key_path.display()))
        }
    };
    std::fs::write(&cert_path, crate::pem::encode("CERTIFICATE", &issued.der)?)
        .map_err(|e| Failure::Internal(e.into()))?;
    if ctx.json {
        print_json(&serde_json::json!({
            "serial": issued.serial, "certificate": cert_path, "key": key_place, "not_after": when(issued.not_after),
        }));
    } else {
        println!("System certificate {} ({alg}, {profile}), valid until {}", issued.serial, when(issued.not_after));
        println!("  {}", cert_path.display());
        println!("  key: {key_place}");
        println!("Restart the server to use it; allow callers with `ca system token --label NAME`.");
    }
    Ok(())
}

fn token(ctx: &Context, args: &SystemTokenArgs) -> Outcome {
    if args.label.contains(['\n', '\r']) {
        return Err(Failure::Input("--label must be one line".into()));
    }
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    OsRng.try_fill_bytes(secret.as_mut()).map_err(|e| Failure::Internal(anyhow::anyhow!("random: {e}")))?;
    let token = zeroize::Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref()));
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let path = ctx.dir.system().join("api-tokens");
    append_private(&path, &format!("# {} (added {})\n{digest}\n", args.label, when(time::OffsetDateTime::now_utc())))
        .map_err(|e| Failure::Internal(anyhow::anyhow!("{}: {e}", path.display())))?;
    if ctx.json {
        print_json(&serde_json::json!({ "label": args.label, "token": token.as_str(), "sha256": digest }));
    } else {
        println!("{}", token.as_str());
        eprintln!(
            "Bearer token for {:?}: shown once, only its SHA-256 is kept in {}. Restart the server to allow it.",
            args.label,
            path.display()
        );
    }
    Ok(())
}

/// Append to a file only the owner may read (created so if new).
fn append_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
