//! `ca serve`: the HTTP services (OCSP, CRL and CA certificate distribution) of this CA.

use std::sync::Arc;

use clap::Args;

use crate::context::Context;
use crate::failure::Failure;
use crate::Outcome;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Also run the RA's automatic worker (as `ca worker` with its defaults and `[worker]` of
    /// ca.toml); its counters appear in /metrics, and a stop lets its current job finish.
    #[arg(long)]
    pub worker: bool,
}

pub fn run(ctx: &Context, args: &ServeArgs) -> Outcome {
    // The passphrase opens the OCSP responder's, the TSA's and the system signing key, and the
    // audit key when the server signs checkpoints ([audit] checkpoint_minutes), when they exist.
    let checkpoints = ctx.config.audit.checkpoint_interval().is_some();
    let needs_passphrase = ctx.dir.ocsp_key().exists()
        || ctx.dir.system_key().exists()
        || (ctx.config.tsa.key.is_none() && ctx.dir.tsa_key().exists())
        || (checkpoints && ctx.config.server.audit_key.is_none() && ctx.dir.audit_key().exists());
    let passphrase = if needs_passphrase { Some(ctx.passphrase.read(false)?) } else { None };
    let audit_key_on_token = matches!(ctx.config.server.audit_key, Some(ca_core::ca_dir::KeyLocation::Pkcs11 { .. }));
    let tsa_key_on_token = matches!(ctx.config.tsa.key, Some(ca_core::ca_dir::KeyLocation::Pkcs11 { .. }));
    let needs_pin = ctx.config.server.keys_on_tokens() || tsa_key_on_token || (checkpoints && audit_key_on_token);
    let pin = if needs_pin { Some(ctx.hsm_pin.read(false)?) } else { None };
    let services = ca_server::Services::load_with_pin(&ctx.dir, passphrase.as_ref().map(|p| p.as_bytes()), pin)
        .map_err(|e| match e {
            ca_server::StartError::Key(hsm::KeyError::WrongPassphrase) => Failure::Auth(e.to_string()),
            ca_server::StartError::Token(t) => Failure::from(t),
            other => Failure::Internal(anyhow::Error::new(other)),
        })?;
    drop(passphrase);
    if services.ocsp.get().is_none() {
        eprintln!("note: no OCSP responder yet (ca ocsp init)");
    }
    match &services.audit_checkpoints {
        Some(c) => eprintln!("audit checkpoints every {} min when the journal moved", c.interval.as_secs() / 60),
        None if checkpoints => eprintln!("note: no audit key (ca audit init-key): no audit checkpoints"),
        None => {}
    }
    if services.tsa.get().is_none() {
        eprintln!("note: no time-stamping authority (ca tsa init, [tsa] enabled): /tsa answers systemFailure");
    }
    if services.system_signer.get().is_none() {
        eprintln!("note: no system signing key (ca system init): /api/v1/cms/sign answers 503");
    }
    let worker_metrics = std::sync::Arc::new(ca_core::ra::worker::WorkerMetrics::default());
    if args.worker {
        let _ = services.metrics.worker.set(worker_metrics.clone());
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| Failure::Internal(e.into()))?;
    if !args.worker {
        return serve(ctx, args, &runtime, services);
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let worker_args = super::worker::WorkerArgs::for_server();
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let worked = super::worker::work(ctx, &worker_args, &worker_metrics, &stop);
            if worked.is_err() {
                tracing::error!("the RA worker stopped with an error; the server goes on without it");
            }
            worked
        });
        let served = serve(ctx, args, &runtime, services);
        // The server stopped (SIGTERM, ctrl-c): the worker finishes its job and stops too.
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let worked =
            worker.join().unwrap_or_else(|_| Err(Failure::Internal(anyhow::anyhow!("the RA worker panicked"))));
        served.and(worked)
    })
}

fn serve(ctx: &Context, args: &ServeArgs, runtime: &tokio::runtime::Runtime, services: ca_server::Services) -> Outcome {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| Failure::Input(format!("cannot listen on {}: {e}", args.listen)))?;
        eprintln!("serving {} on http://{}", ctx.dir.root.display(), args.listen);
        ca_server::serve(listener, Arc::new(services)).await.map_err(|e| Failure::Internal(e.into()))
    })
}
