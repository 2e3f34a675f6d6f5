//! `ca`: the command of CA administrators and personalization stations.
#![forbid(unsafe_code)]

mod commands;

mod context;
mod failure;
mod keys;
mod output;
mod pem;
mod secrets;
mod service_keys;
mod smtp;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::failure::Failure;

#[derive(Parser, Debug)]
#[command(
    name = "ca",
    version,
    about = "National certification authority toolkit: issue, store and revoke registration certificates"
)]
pub struct Cli {
    /// The CA directory (configuration, certificates, encrypted keys, store).
    #[arg(long, global = true, env = "CA_DIR", default_value = "ca")]
    pub dir: PathBuf,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting, for the audit journal.
    #[arg(long, global = true, env = "CA_ACTOR", default_value = "ca-cli")]
    pub actor: String,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the CA key passphrase comes from (never from the command line itself).
#[derive(Args, Debug, Clone)]
pub struct PassphraseArgs {
    /// Environment variable holding the CA key passphrase.
    #[arg(long, global = true, default_value = "CA_PASSPHRASE", value_name = "VAR")]
    pub passphrase_env: String,
    /// File whose first line is the CA key passphrase.
    #[arg(long, global = true, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
    /// Environment variable holding the PIN of a PKCS#11 token (HSM) with CA keys.
    #[arg(long, global = true, default_value = "CA_HSM_PIN", value_name = "VAR")]
    pub hsm_pin_env: String,
    /// File whose first line is the PIN of the PKCS#11 token with CA keys.
    #[arg(long, global = true, value_name = "PATH")]
    pub hsm_pin_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a root CA and the issuing CA under it, in a new CA directory.
    Init(commands::init::InitArgs),
    /// Issue a certificate from a CSR, or generate the key and deliver a PKCS#12 key store.
    Issue(Box<commands::issue::IssueArgs>),
    /// Show one certificate by serial number.
    Show(commands::show::ShowArgs),
    /// List certificates, by IIN, BIN or status.
    List(commands::show::ListArgs),
    /// Revoke a certificate with an RFC 5280 reason.
    Revoke(commands::revoke::RevokeArgs),
    /// Lift a certificateHold (suspension); the certificate becomes valid again.
    Release(commands::revoke::ReleaseArgs),
    /// The audit journal.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Certificate revocation lists.
    #[command(subcommand)]
    Crl(commands::crl::CrlCommand),
    /// ID cards and SIM cards over PKCS#11: personalize, inspect.
    #[command(subcommand)]
    Card(commands::card::CardCommand),
    /// The OCSP responder.
    #[command(subcommand)]
    Ocsp(commands::ocsp::OcspCommand),
    /// The service's own signing key for /api/v1/cms/sign, and its callers' tokens.
    #[command(subcommand)]
    System(commands::system::SystemCommand),
    /// The CA's own certificates (root, issuing, OCSP, system) and the days they have left.
    Status,
    /// Serve OCSP, CRLs and CA certificates over HTTP (the same as the `ca-server` binary).
    Serve(commands::serve::ServeArgs),
    /// The person registry (ГБД ФЛ / ГБД ЮЛ) used by the registration authority.
    #[command(subcommand)]
    Registry(commands::registry::RegistryCommand),
    /// Applications for certificates and revocations (the registration authority).
    #[command(subcommand)]
    Application(commands::application::ApplicationCommand),
    /// Reports: time of each step against the regulation's budget.
    #[command(subcommand)]
    Report(commands::report::ReportCommand),
    /// Notices to applicants: deliver what is queued.
    #[command(subcommand)]
    Outbox(commands::report::OutboxCommand),
    /// Run a whole CA lifecycle in a fresh directory: init, issue, list, revoke, audit.
    Demo(commands::demo::DemoArgs),
}

/// mimalloc instead of glibc malloc: the verification API allocates per request, and glibc's
/// arena locking and consolidation cost ~6 % of its throughput (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // cryptoki logs an ERROR for every mechanism a module lists that it has no name for
            // (vendor or newer mechanisms): noise, not a fault.
            tracing_subscriber::EnvFilter::try_from_env("CA_LOG")
                .unwrap_or_else(|_| "warn,cryptoki::mechanism=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let json = cli.json;
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            output::print_failure(&failure, json);
            failure.exit_code()
        }
    }
}

pub type Outcome = Result<(), Failure>;
