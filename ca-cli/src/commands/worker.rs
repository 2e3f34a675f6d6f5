//! `ca worker`: the RA's automatic worker ([`ca_core::ra::worker`]) over this CA directory —
//! repeat issuance and revocations carried out, stale claims recovered, CRLs published, notices
//! delivered. Runs until SIGTERM or ctrl-c (the current job is finished first), or one round
//! with `--once` (tests, cron). Several workers may run on one CA directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ca_core::issuer::IssuedCertificate;
use ca_core::ra::outbox::{Maildir, Transport};
use ca_core::ra::worker::{CrlPublication, CrlTimes, NewKeys, RepeatKeys, Worker, WorkerMetrics};
use ca_core::ra::{Application, KeyStoreDelivery, RegistrationAuthority, StoreRegistry};
use ca_core::store::CrlKind;
use clap::Args;
use hsm::{KeyAlgorithm, SoftwareKey};
use zeroize::Zeroizing;

use super::application::Verifier;
use super::crl::{PublishArgs, Which};
use super::delivery::Pkcs12Files;
use crate::context::Context;
use crate::failure::Failure;
use crate::output::print_json;
use crate::secrets::SecretSource;
use crate::Outcome;

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// One round, then exit (for tests and cron).
    #[arg(long)]
    pub once: bool,
    /// Directory for the PKCS#12 key stores of repeat issuance; default issued/ in the CA directory.
    #[arg(long)]
    pub p12_dir: Option<PathBuf>,
    /// Staff's explicit choice: for a confirmed repeat application that came without the
    /// applicant's own key requests (CSRs), generate his key pairs here and write PKCS#12 files.
    /// Without it such an application is left for `ca application issue N --generate-keys`.
    #[arg(long)]
    pub generate_keys: bool,
    /// Environment variable holding the PKCS#12 password of generated key stores (--generate-keys).
    #[arg(long, default_value = "CA_P12_PASSWORD", value_name = "VAR")]
    pub p12_password_env: String,
    /// Deliver notices to this maildir; default mail/ in the CA directory.
    #[arg(long, conflicts_with = "smtp_url")]
    pub maildir: Option<PathBuf>,
    /// Deliver notices over SMTP instead (as `ca outbox send --smtp-url`).
    #[arg(long, env = "CA_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// The From address of notices.
    #[arg(long, default_value = "nca-noreply@pki.gov.kz")]
    pub from: String,
    /// Publish no CRLs (another host does).
    #[arg(long)]
    pub no_crl: bool,
    /// Override `[worker] delta_after_revocation_minutes` of ca.toml.
    #[arg(long, value_name = "MINUTES")]
    pub delta_after_revocation_minutes: Option<u32>,
}

impl WorkerArgs {
    /// The worker of `ca serve --worker`: every default.
    pub fn for_server() -> Self {
        Self {
            once: false,
            p12_dir: None,
            generate_keys: false,
            p12_password_env: "CA_P12_PASSWORD".into(),
            maildir: None,
            smtp_url: std::env::var("CA_SMTP_URL").ok(),
            from: "nca-noreply@pki.gov.kz".into(),
            no_crl: false,
            delta_after_revocation_minutes: None,
        }
    }
}

/// Repeat issuance with keys generated here, delivered as PKCS#12 files (as `ca application
/// issue --generate-keys` does), for an application that came without the applicant's CSRs and
/// only when the staff started the worker with `--generate-keys`.
struct GeneratedKeys {
    enabled: bool,
    algorithm: KeyAlgorithm,
    dir: PathBuf,
    password: Zeroizing<String>,
    chain: Vec<Vec<u8>>,
}

/// The key stores of one issuance: the keys live as long as the delivery.
struct OwnKeyStores<'a> {
    keys: [SoftwareKey; 2],
    files: &'a GeneratedKeys,
}

impl OwnKeyStores<'_> {
    fn files(&self) -> Pkcs12Files<'_> {
        Pkcs12Files {
            dir: self.files.dir.clone(),
            keys: self.keys.iter().collect(),
            password: &self.files.password,
            chain: self.files.chain.clone(),
        }
    }
}

impl KeyStoreDelivery for OwnKeyStores<'_> {
    fn deliver(&self, certificates: &[IssuedCertificate]) -> Result<(), String> {
        self.files().deliver(certificates)
    }
    fn delivered(&self, certificate: &IssuedCertificate) -> Result<bool, String> {
        self.files().delivered(certificate)
    }
    fn withdraw(&self, certificate: &IssuedCertificate) -> Result<(), String> {
        self.files().withdraw(certificate)
    }
    fn location(&self) -> String {
        self.files().location()
    }
}

impl RepeatKeys for GeneratedKeys {
    fn keys_for(&self, a: &Application) -> Result<NewKeys<'_>, String> {
        if !self.enabled {
            return Err(format!(
                "{} came without the applicant's own key requests (CSRs); keys are generated at the CA only by \
                 staff: `ca application issue {} --generate-keys`, or a worker started with --generate-keys",
                a.number, a.number
            ));
        }
        let generate = || SoftwareKey::generate(self.algorithm).map_err(|e| e.to_string());
        let keys = [generate()?, generate()?];
        let public = |k: &SoftwareKey| ca_core::signer::Signer::public_key(k).clone();
        let (auth, sign) = (public(&keys[0]), public(&keys[1]));
        Ok(NewKeys { auth, sign, delivery: Box::new(OwnKeyStores { keys, files: self }) })
    }

    fn recovery(&self) -> Box<dyn KeyStoreDelivery + '_> {
        Box::new(Pkcs12Files { dir: self.dir.clone(), keys: Vec::new(), password: "", chain: Vec::new() })
    }
}

/// The issuing CA's CRLs, published as `ca crl publish` does.
struct CliCrls<'a> {
    ctx: &'a Context,
}

impl CrlPublication for CliCrls<'_> {
    fn last_published(&self) -> Result<CrlTimes, String> {
        let store = self.ctx.store.as_ref();
        let issuer = &self.ctx.config.issuing.name;
        let last = |partition, kind| store.last_crl(issuer, partition, kind).map_err(|e| e.to_string());
        let (full, delta) = (last(None, CrlKind::Full)?, last(None, CrlKind::Delta)?);
        // Revoked (or released) since the last delta of the CRL or of any partition of it.
        let mut pending = false;
        let partitions = self.ctx.config.crl.partitions().unwrap_or(0);
        for partition in std::iter::once(None).chain((0..partitions).map(Some)) {
            let since = match last(partition, CrlKind::Delta)?.or(last(partition, CrlKind::Full)?) {
                Some(r) => r.event_seq,
                None => 0,
            };
            let mut sink = |_| {
                pending = true;
                Ok(())
            };
            store.revocation_changes(issuer, partition, since, &mut sink).map_err(|e| e.to_string())?;
        }
        Ok(CrlTimes {
            full: full.map(|r| r.this_update),
            delta: delta.map(|r| r.this_update),
            revocations_pending: pending,
        })
    }

    fn publish(&self, full: bool) -> Result<Vec<String>, String> {
        let args =
            PublishArgs { which: if full { Which::Both } else { Which::Delta }, pem: false, out: None, root: false };
        let published = super::crl::publish(self.ctx, &args).map_err(|e| e.to_string())?;
        Ok(published
            .iter()
            .map(|p| format!("{} CRL #{} ({} entries) {}", p.kind.as_str(), p.number, p.entries, p.file.display()))
            .collect())
    }
}

/// SIGTERM and SIGINT set `stop`; the handlers are in place when this returns.
fn stop_on_signals(stop: Arc<AtomicBool>) -> Result<(), Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Failure::Internal(e.into()))?;
    let (mut term, mut int) = {
        let _entered = runtime.enter();
        let term = signal(SignalKind::terminate()).map_err(|e| Failure::Internal(e.into()))?;
        let int = signal(SignalKind::interrupt()).map_err(|e| Failure::Internal(e.into()))?;
        (term, int)
    };
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        });
        tracing::info!("stop asked for: finishing the current job");
        eprintln!("stopping after the current job");
        stop.store(true, Ordering::SeqCst);
    });
    Ok(())
}

pub fn run(ctx: &Context, args: &WorkerArgs) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    if !args.once {
        stop_on_signals(stop.clone())?;
    }
    work(ctx, args, &WorkerMetrics::default(), &stop)
}

/// The worker over `ctx` until `stop` (or one round with `--once`), counting into `metrics`;
/// `ca serve --worker` runs it beside the HTTP services.
pub fn work(ctx: &Context, args: &WorkerArgs, metrics: &WorkerMetrics, stop: &AtomicBool) -> Outcome {
    let mut settings = ctx.config.worker.clone();
    if let Some(m) = args.delta_after_revocation_minutes {
        settings.delta_after_revocation_minutes = m;
    }
    let dir = ctx.key_store_dir(args.p12_dir.as_deref())?;
    let algorithm = ctx.end_entity_key_algorithm()?;
    let password = if args.generate_keys {
        SecretSource { what: "PKCS#12 password", env: args.p12_password_env.clone(), file: None }.read(false)?
    } else {
        Zeroizing::new(String::new())
    };
    let keys = GeneratedKeys { enabled: args.generate_keys, algorithm, dir, password, chain: ctx.chain_der()? };

    let registry = StoreRegistry(ctx.store.as_ref());
    let verifier = Verifier::new(ctx)?;
    let signatures = verifier.check(ctx)?;
    let ra = RegistrationAuthority {
        store: ctx.store.as_ref(),
        certificates: ctx.store.as_ref(),
        registry: &registry,
        signatures: &signatures,
        clock: &ctx.clock,
        install_url: ctx.config.server.link_base(),
        install_ttl: ctx.config.server.install_ttl(),
    };
    let ca = ctx.authority(&ctx.config.issuing.name)?;
    let actor = format!("worker:{}:{}", ctx.actor, std::process::id());
    let issuer = ca_core::issuer::Issuer { actor: &actor, ..ctx.issuer(&ca) };
    let crls = CliCrls { ctx };
    let transport: Box<dyn Transport> = match &args.smtp_url {
        Some(url) => Box::new(crate::smtp::Smtp::new(url, &args.from)?),
        None => {
            Box::new(Maildir::new(args.maildir.clone().unwrap_or_else(|| ctx.dir.root.join("mail")), args.from.clone()))
        }
    };
    let worker = Worker {
        ra,
        issuer: &issuer,
        keys: &keys,
        crls: (!args.no_crl).then_some(&crls as &dyn CrlPublication),
        transport: Some(transport.as_ref()),
        settings,
        actor: &actor,
        metrics,
        stop,
    };
    if args.once {
        let round = worker.round()?;
        ca_core::ra::worker::log_round(&round);
        if ctx.json {
            print_json(&round);
        } else {
            for (what, list) in [
                ("recovered", &round.recovered),
                ("issued", &round.issued),
                ("revoked", &round.revoked),
                ("skipped (another worker)", &round.skipped),
                ("failed", &round.failed),
                ("published", &round.crls),
            ] {
                for item in list {
                    println!("{what}: {item}");
                }
            }
            println!("{} notices sent, {} failed (retried later)", round.notices_sent, round.notices_failed);
        }
        return if round.failed.is_empty() {
            Ok(())
        } else {
            Err(Failure::Internal(anyhow::anyhow!("{} jobs failed: {}", round.failed.len(), round.failed.join("; "))))
        };
    }
    eprintln!("RA worker {actor} running on {} (SIGTERM or ctrl-c to stop)", ctx.dir.root.display());
    worker.run();
    Ok(())
}
