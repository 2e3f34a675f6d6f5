//! The audit key and signed checkpoints of the journal's head ([`ca_core::checkpoint`]).

use std::path::PathBuf;

use anyhow::Context as _;
use ca_core::ca_dir::KeyLocation;
use ca_core::checkpoint::{self, Checkpoint};
use ca_core::signer::Signer;
use ca_core::store::Store;
use clap::Args;
use der::{Decode, Encode};
use hsm::{KeyAlgorithm, SoftwareKey};
use spki::SubjectPublicKeyInfoOwned;

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

fn internal(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Internal(e.into())
}

/// The pinned public key of the audit key, if one was made.
fn audit_public_key(ctx: &Context) -> Result<Option<SubjectPublicKeyInfoOwned>, Failure> {
    let path = ctx.dir.audit_public_key();
    if !path.exists() {
        return Ok(None);
    }
    let pem = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let der = crate::pem::decode("PUBLIC KEY", &pem).with_context(|| format!("{}", path.display()))?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&der).with_context(|| format!("{}", path.display()))?;
    Ok(Some(spki))
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
    let (spki, place) = match (&args.hsm_module, &args.hsm_token) {
        (Some(module), Some(label)) => {
            // Made on the token, never extractable.
            let token = crate::keys::open_token(module, label, &ctx.hsm_pin)?;
            let key = token.generate_key_pair(alg, "audit checkpoint key")?;
            let mut config = ctx.config.clone();
            config.server.audit_key =
                Some(KeyLocation::Pkcs11 { module: module.clone(), token: label.clone(), id: hex::encode(key.id()) });
            let tmp = ctx.dir.config().with_extension("toml.tmp");
            config.write(&tmp)?;
            std::fs::rename(&tmp, ctx.dir.config()).map_err(internal)?;
            (
                key.public_key().clone(),
                format!("token {label:?}, CKA_ID {} (ca.toml [server] audit_key)", hex::encode(key.id())),
            )
        }
        _ => {
            let passphrase = ctx.passphrase.read(false)?;
            let key = SoftwareKey::generate(alg)?;
            let pem = key.to_encrypted_pem(passphrase.as_bytes())?;
            hsm::write_encrypted_key_file(&ctx.dir.audit_key(), &pem)?;
            (key.public_key().clone(), format!("{} (encrypted under the CA passphrase)", ctx.dir.audit_key().display()))
        }
    };
    let der = spki.to_der().map_err(internal)?;
    std::fs::create_dir_all(ctx.dir.certs()).map_err(internal)?;
    checkpoint::publish(&public, crate::pem::encode("PUBLIC KEY", &der)?.as_bytes())
        .with_context(|| format!("cannot write {}", public.display()))?;
    let fingerprint = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&der));
    ctx.store.append_audit(
        &ca_core::store::AuditEvent::new(&ctx.actor, "audit.key.created")
            .details(serde_json::json!({ "algorithm": alg.to_string(), "public_key_sha256": fingerprint })),
    )?;
    let first = checkpoint(ctx)?;
    if ctx.json {
        print_json(&serde_json::json!({
            "public_key": public, "public_key_sha256": fingerprint, "key": place, "checkpoint": first,
        }));
    } else {
        println!("Audit key made ({alg}): {place}");
        println!("  public key {} (SHA-256 {fingerprint})", public.display());
        println!("  Record that fingerprint away from this machine: checkpoints are verified with the key.");
    }
    Ok(())
}

/// Verify the journal, sign a checkpoint of its head and publish it. A broken journal gets no
/// checkpoint: that would vouch for the damage.
pub fn checkpoint(ctx: &Context) -> Result<Checkpoint, Failure> {
    let journal = ctx.store.verify_audit()?;
    if !journal.is_intact() {
        return Err(Failure::Integrity(format!(
            "the audit journal has {} problem(s); no checkpoint was signed (run `ca audit verify`)",
            journal.problems.len()
        )));
    }
    let Some(pinned) = audit_public_key(ctx)? else {
        return Err(Failure::NotFound("no audit key: run `ca audit init-key` first".into()));
    };
    let key = crate::keys::load_signer(
        ctx.config.server.audit_key.as_ref(),
        &ctx.dir.audit_key(),
        "the audit key",
        &ctx.passphrase,
        &ctx.hsm_pin,
    )?;
    if key.public_key() != &pinned {
        return Err(Failure::Integrity(format!(
            "the audit key is not the one pinned in {}",
            ctx.dir.audit_public_key().display()
        )));
    }
    let cp = Checkpoint::of(&ctx.config.issuing.name, &journal, ctx.clock_now());
    let file = cp.sign(key.as_ref()).map_err(internal)?;
    let path = ctx.dir.audit_checkpoint();
    checkpoint::publish(&path, &file).with_context(|| format!("cannot write {}", path.display()))?;
    if !ctx.json {
        println!("audit checkpoint: entry {} head {} at {} -> {}", cp.seq, cp.head, when(cp.at), path.display());
    }
    Ok(cp)
}

pub fn verify(ctx: &Context, args: &VerifyArgs) -> Outcome {
    let v = ctx.store.verify_audit()?;
    let mut problems: Vec<String> = v.problems.iter().map(|p| format!("entry {}: {}", p.seq, p.problem)).collect();
    let path = args.checkpoint.clone().unwrap_or_else(|| ctx.dir.audit_checkpoint());
    let pinned = audit_public_key(ctx)?;
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
            _ if pinned.is_none() => {
                println!("no audit key: truncation of the newest entries cannot be detected (run `ca audit init-key`)")
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::Integrity(format!("the audit journal has {} problem(s)", problems.len())))
    }
}
