//! `ca-server`: the CA's HTTP services for one CA directory.
//!
//!     CA_PASSPHRASE=… ca-server --dir ./ca --listen 127.0.0.1:8080
//!
//! The passphrase (for the OCSP responder's, the TSA's, the system signing and the audit key, which signs
//! journal checkpoints every `[audit] checkpoint_minutes`) comes from
//! `CA_PASSPHRASE` or the file named by `CA_PASSPHRASE_FILE`, the PIN of a token holding the
//! a server key from `CA_HSM_PIN` or `CA_HSM_PIN_FILE`; never from the command line.
//! `ca serve` does the same with prompts. SIGHUP (and every `[server] reload_seconds`) makes it
//! switch to keys and certificates renewed by `ca ocsp renew` / `ca tsa renew` / `ca system renew`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use ca_core::ca_dir::CaDir;
use zeroize::Zeroizing;

/// mimalloc instead of glibc malloc: the verification API allocates per request, and glibc's
/// arena locking and consolidation cost ~6 % of its throughput (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The CA's HTTP services for one CA directory: the OCSP responder, CRLs, CA certificates,
/// the CPS, the verification and login API, signing with the system certificate, metrics.
#[derive(clap::Parser, Debug)]
#[command(
    name = "ca-server",
    version,
    after_help = "Environment:
  CA_DIR              the CA directory, when --dir is not given
  CA_PASSPHRASE       passphrase of the encrypted OCSP responder, TSA and system signing keys
                      (without it the server runs without OCSP, /tsa and /api/v1/cms/sign)
  CA_PASSPHRASE_FILE  a file whose first line is that passphrase
  CA_HSM_PIN          PIN of the PKCS#11 token holding a server key ([server], [tsa] in ca.toml)
  CA_HSM_PIN_FILE     a file whose first line is that PIN
  CA_LOG              log filter (tracing EnvFilter syntax), default \"info\"

Secrets are never taken from the command line. `ca serve` does the same with prompts.
Exit codes: 0 stopped by SIGTERM or Ctrl-C; 1 cannot start; 2 usage; 3 unreadable secret file."
)]
struct Args {
    /// The CA directory made by `ca init` (ca.toml, certificates, keys, ca.db).
    #[arg(long, env = "CA_DIR", default_value = "ca", value_name = "DIR")]
    dir: String,
    /// Address and port to listen on; put a TLS-terminating proxy in front for the public.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    listen: String,
    /// The signing client the operator console's pages talk to (`ca-signer`'s listen address);
    /// written into the pages and their Content-Security-Policy.
    #[arg(long, env = "CA_SIGNER_URL", default_value = ca_server::console::DEFAULT_SIGNER_URL, value_name = "WS_URL")]
    signer_url: String,
}

/// A secret from `NAME`, or the first line of the file named by `NAME_FILE`; never argv.
fn secret(name: &str) -> Result<Option<Zeroizing<String>>, ExitCode> {
    match (std::env::var(name), std::env::var(format!("{name}_FILE"))) {
        (Ok(value), _) => Ok(Some(Zeroizing::new(value))),
        (_, Ok(path)) => match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(Zeroizing::new(text.lines().next().unwrap_or("").to_owned()))),
            Err(e) => {
                eprintln!("error: cannot read {path}: {e}");
                Err(ExitCode::from(3))
            }
        },
        _ => Ok(None),
    }
}

fn main() -> ExitCode {
    use clap::Parser;
    use std::io::IsTerminal;
    let Args { dir, listen, signer_url } = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // cryptoki logs an ERROR for every mechanism a module lists that it has no name for
            // (vendor or newer mechanisms): noise, not a fault.
            tracing_subscriber::EnvFilter::try_from_env("CA_LOG")
                .unwrap_or_else(|_| "info,cryptoki::mechanism=off".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into log files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let passphrase = match secret("CA_PASSPHRASE") {
        Ok(p) => p,
        Err(code) => return code,
    };
    let pin = match secret("CA_HSM_PIN") {
        Ok(p) => p,
        Err(code) => return code,
    };
    let services =
        match ca_server::Services::load_with_pin(&CaDir::new(&dir), passphrase.as_ref().map(|p| p.as_bytes()), pin) {
            Ok(mut s) => {
                s.console.signer_url = signer_url;
                Arc::new(s)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
    if services.ocsp.get().is_none() {
        tracing::warn!("no OCSP responder (run `ca ocsp init`, and give CA_PASSPHRASE)");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {listen}: {e}");
                return ExitCode::from(1);
            }
        };
        tracing::info!(%listen, dir, "serving");
        match ca_server::serve(listener, services).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn help_explains_options_and_environment() {
        let mut command = super::Args::command();
        command.build();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            assert!(id == "help" || id == "version" || arg.get_help().is_some(), "--{id} has no help");
        }
        let help = command.render_long_help().to_string();
        for needle in ["--dir", "--listen", "CA_DIR", "CA_PASSPHRASE", "CA_PASSPHRASE_FILE", "CA_HSM_PIN", "CA_LOG"] {
            assert!(help.contains(needle), "{needle} missing:\n{help}");
        }
        assert!(help.lines().count() > 10, "{help}");
    }
}
