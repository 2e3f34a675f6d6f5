//! `portal-server`: the portal's HTTP API (`serve`), and the counter workstation's command
//! (`counter-register`) that builds, signs and sends a registration request and verifies the
//! portal's signed answer.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use ca_core::clock::{Clock, SystemClock};
use clap::{Parser, Subcommand};
use portal::account::counter::Consents;
use portal::account::workstation::{self, Applicant, WorkstationError};
use portal::config::{PortalConfig, TrustConfig};
use portal::http::{serve, AppState};
use portal::setup::{build, Plugins};
use portal::trust::PortalTrust;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "portal-server", version, about = "The e-government portal: accounts, registration and login")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the portal's HTTP API.
    Serve {
        /// The configuration file (see the README).
        #[arg(long, env = "PORTAL_CONFIG", default_value = "portal.toml")]
        config: PathBuf,
        /// Overrides `listen` of the configuration.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// At a State Corporation counter: register a person (or regenerate his password) with a
    /// request signed by this workstation's EDS; prints login and password once the portal's
    /// signed answer has verified.
    CounterRegister(Box<CounterArgs>),
    /// At a State Corporation counter: bind the applicant's phone number (creating his
    /// account with a password to change if he has none). Asks the portal to send the code,
    /// reads the code the applicant received from standard input, signs and sends the
    /// binding and prints the outcome once the portal's signed answer has verified.
    CounterBindPhone(Box<CounterArgs>),
    /// Deliver the SMS outbox through the `[phone.sms]` transport (`serve` does it too).
    SmsSender {
        #[arg(long, env = "PORTAL_CONFIG", default_value = "portal.toml")]
        config: PathBuf,
        /// Deliver what is due once and exit.
        #[arg(long)]
        once: bool,
        /// How long a claimed message is left to this sender before another may send it
        /// (0: at once, for a single sender run from a scheduler).
        #[arg(long, default_value_t = 60)]
        lease_seconds: u32,
    },
}

#[derive(clap::Args)]
struct CounterArgs {
    /// The portal's base URL.
    #[arg(long)]
    portal: String,
    /// The workstation's key store (PKCS#12 as the CA issues it).
    #[arg(long)]
    p12: PathBuf,
    /// The variable that holds the key store's password.
    #[arg(long, default_value = "WORKSTATION_P12_PASSWORD")]
    p12_password_env: String,
    /// Trust the portal's answer by this CA directory's certificates and CRLs...
    #[arg(long)]
    ca_dir: Option<PathBuf>,
    /// ...or by these anchors, intermediates and CRL directories.
    #[arg(long)]
    anchor: Vec<PathBuf>,
    #[arg(long)]
    intermediate: Vec<PathBuf>,
    #[arg(long)]
    crl_dir: Vec<PathBuf>,
    #[arg(long)]
    iin: String,
    #[arg(long)]
    surname: String,
    #[arg(long)]
    given_name: String,
    #[arg(long)]
    patronymic: Option<String>,
    #[arg(long)]
    email: String,
    #[arg(long)]
    phone: String,
    /// The person accepted the user agreement.
    #[arg(long)]
    user_agreement: bool,
    /// The person consented to the processing of personal data.
    #[arg(long)]
    personal_data: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("PORTAL_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portal-server: {e:#}");
            let refused =
                e.downcast_ref::<WorkstationError>().is_some_and(|w| matches!(w, WorkstationError::Refused { .. }));
            std::process::ExitCode::from(if refused { 8 } else { 1 })
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config, listen } => {
            let config = PortalConfig::load(&config)?;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let portal = build(&config, Plugins { clock, phones: None, sms: None }).map_err(anyhow::Error::msg)?;
            let addr = listen.unwrap_or(config.listen);
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
                tracing::info!(address = %listener.local_addr()?, "portal-server listening");
                serve(listener, AppState::behind(Arc::new(portal), config.server.trusted_proxies.clone()))
                    .await
                    .context("serving")
            })
        }
        Command::SmsSender { config, once, lease_seconds } => {
            let config = PortalConfig::load(&config)?;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let portal = build(&config, Plugins { clock, phones: None, sms: None }).map_err(anyhow::Error::msg)?;
            let mut dispatcher = portal.phone.dispatcher.clone().context("[phone.sms] configures no transport")?;
            dispatcher.lease = time::Duration::seconds(i64::from(lease_seconds));
            loop {
                let report = dispatcher.deliver_pending()?;
                if report != Default::default() {
                    tracing::info!(sent = report.sent, failed = report.failed, expired = report.expired, "SMS outbox");
                }
                if once {
                    println!("{}", serde_json::to_string(&report)?);
                    return Ok(());
                }
                std::thread::sleep(portal::http::SMS_INTERVAL);
            }
        }
        Command::CounterBindPhone(args) => counter_bind_phone(*args),
        Command::CounterRegister(args) => {
            let portal = args.portal.clone();
            let Workstation { trust, key, certificate, chain, applicant, json } = workstation_identity(*args)?;
            let now = SystemClock.now();
            let request = workstation::request(&applicant, now)?;
            let signed = workstation::sign_request(&request, &key, &certificate, &chain, now)?;
            let answer = workstation::send(&portal, &signed)?;
            let (response, signer) = workstation::verify_response(&trust, &request, &answer, SystemClock.now())?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "login": response.login, "password": response.password, "outcome": response.outcome, "signed_by": signer.subject, "signer_serial": signer.serial })
                );
            } else {
                println!("login:     {}", response.login);
                println!("password:  {}", response.password);
                println!("outcome:   {}", response.outcome);
                println!("signed by: {} (serial {})", signer.subject, signer.serial);
            }
            Ok(())
        }
    }
}

/// What a counter command works with: the portal's trust, the operator's key and
/// certificate from his key store, and the applicant's form.
struct Workstation {
    trust: PortalTrust,
    key: hsm::SoftwareKey,
    certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
    applicant: Applicant,
    json: bool,
}

fn workstation_identity(args: CounterArgs) -> anyhow::Result<Workstation> {
    let CounterArgs {
        portal: _,
        p12,
        p12_password_env,
        ca_dir,
        anchor,
        intermediate,
        crl_dir,
        iin,
        surname,
        given_name,
        patronymic,
        email,
        phone,
        user_agreement,
        personal_data,
        json,
    } = args;
    if ca_dir.is_none() && anchor.is_empty() {
        bail!("give --ca-dir or --anchor to verify the portal's answer");
    }
    let trust = PortalTrust::from_config(
        &TrustConfig { ca_dir, anchors: anchor, intermediates: intermediate, crl_dirs: crl_dir },
        Arc::new(SystemClock),
    )?;
    let password = zeroize::Zeroizing::new(
        std::env::var(&p12_password_env).with_context(|| format!("{p12_password_env} is not set"))?,
    );
    let der = std::fs::read(&p12).with_context(|| format!("reading {}", p12.display()))?;
    let (key, certificates) =
        hsm::read_pkcs12(&der, &password).with_context(|| format!("opening {}", p12.display()))?;
    let (certificate, chain) = certificates.split_first().context("the key store holds no certificate")?;
    let applicant = Applicant {
        iin,
        surname,
        given_name,
        patronymic,
        email,
        phone,
        consents: Consents { user_agreement, personal_data },
    };
    Ok(Workstation { trust, key, certificate: certificate.clone(), chain: chain.to_vec(), applicant, json })
}

/// The workstation's side of a phone binding at a counter.
fn counter_bind_phone(args: CounterArgs) -> anyhow::Result<()> {
    use portal::phone::workstation as ws;
    let portal = args.portal.clone();
    let Workstation { trust, key, certificate, chain, applicant, json } = workstation_identity(args)?;
    let request = ws::code_request(&applicant, SystemClock.now())?;
    let signed = ws::sign(&request, &key, &certificate, &chain, SystemClock.now())?;
    let sent = ws::post(&portal, ws::CODE_PATH, &signed)?;
    let session = sent["session_id"].as_str().context("the portal's answer names no session")?.to_owned();
    eprintln!("A code was sent to {}. Enter the code the applicant received:", applicant.phone);
    let mut code = zeroize::Zeroizing::new(String::new());
    std::io::stdin().read_line(&mut code).context("reading the code")?;
    let request = ws::binding_request(&applicant, &session, &code, SystemClock.now())?;
    let signed = ws::sign(&request, &key, &certificate, &chain, SystemClock.now())?;
    let answer = ws::post(&portal, ws::BIND_PATH, &signed)?;
    let cms = answer["cms"].as_str().context("the portal's answer carries no cms")?;
    use base64::Engine;
    let cms = base64::engine::general_purpose::STANDARD
        .decode(cms)
        .map_err(|e| WorkstationError::BadAnswer(e.to_string()))?;
    let (answer, signer) = ws::verify_answer(&trust, &request.request_id, &applicant.iin, &cms, SystemClock.now())?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "login": answer.login, "phone": answer.phone, "outcome": answer.outcome, "account": answer.account, "password": answer.password, "signed_by": signer.subject })
        );
    } else {
        println!("login:     {}", answer.login);
        println!("phone:     {} ({})", answer.phone, answer.outcome);
        println!("account:   {}", answer.account);
        if let Some(password) = &answer.password {
            println!("password:  {password}   (must be changed at the first login)");
        }
        println!("signed by: {} (serial {})", signer.subject, signer.serial);
    }
    Ok(())
}
