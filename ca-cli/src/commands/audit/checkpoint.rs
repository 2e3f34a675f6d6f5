//! The audit key and signed checkpoints of the journal's head ([`ca_core::checkpoint`]).

use std::path::PathBuf;

use anyhow::Context as _;
use ca_core::checkpoint::{self, Checkpoint};
use clap::Args;
use hsm::KeyAlgorithm;

use super::key::{self, AuditKeyPlace};

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{print_json, when};
use crate::Outcome;

#[derive(Args, Debug, Clone, Default)]
pub struct VerifyArgs {
    /// The signed checkpoint to check against (default: the published one,
    /// publish/crl/audit-checkpoint.json; give a copy kept elsewhere to trust that instead).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct InitKeyArgs {
    /// Audit key: p256 (default), p384, rsa2048, rsa3072, rsa4096.
    #[arg(long, default_value = "p256")]
    pub key_algorithm: String,
    /// Generate the key on this PKCS#11 module's token (HSM) instead of a file.
    #[arg(long, requires = "hsm_token")]
    pub hsm_module: Option<PathBuf>,
    /// Label of that token; its PIN comes from CA_HSM_PIN / --hsm-pin-file.
    #[arg(long, requires = "hsm_module")]
    pub hsm_token: Option<String>,
}

pub fn init_key(ctx: &Context, args: &InitKeyArgs) -> Outcome {
    let public = ctx.dir.audit_public_key();
    if public.exists() || ctx.dir.audit_key().exists() || ctx.config.server.audit_key.is_some() {
        return Err(Failure::Already(format!(
            "an audit key already exists ({}); nothing was changed",
            public.display()
        )));
    }
    let alg: KeyAlgorithm =
        args.key_algorithm.parse().map_err(|e: hsm::UnknownKeyAlgorithm| Failure::Input(e.to_string()))?;
    let key = match (&args.hsm_module, &args.hsm_token) {
        (Some(module), Some(label)) => {
            // Made on the token, never extractable.
            let token = crate::keys::open_token(module, label, &ctx.hsm_pin)?;
            let key = key::make(&ctx.dir, alg, AuditKeyPlace::Token { module, label, token: &token })?;
            let mut config = ctx.config.clone();
            config.server.audit_key = key.location.clone();
            config.replace(&ctx.dir.config())?;
            key
        }
        _ => {
            let passphrase = ctx.passphrase.read(false)?;
            key::make(&ctx.dir, alg, AuditKeyPlace::File { passphrase: passphrase.as_bytes() })?
        }
    };
    let store = ctx.store.as_ref();
    let first = key::first_checkpoint(store, &ctx.dir, &ctx.config.issuing.name, &key, &ctx.actor, ctx.clock_now())?;
    if ctx.json {
        print_json(&serde_json::json!({
            "public_key": public, "public_key_sha256": key.fingerprint, "key": key.place, "checkpoint": first,
        }));
    } else {
        print_checkpoint(&first, &ctx.dir.audit_checkpoint());
        println!("Audit key made ({alg}): {}", key.place);
        println!("  public key {} (SHA-256 {})", public.display(), key.fingerprint);
        println!("  Record that fingerprint away from this machine: checkpoints are verified with the key.");
    }
    Ok(())
}

pub(crate) fn print_checkpoint(cp: &Checkpoint, path: &std::path::Path) {
    println!("audit checkpoint: entry {} head {} at {} -> {}", cp.seq, cp.head, when(cp.at), path.display());
}

/// Verify the journal, sign a checkpoint of its head and publish it. A broken journal gets no
/// checkpoint: that would vouch for the damage.
pub fn checkpoint(ctx: &Context) -> Result<Checkpoint, Failure> {
    let cp = Checkpoint::of_store(ctx.store.as_ref(), &ctx.config.issuing.name, ctx.clock_now())?;
    let pinned_path = ctx.dir.audit_public_key();
    let Some(pinned) = checkpoint::read_pinned_key(&pinned_path)? else {
        return Err(Failure::NotFound("no audit key: run `ca audit init-key` first".into()));
    };
    let key = crate::keys::load_signer(
        ctx.config.server.audit_key.as_ref(),
        &ctx.dir.audit_key(),
        "the audit key",
        &ctx.passphrase,
        &ctx.hsm_pin,
    )?;
    checkpoint::check_pinned(key.as_ref(), &pinned, &pinned_path)?;
    let path = ctx.dir.audit_checkpoint();
    cp.sign_and_publish(key.as_ref(), &path)?;
    if !ctx.json {
        print_checkpoint(&cp, &path);
    }
    Ok(cp)
}

/// What `audit verify` says of a CA without an audit key (exit 4).
const NO_CHECKPOINT: &str = "no audit key and no signed checkpoint: the chain is intact as far as it goes, but its \
newest entries, or all of them, could have been deleted or rewritten without trace (run `ca audit init-key`)";

pub fn verify(ctx: &Context, args: &VerifyArgs) -> Outcome {
    let v = ctx.store.verify_audit()?;
    let mut problems: Vec<String> = v.problems.iter().map(|p| format!("entry {}: {}", p.seq, p.problem)).collect();
    let path = args.checkpoint.clone().unwrap_or_else(|| ctx.dir.audit_checkpoint());
    let pinned = checkpoint::read_pinned_key(&ctx.dir.audit_public_key())?;
    let checkpoint = match (&pinned, path.exists()) {
        (Some(key), true) => {
            let file = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            // A checkpoint made before `ca rollover issuing` names an earlier generation.
            let checked = ctx
                .config
                .issuing_names()
                .skip(1)
                .map(|ca| Checkpoint::verify(&file, key, ca))
                .find(Result::is_ok)
                .unwrap_or_else(|| Checkpoint::verify(&file, key, &ctx.config.issuing.name));
            match checked {
                Ok(cp) => {
                    let hash = ctx.store.audit_hash(cp.seq)?.map(hex::encode);
                    problems.extend(cp.problem_with(&v, hash.as_deref()));
                    Some(cp)
                }
                Err(e) => {
                    problems.push(format!("checkpoint {}: {e}", path.display()));
                    None
                }
            }
        }
        (Some(_), false) => {
            problems.push(format!("the audit key exists but there is no checkpoint at {}", path.display()));
            None
        }
        (None, _) => None,
    };
    let age = checkpoint.as_ref().map(|cp| ctx.clock_now() - cp.at);
    if ctx.json {
        print_json(&serde_json::json!({
            "intact": problems.is_empty(),
            "entries": v.entries,
            "head": v.head,
            "problems": problems,
            "checkpoint": checkpoint,
            "checkpoint_age_seconds": age.map(|a| a.whole_seconds()),
            "warning": pinned.is_none().then_some(NO_CHECKPOINT),
            "unprotected_entries": checkpoint.as_ref().map_or(v.entries as i64, |cp| v.entries as i64 - cp.seq),
        }));
    } else {
        if problems.is_empty() {
            println!("audit journal intact: {} entries, head {}", v.entries, v.head);
        } else {
            println!("audit journal BROKEN: {} entries, {} problems", v.entries, problems.len());
            for p in &problems {
                println!("  {p}");
            }
        }
        match (&checkpoint, age) {
            (Some(cp), Some(age)) => println!(
                "checkpoint: entry {} signed {} ({} min ago); {} newer entries are not covered by a checkpoint yet",
                cp.seq,
                when(cp.at),
                age.whole_minutes(),
                v.entries as i64 - cp.seq
            ),
            _ if pinned.is_none() => println!("WARNING: {NO_CHECKPOINT}"),
            _ => {}
        }
    }
    if !problems.is_empty() {
        Err(Failure::Integrity(format!("the audit journal has {} problem(s)", problems.len())))
    } else if pinned.is_none() {
        // Not a silent success: a cron job must notice a journal that nothing protects.
        Err(Failure::NotFound(format!("no signed checkpoint: {NO_CHECKPOINT}")))
    } else {
        Ok(())
    }
}
