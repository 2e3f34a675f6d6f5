//! `ca`: the command of CA administrators and personalization stations.
#![forbid(unsafe_code)]

// `println!` and `print!` for the whole crate (textual scope: defined before every module):
// like std's, except that a reader that went away (`ca list | head -1`) ends the command
// quietly instead of panicking on the broken pipe.
macro_rules! println {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

mod commands;

mod context;
mod failure;
mod keys;
mod output;
mod pem;
mod receipt_pdf;
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
    /// Where the CA key passphrase and the token PIN come from.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// What to do.
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
    /// The RFC 3161 time-stamping authority (`POST /tsa`): its key and certificate.
    #[command(subcommand)]
    Tsa(commands::tsa::TsaCommand),
    /// The CA's own certificates (root, issuing, OCSP, TSA, system) and the days they have left.
    Status,
    /// A new generation of a CA: `ca rollover issuing` (the old one stays for its CRLs and OCSP).
    #[command(subcommand)]
    Rollover(commands::rollover::RolloverCommand),
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
    /// The RA's automatic worker: carries out repeat issuance and revocations, recovers stale
    /// claims, publishes CRLs and delivers notices, until SIGTERM (or one round with --once).
    Worker(commands::worker::WorkerArgs),
    /// Back up the CA directory online (`ca backup DEST`), or check a backup (`ca backup verify DIR`).
    Backup(commands::backup::BackupArgs),
    /// Restore a backup into a new CA directory (--dir), which must not exist.
    Restore(commands::backup::RestoreArgs),
    /// The store: `ca store migrate`, `ca store copy --to postgres://…` (SQLite → PostgreSQL).
    #[command(subcommand)]
    Store(commands::store::StoreCommand),
    /// Run a whole CA lifecycle in a fresh directory: init, issue, list, revoke, audit.
    Demo(commands::demo::DemoArgs),
}

/// mimalloc instead of glibc malloc: the verification API allocates per request, and glibc's
/// arena locking and consolidation cost ~6 % of its throughput (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            // cryptoki logs an ERROR for every mechanism a module lists that it has no name for
            // (vendor or newer mechanisms): noise, not a fault.
            tracing_subscriber::EnvFilter::try_from_env("CA_LOG")
                .unwrap_or_else(|_| "warn,cryptoki::mechanism=off".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into log files or journald.
        .with_ansi(std::io::stderr().is_terminal())
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand and argument an administrator can type, without a help text.
    fn undocumented(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path}: argument {id}"));
            }
        }
        for sub in command.get_subcommands() {
            let name = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                missing.push(format!("{name}: subcommand"));
            }
            undocumented(sub, &name, missing);
        }
    }

    #[test]
    fn every_subcommand_and_argument_has_help() {
        let mut command = super::Cli::command();
        command.build();
        let mut missing = Vec::new();
        undocumented(&command, "ca", &mut missing);
        assert!(missing.is_empty(), "without help text:\n{}", missing.join("\n"));
    }

    #[test]
    fn revoke_help_lists_only_reasons_that_are_accepted() {
        let mut command = super::Cli::command();
        let help = command.find_subcommand_mut("revoke").unwrap().render_long_help().to_string();
        assert!(help.contains("keyCompromise") && !help.contains("removeFromCRL"), "{help}");
        for reason in ca_core::revocation::RevocationReason::operator_reasons().split(", ") {
            assert!(help.contains(reason), "{reason} missing: {help}");
        }
    }
}
