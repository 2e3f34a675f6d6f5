//! `ca-signer`: the open signing client (see the crate documentation and the README).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use ca_signer::keys::{self, ID_CARD_STORAGE};
use ca_signer::server::{self, DEFAULT_LISTEN};
use ca_signer::{Confirmer, Policy, Service, TerminalConfirmer};
use clap::Parser;
use zeroize::Zeroizing;

/// A local signing service speaking the national signing client's WebSocket protocol.
#[derive(Parser)]
#[command(name = "ca-signer", version)]
struct Args {
    /// Loopback address and port to listen on (plain ws://; loopback only).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// A page origin allowed to connect (`https://portal.example.kz`); repeat for more.
    #[arg(long = "origin", required = true)]
    origins: Vec<String>,
    /// A PKCS#12 key store (AUTH_RSA256_….p12, RSA256_….p12); repeat for more.
    #[arg(long = "p12")]
    p12: Vec<PathBuf>,
    /// PKCS#11 module of a token or ID card.
    #[arg(long, requires = "token")]
    pkcs11_module: Option<PathBuf>,
    /// Label of the token.
    #[arg(long, requires = "pkcs11_module")]
    token: Option<String>,
    /// The storage name the token has in the protocol.
    #[arg(long, default_value = ID_CARD_STORAGE)]
    token_storage: String,
    /// Read the key store password / token PIN from this file (first line) instead of asking:
    /// non-interactive mode.
    #[arg(long, env = "CA_SIGNER_PIN_FILE")]
    pin_file: Option<PathBuf>,
    /// Sign without asking (`accept`) or refuse everything (`refuse`): non-interactive mode,
    /// logged for every signature. Default: ask on the terminal.
    #[arg(long)]
    confirm: Option<Policy>,
}

fn secret(args: &Args, prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    match &args.pin_file {
        Some(path) => {
            let text = Zeroizing::new(std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?);
            Ok(Zeroizing::new(text.lines().next().unwrap_or_default().to_string()))
        }
        None => Ok(Zeroizing::new(rpassword::prompt_password(prompt).context("reading from the terminal")?)),
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CA_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    server::check_loopback(&args.listen).map_err(anyhow::Error::msg)?;
    if args.pin_file.is_some() || args.confirm.is_some() {
        tracing::warn!(
            "NON-INTERACTIVE MODE: {}{}— for kiosks and tests only",
            if args.pin_file.is_some() { "passwords and PINs come from a file; " } else { "" },
            match args.confirm {
                Some(Policy::Accept) => "every signature is made WITHOUT ASKING ANYONE ",
                Some(Policy::Refuse) => "every signature is refused ",
                None => "",
            }
        );
    }
    let mut entries = Vec::new();
    for path in &args.p12 {
        let password = secret(&args, &format!("Password of {}: ", path.display()))?;
        entries.push(keys::from_pkcs12(path, &password).with_context(|| format!("{}", path.display()))?);
    }
    if let (Some(module), Some(label)) = (&args.pkcs11_module, &args.token) {
        let pin = hsm::pkcs11::SecretPin::new(secret(&args, &format!("PIN of token {label}: "))?);
        entries.extend(keys::from_token(module, label, &pin, &args.token_storage).context("token")?);
    }
    if entries.is_empty() {
        bail!("no key to offer: give --p12 FILE and/or --pkcs11-module LIB --token LABEL");
    }
    for key in &entries {
        tracing::info!(storage = %key.storage, key_type = ?key.key_type, alias = %key.alias, "key offered");
    }
    let confirmer: Arc<dyn Confirmer> = match args.confirm {
        Some(policy) => Arc::new(policy),
        None => Arc::new(TerminalConfirmer::default()),
    };
    let service = Arc::new(Service::new(entries, confirmer, Arc::new(ca_core::clock::SystemClock)));
    let router = server::router(service, args.origins.clone());
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("{}", args.listen))?;
        tracing::info!(listen = %args.listen, origins = ?args.origins, "ca-signer listening");
        server::serve(listener, router).await.context("serving")
    })
}
