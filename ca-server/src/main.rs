//! `ca-server`: the CA's HTTP services for one CA directory.
//!
//!     CA_PASSPHRASE=… ca-server --dir ./ca --listen 127.0.0.1:8080
//!
//! The passphrase (for the OCSP responder's, the system signing and the audit key, which signs
//! journal checkpoints every `[audit] checkpoint_minutes`) comes from
//! `CA_PASSPHRASE` or the file named by `CA_PASSPHRASE_FILE`, the PIN of a token holding the
//! system signing key from `CA_HSM_PIN` or `CA_HSM_PIN_FILE`; never from the command line.
//! `ca serve` does the same with prompts.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use ca_core::ca_dir::CaDir;
use zeroize::Zeroizing;

/// mimalloc instead of glibc malloc: the verification API allocates per request, and glibc's
/// arena locking and consolidation cost ~6 % of its throughput (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn usage() -> ExitCode {
    eprintln!("usage: ca-server [--dir DIR] [--listen ADDR:PORT]");
    ExitCode::from(2)
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
    tracing_subscriber::fmt()
        .with_env_filter(
            // cryptoki logs an ERROR for every mechanism a module lists that it has no name for
            // (vendor or newer mechanisms): noise, not a fault.
            tracing_subscriber::EnvFilter::try_from_env("CA_LOG")
                .unwrap_or_else(|_| "info,cryptoki::mechanism=off".into()),
        )
        .init();
    let mut dir = std::env::var("CA_DIR").unwrap_or_else(|_| "ca".into());
    let mut listen = "127.0.0.1:8080".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--dir", Some(v)) => dir = v,
            ("--listen", Some(v)) => listen = v,
            _ => return usage(),
        }
    }
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
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
    if services.ocsp.is_none() {
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
